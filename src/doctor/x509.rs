//! Just enough DER to read a server certificate's subject and validity (for doctor's expiry
//! finding and probe's TLS step). The certificate comes from the network: every length is
//! checked, nothing is trusted, nothing panics.

use crate::civil_time::{civil_from_days, days_from_civil};

/// What doctor and probe print about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's commonName, or the whole subject's printable strings joined.
    pub subject: String,
    /// notAfter as Unix seconds.
    pub not_after: i64,
}

/// One TLV: (tag, value, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

fn expect(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, v, rest) = tlv(b)?;
    (t == tag).then_some((v, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) to Unix seconds.
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(v.get(0..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, v.get(2..)?)
        }
        0x18 => (digits(v.get(0..4)?)?, v.get(4..)?),
        _ => return None,
    };
    if rest.len() < 11 || rest[10] != b'Z' {
        return None;
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let (mo, d, h, mi, s) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

fn subject(name: &[u8]) -> String {
    let mut cn = None;
    let mut all = Vec::new();
    let mut rest = name;
    while let Some((set, r)) = expect(rest, SET) {
        rest = r;
        let mut inner = set;
        while let Some((atv, r2)) = expect(inner, SEQUENCE) {
            inner = r2;
            let Some((oid, after)) = expect(atv, 0x06) else {
                continue;
            };
            let Some((_, value, _)) = tlv(after) else {
                continue;
            };
            let text = String::from_utf8_lossy(value).into_owned();
            if oid == OID_CN {
                cn = Some(text.clone());
            }
            all.push(text);
        }
    }
    cn.unwrap_or_else(|| all.join(", "))
}

/// Subject and notAfter of a DER certificate; None when it is not one.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if let Some((0xa0, _, r)) = tlv(rest) {
        rest = r;
    }
    let (_, _, rest) = tlv(rest)?; // serialNumber
    let (_, _, rest) = tlv(rest)?; // signature algorithm
    let (_, _, rest) = tlv(rest)?; // issuer
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (_, _, after) = tlv(validity)?; // notBefore
    let (tag, na, _) = tlv(after)?;
    let not_after = time(tag, na)?;
    let (subj, _) = expect(rest, SEQUENCE)?;
    Some(CertInfo {
        subject: subject(subj),
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_an_rcgen_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["vip.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vip.example");
        params.not_after = rcgen::date_time_ymd(2031, 2, 3);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(info.subject, "vip.example");
        // 2031-02-03T00:00:00Z
        assert_eq!(info.not_after, 1_927_843_200);
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(utc(1_927_843_200), "2031-02-03 00:00:00 UTC");
        assert_eq!(utc(951_868_799), "2000-02-29 23:59:59 UTC");
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20000301000000Z"), Some(951_868_800));
        assert_eq!(time(0x17, b"4912312359"), None);
        assert_eq!(time(0x17, b"491331235959Z"), None);
    }

    proptest! {
        #[test]
        fn garbage_is_none_not_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }
    }
}
