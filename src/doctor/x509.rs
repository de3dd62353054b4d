//! A server certificate's subject and validity (for doctor's expiry finding and probe's TLS
//! step), read with RustCrypto's `x509-cert`. The certificate comes from the network: the
//! reader checks every length, nothing is trusted, nothing panics.

use x509_cert::der::{Decode, SliceReader};
use x509_cert::Certificate;

use crate::civil_time::civil_from_days;

/// What doctor and probe print about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's commonName, or the whole subject's attribute values joined.
    pub subject: String,
    /// notAfter as Unix seconds.
    pub not_after: i64,
}

/// 2.5.4.3 commonName.
const OID_CN: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");

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

fn subject(name: &x509_cert::name::Name) -> String {
    let mut cn = None;
    let mut all = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            // The string's bytes whatever its ASN.1 string type; lossy, never trusted.
            let text = String::from_utf8_lossy(atv.value.value()).into_owned();
            if atv.oid == OID_CN {
                cn = Some(text.clone());
            }
            all.push(text);
        }
    }
    cn.unwrap_or_else(|| all.join(", "))
}

/// Subject and notAfter of a DER certificate (bytes after it are ignored); None when it is not
/// one.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let mut reader = SliceReader::new(der).ok()?;
    let cert = Certificate::decode(&mut reader).ok()?;
    let tbs = &cert.tbs_certificate;
    let not_after = i64::try_from(tbs.validity.not_after.to_unix_duration().as_secs()).ok()?;
    Some(CertInfo {
        subject: subject(&tbs.subject),
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
        assert_eq!(utc(2_524_607_999), "2049-12-31 23:59:59 UTC");
    }

    #[test]
    fn generalized_time_subject_without_cn_and_trailing_bytes() {
        // notAfter in 2050 and later is a GeneralizedTime (RFC 5280 4.1.2.5).
        let mut params = rcgen::CertificateParams::new(vec!["vip.example".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "NL");
        params.not_after = rcgen::date_time_ymd(2051, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(info.not_after, 2_556_144_000);
        assert!(info.subject.contains("Example") && info.subject.contains("NL"));
        let mut longer = cert.der().to_vec();
        longer.extend_from_slice(&[0x30, 0x00]);
        assert_eq!(parse(&longer), Some(info));
        // Truncated: not a certificate.
        assert_eq!(parse(&cert.der()[..cert.der().len() - 1]), None);
    }

    proptest! {
        #[test]
        fn garbage_is_none_not_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }
    }
}
