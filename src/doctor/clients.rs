//! The sample clients doctor looks replies up to when no `--client` is given: per family, a
//! documentation address that only the default route covers, so the lookup follows the path real
//! clients beyond the fabric take (a fixed address such as the docs' ToR, 192.0.2.1, sat on a
//! connected subnet and passed trivially). Pure: routes and local addresses in, addresses out.

use std::net::IpAddr;

use super::rtnl::Route;
use crate::signals::handshakes::AddrMatch;

/// Tried in order; hosts at the top of each documentation range, rarely used for routers.
const CANDIDATES: [&str; 8] = [
    "203.0.113.254",
    "198.51.100.254",
    "192.0.2.254",
    "192.0.2.200",
    "2001:db8:ffff::254",
    "2001:db8:fffe::254",
    "2001:db8:fffd::254",
    "2001:db8:fffc::254",
];

/// Per family, the first candidate neither local nor inside a main-table route more specific
/// than the default. With no route table at all, the first candidate of each family.
pub fn default_clients(routes: Option<&[Route]>, is_local: impl Fn(IpAddr) -> bool) -> Vec<IpAddr> {
    let specific = |c: IpAddr| {
        routes.is_some_and(|rs| {
            rs.iter().any(|r| {
                r.table == 254
                    && r.dst.is_some_and(|(addr, len)| {
                        len > 0
                            && addr.is_ipv4() == c.is_ipv4()
                            && AddrMatch { addr, len }.contains(c)
                    })
            })
        })
    };
    let mut out = Vec::new();
    for v4 in [true, false] {
        let pick = CANDIDATES
            .iter()
            .filter_map(|c| c.parse::<IpAddr>().ok())
            .filter(|c| c.is_ipv4() == v4)
            .find(|&c| !is_local(c) && !specific(c));
        out.extend(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: Option<(&str, u8)>) -> Route {
        Route {
            family: 2,
            dst: dst.map(|(a, l)| (a.parse().unwrap(), l)),
            table: 254,
            kind: 1,
            oifs: vec![2],
            gateway: None,
            prefsrc: None,
        }
    }

    #[test]
    fn skips_connected_and_specific_routes_and_local_addresses() {
        let routes = [
            route(None),
            route(Some(("203.0.113.0", 24))),
            route(Some(("198.51.100.252", 30))),
        ];
        let local = |a: IpAddr| a == "192.0.2.254".parse::<IpAddr>().unwrap();
        let c = default_clients(Some(&routes), local);
        assert_eq!(c[0], "192.0.2.200".parse::<IpAddr>().unwrap());
        assert_eq!(c[1], "2001:db8:ffff::254".parse::<IpAddr>().unwrap());
        // The default route and other tables do not count as specific.
        let mut other = route(Some(("192.0.2.0", 24)));
        other.table = 100;
        let c = default_clients(Some(&[route(None), other]), |_| false);
        assert_eq!(c[0], "203.0.113.254".parse::<IpAddr>().unwrap());
        assert_eq!(default_clients(None, |_| false).len(), 2);
    }

    #[test]
    fn every_candidate_covered_gives_none_of_that_family() {
        let routes = [
            route(Some(("192.0.0.0", 8))),
            route(Some(("198.0.0.0", 8))),
            route(Some(("203.0.0.0", 8))),
        ];
        let c = default_clients(Some(&routes), |_| false);
        assert!(c.iter().all(|a| a.is_ipv6()), "{c:?}");
    }
}
