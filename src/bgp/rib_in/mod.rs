//! The one decoder of received UPDATEs: a peer's UPDATE body into the paths it announces and
//! withdraws, for the fleet view (RFC 4271 4.3, RFC 4760 MP_REACH/MP_UNREACH, RFC 7911 path
//! identifiers, RFC 6793 4-octet AS_PATH, RFC 1997/8092 communities), with RFC 7606 error
//! handling as typed outcomes ([`AttrError`]). `wire` frames messages and calls it for UPDATEs.
//!
//! Owns: turning peer bytes into an [`Update`] (routes plus outcomes); the events a session
//! sends the fleet view ([`RibInEvent`]); `table`: the per-session table of received VIP paths
//! ([`PeerTable`]) a resync carries. May not touch: the session, the fleet view, configuration.
//! Our own bounds-checked code only (never zettabgp's decoder, see
//! /work/shared/notes/zettabgp.md). Every loop advances by at least one byte over a body of at
//! most 4077 bytes, so parsing is bounded; only prefixes the caller keeps are stored.
//!
//! Outcomes ([`AttrError`]), most severe first:
//! - session reset: duplicate MP_REACH/MP_UNREACH (RFC 7606 3j, 3/1), an unrecognized
//!   well-known attribute (RFC 4271 6.3, 3/2), lengths that overrun the message (3/1); the
//!   routes are then empty;
//! - AFI/SAFI disable: the NLRI of a family cannot be located reliably (truncated MP attribute,
//!   next-hop length overrunning it, malformed prefix run: RFC 7606 5.3, 7.11, RFC 4760 7). The
//!   caller drops every path of that family from this peer and ignores the family until the
//!   session restarts. The session stays up; the parseable paths are also listed as withdrawn;
//! - treat-as-withdraw: a malformed attribute (RFC 7606 7.x, e.g. a bad MP_REACH next-hop length
//!   that still lets us find the NLRI, a missing mandatory attribute): every announced path is
//!   moved to `withdrawn`;
//! - attribute discard: repeated non-MP attributes keep the first (RFC 7606 3g).
//!
//! For the fleet guard each of these only ever removes paths from the view, so a malformed UPDATE
//! can make the guard more careful (hold) but never less.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::route::{Community, Family, LargeCommunity, Prefix};

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const MED: u8 = 4;
const LOCAL_PREF: u8 = 5;
const ATOMIC_AGGREGATE: u8 = 6;
const AGGREGATOR: u8 = 7;
const COMMUNITIES: u8 = 8;
const MP_REACH: u8 = 14;
const MP_UNREACH: u8 = 15;
const LARGE_COMMUNITIES: u8 = 32;

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_EXTENDED: u8 = 0x10;

/// Most AS numbers we keep from one AS_PATH (the rest are counted in `as_path_len`).
pub const MAX_AS_PATH: usize = 64;

/// What was negotiated for one session, as the parser needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxParams {
    /// RFC 7911: the peer sends path identifiers for IPv4 unicast.
    pub add_path_v4: bool,
    /// RFC 7911: the peer sends path identifiers for IPv6 unicast.
    pub add_path_v6: bool,
    /// RFC 6793: AS_PATH carries 4-octet AS numbers.
    pub four_octet_as: bool,
}

impl RxParams {
    /// 4-octet AS numbers, no path identifiers: what every session we run negotiates unless
    /// the peer sends ADD-PATH.
    pub const FOUR_OCTET_AS: RxParams = RxParams {
        add_path_v4: false,
        add_path_v6: false,
        four_octet_as: true,
    };

    /// What a session negotiated: we offer ADD-PATH receive for IPv4 and IPv6 unicast, so the
    /// peer sends path ids for a family where its capability has the send bit (RFC 7911 4).
    pub fn negotiate(peer_add_path: &[(u16, u8, u8)], four_octet_as: bool) -> RxParams {
        let sends = |afi: u16| {
            peer_add_path
                .iter()
                .any(|&(a, s, mode)| a == afi && s == 1 && mode & 2 != 0)
        };
        RxParams {
            add_path_v4: sends(1),
            add_path_v6: sends(2),
            four_octet_as,
        }
    }

    fn add_path(&self, f: Family) -> bool {
        match f {
            Family::Ipv4Unicast => self.add_path_v4,
            Family::Ipv6Unicast => self.add_path_v6,
        }
    }
}

// The parsed-path types are the decision core's own input types (`fleet::paths`); the decoder
// produces them directly, with the typed errors beside them.
pub use crate::fleet::paths::{PathAttrs, PathKey, RibInUpdate};

mod error;
pub use error::{AsPathError, AttrError, Malformed, NlriError, NlriField};

use crate::bgp::error::UpdateError;

/// What decoding an UPDATE needs from the session: what was negotiated, and which prefixes are
/// worth storing (the VIP prefixes; the others are only counted).
#[derive(Clone, Copy)]
pub struct DecodeCx<'a> {
    pub rx: RxParams,
    pub keep: &'a dyn Fn(&Prefix) -> bool,
}

impl DecodeCx<'static> {
    /// Stores every prefix (tests, fuzzing, tools that read whole tables).
    pub fn keep_all(rx: RxParams) -> DecodeCx<'static> {
        fn all(_: &Prefix) -> bool {
            true
        }
        DecodeCx { rx, keep: &all }
    }
}

/// A decoded UPDATE: its routes (for the fleet view) and every RFC 7606 outcome, in the order
/// found. When `errors` holds an [`AttrError::SessionReset`] it is the last entry and `routes`
/// is empty: nothing of the message may be used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub routes: RibInUpdate,
    pub errors: Vec<AttrError>,
}

impl Update {
    /// The NOTIFICATION this UPDATE owes the peer, if it must reset the session.
    pub fn session_reset(&self) -> Option<&AttrError> {
        self.errors
            .iter()
            .find(|e| matches!(e, AttrError::SessionReset { .. }))
    }

    /// The most severe outcome, if any.
    pub fn worst(&self) -> Option<&AttrError> {
        self.errors.iter().max_by_key(|e| e.action())
    }

    fn reset(subcode: UpdateError, data: Vec<u8>, why: Malformed) -> Update {
        Update {
            routes: RibInUpdate::default(),
            errors: vec![AttrError::SessionReset { subcode, data, why }],
        }
    }
}

/// Decodes an UPDATE body (after the 19-byte header): the one decoder of received UPDATEs.
pub fn decode_update(b: &[u8], cx: &DecodeCx) -> Update {
    let overrun = |field: &'static str, len: usize| {
        Update::reset(
            UpdateError::MalformedAttributeList,
            Vec::new(),
            Malformed::LengthOverrun {
                field,
                len,
                body: b.len(),
            },
        )
    };
    if b.len() < 4 {
        return overrun("UPDATE of", b.len());
    }
    let wlen = u16::from_be_bytes([b[0], b[1]]) as usize;
    if 2 + wlen + 2 > b.len() {
        return overrun("withdrawn routes length", wlen);
    }
    let apos = 2 + wlen;
    let alen = u16::from_be_bytes([b[apos], b[apos + 1]]) as usize;
    let attrs_start = apos + 2;
    if attrs_start + alen > b.len() {
        return overrun("total path attribute length", alen);
    }
    let withdrawn_field = &b[2..2 + wlen];
    let attrs = &b[attrs_start..attrs_start + alen];
    let nlri_field = &b[attrs_start + alen..];

    let rx = &cx.rx;
    let mut u = RibInUpdate::default();
    let mut out = Collect {
        keep: cx.keep,
        u: &mut u,
        errors: Vec::new(),
        announced_v4: Vec::new(),
    };
    let v4 = Family::Ipv4Unicast;
    out.walk(withdrawn_field, v4, rx, Dir::Withdraw, NlriField::Withdrawn);

    let seen = match walk_attributes(attrs, rx, &mut out) {
        Ok(seen) => seen,
        Err(reset) => {
            let mut errors = out.errors;
            errors.push(reset);
            return Update {
                routes: RibInUpdate::default(),
                errors,
            };
        }
    };
    out.walk(nlri_field, v4, rx, Dir::Announce, NlriField::Nlri);

    // RFC 7606 3d: mandatory attributes missing while there is something to announce.
    let legacy_nlri = !nlri_field.is_empty();
    let any_nlri = legacy_nlri || seen.mp_reach_nlri;
    if any_nlri && !out.withdraws() {
        let mut missing = Vec::new();
        if !seen.origin {
            missing.push("ORIGIN");
        }
        if !seen.as_path {
            missing.push("AS_PATH");
        }
        if legacy_nlri && !seen.next_hop {
            missing.push("NEXT_HOP");
        }
        if !missing.is_empty() {
            out.treat_as_withdraw(Malformed::Missing(missing));
        }
    }
    let announced_v4 = std::mem::take(&mut out.announced_v4);
    let errors = out.errors;
    if let Some(nh) = seen.legacy_next_hop {
        if !announced_v4.is_empty() {
            u.attrs.next_hop.get_or_insert(IpAddr::V4(nh));
        }
    }
    u.announced
        .extend(announced_v4.into_iter().map(|k| (k, v4)));
    // The core's view of the outcomes: the first treat-as-withdraw reason, each disabled family.
    for e in &errors {
        match e {
            AttrError::TreatAsWithdraw(why) => {
                u.treat_as_withdraw.get_or_insert_with(|| why.to_string());
            }
            AttrError::AfiSafiDisable { family, why } => u.disable.push((*family, why.to_string())),
            AttrError::Discard { .. } | AttrError::SessionReset { .. } => {}
        }
    }
    if u.treat_as_withdraw.is_some() || !u.disable.is_empty() {
        let disabled: Vec<Family> = u.disable.iter().map(|(f, _)| *f).collect();
        let all = u.treat_as_withdraw.is_some();
        let mut kept = Vec::new();
        for (k, f) in std::mem::take(&mut u.announced) {
            if all || disabled.contains(&f) {
                u.withdrawn.push(k);
            } else {
                kept.push((k, f));
            }
        }
        u.announced = kept;
    }

    // RFC 4724 2: an empty UPDATE is End-of-RIB for IPv4 unicast; one holding only an empty
    // MP_UNREACH_NLRI is End-of-RIB for that family.
    if wlen == 0 && nlri_field.is_empty() && u.disable.is_empty() {
        if alen == 0 {
            u.end_of_rib = Some(v4);
        } else if seen.count == 1 && seen.mp_unreach_empty.is_some() {
            u.end_of_rib = seen.mp_unreach_empty;
        }
    }
    Update { routes: u, errors }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Announce,
    Withdraw,
}

/// Where parsed prefixes go.
struct Collect<'a> {
    keep: &'a dyn Fn(&Prefix) -> bool,
    u: &'a mut RibInUpdate,
    /// RFC 7606 outcomes so far (never a session reset: that ends decoding).
    errors: Vec<AttrError>,
    /// Legacy NLRI, whose family (and next hop) is known only after the attributes.
    announced_v4: Vec<PathKey>,
}

impl Collect<'_> {
    /// Walks a run of NLRI entries; on a syntax error the family is disabled (RFC 7606 5.3).
    fn walk(&mut self, field: &[u8], fam: Family, rx: &RxParams, dir: Dir, what: NlriField) {
        let bad = |error| Malformed::Nlri { field: what, error };
        let mut p = field;
        let add_path = rx.add_path(fam);
        let max = match fam {
            Family::Ipv4Unicast => 32u8,
            Family::Ipv6Unicast => 128u8,
        };
        while !p.is_empty() {
            let path_id = if add_path {
                if p.len() < 4 {
                    self.disable(fam, bad(NlriError::TruncatedPathId));
                    return;
                }
                let id = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                p = &p[4..];
                id
            } else {
                0
            };
            let Some((&bits, rest)) = p.split_first() else {
                self.disable(fam, bad(NlriError::PathIdWithoutPrefix));
                return;
            };
            if bits > max {
                self.disable(fam, bad(NlriError::PrefixTooLong { bits, max }));
                return;
            }
            let n = (bits as usize).div_ceil(8);
            if rest.len() < n {
                self.disable(fam, bad(NlriError::TruncatedPrefix { bits }));
                return;
            }
            let octets = &rest[..n];
            p = &rest[n..];
            // Host bits set: RFC 4271 does not forbid them; normalise like routers do.
            let prefix = match fam {
                Family::Ipv4Unicast => {
                    let mut a = [0u8; 4];
                    a[..n].copy_from_slice(octets);
                    masked(IpAddr::V4(Ipv4Addr::from(a)), bits)
                }
                Family::Ipv6Unicast => {
                    let mut a = [0u8; 16];
                    a[..n].copy_from_slice(octets);
                    masked(IpAddr::V6(Ipv6Addr::from(a)), bits)
                }
            };
            let Some(prefix) = prefix else { continue };
            if !(self.keep)(&prefix) {
                self.u.filtered_out += 1;
                continue;
            }
            let key = PathKey { prefix, path_id };
            match (dir, fam) {
                (Dir::Withdraw, _) => self.u.withdrawn.push(key),
                (Dir::Announce, Family::Ipv4Unicast) => self.announced_v4.push(key),
                (Dir::Announce, f) => self.u.announced.push((key, f)),
            }
        }
    }

    fn disable(&mut self, family: Family, why: Malformed) {
        let known = self
            .errors
            .iter()
            .any(|e| matches!(e, AttrError::AfiSafiDisable { family: f, .. } if *f == family));
        if !known {
            self.errors.push(AttrError::AfiSafiDisable { family, why });
        }
    }

    /// Whether a treat-as-withdraw was found already (only the first is kept).
    fn withdraws(&self) -> bool {
        self.errors
            .iter()
            .any(|e| matches!(e, AttrError::TreatAsWithdraw(_)))
    }

    fn treat_as_withdraw(&mut self, why: Malformed) {
        if !self.withdraws() {
            self.errors.push(AttrError::TreatAsWithdraw(why));
        }
    }

    fn discard(&mut self, code: u8, why: Malformed) {
        self.errors.push(AttrError::Discard { code, why });
    }
}

fn masked(addr: IpAddr, bits: u8) -> Option<Prefix> {
    let a = match addr {
        IpAddr::V4(a) => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits as u32)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    };
    Prefix::new(a, bits).ok()
}

/// What the attribute walk found.
#[derive(Default)]
struct Seen {
    count: usize,
    origin: bool,
    as_path: bool,
    next_hop: bool,
    legacy_next_hop: Option<Ipv4Addr>,
    mp_reach: bool,
    mp_unreach: bool,
    mp_reach_nlri: bool,
    /// An MP_UNREACH with no NLRI, for End-of-RIB.
    mp_unreach_empty: Option<Family>,
    communities: bool,
    large_communities: bool,
}

fn family_of(afi: u16, safi: u8) -> Option<Family> {
    match (afi, safi) {
        (1, 1) => Some(Family::Ipv4Unicast),
        (2, 1) => Some(Family::Ipv6Unicast),
        _ => None,
    }
}

/// Walks the path attributes; `Err` is the session reset that ends decoding.
fn walk_attributes(attrs: &[u8], rx: &RxParams, out: &mut Collect) -> Result<Seen, AttrError> {
    let mut seen = Seen::default();
    let mut pos = 0;
    while pos < attrs.len() {
        let rest = &attrs[pos..];
        let hdr = if rest.len() >= 2 && rest[0] & FLAG_EXTENDED != 0 {
            4
        } else {
            3
        };
        if rest.len() < hdr {
            attribute_list_broken(out, Malformed::TruncatedAttributeHeader);
            break;
        }
        let flags = rest[0];
        let code = rest[1];
        let len = if hdr == 4 {
            u16::from_be_bytes([rest[2], rest[3]]) as usize
        } else {
            rest[2] as usize
        };
        if rest.len() - hdr < len {
            attribute_list_broken(out, Malformed::AttributeOverrun { code, len });
            break;
        }
        let v = &rest[hdr..hdr + len];
        let whole = &rest[..hdr + len];
        pos += hdr + len;
        seen.count += 1;

        let optional = flags & FLAG_OPTIONAL != 0;
        let well_known = matches!(
            code,
            ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE
        );
        if !optional && !well_known && !is_known_optional(code) {
            return Err(AttrError::SessionReset {
                subcode: UpdateError::UnrecognizedWellKnownAttribute,
                data: whole.to_vec(),
                why: Malformed::UnrecognizedWellKnown { code },
            });
        }
        if code == MP_REACH || code == MP_UNREACH {
            let dup = if code == MP_REACH {
                std::mem::replace(&mut seen.mp_reach, true)
            } else {
                std::mem::replace(&mut seen.mp_unreach, true)
            };
            if dup {
                return Err(AttrError::SessionReset {
                    subcode: UpdateError::MalformedAttributeList,
                    data: Vec::new(),
                    why: Malformed::DuplicateMpAttribute { code },
                });
            }
        }
        // RFC 7606 3c: flags in conflict with the attribute's kind -> treat-as-withdraw (MP
        // attributes excepted: their NLRI must still be read).
        if well_known == optional && code != MP_REACH && code != MP_UNREACH {
            out.treat_as_withdraw(Malformed::Flags { code, flags });
            continue;
        }
        match code {
            ORIGIN => {
                if std::mem::replace(&mut seen.origin, true) {
                    out.discard(code, Malformed::Repeated { code });
                    continue;
                }
                if len != 1 || v[0] > 2 {
                    out.treat_as_withdraw(Malformed::Origin { len });
                }
            }
            AS_PATH => {
                if std::mem::replace(&mut seen.as_path, true) {
                    out.discard(code, Malformed::Repeated { code });
                    continue;
                }
                match parse_as_path(v, rx.four_octet_as) {
                    Ok((path, n)) => {
                        out.u.attrs.as_path = path;
                        out.u.attrs.as_path_len = n;
                    }
                    Err(e) => out.treat_as_withdraw(Malformed::AsPath(e)),
                }
            }
            NEXT_HOP => {
                if std::mem::replace(&mut seen.next_hop, true) {
                    out.discard(code, Malformed::Repeated { code });
                    continue;
                }
                if len == 4 {
                    seen.legacy_next_hop = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3]));
                } else {
                    out.treat_as_withdraw(Malformed::NextHop { len });
                }
            }
            COMMUNITIES => {
                if std::mem::replace(&mut seen.communities, true) {
                    out.discard(code, Malformed::Repeated { code });
                    continue;
                }
                if len % 4 != 0 {
                    out.treat_as_withdraw(Malformed::Communities { len });
                } else {
                    out.u.attrs.communities = v
                        .chunks_exact(4)
                        .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                        .collect();
                }
            }
            LARGE_COMMUNITIES => {
                if std::mem::replace(&mut seen.large_communities, true) {
                    out.discard(code, Malformed::Repeated { code });
                    continue;
                }
                if len % 12 != 0 {
                    out.treat_as_withdraw(Malformed::LargeCommunities { len });
                } else {
                    let w = |c: &[u8], i: usize| {
                        u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]])
                    };
                    out.u.attrs.large_communities = v
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global: w(c, 0),
                            local1: w(c, 4),
                            local2: w(c, 8),
                        })
                        .collect();
                }
            }
            MP_REACH => mp_reach(v, rx, out, &mut seen),
            MP_UNREACH => mp_unreach(v, rx, out, &mut seen),
            _ => {}
        }
    }
    Ok(seen)
}

fn is_known_optional(code: u8) -> bool {
    matches!(
        code,
        MED | AGGREGATOR
            | COMMUNITIES
            | 9
            | 10
            | MP_REACH
            | MP_UNREACH
            | 16
            | 17
            | 18
            | LARGE_COMMUNITIES
    )
}

/// The attribute list cannot be walked to its end: what follows (possibly an MP attribute)
/// cannot be located, so every family is disabled (RFC 7606 4, 5.3).
fn attribute_list_broken(out: &mut Collect, why: Malformed) {
    out.treat_as_withdraw(why.clone());
    for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        out.disable(f, why.clone());
    }
}

fn mp_reach(v: &[u8], rx: &RxParams, out: &mut Collect, seen: &mut Seen) {
    if v.len() < 5 {
        // Not even AFI/SAFI/next-hop length/reserved: nothing can be located.
        let why = Malformed::MpReachTooShort { len: v.len() };
        out.treat_as_withdraw(why.clone());
        match (v.len() >= 3).then(|| family_of(u16::from_be_bytes([v[0], v[1]]), v[2])) {
            Some(Some(f)) => out.disable(f, why),
            Some(None) => out.u.other_families += 1,
            None => {
                for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
                    out.disable(f, why.clone());
                }
            }
        }
        return;
    }
    let Some(fam) = family_of(u16::from_be_bytes([v[0], v[1]]), v[2]) else {
        out.u.other_families += 1;
        return;
    };
    let nh_len = v[3] as usize;
    if 4 + nh_len + 1 > v.len() {
        let why = Malformed::MpReachNextHopOverrun {
            nh_len,
            len: v.len(),
        };
        out.disable(fam, why);
        return;
    }
    let nh = &v[4..4 + nh_len];
    let nlri = &v[4 + nh_len + 1..];
    seen.mp_reach_nlri |= !nlri.is_empty();
    let next_hop = match (fam, nh_len) {
        (Family::Ipv4Unicast, 4) => Some(IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3]))),
        (Family::Ipv6Unicast, 16) | (Family::Ipv6Unicast, 32) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&nh[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    };
    match next_hop {
        Some(nh) => out.u.attrs.next_hop = Some(nh),
        // RFC 7606 7.11 asks for AFI/SAFI disable, but here the NLRI is still locatable, so the
        // lighter treat-as-withdraw is exact.
        None => out.treat_as_withdraw(Malformed::MpReachNextHopLength {
            nh_len,
            family: fam,
        }),
    }
    out.walk(nlri, fam, rx, Dir::Announce, NlriField::MpReach);
}

fn mp_unreach(v: &[u8], rx: &RxParams, out: &mut Collect, seen: &mut Seen) {
    if v.len() < 3 {
        let why = Malformed::MpUnreachTooShort { len: v.len() };
        out.treat_as_withdraw(why.clone());
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            out.disable(f, why.clone());
        }
        return;
    }
    let Some(fam) = family_of(u16::from_be_bytes([v[0], v[1]]), v[2]) else {
        out.u.other_families += 1;
        return;
    };
    if v.len() == 3 {
        seen.mp_unreach_empty = Some(fam);
    }
    out.walk(&v[3..], fam, rx, Dir::Withdraw, NlriField::MpUnreach);
}

/// AS_PATH segments (RFC 4271 4.3, RFC 6793): returns up to [`MAX_AS_PATH`] ASNs and the total.
fn parse_as_path(mut v: &[u8], four: bool) -> Result<(Vec<u32>, usize), AsPathError> {
    let w = if four { 4 } else { 2 };
    let mut out = Vec::new();
    let mut total = 0usize;
    while !v.is_empty() {
        if v.len() < 2 {
            return Err(AsPathError::TruncatedSegmentHeader);
        }
        let (t, n) = (v[0], v[1] as usize);
        if !(1..=4).contains(&t) {
            return Err(AsPathError::SegmentType(t));
        }
        if n == 0 {
            return Err(AsPathError::EmptySegment);
        }
        let body = &v[2..];
        if body.len() < n * w {
            return Err(AsPathError::TruncatedSegment { asns: n });
        }
        for c in body[..n * w].chunks_exact(w) {
            let asn = if four {
                u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            } else {
                u16::from_be_bytes([c[0], c[1]]) as u32
            };
            if out.len() < MAX_AS_PATH {
                out.push(asn);
            }
        }
        total += n;
        v = &body[n * w..];
    }
    Ok((out, total))
}

/// What a session tells the fleet view, in order: up (with what ADD-PATH gave us), the routes
/// received for VIP prefixes, down. When the daemon falls behind, a session sends `Behind` (on a
/// channel slot it keeps in reserve for that) instead of the deltas it could not place, and later
/// one `Resync` with its whole table; see `bgp::feed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RibInEvent {
    Up {
        peer: std::sync::Arc<str>,
        add_path_v4: bool,
        add_path_v6: bool,
    },
    Update {
        peer: std::sync::Arc<str>,
        update: Box<RibInUpdate>,
    },
    Down {
        peer: std::sync::Arc<str>,
    },
    /// Deltas after this point were not passed on: what the view holds for this peer is stale
    /// until the `Resync` (it may even be the session's `Up` that was not passed on).
    Behind {
        peer: std::sync::Arc<str>,
    },
    /// The session's whole table now (replaces everything the view holds for the peer; brings
    /// it up if its `Up` was not passed on).
    Resync {
        peer: std::sync::Arc<str>,
        table: Box<PeerTable>,
    },
}

/// Channel from the sessions to the daemon (bounded: a flooding peer is slowed by TCP, never
/// buffered without limit).
pub type RibInSender = tokio::sync::mpsc::Sender<RibInEvent>;

impl RibInUpdate {
    /// Worth passing to the fleet view: it touches a VIP prefix, is malformed, or ends the table.
    pub fn is_relevant(&self) -> bool {
        !self.announced.is_empty()
            || !self.withdrawn.is_empty()
            || !self.disable.is_empty()
            || self.treat_as_withdraw.is_some()
            || self.end_of_rib.is_some()
    }
}

pub use crate::fleet::{PeerTable, MAX_TABLE_PATHS_PER_PREFIX};

#[cfg(test)]
mod tests;
