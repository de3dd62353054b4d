//! Reading PEM certificates and private keys, and the one rustls crypto provider, shared by the
//! API's TLS (`api::tls`) and the https checks (`checks::tls`). Certificates are decoded by
//! rustls-pki-types' `PemObject` (rustls-pemfile is archived, RUSTSEC-2025-0134); the private key
//! by a small reader whose buffers are zeroed. A leaf: imports nothing from
//! the crate; callers word the errors (each names its own config key).

use std::io;
use std::path::Path;
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use zeroize::Zeroizing;

/// ring, named explicitly so the choice never depends on which features other crates enable.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

/// Why a PEM certificate file was not usable.
#[derive(Debug)]
pub enum PemError {
    /// The file could not be read.
    Read(io::Error),
    /// A PEM section could not be decoded.
    Bad(pem::Error),
    /// The file holds no certificate (or, for a key, no private key).
    Empty,
}

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemError::Read(e) => write!(f, "{e}"),
            PemError::Bad(e) => write!(f, "bad PEM: {e}"),
            PemError::Empty => write!(f, "no PEM item of the wanted kind in it"),
        }
    }
}

impl std::error::Error for PemError {}

/// Why a PEM private key was not usable.
#[derive(Debug, PartialEq, Eq)]
pub enum PemKeyError {
    /// A private key section that cannot be used (broken base64, no END line, encrypted).
    Bad(&'static str),
    /// The text holds no private key section.
    Empty,
}

impl std::fmt::Display for PemKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemKeyError::Bad(why) => write!(f, "bad PEM private key: {why}"),
            PemKeyError::Empty => write!(f, "no PEM private key in it"),
        }
    }
}

impl std::error::Error for PemKeyError {}

/// Every certificate in a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = std::fs::read(path).map_err(PemError::Read)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Bad)?;
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in PEM text. Every copy of the key's bytes
/// made here (the base64 text and the DER) is zeroed when dropped, the returned key included;
/// pki-types' PEM reader would leave its line and base64 buffers behind unzeroed.
pub fn private_key(pem: &[u8]) -> Result<Zeroizing<PrivateKeyDer<'static>>, PemKeyError> {
    let mut lines = pem.split(|&b| b == b'\n').map(<[u8]>::trim_ascii);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.strip_suffix(b"-----"))
        else {
            continue;
        };
        let wrap: fn(Vec<u8>) -> PrivateKeyDer<'static> = match label {
            b"PRIVATE KEY" => |der| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            b"RSA PRIVATE KEY" => |der| PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            b"EC PRIVATE KEY" => |der| PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
            b"ENCRYPTED PRIVATE KEY" => {
                return Err(PemKeyError::Bad(
                    "the key is encrypted (PKCS#8); decrypt it with `openssl pkey`",
                ))
            }
            // Certificates, EC PARAMETERS and the like: skip to their END line.
            _ => continue,
        };
        let mut b64 = Zeroizing::new(Vec::with_capacity(pem.len()));
        let mut ended = false;
        for line in lines.by_ref() {
            if line.starts_with(b"-----END ") {
                ended = line
                    .strip_prefix(b"-----END ")
                    .and_then(|l| l.strip_suffix(b"-----"))
                    == Some(label);
                break;
            }
            if line.contains(&b':') {
                return Err(PemKeyError::Bad(
                    "the key has PEM headers (Proc-Type/DEK-Info: an encrypted key); decrypt it with `openssl pkey`",
                ));
            }
            b64.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
        }
        if !ended {
            return Err(PemKeyError::Bad("the key section has no matching END line"));
        }
        let mut der = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
        let len = Base64::decode(b64.as_slice(), der.as_mut_slice())
            .map_err(|_| PemKeyError::Bad("the key section is not valid base64"))?
            .len();
        if len == 0 {
            return Err(PemKeyError::Bad("the key section is empty"));
        }
        der.truncate(len);
        // The Vec moves into the key (no copy); Zeroizing clears it, spare capacity included.
        return Ok(Zeroizing::new(wrap(std::mem::take(&mut *der))));
    }
    Err(PemKeyError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_and_good_files() {
        let dir = std::env::temp_dir().join(format!("vw-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            read_certs(&dir.join("absent.pem")),
            Err(PemError::Read(_))
        ));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(read_certs(&empty), Err(PemError::Empty)));
        let cert = rcgen::generate_simple_self_signed(vec!["vip.example".into()]).unwrap();
        let good = dir.join("good.pem");
        std::fs::write(&good, cert.cert.pem()).unwrap();
        assert_eq!(read_certs(&good).unwrap().len(), 1);
        // A certificate section whose base64 is broken.
        let bad = dir.join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(read_certs(&bad), Err(PemError::Bad(_))));
        assert!(private_key(cert.key_pair.serialize_pem().as_bytes()).is_ok());
        assert_eq!(
            private_key(cert.cert.pem().as_bytes()).unwrap_err(),
            PemKeyError::Empty
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What pki-types' reader (the reference) makes of the same text.
    fn reference(text: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_key_reader_agrees_with_pki_types() {
        let cert = rcgen::generate_simple_self_signed(vec!["vip.example".into()]).unwrap();
        let pkcs8 = cert.key_pair.serialize_pem();
        let body = "BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2\nNzg5";
        let sec1 = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
             -----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"
        );
        let pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\r\nZGVmZ2hpamtsbW5vcHFyc3R1dnc=\r\n-----END RSA PRIVATE KEY-----\r\n";
        let cert_then_key = format!("{}{pkcs8}", cert.cert.pem());
        for text in [pkcs8.as_str(), &sec1, pkcs1, &cert_then_key] {
            assert_eq!(
                *private_key(text.as_bytes()).unwrap(),
                reference(text),
                "{text}"
            );
        }
        assert!(matches!(
            *private_key(sec1.as_bytes()).unwrap(),
            PrivateKeyDer::Sec1(_)
        ));
        assert!(matches!(
            *private_key(pkcs1.as_bytes()).unwrap(),
            PrivateKeyDer::Pkcs1(_)
        ));
    }

    #[test]
    fn unusable_key_sections_say_why() {
        let bad = |text: &str| match private_key(text.as_bytes()) {
            Err(PemKeyError::Bad(why)) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(bad("-----BEGIN PRIVATE KEY-----\nMIIB\n").contains("no matching END"));
        assert!(
            bad("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
                .contains("no matching END")
        );
        assert!(
            bad("-----BEGIN PRIVATE KEY-----\nM!IB\n-----END PRIVATE KEY-----\n")
                .contains("base64")
        );
        assert!(bad("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n").contains("empty"));
        assert!(bad(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        .contains("encrypted"));
        assert!(bad("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n")
            .contains("encrypted"));
        assert_eq!(private_key(b"").unwrap_err(), PemKeyError::Empty);
    }
}
