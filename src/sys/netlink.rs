//! Netlink framing shared by the hand-written sock_diag and rtnetlink clients: a blocking socket
//! that sends one request and collects the reply (a dump or a single answer), and bounds-checked
//! iterators over messages and route attributes. Knows nothing about what the bodies mean.
//!
//! Everything the kernel sends is outside bytes: a short, odd or oversized reply is an error,
//! never a panic.

use std::io::{self, Read};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

pub const NLMSG_HDR_LEN: usize = 16;
const RTATTR_LEN: usize = 4;
const _: () = assert!(std::mem::size_of::<libc::nlmsghdr>() == NLMSG_HDR_LEN);
const _: () = assert!(std::mem::size_of::<libc::rtattr>() == RTATTR_LEN);
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_DUMP: u16 = 0x300;
/// Stops a dump that never ends (it cannot, but a bug must not spin forever).
const MAX_DATAGRAMS: usize = 10_000;
/// Bounds what one reply may hold in memory (messages, not bytes; a dump of a big host's
/// sockets is well below this).
pub const MAX_MESSAGES: usize = 1_000_000;

pub fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One message of a reply: its type and body (after the 16-byte header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: u16,
    pub body: Vec<u8>,
}

/// What one datagram said.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// More datagrams follow (a dump in progress).
    More,
    /// NLMSG_DONE or an ACK: the reply is complete.
    Done,
}

/// Decodes one datagram of the reply to request `seq`, appending its messages to `out`. Messages
/// with another sequence number (left over from an earlier, failed request) are skipped. A kernel
/// error becomes an `io::Error` with its errno. `single`: the request was not a dump, so the first
/// matching message completes it.
pub fn decode_datagram(
    buf: &[u8],
    seq: u32,
    single: bool,
    out: &mut Vec<Message>,
) -> io::Result<Chunk> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let len = u32_ne(rest, 0).ok_or_else(|| bad("truncated netlink header"))? as usize;
        let kind = u16_ne(rest, 4).ok_or_else(|| bad("truncated netlink header"))?;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            return Err(bad(format!("netlink message length {len} out of bounds")));
        }
        let body = &rest[NLMSG_HDR_LEN..len];
        // Messages are 4-byte aligned within a datagram.
        at = at.saturating_add((len + 3) & !3);
        if u32_ne(rest, 8) != Some(seq) {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(Chunk::Done),
            NLMSG_ERROR => {
                let errno = body
                    .get(0..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes)
                    .unwrap_or(0);
                // An error with code 0 is an ACK.
                if errno == 0 {
                    return Ok(Chunk::Done);
                }
                return Err(io::Error::from_raw_os_error(errno.wrapping_neg()));
            }
            _ => {
                if out.len() >= MAX_MESSAGES {
                    return Err(bad("netlink reply has too many messages"));
                }
                out.push(Message {
                    kind,
                    body: body.to_vec(),
                });
                if single {
                    return Ok(Chunk::Done);
                }
            }
        }
    }
    Ok(Chunk::More)
}

/// Route attributes (`struct rtattr`: u16 len, u16 type, value, 4-byte aligned) of `buf`.
/// Iteration stops at the first malformed attribute; `AttrIter::malformed` tells whether it did.
pub struct AttrIter<'a> {
    buf: &'a [u8],
    pub malformed: bool,
}

pub fn attrs(buf: &[u8]) -> AttrIter<'_> {
    AttrIter {
        buf,
        malformed: false,
    }
}

impl<'a> Iterator for AttrIter<'a> {
    /// (type without the nested/byte-order flags, value)
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < RTATTR_LEN {
            if !self.buf.is_empty() {
                self.malformed = true;
            }
            return None;
        }
        let len = u16_ne(self.buf, 0)? as usize;
        let kind = u16_ne(self.buf, 2)? & 0x3fff;
        if len < RTATTR_LEN || len > self.buf.len() {
            self.malformed = true;
            self.buf = &[];
            return None;
        }
        let value = &self.buf[RTATTR_LEN..len];
        let next = ((len + 3) & !3).min(self.buf.len());
        self.buf = &self.buf[next..];
        Some((kind, value))
    }
}

/// A netlink socket of one protocol, reused across requests.
pub struct NlSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    pub fn open(protocol: i32) -> io::Result<Self> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW.cloexec(),
            Some(Protocol::from(protocol)),
        )?;
        // The kernel answers at once; the timeout only keeps a wedged socket from hanging a thread.
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Self {
            sock,
            seq: 0,
            // Large enough for the kernel's dump datagrams (it uses up to 32 KiB by default).
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends a request of type `kind` with `flags` and `payload` (after the header) and collects
    /// the reply's messages. A request without NLM_F_DUMP gets one message.
    pub fn request(&mut self, kind: u16, flags: u16, payload: &[u8]) -> io::Result<Vec<Message>> {
        self.seq = self.seq.wrapping_add(1);
        let len = NLMSG_HDR_LEN + payload.len();
        let mut req = Vec::with_capacity(len);
        req.extend_from_slice(&(len as u32).to_ne_bytes());
        req.extend_from_slice(&kind.to_ne_bytes());
        req.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        req.extend_from_slice(&self.seq.to_ne_bytes());
        // pid 0: the kernel fills in our port id.
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(payload);
        // Unconnected and unaddressed: netlink sends to the kernel (port id 0) by default.
        self.sock.send(&req)?;
        let single = flags & NLM_F_DUMP == 0;
        let mut out = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let n = (&self.sock).read(&mut self.buf)?;
            if n == 0 {
                self.drain();
                return Err(bad("empty netlink datagram"));
            }
            match decode_datagram(
                &self.buf[..n.min(self.buf.len())],
                self.seq,
                single,
                &mut out,
            ) {
                Ok(Chunk::Done) => {
                    if single {
                        // A single answer may be followed by an ACK; leave nothing behind.
                        self.drain();
                    }
                    return Ok(out);
                }
                Ok(Chunk::More) => {}
                Err(e) => {
                    // Leave no half-read dump behind to confuse the next request.
                    self.drain();
                    return Err(e);
                }
            }
        }
        self.drain();
        Err(bad("netlink dump did not end"))
    }

    fn drain(&mut self) {
        let _ = self.sock.set_nonblocking(true);
        while matches!((&self.sock).read(&mut self.buf), Ok(n) if n > 0) {}
        let _ = self.sock.set_nonblocking(false);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn msg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR_LEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    pub(crate) fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    #[test]
    fn messages_done_errors_and_stale_seq() {
        let mut d = msg(20, 6, b"old!");
        d.extend(msg(20, 7, b"abcd"));
        d.extend(msg(NLMSG_DONE, 7, &[0; 4]));
        let mut out = Vec::new();
        assert_eq!(
            decode_datagram(&d, 7, false, &mut out).unwrap(),
            Chunk::Done
        );
        assert_eq!(
            out,
            [Message {
                kind: 20,
                body: b"abcd".to_vec()
            }]
        );
        let e = decode_datagram(
            &msg(NLMSG_ERROR, 7, &(-libc::EPERM).to_ne_bytes()),
            7,
            false,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(decode_datagram(
            &msg(NLMSG_ERROR, 7, &i32::MIN.to_ne_bytes()),
            7,
            false,
            &mut out
        )
        .is_err());
        let ack = decode_datagram(
            &msg(NLMSG_ERROR, 7, &0i32.to_ne_bytes()),
            7,
            false,
            &mut out,
        );
        assert_eq!(ack.unwrap(), Chunk::Done);
        // A single answer completes a non-dump request.
        let mut one = Vec::new();
        assert_eq!(
            decode_datagram(&msg(24, 7, &[1; 8]), 7, true, &mut one).unwrap(),
            Chunk::Done
        );
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn attributes_and_their_malformations() {
        let mut b = attr(1, &[1, 2, 3]);
        b.extend(attr(0x8002, &[9; 4]));
        let mut it = attrs(&b);
        assert_eq!(it.next(), Some((1, &[1u8, 2, 3][..])));
        assert_eq!(it.next(), Some((2, &[9u8; 4][..])), "nested flag masked");
        assert_eq!(it.next(), None);
        assert!(!it.malformed);
        let mut bad = attr(1, &[1; 4]);
        bad[0] = 200;
        let mut it = attrs(&bad);
        assert_eq!(it.next(), None);
        assert!(it.malformed);
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512), seq in 0u32..3, single: bool) {
            let mut out = Vec::new();
            let _ = decode_datagram(&buf, seq, single, &mut out);
            let n = attrs(&buf).count();
            prop_assert!(n <= buf.len() / 4);
        }

        #[test]
        fn every_truncation_of_a_valid_reply_is_handled(cut in 0usize..64) {
            let mut d = msg(20, 1, &attr(3, &[7; 9]));
            d.extend(msg(NLMSG_DONE, 1, &[0; 4]));
            let cut = cut.min(d.len());
            let mut out = Vec::new();
            let r = decode_datagram(&d[..cut], 1, false, &mut out);
            if cut == d.len() { prop_assert_eq!(r.unwrap(), Chunk::Done); }
        }
    }
}
