//! Sending side: the messages we put on the wire.
//!
//! zettabgp encodes OPEN and UPDATE bodies; this module owns the workarounds for its defects:
//! AS_PATH (zettabgp writes AS_SET for a sequence), AS4_PATH and LARGE_COMMUNITIES (it sets the
//! Partial flag) go in as raw attributes; the header, KEEPALIVE and NOTIFICATION (it always
//! appends two data bytes, so no RFC 9003 text) are ours, and we chunk NLRI ourselves so that no message
//! exceeds 4096 bytes and no zettabgp encoder ever sees a buffer it could overrun.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zettabgp::prelude as z;

use super::error::{Cease, ErrorCode};
use super::wire::{
    AS_TRANS, HEADER_LEN, MAX_MESSAGE_LEN, MSG_KEEPALIVE, MSG_NOTIFICATION, MSG_OPEN,
    MSG_ROUTE_REFRESH, MSG_UPDATE,
};
use crate::route::{Family, Prefix, RouteAttrs};

/// Why a message could not be built (always a local limit or bug, never peer input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

fn err(s: impl Into<String>) -> EncodeError {
    EncodeError(s.into())
}

/// Prefixes a body with the 19-byte header.
fn with_header(msg_type: u8, body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let len = HEADER_LEN + body.len();
    if len > MAX_MESSAGE_LEN {
        return Err(err(format!(
            "message of {len} bytes exceeds the 4096-byte BGP maximum"
        )));
    }
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&[0xFF; 16]);
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(msg_type);
    m.extend_from_slice(body);
    Ok(m)
}

/// zettabgp's view of the session. `IPv4` is the family of the legacy NLRI/NEXT_HOP fields, which
/// is what we use on any transport (IPv6 only ever goes in MP_REACH/MP_UNREACH).
fn z_params(local_as: u32) -> z::BgpSessionParams {
    let mut p = z::BgpSessionParams::new(
        local_as,
        0,
        z::BgpTransportMode::IPv4,
        Ipv4Addr::UNSPECIFIED,
        Vec::new(),
    );
    p.fuzzy_pathid = false;
    p
}

/// Encodes a body with zettabgp into a buffer far larger than any message we build (its
/// encoders index without checking), then enforces the 4096-byte limit.
fn z_encode(msg: &impl z::BgpMessage, local_as: u32, msg_type: u8) -> Result<Vec<u8>, EncodeError> {
    let mut buf = vec![0u8; 65536];
    let n = msg
        .encode_to(&z_params(local_as), &mut buf)
        .map_err(|e| err(format!("zettabgp encoder failed: {e:?}")))?;
    with_header(msg_type, &buf[..n])
}

/// Our OPEN: MP IPv4 + IPv6 unicast, route refresh, 4-octet AS, ADD-PATH receive. Never graceful restart (a ToR
/// would keep a dead node's routes as stale) and never FQDN (zettabgp encodes it wrongly).
pub fn open(local_as: u32, hold_time: u16, router_id: Ipv4Addr) -> Result<Vec<u8>, EncodeError> {
    let msg = z::BgpOpenMessage {
        // zettabgp writes AS_TRANS into the 2-octet field itself when local_as > 65535.
        as_num: local_as,
        hold_time,
        router_id,
        caps: vec![
            z::BgpCapability::SafiIPv4u,
            z::BgpCapability::SafiIPv6u,
            z::BgpCapability::CapRR,
            z::BgpCapability::CapASN32(local_as),
            // RFC 7911: we receive path ids for both families (the fleet view sees every
            // announcer); we never send them.
            z::BgpCapability::CapAddPath(vec![
                z::BgpCapAddPath {
                    afi: 1,
                    safi: 1,
                    send: false,
                    receive: true,
                },
                z::BgpCapAddPath {
                    afi: 2,
                    safi: 1,
                    send: false,
                    receive: true,
                },
            ]),
        ],
    };
    let m = z_encode(&msg, local_as, MSG_OPEN)?;
    debug_assert!(local_as <= 65535 || m[20..22] == AS_TRANS.to_be_bytes());
    Ok(m)
}

pub fn keepalive() -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&19u16.to_be_bytes());
    m.push(MSG_KEEPALIVE);
    m
}

/// ROUTE-REFRESH (RFC 2918) for one family, hand-encoded (fixed 23 bytes). Sent only to a peer
/// that offered the capability: after an in-place upgrade, to learn its table again.
pub fn route_refresh(family: Family) -> Vec<u8> {
    let (afi, safi) = family.afi_safi();
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&23u16.to_be_bytes());
    m.push(MSG_ROUTE_REFRESH);
    m.extend_from_slice(&afi.to_be_bytes());
    m.push(0);
    m.push(safi);
    m
}

/// NOTIFICATION, hand-encoded (zettabgp always appends two data bytes). Data that would not fit
/// in 4096 bytes is cut.
pub fn notification(code: ErrorCode, data: &[u8]) -> Vec<u8> {
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 2;
    let (code, subcode) = code.wire();
    let mut body = vec![code, subcode];
    body.extend_from_slice(&data[..data.len().min(room)]);
    let len = HEADER_LEN + body.len();
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(MSG_NOTIFICATION);
    m.extend_from_slice(&body);
    m
}

/// RFC 9003 shutdown communication: a length octet and up to 255 bytes of UTF-8, cut on a
/// character boundary.
pub fn shutdown_communication(text: &str) -> Vec<u8> {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut d = Vec::with_capacity(end + 1);
    d.push(end as u8);
    d.extend_from_slice(&text.as_bytes()[..end]);
    d
}

/// Cease / Administrative Shutdown (6/2) with a shutdown communication.
pub fn admin_shutdown(text: &str) -> Vec<u8> {
    cease(Cease::AdministrativeShutdown, text)
}

/// A Cease NOTIFICATION; `text` goes along as an RFC 9003 shutdown communication where the
/// subcode allows one (2 and 4), and is dropped otherwise.
pub fn cease(sub: Cease, text: &str) -> Vec<u8> {
    let code = ErrorCode::Cease(sub);
    if code.carries_shutdown_message() {
        notification(code, &shutdown_communication(text))
    } else {
        notification(code, &[])
    }
}

/// How the session shapes our attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathParams {
    pub local_as: u32,
    /// remote_as == local_as: empty AS_PATH and LOCAL_PREF (RFC 4271 5.1.2, 5.1.5).
    pub ibgp: bool,
    /// Peer negotiated 4-octet AS (RFC 6793); without it AS_PATH carries 2-octet ASNs.
    pub four_octet_as: bool,
}

/// Flags for a raw attribute: extended length when the value needs it.
fn flags(base: u8, len: usize) -> u8 {
    if len > 255 {
        base | 0x10
    } else {
        base
    }
}

fn raw_attr(typecode: u8, base_flags: u8, value: Vec<u8>) -> z::BgpAttrItem {
    let mut a = z::BgpAttrUnknown::new(typecode, flags(base_flags, value.len()));
    a.value = value;
    z::BgpAttrItem::Unknown(a)
}

/// AS_SEQUENCE segments of at most 255 ASNs, each written by `put`.
fn as_sequence(count: usize, width: usize, asn: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 * count.div_ceil(255) + count * width);
    let mut left = count;
    while left > 0 {
        let n = left.min(255);
        v.push(2); // AS_SEQUENCE
        v.push(n as u8);
        for _ in 0..n {
            v.extend_from_slice(&asn[asn.len() - width..]);
        }
        left -= n;
    }
    v
}

/// AS_PATH value (zettabgp writes AS_SET instead of AS_SEQUENCE), and the AS4_PATH value when
/// the peer lacks 4-octet AS support and our AS does not fit in 2 octets: RFC 6793 4.2.2 puts
/// AS_TRANS in AS_PATH and the real path in AS4_PATH.
fn as_path_values(p: &PathParams, prepend: u8) -> (Vec<u8>, Option<Vec<u8>>) {
    if p.ibgp {
        return (Vec::new(), None);
    }
    let count = 1 + prepend as usize;
    let asn = p.local_as.to_be_bytes();
    if p.four_octet_as {
        return (as_sequence(count, 4, &asn), None);
    }
    if p.local_as > 65535 {
        let trans = (AS_TRANS as u32).to_be_bytes();
        return (
            as_sequence(count, 2, &trans),
            Some(as_sequence(count, 4, &asn)),
        );
    }
    (as_sequence(count, 2, &asn), None)
}

/// Path attributes in type-code order, except MP_REACH_NLRI which the caller inserts.
fn path_attrs(
    p: &PathParams,
    attrs: &RouteAttrs,
    next_hop_v4: Option<Ipv4Addr>,
) -> Result<Vec<z::BgpAttrItem>, EncodeError> {
    // Our own size check first, so that no zettabgp encoder can be handed more than fits.
    let size = 4 * attrs.communities.len() + 12 * attrs.large_communities.len();
    if size > 3000 {
        return Err(err(format!(
            "{} communities and {} large communities do not fit in one BGP message",
            attrs.communities.len(),
            attrs.large_communities.len()
        )));
    }
    let (as_path, as4_path) = as_path_values(p, attrs.as_path_prepend);
    let mut v = vec![
        z::BgpAttrItem::Origin(z::BgpOrigin::new(z::BgpAttrOrigin::Igp)),
        raw_attr(2, 0x40, as_path),
    ];
    if let Some(nh) = next_hop_v4 {
        v.push(z::BgpAttrItem::NextHop(z::BgpNextHop::new(IpAddr::V4(nh))));
    }
    if let Some(med) = attrs.med {
        v.push(z::BgpAttrItem::MED(z::BgpMED::new(med)));
    }
    if p.ibgp {
        v.push(z::BgpAttrItem::LocalPref(z::BgpLocalpref::new(
            attrs.local_pref.unwrap_or(100),
        )));
    }
    if !attrs.communities.is_empty() {
        v.push(z::BgpAttrItem::CommunityList(
            z::BgpCommunityList::from_vec(
                attrs
                    .communities
                    .iter()
                    .map(|c| z::BgpCommunity::new(c.0))
                    .collect(),
            ),
        ));
    }
    if let Some(bw) = attrs.link_bandwidth {
        // EXTENDED_COMMUNITIES: the attribute is optional transitive; the community in it is
        // not (type 0x40), so routers do not pass it beyond the next AS.
        v.push(raw_attr(16, 0xC0, link_bandwidth(p.local_as, bw).to_vec()));
    }
    if let Some(as4) = as4_path {
        v.push(raw_attr(17, 0xC0, as4)); // AS4_PATH: optional transitive
    }
    Ok(v)
}

/// RFC 10005 Link Bandwidth: non-transitive two-octet-AS-specific extended community (type
/// 0x40, sub-type 0x04), global administrator our AS, local administrator the bandwidth in bytes
/// per second as an IEEE 754 single-precision float. A 4-octet AS does not fit the 2-octet
/// field: AS_TRANS goes there (what FRR sends and reads; the AS carries no meaning for the
/// weight).
pub fn link_bandwidth(local_as: u32, bytes_per_sec: u64) -> [u8; 8] {
    let asn = u16::try_from(local_as).unwrap_or(AS_TRANS);
    let a = asn.to_be_bytes();
    let f = (bytes_per_sec as f32).to_be_bytes();
    [0x40, 0x04, a[0], a[1], f[0], f[1], f[2], f[3]]
}

/// LARGE_COMMUNITIES (type 32), raw with flags optional+transitive (zettabgp sets Partial).
fn large_communities(attrs: &RouteAttrs) -> Option<z::BgpAttrItem> {
    if attrs.large_communities.is_empty() {
        return None;
    }
    let mut lc = attrs.large_communities.clone();
    lc.sort();
    lc.dedup();
    let mut v = Vec::with_capacity(12 * lc.len());
    for c in &lc {
        v.extend_from_slice(&c.global.to_be_bytes());
        v.extend_from_slice(&c.local1.to_be_bytes());
        v.extend_from_slice(&c.local2.to_be_bytes());
    }
    Some(raw_attr(32, 0xC0, v))
}

fn nlri_size(p: &Prefix) -> usize {
    1 + (p.len() as usize).div_ceil(8)
}

/// Splits prefixes into runs whose NLRI fits in `room` bytes each.
fn chunks(prefixes: &[Prefix], room: usize) -> Result<Vec<&[Prefix]>, EncodeError> {
    if room < 17 {
        return Err(err(format!(
            "path attributes leave only {room} bytes for prefixes in a 4096-byte UPDATE"
        )));
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, p) in prefixes.iter().enumerate() {
        let s = nlri_size(p);
        if used + s > room {
            out.push(&prefixes[start..i]);
            start = i;
            used = 0;
        }
        used += s;
    }
    if start < prefixes.len() {
        out.push(&prefixes[start..]);
    }
    Ok(out)
}

fn v4(ps: &[Prefix]) -> Result<Vec<z::BgpAddrV4>, EncodeError> {
    ps.iter()
        .map(|p| match p.addr() {
            IpAddr::V4(a) => Ok(z::BgpAddrV4::new(a, p.len())),
            IpAddr::V6(_) => Err(err(format!("{p} is not an IPv4 prefix"))),
        })
        .collect()
}

fn v6(ps: &[Prefix]) -> Result<Vec<z::BgpAddrV6>, EncodeError> {
    ps.iter()
        .map(|p| match p.addr() {
            IpAddr::V6(a) => Ok(z::BgpAddrV6::new(a, p.len())),
            IpAddr::V4(_) => Err(err(format!("{p} is not an IPv6 prefix"))),
        })
        .collect()
}

/// The next hop that goes with a family's announcements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// Announces `prefixes` (all of one family) with one attribute set, as UPDATEs of at most 4096
/// bytes each. IPv4 uses the legacy NLRI field with NEXT_HOP; IPv6 uses MP_REACH_NLRI only.
pub fn announce(
    p: &PathParams,
    attrs: &RouteAttrs,
    next_hop: NextHop,
    prefixes: &[Prefix],
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let lc = large_communities(attrs);
    let build = |chunk: &[Prefix]| -> Result<Vec<u8>, EncodeError> {
        let mut msg = z::BgpUpdateMessage::new();
        match next_hop {
            NextHop::V4(nh) => {
                msg.attrs = path_attrs(p, attrs, Some(nh))?;
                msg.updates = z::BgpAddrs::IPV4U(v4(chunk)?);
            }
            NextHop::V6(nh) => {
                msg.attrs = path_attrs(p, attrs, None)?;
                msg.attrs.push(z::BgpAttrItem::MPUpdates(z::BgpMPUpdates {
                    nexthop: z::BgpAddr::V6(nh),
                    addrs: z::BgpAddrs::IPV6U(v6(chunk)?),
                }));
            }
        }
        msg.attrs.extend(lc.clone());
        z_encode(&msg, p.local_as, MSG_UPDATE)
    };
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    // An UPDATE with no prefixes measures the fixed part; each prefix then adds its NLRI size
    // (MP_REACH always uses the 2-octet length, so its header does not grow).
    let base = build(&[])?.len();
    let room = MAX_MESSAGE_LEN.saturating_sub(base);
    chunks(prefixes, room)?.into_iter().map(build).collect()
}

/// Withdraws `prefixes` (all of one family): IPv4 in the withdrawn routes field, IPv6 in
/// MP_UNREACH_NLRI.
pub fn withdraw(
    local_as: u32,
    family: Family,
    prefixes: &[Prefix],
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let build = |chunk: &[Prefix]| -> Result<Vec<u8>, EncodeError> {
        let mut msg = z::BgpUpdateMessage::new();
        match family {
            Family::Ipv4Unicast => msg.withdraws = z::BgpAddrs::IPV4U(v4(chunk)?),
            Family::Ipv6Unicast => {
                msg.attrs = vec![z::BgpAttrItem::MPWithdraws(z::BgpMPWithdraws::new(
                    z::BgpAddrs::IPV6U(v6(chunk)?),
                ))]
            }
        }
        z_encode(&msg, local_as, MSG_UPDATE)
    };
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    let base = build(&[])?.len();
    chunks(prefixes, MAX_MESSAGE_LEN - base)?
        .into_iter()
        .map(build)
        .collect()
}

/// End-of-RIB (RFC 4724 2): an empty UPDATE for IPv4, an empty MP_UNREACH_NLRI for IPv6.
pub fn end_of_rib(family: Family) -> Vec<u8> {
    match family {
        Family::Ipv4Unicast => vec![
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0, 23, MSG_UPDATE, 0, 0, 0, 0,
        ],
        Family::Ipv6Unicast => {
            let (afi, safi) = family.afi_safi();
            let afi = afi.to_be_bytes();
            let body = [0, 0, 0, 6, 0x80, 15, 3, afi[0], afi[1], safi];
            let mut m = vec![0xFF; 16];
            m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
            m.push(MSG_UPDATE);
            m.extend_from_slice(&body);
            m
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{self, BgpCodec, Frame, Message};
    use super::*;
    use crate::route::{Community, LargeCommunity};
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    const HDR: [u8; 16] = [0xFF; 16];

    fn hdr(len: u16, t: u8) -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(t);
        v
    }

    fn frame(m: &[u8]) -> Frame {
        let mut b = BytesMut::from(m);
        let f = BgpCodec.decode(&mut b).unwrap().unwrap();
        assert!(b.is_empty(), "trailing bytes after one message");
        f
    }

    fn ebgp() -> PathParams {
        PathParams {
            local_as: 65101,
            ibgp: false,
            four_octet_as: true,
        }
    }

    fn pfx(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn open_bytes() {
        let m = open(65101, 90, Ipv4Addr::new(192, 0, 2, 10)).unwrap();
        let mut want = hdr(69, 1);
        want.extend_from_slice(&[4, 0xFE, 0x4D, 0, 90, 192, 0, 2, 10, 40]);
        want.extend_from_slice(&[2, 6, 1, 4, 0, 1, 0, 1]); // MP IPv4 unicast
        want.extend_from_slice(&[2, 6, 1, 4, 0, 2, 0, 1]); // MP IPv6 unicast
        want.extend_from_slice(&[2, 2, 2, 0]); // route refresh
        want.extend_from_slice(&[2, 6, 65, 4, 0, 0, 0xFE, 0x4D]); // 4-octet AS
                                                                  // ADD-PATH (RFC 7911 4): IPv4 and IPv6 unicast, send/receive 1 = receive only.
        want.extend_from_slice(&[2, 10, 69, 8, 0, 1, 1, 1, 0, 2, 1, 1]);
        assert_eq!(m, want);
        // Round trip through our parser.
        let Message::Open(o) = wire::parse(
            &frame(&m),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.peer_as(), 65101);
        assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert!(o.route_refresh && o.other_capabilities.is_empty());
        assert_eq!(o.add_path, vec![(1, 1, 1), (2, 1, 1)]);
    }

    #[test]
    fn open_with_4_octet_as_uses_as_trans() {
        let m = open(4_200_000_000, 3, Ipv4Addr::new(192, 0, 2, 10)).unwrap();
        assert_eq!(&m[20..22], &AS_TRANS.to_be_bytes());
        let Message::Open(o) = wire::parse(
            &frame(&m),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((o.my_as, o.peer_as()), (AS_TRANS, 4_200_000_000));
    }

    #[test]
    fn keepalive_and_notification_bytes() {
        assert_eq!(keepalive(), hdr(19, 4));
        let mut want = hdr(21, 3);
        want.extend_from_slice(&[4, 0]);
        assert_eq!(notification(ErrorCode::HoldTimerExpired, &[]), want);
        let mut want = hdr(23, 3);
        want.extend_from_slice(&[1, 2, 0, 18]);
        assert_eq!(notification(ErrorCode::from_wire(1, 2), &[0, 18]), want);
        assert_eq!(
            notification(ErrorCode::from_wire(1, 1), &[7; 5000]).len(),
            4096
        );

        let m = admin_shutdown("maintenance");
        let mut want = hdr(33, 3);
        want.extend_from_slice(&[6, 2, 11]);
        want.extend_from_slice(b"maintenance");
        assert_eq!(m, want);
        let Message::Notification(n) = wire::parse(
            &frame(&m),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(n.shutdown_message().unwrap(), "maintenance");
    }

    #[test]
    fn shutdown_text_cut_on_char_boundary() {
        assert_eq!(shutdown_communication(""), vec![0]);
        // 127 two-byte chars = 254 bytes, then a 2-byte char that would end at 256.
        let s = "\u{e9}".repeat(128);
        let d = shutdown_communication(&s);
        assert_eq!(d[0], 254);
        assert_eq!(d.len(), 255);
        assert!(std::str::from_utf8(&d[1..]).is_ok());
        let d = shutdown_communication(&"x".repeat(300));
        assert_eq!((d[0], d.len()), (255, 256));
    }

    #[test]
    fn announce_ipv4_ebgp_bytes() {
        let attrs = RouteAttrs {
            med: Some(50),
            local_pref: Some(200), // must not be sent on eBGP
            communities: vec![Community(0xFE4D_0064)],
            large_communities: vec![LargeCommunity {
                global: 65101,
                local1: 1,
                local2: 2,
            }],
            as_path_prepend: 1,
            link_bandwidth: None,
        };
        let ms = announce(
            &ebgp(),
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32"), pfx("198.51.100.0/24")],
        )
        .unwrap();
        assert_eq!(ms.len(), 1);
        let mut attrs_b = vec![
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 10, 2, 2, 0, 0, 0xFE, 0x4D, 0, 0, 0xFE, 0x4D, // AS_SEQUENCE 65101 65101
            0x40, 3, 4, 192, 0, 2, 10, // NEXT_HOP
            0x80, 4, 4, 0, 0, 0, 50, // MED
            0xD0, 8, 0, 4, 0xFE, 0x4D, 0, 0x64, // COMMUNITIES (extended length form)
            0xC0, 32, 12, 0, 0, 0xFE, 0x4D, 0, 0, 0, 1, 0, 0, 0, 2, // LARGE_COMMUNITIES
        ];
        let nlri = [32, 203, 0, 113, 10, 24, 198, 51, 100];
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs_b.len() as u16).to_be_bytes());
        body.append(&mut attrs_b);
        body.extend_from_slice(&nlri);
        let mut want = hdr((19 + body.len()) as u16, 2);
        want.extend_from_slice(&body);
        assert_eq!(ms[0], want);
        let Message::Update(u) = wire::parse(
            &frame(&ms[0]),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((u.routes.announced.len(), u.errors), (2, vec![]));
        assert_eq!(u.routes.attrs.as_path, vec![65101, 65101]);
        assert_eq!(u.routes.attrs.communities, vec![Community(0xFE4D_0064)]);
    }

    #[test]
    fn link_bandwidth_community_bytes() {
        // 100 Mbit/s = 12,500,000 bytes/s = 0x4B3EBC20; 300 Mbit/s = 0x4C0F0D18 (checked against
        // FRR's `LB:65003:12500000 (100.000 Mbps)`).
        assert_eq!(
            link_bandwidth(65003, 12_500_000),
            [0x40, 0x04, 0xFD, 0xEB, 0x4B, 0x3E, 0xBC, 0x20]
        );
        assert_eq!(
            link_bandwidth(65003, 37_500_000),
            [0x40, 0x04, 0xFD, 0xEB, 0x4C, 0x0F, 0x0D, 0x18]
        );
        // A 4-octet AS: AS_TRANS (23456 = 0x5BA0).
        assert_eq!(
            link_bandwidth(4_200_000_000, 0)[..4],
            [0x40, 0x04, 0x5B, 0xA0]
        );
        let attrs = RouteAttrs {
            communities: vec![Community(0xFE4D_0064)],
            link_bandwidth: Some(12_500_000),
            ..RouteAttrs::default()
        };
        let ms = announce(
            &ebgp(),
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap();
        // COMMUNITIES (8), then EXTENDED_COMMUNITIES (16) with one 8-byte community.
        let ext = [0xC0, 16, 8, 0x40, 0x04, 0xFE, 0x4D, 0x4B, 0x3E, 0xBC, 0x20];
        let at = ms[0]
            .windows(ext.len())
            .position(|w| w == ext)
            .expect("extended community attribute");
        let comm = ms[0].windows(2).position(|w| w == [0xD0, 8]).unwrap();
        assert!(comm < at);
        let Message::Update(u) = wire::parse(
            &frame(&ms[0]),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((u.routes.announced.len(), u.errors), (1, vec![]));
    }

    #[test]
    fn announce_ipv6_ibgp_bytes() {
        let p = PathParams {
            local_as: 65101,
            ibgp: true,
            four_octet_as: true,
        };
        let nh: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let ms = announce(
            &p,
            &RouteAttrs::default(),
            NextHop::V6(nh),
            &[pfx("2001:db8:10::10/128")],
        )
        .unwrap();
        let mut attrs_b = vec![
            0x40, 1, 1, 0, // ORIGIN
            0x40, 2, 0, // empty AS_PATH
            0x40, 5, 4, 0, 0, 0, 100, // LOCAL_PREF default
            0x90, 14, 0, 38, 0, 2, 1, 16, // MP_REACH: AFI 2 SAFI 1, next hop length 16
        ];
        attrs_b.extend_from_slice(&nh.octets());
        attrs_b.push(0); // reserved
        attrs_b.push(128);
        attrs_b.extend_from_slice(&"2001:db8:10::10".parse::<Ipv6Addr>().unwrap().octets());
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs_b.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs_b);
        let mut want = hdr((19 + body.len()) as u16, 2);
        want.extend_from_slice(&body);
        assert_eq!(ms, vec![want]);
    }

    #[test]
    fn two_octet_as_path_when_peer_lacks_4_octet() {
        let p = PathParams {
            four_octet_as: false,
            ..ebgp()
        };
        let ms = announce(
            &p,
            &RouteAttrs::default(),
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap();
        assert_eq!(&ms[0][27..33], &[0x40, 2, 4, 2, 1, 0xFE]);
        // No AS4_PATH when the 2-octet AS_PATH is exact.
        assert!(!ms[0].windows(2).any(|w| w == [0xC0, 17]));
    }

    #[test]
    fn as_trans_and_as4_path_for_a_2_octet_peer_with_a_4_octet_local_as() {
        // RFC 6793 4.2.2: AS_PATH holds AS_TRANS (23456 = 0x5BA0), AS4_PATH the real ASNs.
        let p = PathParams {
            local_as: 70000,
            four_octet_as: false,
            ..ebgp()
        };
        let attrs = RouteAttrs {
            as_path_prepend: 1,
            ..RouteAttrs::default()
        };
        let ms = announce(
            &p,
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap();
        let m = &ms[0];
        assert_eq!(&m[27..35], &[0x40, 2, 6, 2, 2, 0x5B, 0xA0, 0x5B]);
        assert_eq!(m[35], 0xA0);
        // NEXT_HOP (7 bytes) follows, then AS4_PATH: optional transitive, type 17.
        assert_eq!(&m[36..43], &[0x40, 3, 4, 192, 0, 2, 10]);
        assert_eq!(
            &m[43..56],
            &[0xC0, 17, 10, 2, 2, 0, 1, 0x11, 0x70, 0, 1, 0x11, 0x70]
        );
        // iBGP: empty AS_PATH, no AS4_PATH.
        let ibgp = PathParams { ibgp: true, ..p };
        let ms = announce(
            &ibgp,
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap();
        assert!(!ms[0].windows(2).any(|w| w == [0xC0, 17]));
    }

    #[test]
    fn long_prepend_splits_as_path_segments() {
        let attrs = RouteAttrs {
            as_path_prepend: 255,
            ..RouteAttrs::default()
        };
        let (v, as4) = as_path_values(&ebgp(), attrs.as_path_prepend);
        assert!(as4.is_none());
        assert_eq!(v.len(), 2 + 255 * 4 + 2 + 4);
        assert_eq!(&v[..2], &[2, 255]);
        assert_eq!(&v[1022..1024], &[2, 1]);
        let ms = announce(
            &ebgp(),
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap();
        // Extended-length AS_PATH: flags 0x50, 2-octet length 1028.
        assert_eq!(&ms[0][27..31], &[0x50, 2, 0x04, 0x04]);
    }

    fn many(n: u32, v6: bool) -> Vec<Prefix> {
        (0..n)
            .map(|i| {
                if v6 {
                    Prefix::new(
                        IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | i as u128)),
                        128,
                    )
                    .unwrap()
                } else {
                    Prefix::new(IpAddr::V4(Ipv4Addr::from(0xC633_0000 | i)), 32).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn chunking_keeps_every_message_within_4096() {
        let attrs = RouteAttrs {
            communities: vec![Community(1); 100],
            ..RouteAttrs::default()
        };
        for v6 in [false, true] {
            let ps = many(2000, v6);
            let nh = if v6 {
                NextHop::V6("2001:db8::1".parse().unwrap())
            } else {
                NextHop::V4(Ipv4Addr::new(192, 0, 2, 10))
            };
            let ms = announce(&ebgp(), &attrs, nh, &ps).unwrap();
            let fam = ps[0].family();
            let ws = withdraw(65101, fam, &ps).unwrap();
            for set in [&ms, &ws] {
                assert!(set.len() > 1);
                let mut total = 0;
                for m in set.iter() {
                    assert!(m.len() <= 4096);
                    let f = frame(m);
                    let Message::Update(u) = wire::parse(
                        &f,
                        &crate::bgp::rib_in::DecodeCx::keep_all(
                            crate::bgp::rib_in::RxParams::FOUR_OCTET_AS,
                        ),
                    )
                    .unwrap() else {
                        panic!()
                    };
                    assert_eq!(u.errors, vec![]);
                    total += u.routes.announced.len() + u.routes.withdrawn.len();
                }
                assert_eq!(total, 2000);
            }
            // Chunks are full: the first message is close to the limit.
            assert!(ms[0].len() > 4096 - 17);
        }
    }

    #[test]
    fn withdraw_bytes() {
        let ms = withdraw(65101, Family::Ipv4Unicast, &[pfx("203.0.113.10/32")]).unwrap();
        let mut want = hdr(28, 2);
        want.extend_from_slice(&[0, 5, 32, 203, 0, 113, 10, 0, 0]);
        assert_eq!(ms, vec![want]);
        let ms = withdraw(65101, Family::Ipv6Unicast, &[pfx("2001:db8:10::/48")]).unwrap();
        let mut want = hdr(19 + 4 + 4 + 3 + 7, 2);
        want.extend_from_slice(&[0, 0, 0, 14, 0x90, 15, 0, 10, 0, 2, 1, 48]);
        want.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0x10]);
        assert_eq!(ms, vec![want]);
        assert!(withdraw(65101, Family::Ipv4Unicast, &[])
            .unwrap()
            .is_empty());
        assert!(withdraw(65101, Family::Ipv4Unicast, &[pfx("2001:db8::/32")]).is_err());
    }

    #[test]
    fn end_of_rib_round_trips() {
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let Message::Update(u) = wire::parse(
                &frame(&end_of_rib(f)),
                &crate::bgp::rib_in::DecodeCx::keep_all(
                    crate::bgp::rib_in::RxParams::FOUR_OCTET_AS,
                ),
            )
            .unwrap() else {
                panic!()
            };
            assert_eq!(u.routes.end_of_rib, Some(f));
        }
    }

    #[test]
    fn oversized_attributes_are_an_error_not_a_panic() {
        let attrs = RouteAttrs {
            communities: vec![Community(1); 5000],
            ..RouteAttrs::default()
        };
        let e = announce(
            &ebgp(),
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .unwrap_err();
        assert!(e.0.contains("5000 communities"), "{e}");
        let attrs = RouteAttrs {
            large_communities: vec![
                LargeCommunity {
                    global: 1,
                    local1: 2,
                    local2: 3
                };
                200
            ],
            communities: vec![Community(1); 40],
            ..RouteAttrs::default()
        };
        assert!(announce(
            &ebgp(),
            &attrs,
            NextHop::V4(Ipv4Addr::new(192, 0, 2, 10)),
            &[pfx("203.0.113.10/32")],
        )
        .is_ok());
    }
}
