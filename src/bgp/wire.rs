//! Receiving side: framing and parsing of everything a peer sends us; UPDATE bodies go to the
//! one UPDATE decoder, [`rib_in::decode_update`].
//!
//! All of it is our own bounds-checked code; peer bytes never reach zettabgp's decoders (they
//! panic or loop forever on malformed UPDATEs, and reject FRR's FQDN capability). Every failure
//! of OPEN, NOTIFICATION, ROUTE-REFRESH or framing is a [`BgpError`] that maps 1:1 onto the
//! NOTIFICATION we owe the peer; an UPDATE's outcomes are the typed [`rib_in::AttrError`]s of
//! its [`rib_in::Update`]. Every loop advances by at least one byte over a body of at most 4077
//! bytes, so parsing is bounded.

use std::fmt;
use std::net::Ipv4Addr;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

pub use super::error::BgpError;
use super::error::{ErrorCode, HeaderError, OpenError};
use super::rib_in::{self, DecodeCx};
use crate::route::Family;

pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
pub const AS_TRANS: u16 = 23456;

pub const MSG_OPEN: u8 = 1;
pub const MSG_UPDATE: u8 = 2;
pub const MSG_NOTIFICATION: u8 = 3;
pub const MSG_KEEPALIVE: u8 = 4;
pub const MSG_ROUTE_REFRESH: u8 = 5;

/// What can go wrong while reading frames: the socket, or the peer's bytes.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Protocol(BgpError),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Protocol(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

/// One message whose header passed validation; `body` excludes the 19-byte header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub msg_type: u8,
    pub body: Bytes,
}

/// Frames BGP messages (RFC 4271 4.1, 6.1). Holds no state between calls besides the buffer that
/// `FramedRead` owns, which is what makes reading cancel-safe.
#[derive(Clone, Copy, Debug, Default)]
pub struct BgpCodec;

impl Decoder for BgpCodec {
    type Item = Frame;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ReadError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = check_header(&src[..HEADER_LEN]).map_err(ReadError::Protocol)?;
        let (len, msg_type) = header;
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let mut msg = src.split_to(len);
        msg.advance(HEADER_LEN);
        Ok(Some(Frame {
            msg_type,
            body: msg.freeze(),
        }))
    }
}

/// Validates a 19-byte header; returns (total length, type).
pub fn check_header(h: &[u8]) -> Result<(usize, u8), BgpError> {
    if h.len() < HEADER_LEN {
        return Err(BgpError::header(
            HeaderError::BadMessageLength,
            Vec::new(),
            "truncated message header",
        ));
    }
    if h[..16].iter().any(|&b| b != 0xFF) {
        return Err(BgpError::header(
            HeaderError::ConnectionNotSynchronized,
            Vec::new(),
            "message header marker is not all ones",
        ));
    }
    let len = u16::from_be_bytes([h[16], h[17]]) as usize;
    let msg_type = h[18];
    let bad_len = |why: &str| {
        BgpError::header(
            HeaderError::BadMessageLength,
            vec![h[16], h[17]],
            format!("bad message length {len}{why}"),
        )
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_len(" (must be 19..=4096)"));
    }
    let ok = match msg_type {
        MSG_OPEN => len >= 29,
        MSG_UPDATE => len >= 23,
        MSG_NOTIFICATION => len >= 21,
        MSG_KEEPALIVE => len == 19,
        MSG_ROUTE_REFRESH => len == 23,
        _ => {
            return Err(BgpError::header(
                HeaderError::BadMessageType,
                vec![msg_type],
                format!("unknown message type {msg_type}"),
            ))
        }
    };
    if !ok {
        return Err(bad_len(&format!(" for a {} message", type_name(msg_type))));
    }
    Ok((len, msg_type))
}

pub fn type_name(t: u8) -> &'static str {
    match t {
        MSG_OPEN => "OPEN",
        MSG_UPDATE => "UPDATE",
        MSG_NOTIFICATION => "NOTIFICATION",
        MSG_KEEPALIVE => "KEEPALIVE",
        MSG_ROUTE_REFRESH => "ROUTE-REFRESH",
        _ => "unknown",
    }
}

/// A parsed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(rib_in::Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Parses a framed message's body by type. An UPDATE always decodes; a session reset it owes
/// is among its typed outcomes ([`rib_in::Update::session_reset`]).
pub fn parse(frame: &Frame, cx: &DecodeCx) -> Result<Message, BgpError> {
    let b = &frame.body[..];
    match frame.msg_type {
        MSG_OPEN => parse_open(b).map(Message::Open),
        MSG_UPDATE => Ok(Message::Update(rib_in::decode_update(b, cx))),
        MSG_NOTIFICATION => parse_notification(b).map(Message::Notification),
        MSG_KEEPALIVE if b.is_empty() => Ok(Message::Keepalive),
        MSG_KEEPALIVE => Err(BgpError::bad_length(b.len(), "KEEPALIVE with a body")),
        MSG_ROUTE_REFRESH => parse_route_refresh(b).map(Message::RouteRefresh),
        t => Err(BgpError::header(
            HeaderError::BadMessageType,
            vec![t],
            format!("unexpected message type {t} with {} body bytes", b.len()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// OPEN

/// A peer's OPEN, structurally valid (RFC 4271 6.2 checks that need no configuration done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet My Autonomous System field.
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    /// RFC 4760 AFI/SAFI pairs, in the order received.
    pub multiprotocol: Vec<(u16, u8)>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// RFC 6793 4-octet AS capability value.
    pub four_octet_as: Option<u32>,
    /// Codes of capabilities we skipped, for logs.
    pub other_capabilities: Vec<u8>,
    /// RFC 7911 ADD-PATH: (AFI, SAFI, send/receive: 1 receive, 2 send, 3 both) per family.
    pub add_path: Vec<(u16, u8, u8)>,
}

impl Open {
    /// The peer's AS: the 4-octet capability value if present, else the 2-octet field.
    pub fn peer_as(&self) -> u32 {
        self.four_octet_as.unwrap_or(self.my_as as u32)
    }

    /// Families the peer can carry; no MP capability at all means IPv4 unicast only (RFC 4760 8).
    pub fn families(&self) -> Vec<Family> {
        if self.multiprotocol.is_empty() {
            return vec![Family::Ipv4Unicast];
        }
        let mut out = Vec::new();
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            if self.multiprotocol.contains(&f.afi_safi()) {
                out.push(f);
            }
        }
        out
    }

    /// Checks against configuration: the AS we expect (2/2) and, on iBGP, an identifier distinct
    /// from ours (2/3, RFC 6286 2.2).
    pub fn check_peer(
        &self,
        expected_as: u32,
        local_as: u32,
        local_id: Ipv4Addr,
    ) -> Result<(), BgpError> {
        let got = self.peer_as();
        if got != expected_as {
            return Err(BgpError::open(
                OpenError::BadPeerAs,
                self.my_as.to_be_bytes().to_vec(),
                format!("peer says it is AS {got}, configured remote_as is {expected_as}"),
            ));
        }
        if expected_as == local_as && self.router_id == local_id {
            return Err(BgpError::open(
                OpenError::BadBgpIdentifier,
                self.router_id.octets().to_vec(),
                format!("iBGP peer uses our own BGP identifier {}", self.router_id),
            ));
        }
        Ok(())
    }
}

fn open_err(sub: OpenError, data: Vec<u8>, what: impl Into<String>) -> BgpError {
    BgpError::open(sub, data, what)
}

/// Parses an OPEN body (after the header).
pub fn parse_open(b: &[u8]) -> Result<Open, BgpError> {
    if b.len() < 10 {
        return Err(BgpError::bad_length(b.len(), "OPEN shorter than 29 bytes"));
    }
    if b[0] != 4 {
        return Err(open_err(
            OpenError::UnsupportedVersion,
            vec![0, 4],
            format!("peer speaks BGP version {}, we speak 4", b[0]),
        ));
    }
    let my_as = u16::from_be_bytes([b[1], b[2]]);
    let hold_time = u16::from_be_bytes([b[3], b[4]]);
    if hold_time == 1 || hold_time == 2 {
        return Err(open_err(
            OpenError::UnacceptableHoldTime,
            Vec::new(),
            format!("unacceptable hold time {hold_time} s (must be 0 or >= 3)"),
        ));
    }
    let router_id = Ipv4Addr::new(b[5], b[6], b[7], b[8]);
    if router_id.is_unspecified() {
        return Err(open_err(
            OpenError::BadBgpIdentifier,
            Vec::new(),
            "BGP identifier is 0.0.0.0",
        ));
    }
    let mut open = Open {
        my_as,
        hold_time,
        router_id,
        multiprotocol: Vec::new(),
        route_refresh: false,
        enhanced_route_refresh: false,
        four_octet_as: None,
        other_capabilities: Vec::new(),
        add_path: Vec::new(),
    };

    // RFC 9072: a length octet of 255 followed by a type octet of 255 announces a 2-octet length.
    let opt_len = b[9] as usize;
    let rest = &b[10..];
    let extended = opt_len == 255 && rest.first() == Some(&255);
    let (params, param_len_size) = if extended {
        if rest.len() < 3 {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                "truncated extended optional parameters length",
            ));
        }
        let l = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        (&rest[3..], l)
    } else {
        (rest, opt_len)
    };
    if params.len() != param_len_size {
        return Err(open_err(
            OpenError::Unspecific,
            Vec::new(),
            format!(
                "optional parameters length {param_len_size} does not match the {} bytes present",
                params.len()
            ),
        ));
    }
    let hdr = if extended { 3 } else { 2 };
    let mut pos = 0;
    while pos < params.len() {
        if params.len() - pos < hdr {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                "truncated optional parameter header",
            ));
        }
        let ptype = params[pos];
        let plen = if extended {
            u16::from_be_bytes([params[pos + 1], params[pos + 2]]) as usize
        } else {
            params[pos + 1] as usize
        };
        let start = pos + hdr;
        let end = start
            .checked_add(plen)
            .filter(|&e| e <= params.len())
            .ok_or_else(|| {
                open_err(
                    OpenError::Unspecific,
                    Vec::new(),
                    format!("optional parameter {ptype} length {plen} overruns the OPEN"),
                )
            })?;
        if ptype != 2 {
            return Err(open_err(
                OpenError::UnsupportedOptionalParameter,
                Vec::new(),
                format!("unsupported optional parameter type {ptype}"),
            ));
        }
        parse_capabilities(&params[start..end], &mut open)?;
        pos = end;
    }
    Ok(open)
}

fn parse_capabilities(mut c: &[u8], open: &mut Open) -> Result<(), BgpError> {
    while !c.is_empty() {
        if c.len() < 2 {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                "truncated capability header",
            ));
        }
        let code = c[0];
        let len = c[1] as usize;
        if c.len() - 2 < len {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                format!("capability {code} length {len} overruns its parameter"),
            ));
        }
        let v = &c[2..2 + len];
        match code {
            1 => {
                if len != 4 {
                    return Err(open_err(
                        OpenError::Unspecific,
                        Vec::new(),
                        format!("multiprotocol capability has length {len}, expected 4"),
                    ));
                }
                let fam = (u16::from_be_bytes([v[0], v[1]]), v[3]);
                if !open.multiprotocol.contains(&fam) {
                    open.multiprotocol.push(fam);
                }
            }
            2 => open.route_refresh = true,
            70 => open.enhanced_route_refresh = true,
            65 => {
                if len != 4 {
                    return Err(open_err(
                        OpenError::Unspecific,
                        Vec::new(),
                        format!("4-octet AS capability has length {len}, expected 4"),
                    ));
                }
                open.four_octet_as = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            }
            // ADD-PATH (RFC 7911): a list of AFI(2) SAFI(1) send/receive(1); a malformed one is
            // ignored like an unknown capability (we then read no path ids).
            69 if len % 4 == 0 => {
                for e in v.chunks_exact(4) {
                    open.add_path
                        .push((u16::from_be_bytes([e[0], e[1]]), e[2], e[3]));
                }
            }
            // Everything else (FQDN 73, extended message 6, graceful restart 64,
            // software version 75, ...) is fine to ignore: RFC 5492 lets us not use it.
            other => open.other_capabilities.push(other),
        }
        c = &c[2 + len..];
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NOTIFICATION

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: ErrorCode,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn is_cease(&self) -> bool {
        matches!(self.code, ErrorCode::Cease(_))
    }

    /// RFC 9003 shutdown communication (Cease 2 and 4), if present: the length octet is bounded
    /// by the bytes actually there, and invalid UTF-8 is replaced, never trusted.
    pub fn shutdown_message(&self) -> Option<String> {
        if !self.code.carries_shutdown_message() {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        if len == 0 {
            return None;
        }
        let n = (len as usize).min(rest.len());
        Some(String::from_utf8_lossy(&rest[..n]).into_owned())
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(m) = self.shutdown_message() {
            write!(f, ": \"{}\"", m.escape_debug())?;
        } else if !self.data.is_empty() {
            write!(f, " (data")?;
            for b in self.data.iter().take(32) {
                write!(f, " {b:02x}")?;
            }
            if self.data.len() > 32 {
                write!(f, " ...")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

pub fn parse_notification(b: &[u8]) -> Result<Notification, BgpError> {
    if b.len() < 2 {
        return Err(BgpError::bad_length(
            b.len(),
            "NOTIFICATION shorter than 21 bytes",
        ));
    }
    Ok(Notification {
        code: ErrorCode::from_wire(b[0], b[1]),
        data: b[2..].to_vec(),
    })
}

// ---------------------------------------------------------------------------------------------
// ROUTE-REFRESH

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    /// RFC 7313: 0 = normal request, 1 = BoRR, 2 = EoRR.
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefresh {
    pub fn family(&self) -> Option<Family> {
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
            .into_iter()
            .find(|f| f.afi_safi() == (self.afi, self.safi))
    }
}

pub fn parse_route_refresh(b: &[u8]) -> Result<RouteRefresh, BgpError> {
    if b.len() != 4 {
        return Err(BgpError::bad_length(
            b.len(),
            format!("ROUTE-REFRESH body of {} bytes, expected 4", b.len()),
        ));
    }
    Ok(RouteRefresh {
        afi: u16::from_be_bytes([b[0], b[1]]),
        subtype: b[2],
        safi: b[3],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF; 16];
        v.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
        v.push(t);
        v.extend_from_slice(body);
        v
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, BgpError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match BgpCodec.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return Ok(out),
                Err(ReadError::Protocol(e)) => return Err(e),
                Err(ReadError::Io(e)) => panic!("{e}"),
            }
        }
    }

    /// OPEN body: version 4, AS, hold, id, then the given optional parameters.
    fn open_body(asn: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
        let mut b = vec![4];
        b.extend_from_slice(&asn.to_be_bytes());
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&id);
        b.push(params.len() as u8);
        b.extend_from_slice(params);
        b
    }

    #[test]
    fn codec_frames_split_and_coalesced_messages() {
        let mut all = msg(MSG_KEEPALIVE, &[]);
        all.extend(msg(MSG_ROUTE_REFRESH, &[0, 1, 0, 1]));
        // Byte-by-byte feeding must yield the same frames as one chunk.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in &all {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = BgpCodec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, decode_all(&all).unwrap());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].msg_type, MSG_ROUTE_REFRESH);
        assert_eq!(&frames[1].body[..], &[0, 1, 0, 1]);
    }

    #[test]
    fn header_errors_map_to_notifications() {
        let mut m = msg(MSG_KEEPALIVE, &[]);
        m[3] = 0;
        let e = decode_all(&m).unwrap_err();
        assert_eq!(e.code.wire(), (1, 1));

        let mut m = msg(MSG_KEEPALIVE, &[]);
        m[16..18].copy_from_slice(&18u16.to_be_bytes());
        let e = decode_all(&m).unwrap_err();
        assert_eq!((e.code.wire(), e.data.clone()), ((1, 2), vec![0, 18]));

        let mut m = msg(MSG_KEEPALIVE, &[]);
        m[16..18].copy_from_slice(&4097u16.to_be_bytes());
        let e = decode_all(&m).unwrap_err();
        assert_eq!((e.code.wire(), e.data.clone()), ((1, 2), vec![0x10, 0x01]));

        let e = decode_all(&msg(9, &[])).unwrap_err();
        assert_eq!((e.code.wire(), e.data.clone()), ((1, 3), vec![9]));
        let e = decode_all(&msg(0, &[])).unwrap_err();
        assert_eq!(e.code.wire(), (1, 3));

        for (t, body_len) in [
            (MSG_KEEPALIVE, 1),
            (MSG_OPEN, 9),
            (MSG_UPDATE, 3),
            (MSG_NOTIFICATION, 1),
            (MSG_ROUTE_REFRESH, 3),
            (MSG_ROUTE_REFRESH, 5),
        ] {
            let e = decode_all(&msg(t, &vec![0; body_len])).unwrap_err();
            assert_eq!(e.code.wire(), (1, 2), "type {t} body {body_len}");
            assert_eq!(e.data, ((body_len + 19) as u16).to_be_bytes().to_vec());
        }
        // Errors are reported as soon as the header is in, not when the body arrives.
        let e = decode_all(&msg(MSG_UPDATE, &[0; 20])[..19]);
        assert!(e.is_ok());
        let mut m = msg(MSG_UPDATE, &[0; 20]);
        m[18] = 77;
        assert_eq!(decode_all(&m[..19]).unwrap_err().code.wire(), (1, 3));
    }

    #[test]
    fn open_with_frr_capabilities_parses() {
        // What FRR sends: MP v4 + v6, RR (old 128 and new 2), extended message, 4-octet AS,
        // add-path, FQDN "tor1"/"example.net", graceful restart, software version.
        let mut params = Vec::new();
        let mut cap = |code: u8, v: &[u8]| {
            params.extend_from_slice(&[2, v.len() as u8 + 2, code, v.len() as u8]);
            params.extend_from_slice(v);
        };
        cap(1, &[0, 1, 0, 1]);
        cap(1, &[0, 2, 0, 1]);
        cap(128, &[]);
        cap(2, &[]);
        cap(6, &[]);
        cap(65, &70000u32.to_be_bytes());
        cap(69, &[0, 1, 1, 1]);
        let mut fqdn = vec![4];
        fqdn.extend_from_slice(b"tor1");
        fqdn.push(11);
        fqdn.extend_from_slice(b"example.net");
        cap(73, &fqdn);
        cap(64, &[0x40, 0x78]);
        cap(75, b"\x0bFRRouting/8");
        let o = parse_open(&open_body(AS_TRANS, 9, [192, 0, 2, 1], &params)).unwrap();
        assert_eq!(o.peer_as(), 70000);
        assert_eq!(o.hold_time, 9);
        assert_eq!(o.router_id, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert!(o.route_refresh && !o.enhanced_route_refresh);
        assert_eq!(o.other_capabilities, vec![128, 6, 73, 64, 75]);
        assert_eq!(o.add_path, vec![(1, 1, 1)]);
        assert!(o
            .check_peer(70000, 65001, Ipv4Addr::new(192, 0, 2, 2))
            .is_ok());
        let e = o
            .check_peer(65000, 65001, Ipv4Addr::new(192, 0, 2, 2))
            .unwrap_err();
        assert_eq!(e.code.wire(), (2, 2));
        assert!(
            e.what.contains("70000") && e.what.contains("65000"),
            "{}",
            e.what
        );
    }

    #[test]
    fn open_several_caps_in_one_parameter_and_no_mp() {
        let params = [2, 8, 2, 0, 65, 4, 0, 0, 0xFD, 0xE9];
        let o = parse_open(&open_body(65001, 0, [10, 0, 0, 1], &params)).unwrap();
        assert_eq!(o.peer_as(), 65001);
        assert_eq!(o.families(), vec![Family::Ipv4Unicast]);
        assert!(o.route_refresh);
    }

    #[test]
    fn open_rfc9072_extended_parameters() {
        // Non-ext length 255, type 255, then 2-octet length, params with 2-octet lengths.
        let mut b = open_body(65001, 90, [10, 0, 0, 1], &[]);
        b.truncate(9);
        b.extend_from_slice(&[255, 255, 0, 9, 2, 0, 6, 1, 4, 0, 2, 0, 1]);
        let o = parse_open(&b).unwrap();
        assert_eq!(o.families(), vec![Family::Ipv6Unicast]);
    }

    #[test]
    fn open_errors() {
        let mut b = open_body(65001, 90, [10, 0, 0, 1], &[]);
        b[0] = 3;
        let e = parse_open(&b).unwrap_err();
        assert_eq!((e.code.wire(), e.data), ((2, 1), vec![0, 4]));
        for hold in [1, 2] {
            let e = parse_open(&open_body(65001, hold, [10, 0, 0, 1], &[])).unwrap_err();
            assert_eq!(e.code.wire(), (2, 6));
        }
        assert!(parse_open(&open_body(65001, 0, [10, 0, 0, 1], &[])).is_ok());
        assert!(parse_open(&open_body(65001, 3, [10, 0, 0, 1], &[])).is_ok());
        let e = parse_open(&open_body(65001, 90, [0; 4], &[])).unwrap_err();
        assert_eq!(e.code.wire(), (2, 3));
        let e = parse_open(&open_body(65001, 90, [10, 0, 0, 1], &[1, 0])).unwrap_err();
        assert_eq!(e.code.wire(), (2, 4));
        // Capability length running past its parameter.
        let e = parse_open(&open_body(65001, 90, [10, 0, 0, 1], &[2, 2, 1, 4])).unwrap_err();
        assert_eq!(e.code.wire(), (2, 0));
        // Parameter length running past the message.
        let mut b = open_body(65001, 90, [10, 0, 0, 1], &[2, 2, 2, 0]);
        b[11] = 9;
        assert!(parse_open(&b).is_err());
        // Optional parameters length disagreeing with the bytes present.
        let mut b = open_body(65001, 90, [10, 0, 0, 1], &[2, 2, 2, 0]);
        b[9] = 3;
        assert_eq!(parse_open(&b).unwrap_err().code.wire(), (2, 0));
        // iBGP with our own identifier.
        let o = parse_open(&open_body(65001, 90, [10, 0, 0, 1], &[])).unwrap();
        let e = o
            .check_peer(65001, 65001, Ipv4Addr::new(10, 0, 0, 1))
            .unwrap_err();
        assert_eq!(e.code.wire(), (2, 3));
    }

    #[test]
    fn notification_names_and_shutdown_text() {
        let n = parse_notification(&[6, 2, 5, b'b', b'y', b'e', 0xC3, 0xA9]).unwrap();
        assert_eq!(n.shutdown_message().unwrap(), "bye\u{e9}");
        assert_eq!(
            n.to_string(),
            "6/2 Cease / Administrative Shutdown: \"bye\u{e9}\""
        );
        // Length octet claiming more than is there, and broken UTF-8: bounded and lossy.
        let n = parse_notification(&[6, 4, 200, b'x', 0xFF]).unwrap();
        assert_eq!(n.shutdown_message().unwrap(), "x\u{fffd}");
        let n = parse_notification(&[4, 0]).unwrap();
        assert_eq!(n.to_string(), "4/0 Hold Timer Expired");
        let n = parse_notification(&[2, 2, 0xFD, 0xE9]).unwrap();
        assert_eq!(
            n.to_string(),
            "2/2 OPEN Message Error / Bad Peer AS (data fd e9)"
        );
        assert_eq!(
            parse_notification(&[9, 9]).unwrap().to_string(),
            "9/9 unknown error code 9 subcode 9"
        );
    }

    fn keep_all(_: &crate::route::Prefix) -> bool {
        true
    }

    fn cx() -> DecodeCx<'static> {
        DecodeCx {
            rx: rib_in::RxParams::default(),
            keep: &keep_all,
        }
    }

    fn parse_update(b: &[u8]) -> rib_in::Update {
        rib_in::decode_update(b, &cx())
    }

    #[test]
    fn update_end_of_rib_and_structure() {
        let v6 = Some(Family::Ipv6Unicast);
        let u = parse_update(&[0, 0, 0, 0]);
        assert_eq!(u.routes.end_of_rib, Some(Family::Ipv4Unicast));
        let u = parse_update(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        assert_eq!(u.routes.end_of_rib, v6);
        // Extended-length form of the same.
        let u = parse_update(&[0, 0, 0, 7, 0x90, 15, 0, 3, 0, 2, 1]);
        assert_eq!(u.routes.end_of_rib, v6);
        // MP_UNREACH with a prefix is a withdraw, not End-of-RIB.
        let u = parse_update(&[0, 0, 0, 8, 0x80, 15, 5, 0, 2, 1, 8, 0x20]);
        assert_eq!(u.routes.end_of_rib, None);
        // A withdraw of 10.0.0.0/8.
        let u = parse_update(&[0, 2, 8, 10, 0, 0]);
        assert_eq!(
            (u.routes.withdrawn.len(), u.routes.end_of_rib, u.errors),
            (1, None, vec![])
        );
    }

    #[test]
    fn update_length_errors() {
        let reset = |b: &[u8]| {
            parse_update(b)
                .session_reset()
                .and_then(|e| e.to_bgp_error())
        };
        assert_eq!(reset(&[0, 9, 0, 0]).unwrap().code.wire(), (3, 1));
        assert_eq!(
            reset(&[0, 0, 0, 9, 0x40, 1, 1, 0]).unwrap().code.wire(),
            (3, 1)
        );
        // Attribute overrunning the list: treat-as-withdraw and disable, not a session reset.
        let u = parse_update(&[0, 0, 0, 4, 0x40, 1, 9, 0]);
        assert!(u.session_reset().is_none());
        assert_eq!(
            u.errors[0],
            rib_in::AttrError::TreatAsWithdraw(rib_in::Malformed::AttributeOverrun {
                code: 1,
                len: 9
            })
        );
        assert!(u.errors[0].to_string().contains("overruns"));
        let u = parse_update(&[0, 0, 0, 2, 0x40, 1]);
        assert!(u.worst().is_some() && u.session_reset().is_none());
        let u = parse_update(&[0, 0, 0, 0, 33, 1, 2, 3, 4, 5]);
        // The prefix length 33 disables IPv4; the NLRI also lacks every mandatory attribute.
        assert!(matches!(
            &u.errors[0],
            rib_in::AttrError::AfiSafiDisable { family: Family::Ipv4Unicast, why }
                if why.to_string().contains("33")
        ));
        assert!(matches!(
            &u.errors[1],
            rib_in::AttrError::TreatAsWithdraw(rib_in::Malformed::Missing(m)) if m.len() == 3
        ));
    }

    #[test]
    fn route_refresh_parses() {
        let r = parse_route_refresh(&[0, 2, 0, 1]).unwrap();
        assert_eq!(r.family(), Some(Family::Ipv6Unicast));
        let r = parse_route_refresh(&[0, 1, 1, 1]).unwrap();
        assert_eq!((r.subtype, r.family()), (1, Some(Family::Ipv4Unicast)));
        assert_eq!(parse_route_refresh(&[0, 1, 0, 128]).unwrap().family(), None);
        assert!(parse_route_refresh(&[0, 1, 0]).is_err());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
                let mut buf = BytesMut::from(&data[..]);
                let mut frames = 0;
                while let Ok(Some(f)) = BgpCodec.decode(&mut buf) {
                    frames += 1;
                    prop_assert!(frames <= data.len() / HEADER_LEN);
                    let _ = parse(&f, &cx());
                }
            }

            #[test]
            fn decoder_with_valid_header_never_panics(
                t in 0u8..8,
                body in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let mut buf = BytesMut::from(&msg(t, &body)[..]);
                if let Ok(Some(f)) = BgpCodec.decode(&mut buf) {
                    let _ = parse(&f, &cx());
                }
            }

            #[test]
            fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4100)) {
                let _ = parse_open(&body);
                let _ = parse_update(&body);
                let _ = parse_notification(&body).map(|n| (n.to_string(), n.shutdown_message()));
                let _ = parse_route_refresh(&body);
            }

            #[test]
            fn open_with_random_parameters_never_panics(
                opt_len in any::<u8>(),
                params in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let mut b = open_body(65001, 90, [10, 0, 0, 1], &params);
                b[9] = opt_len;
                let _ = parse_open(&b);
                b[9] = 255;
                let _ = parse_open(&b);
            }

            #[test]
            fn update_with_random_attributes_never_panics(
                attrs in proptest::collection::vec(any::<u8>(), 0..400),
                nlri in proptest::collection::vec(any::<u8>(), 0..40),
            ) {
                let mut b = vec![0, 0];
                b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
                b.extend_from_slice(&attrs);
                b.extend_from_slice(&nlri);
                let _ = parse_update(&b);
            }
        }
    }
}
