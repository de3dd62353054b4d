//! Reading PEM certificates from a file and the one rustls crypto provider, shared by the API's
//! TLS (`api::tls`) and the https checks (`checks::tls`). A leaf: imports nothing from the crate;
//! callers word the errors (each names its own config key).

use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::CertificateDer;

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
    Bad(io::Error),
    /// The file holds no certificate.
    Empty,
}

/// Every certificate in a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = std::fs::read(path).map_err(PemError::Read)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Bad)?;
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
