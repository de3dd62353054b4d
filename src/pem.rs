//! Reading PEM certificates and private keys, and the one rustls crypto provider, shared by the
//! API's TLS (`api::tls`) and the https checks (`checks::tls`). PEM is decoded by rustls-pki-types'
//! `PemObject` (rustls-pemfile is archived, RUSTSEC-2025-0134). A leaf: imports nothing from
//! the crate; callers word the errors (each names its own config key).

use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// The first private key (PKCS#8, PKCS#1 or SEC1) in PEM text.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::Empty,
        e => PemError::Bad(e),
    })
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
        assert!(matches!(
            private_key(cert.cert.pem().as_bytes()),
            Err(PemError::Empty)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
