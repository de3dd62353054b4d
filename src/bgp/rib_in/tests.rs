use super::*;
use crate::bgp::encode;
use crate::route::RouteAttrs;
use proptest::prelude::*;

fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn all(_: &Prefix) -> bool {
    true
}

/// The routes for the fleet view, or the session reset.
fn parse_update(
    b: &[u8],
    rx: &RxParams,
    keep: &dyn Fn(&Prefix) -> bool,
) -> Result<RibInUpdate, AttrError> {
    let u = decode_update(b, &DecodeCx { rx: *rx, keep });
    match u.session_reset() {
        Some(e) => {
            assert_eq!(u.routes, RibInUpdate::default());
            Err(e.clone())
        }
        None => Ok(u.routes),
    }
}

fn errors(b: &[u8], rx: &RxParams) -> Vec<AttrError> {
    decode_update(
        b,
        &DecodeCx {
            rx: *rx,
            keep: &all,
        },
    )
    .errors
}

const ADDPATH: RxParams = RxParams {
    add_path_v4: true,
    add_path_v6: true,
    four_octet_as: true,
};
const PLAIN: RxParams = RxParams {
    add_path_v4: false,
    add_path_v6: false,
    four_octet_as: true,
};

/// NLRI entries (path id when `Some`) as on the wire.
fn nlri(entries: &[(Option<u32>, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (id, p) in entries {
        if let Some(id) = id {
            v.extend_from_slice(&id.to_be_bytes());
        }
        let p = pfx(p);
        v.push(p.len());
        v.extend_from_slice(&p.wire_octets());
    }
    v
}

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, code];
    if flags & 0x10 != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

fn next_hop(a: [u8; 4]) -> Vec<u8> {
    attr(0x40, 3, &a)
}

fn body(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = Vec::new();
    b.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    b
}

fn mp_reach_v6(nh: &[u8], entries: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 2, 1, nh.len() as u8];
    v.extend_from_slice(nh);
    v.push(0);
    v.extend_from_slice(entries);
    attr(0x90, 14, &v)
}

fn mp_unreach(afi: u16, entries: &[u8]) -> Vec<u8> {
    let mut v = afi.to_be_bytes().to_vec();
    v.push(1);
    v.extend_from_slice(entries);
    attr(0x90, 15, &v)
}

fn key(p: &str, id: u32) -> PathKey {
    PathKey {
        prefix: pfx(p),
        path_id: id,
    }
}

#[test]
fn ipv4_add_path_with_attributes() {
    let mut lc = Vec::new();
    for w in [65101u32, 1, 0x0A00_0001] {
        lc.extend_from_slice(&w.to_be_bytes());
    }
    let b = body(
        &nlri(&[(Some(9), "203.0.113.99/32")]),
        &[
            origin(),
            as_path4(&[65000, 4_200_000_000]),
            next_hop([192, 0, 2, 1]),
            attr(0xC0, 8, &[0xFD, 0x8D, 0x02, 0x9A]),
            attr(0xC0, 32, &lc),
        ],
        &nlri(&[(Some(1), "203.0.113.10/32"), (Some(2), "203.0.113.10/32")]),
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert_eq!(u.withdrawn, vec![key("203.0.113.99/32", 9)]);
    assert_eq!(
        u.announced,
        vec![
            (key("203.0.113.10/32", 1), Family::Ipv4Unicast),
            (key("203.0.113.10/32", 2), Family::Ipv4Unicast)
        ]
    );
    assert_eq!(u.attrs.next_hop, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(u.attrs.as_path, vec![65000, 4_200_000_000]);
    assert_eq!(u.attrs.communities, vec!["64909:666".parse().unwrap()]);
    assert_eq!(
        u.attrs.large_communities,
        vec!["65101:1:167772161".parse().unwrap()]
    );
    assert_eq!(u.treat_as_withdraw, None);
    assert!(u.disable.is_empty());
}

#[test]
fn ipv6_mp_reach_with_link_local_next_hop_and_path_ids() {
    let mut nh = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    nh.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    let b = body(
        &[],
        &[
            origin(),
            as_path4(&[65000]),
            mp_reach_v6(&nh, &nlri(&[(Some(7), "2001:db8:10::10/128")])),
        ],
        &[],
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert_eq!(
        u.announced,
        vec![(key("2001:db8:10::10/128", 7), Family::Ipv6Unicast)]
    );
    assert_eq!(u.attrs.next_hop, Some("2001:db8::1".parse().unwrap()));
}

#[test]
fn mp_unreach_and_end_of_rib() {
    let b = body(
        &[],
        &[mp_unreach(2, &nlri(&[(Some(3), "2001:db8::/64")]))],
        &[],
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert_eq!(u.withdrawn, vec![key("2001:db8::/64", 3)]);
    assert_eq!(u.end_of_rib, None);
    let u = parse_update(&body(&[], &[mp_unreach(2, &[])], &[]), &ADDPATH, &all).unwrap();
    assert_eq!(u.end_of_rib, Some(Family::Ipv6Unicast));
    let u = parse_update(&body(&[], &[], &[]), &ADDPATH, &all).unwrap();
    assert_eq!(u.end_of_rib, Some(Family::Ipv4Unicast));
}

#[test]
fn filter_counts_what_it_drops() {
    let only = |p: &Prefix| *p == pfx("203.0.113.10/32");
    let b = body(
        &[],
        &[origin(), as_path4(&[65000]), next_hop([192, 0, 2, 1])],
        &nlri(&[
            (None, "10.0.0.0/8"),
            (None, "203.0.113.10/32"),
            (None, "203.0.113.0/24"),
        ]),
    );
    let u = parse_update(&b, &PLAIN, &only).unwrap();
    assert_eq!(
        u.announced,
        vec![(key("203.0.113.10/32", 0), Family::Ipv4Unicast)]
    );
    assert_eq!(u.filtered_out, 2);
}

#[test]
fn prefix_too_long_disables_the_family_and_keeps_the_session() {
    let mut n = nlri(&[(Some(1), "203.0.113.10/32")]);
    n.extend_from_slice(&[0, 0, 0, 2, 33, 1, 2, 3, 4, 5]);
    let b = body(
        &[],
        &[origin(), as_path4(&[65000]), next_hop([192, 0, 2, 1])],
        &n,
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert!(u.announced.is_empty());
    assert_eq!(u.withdrawn, vec![key("203.0.113.10/32", 1)]);
    assert_eq!(u.disable.len(), 1);
    assert_eq!(u.disable[0].0, Family::Ipv4Unicast);
    assert!(u.disable[0].1.contains("33"), "{:?}", u.disable);
}

#[test]
fn truncated_ipv6_prefix_disables_ipv6_only() {
    let b = body(
        &[],
        &[
            origin(),
            as_path4(&[65000]),
            mp_reach_v6(&[0x20; 16], &[0, 0, 0, 1, 128, 0x20, 0x01]),
        ],
        &[],
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert_eq!(u.disable.len(), 1);
    assert_eq!(u.disable[0].0, Family::Ipv6Unicast);
}

#[test]
fn add_path_without_negotiation_misreads_safely() {
    // Path ids where none were negotiated read as short prefixes (1, 2 -> 0.0.0.0/1; 3, 4 ->
    // 0.0.0.0/3), then the real one: wrong but bounded, and filtered out by the VIP filter.
    let b = body(
        &[],
        &[origin(), as_path4(&[65000]), next_hop([192, 0, 2, 1])],
        &nlri(&[(Some(0x0102_0304), "203.0.113.10/32")]),
    );
    let u = parse_update(&b, &PLAIN, &all).unwrap();
    assert_eq!(u.announced.len(), 3);
    assert_eq!(u.announced[0].0, key("0.0.0.0/1", 0));
}

#[test]
fn bad_mp_reach_next_hop_length_is_treat_as_withdraw() {
    let b = body(
        &[],
        &[
            origin(),
            as_path4(&[65000]),
            mp_reach_v6(&[0x20; 5], &nlri(&[(Some(1), "2001:db8::/64")])),
        ],
        &[],
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert!(u.announced.is_empty());
    assert_eq!(u.withdrawn, vec![key("2001:db8::/64", 1)]);
    assert!(u.treat_as_withdraw.unwrap().contains("next-hop length 5"));
    assert!(u.disable.is_empty());

    // A next-hop length running past the attribute: the NLRI cannot be located.
    let mut v = vec![0, 2, 1, 200, 1, 2, 3];
    v.push(0);
    let b = body(
        &[],
        &[origin(), as_path4(&[65000]), attr(0x80, 14, &v)],
        &[],
    );
    let u = parse_update(&b, &ADDPATH, &all).unwrap();
    assert_eq!(u.disable[0].0, Family::Ipv6Unicast);
}

#[test]
fn duplicate_mp_attributes_reset_with_3_1() {
    let m = mp_unreach(2, &[]);
    let e = parse_update(&body(&[], &[m.clone(), m], &[]), &ADDPATH, &all).unwrap_err();
    assert_eq!(e.why(), &Malformed::DuplicateMpAttribute { code: 15 });
    assert_eq!(e.to_bgp_error().unwrap().code.wire(), (3, 1));
    let r = mp_reach_v6(&[0x20; 16], &[]);
    let e = parse_update(&body(&[], &[r.clone(), r], &[]), &ADDPATH, &all).unwrap_err();
    assert_eq!(e.why(), &Malformed::DuplicateMpAttribute { code: 14 });
}

#[test]
fn unrecognized_well_known_resets_with_3_2_and_the_attribute() {
    let bad = attr(0x40, 99, &[1, 2]);
    let e = parse_update(&body(&[], &[origin(), bad.clone()], &[]), &ADDPATH, &all).unwrap_err();
    let n = e.to_bgp_error().unwrap();
    assert_eq!((n.code.wire(), n.data), ((3, 2), bad));
    // The same code flagged optional is ignored.
    let u = parse_update(
        &body(&[], &[origin(), attr(0xC0, 99, &[1, 2])], &[]),
        &ADDPATH,
        &all,
    )
    .unwrap();
    assert_eq!(u.treat_as_withdraw, None);
}

#[test]
fn missing_mandatory_and_malformed_attributes_are_treat_as_withdraw() {
    let n = nlri(&[(None, "203.0.113.10/32")]);
    let u = parse_update(&body(&[], &[origin(), as_path4(&[1])], &n), &PLAIN, &all).unwrap();
    assert!(u.treat_as_withdraw.unwrap().contains("NEXT_HOP"));
    assert_eq!(
        errors(&body(&[], &[origin(), as_path4(&[1])], &n), &PLAIN),
        vec![AttrError::TreatAsWithdraw(Malformed::Missing(vec![
            "NEXT_HOP"
        ]))]
    );
    assert_eq!(u.withdrawn, vec![key("203.0.113.10/32", 0)]);

    for bad in [
        attr(0xC0, 8, &[1, 2, 3]),
        attr(0xC0, 32, &[0; 11]),
        attr(0x40, 2, &[2, 2, 0, 0, 0, 1, 0]),
        attr(0x40, 3, &[1, 2, 3]),
        attr(0x40, 1, &[7]),
        attr(0xC0, 1, &[0]),
    ] {
        let u = parse_update(
            &body(
                &[],
                // First, so that the good copies that follow are the discarded repeats.
                &[
                    bad.clone(),
                    origin(),
                    as_path4(&[1]),
                    next_hop([192, 0, 2, 1]),
                ],
                &n,
            ),
            &PLAIN,
            &all,
        )
        .unwrap();
        assert!(u.treat_as_withdraw.is_some(), "{bad:?}");
        assert!(u.announced.is_empty());
    }
}

#[test]
fn repeated_attribute_keeps_the_first() {
    let b = body(
        &[],
        &[
            origin(),
            as_path4(&[1]),
            next_hop([192, 0, 2, 1]),
            attr(0xC0, 8, &[0, 1, 0, 1]),
            attr(0xC0, 8, &[0, 2, 0, 2]),
        ],
        &nlri(&[(None, "203.0.113.10/32")]),
    );
    let u = parse_update(&b, &PLAIN, &all).unwrap();
    assert_eq!(u.attrs.communities, vec![Community(0x0001_0001)]);
    assert_eq!(
        errors(&b, &PLAIN),
        vec![AttrError::Discard {
            code: 8,
            why: Malformed::Repeated { code: 8 }
        }]
    );
    assert_eq!(u.announced.len(), 1);
}

#[test]
fn two_octet_as_path_and_overlong_path() {
    let mut seg = vec![2, 255];
    for i in 0..255u16 {
        seg.extend_from_slice(&i.to_be_bytes());
    }
    let b = body(
        &[],
        &[origin(), attr(0x50, 2, &seg), next_hop([192, 0, 2, 1])],
        &nlri(&[(None, "203.0.113.10/32")]),
    );
    let rx = RxParams {
        four_octet_as: false,
        ..PLAIN
    };
    let u = parse_update(&b, &rx, &all).unwrap();
    assert_eq!(u.attrs.as_path.len(), MAX_AS_PATH);
    assert_eq!(u.attrs.as_path_len, 255);
    assert_eq!(u.attrs.as_path[1], 1);
}

#[test]
fn length_overruns_reset_with_3_1() {
    let e = parse_update(&[0, 9, 0, 0], &PLAIN, &all).unwrap_err();
    assert_eq!(e.to_bgp_error().unwrap().code.wire(), (3, 1));
    assert!(parse_update(&[0, 0, 0, 9], &PLAIN, &all).is_err());
    assert!(parse_update(&[0, 0], &PLAIN, &all).is_err());
}

#[test]
fn attribute_overrun_disables_both_families() {
    let mut b = body(&[], &[origin()], &[]);
    // Total length covers a header claiming 50 bytes that are not there.
    b[3] += 3;
    b.extend_from_slice(&[0x40, 2, 50]);
    let u = parse_update(&b, &PLAIN, &all).unwrap();
    assert_eq!(u.disable.len(), 2);
}

/// Our own encoder's output (zettabgp-built) reads back as what it announced.
#[test]
fn reads_what_our_encoder_sends() {
    let params = encode::PathParams {
        local_as: 65101,
        ibgp: false,
        four_octet_as: true,
    };
    let attrs = RouteAttrs {
        communities: vec!["65101:666".parse().unwrap()],
        large_communities: vec!["65101:1:42".parse().unwrap()],
        ..RouteAttrs::default()
    };
    let ps = vec![pfx("203.0.113.10/32"), pfx("198.51.100.0/24")];
    let msgs = encode::announce(
        &params,
        &attrs,
        encode::NextHop::V4("192.0.2.2".parse().unwrap()),
        &ps,
    )
    .unwrap();
    let u = parse_update(&msgs[0][19..], &PLAIN, &all).unwrap();
    let got: Vec<Prefix> = u.announced.iter().map(|(k, _)| k.prefix).collect();
    assert_eq!(got, ps);
    assert_eq!(u.attrs.as_path, vec![65101]);
    assert_eq!(u.attrs.communities, attrs.communities);
    assert_eq!(u.attrs.large_communities, attrs.large_communities);

    let v6 = vec![pfx("2001:db8:10::10/128")];
    let msgs = encode::announce(
        &params,
        &attrs,
        encode::NextHop::V6("2001:db8::2".parse().unwrap()),
        &v6,
    )
    .unwrap();
    let u = parse_update(&msgs[0][19..], &PLAIN, &all).unwrap();
    assert_eq!(
        u.announced,
        vec![(key("2001:db8:10::10/128", 0), Family::Ipv6Unicast)]
    );
    let w = encode::withdraw(65101, Family::Ipv6Unicast, &v6).unwrap();
    let u = parse_update(&w[0][19..], &PLAIN, &all).unwrap();
    assert_eq!(u.withdrawn, vec![key("2001:db8:10::10/128", 0)]);
}

fn arb_v4() -> impl Strategy<Value = (u32, Prefix)> {
    (any::<u32>(), any::<u32>(), 0u8..=32)
        .prop_map(|(id, a, l)| (id, masked(IpAddr::V4(Ipv4Addr::from(a)), l).unwrap()))
}

fn arb_v6() -> impl Strategy<Value = (u32, Prefix)> {
    (any::<u32>(), any::<u128>(), 0u8..=128)
        .prop_map(|(id, a, l)| (id, masked(IpAddr::V6(Ipv6Addr::from(a)), l).unwrap()))
}

fn entries(v: &[(u32, Prefix)], add_path: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, p) in v {
        if add_path {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out.push(p.len());
        out.extend_from_slice(&p.wire_octets());
    }
    out
}

proptest! {
    /// Arbitrary bytes: a result or a typed error, never a panic.
    #[test]
    fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..600),
                    v4 in any::<bool>(), v6 in any::<bool>(), four in any::<bool>()) {
        let rx = RxParams { add_path_v4: v4, add_path_v6: v6, four_octet_as: four };
        let _ = parse_update(&b, &rx, &all);
    }

    /// A well-formed UPDATE built from random paths reads back exactly.
    #[test]
    fn round_trip(w4 in proptest::collection::vec(arb_v4(), 0..20),
                  a4 in proptest::collection::vec(arb_v4(), 0..20),
                  a6 in proptest::collection::vec(arb_v6(), 0..20),
                  w6 in proptest::collection::vec(arb_v6(), 0..20),
                  add_path in any::<bool>()) {
        let rx = RxParams { add_path_v4: add_path, add_path_v6: add_path, four_octet_as: true };
        let id = |(i, p): &(u32, Prefix)| PathKey { prefix: *p, path_id: if add_path { *i } else { 0 } };
        let mut attrs = vec![origin(), as_path4(&[65000]), next_hop([192, 0, 2, 1])];
        if !a6.is_empty() {
            attrs.push(mp_reach_v6(&[0x20; 16], &entries(&a6, add_path)));
        }
        if !w6.is_empty() {
            attrs.push(mp_unreach(2, &entries(&w6, add_path)));
        }
        let b = body(&entries(&w4, add_path), &attrs, &entries(&a4, add_path));
        let u = parse_update(&b, &rx, &all).unwrap();
        prop_assert!(u.disable.is_empty());
        prop_assert_eq!(u.treat_as_withdraw, None);
        let mut want_w: Vec<PathKey> = w4.iter().map(id).collect();
        want_w.extend(w6.iter().map(id));
        prop_assert_eq!(u.withdrawn, want_w);
        let mut want_a: Vec<(PathKey, Family)> = a6.iter().map(|e| (id(e), Family::Ipv6Unicast)).collect();
        want_a.extend(a4.iter().map(|e| (id(e), Family::Ipv4Unicast)));
        prop_assert_eq!(u.announced, want_a);
    }

    /// Any single byte changed in a valid UPDATE: a result or a typed error, never a panic.
    #[test]
    fn near_valid_never_panics(a4 in proptest::collection::vec(arb_v4(), 1..10),
                                      at in any::<usize>(), byte in any::<u8>()) {
        let mut b = body(&[], &[origin(), as_path4(&[65000]), next_hop([192, 0, 2, 1])],
                         &entries(&a4, true));
        let i = at % b.len();
        b[i] = byte;
        let _ = parse_update(&b, &ADDPATH, &all);
    }
}
