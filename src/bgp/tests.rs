//! Our encoder's output read back by an independent decoder (bgpkit-parser), so that a mistake
//! shared by our encoder and our own parser cannot hide.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgpkit_parser::models::{
    AsPathSegment, AsnLength, AttrType, AttributeValue, BgpMessage, MetaCommunity, NextHopAddress,
};
use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
use bytes::Bytes;

use super::encode::{self, NextHop, PathParams};
use crate::route::{Community, Family, LargeCommunity, Prefix, RouteAttrs};

fn decode(m: &[u8]) -> BgpMessage {
    let mut b = Bytes::copy_from_slice(m);
    parse_bgp_message(&mut b, false, &AsnLength::Bits32).expect("bgpkit-parser rejected our bytes")
}

fn attrs() -> RouteAttrs {
    RouteAttrs {
        med: Some(50),
        local_pref: None,
        communities: vec![Community(0xFE4D_0064), Community::GRACEFUL_SHUTDOWN],
        large_communities: vec![LargeCommunity {
            global: 65101,
            local1: 1,
            local2: 2,
        }],
        as_path_prepend: 1,
        link_bandwidth: None,
    }
}

fn ebgp() -> PathParams {
    PathParams {
        local_as: 65101,
        ibgp: false,
        four_octet_as: true,
    }
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn check_common(u: &bgpkit_parser::models::BgpUpdateMessage) {
    let path = u.attributes.as_path().expect("AS_PATH");
    assert_eq!(path.segments.len(), 1);
    match &path.segments[0] {
        AsPathSegment::AsSequence(asns) => {
            let v: Vec<u32> = asns.iter().map(|a| a.to_u32()).collect();
            assert_eq!(v, vec![65101, 65101]);
        }
        s => panic!("AS_PATH segment is not AS_SEQUENCE: {s:?}"),
    }
    let comms: Vec<String> = u
        .attributes
        .iter_communities()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(comms.len(), 3, "{comms:?}");
    let mut large = 0;
    for c in u.attributes.iter_communities() {
        if let MetaCommunity::Large(l) = c {
            assert_eq!((l.global_admin, l.local_data), (65101, [1, 2]));
            large += 1;
        }
    }
    assert_eq!(large, 1);
    let lc = u
        .attributes
        .get_attr(AttrType::LARGE_COMMUNITIES)
        .expect("LARGE_COMMUNITIES");
    assert!(lc.is_optional() && lc.is_transitive() && !lc.is_partial());
    assert!(!u.attributes.has_attr(AttrType::LOCAL_PREFERENCE));
    let med = u
        .attributes
        .iter()
        .find_map(|a| match a {
            AttributeValue::MultiExitDiscriminator(m) => Some(*m),
            _ => None,
        })
        .expect("MED");
    assert_eq!(med, 50);
}

#[test]
fn ipv4_announce_decodes_independently() {
    let ms = encode::announce(
        &ebgp(),
        &attrs(),
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
        &[p("203.0.113.10/32"), p("198.51.100.0/24")],
    )
    .unwrap();
    let BgpMessage::Update(u) = decode(&ms[0]) else {
        panic!("not an UPDATE")
    };
    let got: Vec<String> = u
        .announced_prefixes
        .iter()
        .map(|n| n.prefix.to_string())
        .collect();
    assert_eq!(got, vec!["203.0.113.10/32", "198.51.100.0/24"]);
    assert_eq!(
        u.attributes.next_hop(),
        Some(Ipv4Addr::new(192, 0, 2, 10).into())
    );
    check_common(&u);
}

#[test]
fn ipv6_announce_decodes_independently() {
    let nh: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let ms = encode::announce(
        &ebgp(),
        &attrs(),
        NextHop::V6(nh),
        &[p("2001:db8:10::10/128")],
    )
    .unwrap();
    let BgpMessage::Update(u) = decode(&ms[0]) else {
        panic!("not an UPDATE")
    };
    assert!(u.announced_prefixes.is_empty());
    let nlri = u.attributes.get_reachable_nlri().expect("MP_REACH_NLRI");
    assert_eq!(nlri.next_hop, Some(NextHopAddress::Ipv6(nh)));
    let got: Vec<String> = nlri.prefixes.iter().map(|n| n.prefix.to_string()).collect();
    assert_eq!(got, vec!["2001:db8:10::10/128"]);
    check_common(&u);
}

#[test]
fn withdraws_and_end_of_rib_decode_independently() {
    let ms = encode::withdraw(65101, Family::Ipv4Unicast, &[p("203.0.113.10/32")]).unwrap();
    let BgpMessage::Update(u) = decode(&ms[0]) else {
        panic!()
    };
    assert_eq!(u.withdrawn_prefixes.len(), 1);
    assert_eq!(
        u.withdrawn_prefixes[0].prefix.to_string(),
        "203.0.113.10/32"
    );

    let ms = encode::withdraw(65101, Family::Ipv6Unicast, &[p("2001:db8:10::10/128")]).unwrap();
    let BgpMessage::Update(u) = decode(&ms[0]) else {
        panic!()
    };
    let nlri = u
        .attributes
        .get_unreachable_nlri()
        .expect("MP_UNREACH_NLRI");
    assert_eq!(nlri.prefixes[0].prefix.to_string(), "2001:db8:10::10/128");

    for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let BgpMessage::Update(u) = decode(&encode::end_of_rib(f)) else {
            panic!()
        };
        assert!(u.announced_prefixes.is_empty() && u.withdrawn_prefixes.is_empty());
    }
}

#[test]
fn open_keepalive_notification_decode_independently() {
    let m = encode::open(65101, 90, Ipv4Addr::new(192, 0, 2, 10)).unwrap();
    let BgpMessage::Open(o) = decode(&m) else {
        panic!()
    };
    assert_eq!(o.version, 4);
    assert_eq!(o.asn.to_u32(), 65101);
    assert_eq!(o.hold_time, 90);
    assert_eq!(o.bgp_identifier, Ipv4Addr::new(192, 0, 2, 10));
    let caps = format!("{:?}", o.opt_params);
    assert!(
        caps.contains("afi: Ipv4, safi: Unicast") && caps.contains("afi: Ipv6, safi: Unicast"),
        "{caps}"
    );
    assert!(caps.contains("ROUTE_REFRESH"), "{caps}");
    assert!(
        caps.contains("FourOctetAsCapability { asn: 65101 }"),
        "{caps}"
    );
    assert!(
        !caps.contains("GRACEFUL") && !caps.contains("FQDN") && !caps.contains("Raw"),
        "{caps}"
    );

    assert!(matches!(
        decode(&encode::keepalive()),
        BgpMessage::KeepAlive
    ));
    let BgpMessage::Notification(n) = decode(&encode::admin_shutdown("maintenance")) else {
        panic!()
    };
    let mut want = vec![11];
    want.extend_from_slice(b"maintenance");
    assert_eq!(n.data, want);
}

#[test]
fn as_trans_and_as4_path_decode_independently_for_a_2_octet_peer() {
    let seq = |path: &bgpkit_parser::models::AsPath| -> Vec<u32> {
        match &path.segments[..] {
            [AsPathSegment::AsSequence(asns)] => asns.iter().map(|a| a.to_u32()).collect(),
            s => panic!("expected one AS_SEQUENCE, got {s:?}"),
        }
    };
    let params = PathParams {
        local_as: 4_200_000_001,
        ibgp: false,
        four_octet_as: false,
    };
    let ms = encode::announce(
        &params,
        &attrs(),
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
        &[p("203.0.113.10/32")],
    )
    .unwrap();
    let mut b = Bytes::copy_from_slice(&ms[0]);
    let m = parse_bgp_message(&mut b, false, &AsnLength::Bits16).expect("2-octet decode");
    let BgpMessage::Update(u) = m else {
        panic!("not an UPDATE: {m:?}")
    };
    assert_eq!(seq(u.attributes.as_path().unwrap()), vec![23456, 23456]);
    assert_eq!(
        seq(u.attributes.as4_path().expect("AS4_PATH")),
        vec![4_200_000_001, 4_200_000_001]
    );
    let merged = u.attributes.effective_as_path().unwrap();
    assert_eq!(seq(&merged), vec![4_200_000_001, 4_200_000_001]);
}
