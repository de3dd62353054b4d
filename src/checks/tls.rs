//! TLS client configuration for https checks, built once per check.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use super::detail::io_reason;
use crate::pem::{self, provider, PemError};

/// The system's roots, loaded once per process (it reads a directory of files).
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!(error = %e, "loading system CA certificates");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "system CA certificates");
        store
    })
}

/// Why a check's TLS client cannot be set up.
#[derive(Debug)]
pub enum TlsSetupError {
    /// The crypto provider refused the protocol versions.
    Setup(Error),
    CaFile {
        path: PathBuf,
        source: PemError,
    },
    /// `ca_file` holds a certificate rustls cannot use as a root.
    CaCert {
        path: PathBuf,
        source: Error,
    },
    ServerName {
        host: String,
    },
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::Setup(e) => write!(f, "TLS setup: {e}"),
            TlsSetupError::CaFile { path, source } => {
                let shown = path.display();
                match source {
                    PemError::Read(e) => {
                        write!(f, "cannot read ca_file {shown}: {}", io_reason(e))
                    }
                    PemError::Bad(e) => write!(f, "ca_file {shown}: bad PEM: {e}"),
                    PemError::Empty => write!(f, "ca_file {shown}: no PEM certificate in it"),
                }
            }
            TlsSetupError::CaCert { path, source } => {
                write!(
                    f,
                    "ca_file {}: unusable certificate: {source}",
                    path.display()
                )
            }
            TlsSetupError::ServerName { host } => write!(f, "invalid TLS server name {host:?}"),
        }
    }
}

impl std::error::Error for TlsSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsSetupError::Setup(e) | TlsSetupError::CaCert { source: e, .. } => Some(e),
            TlsSetupError::CaFile { source, .. } => Some(source),
            TlsSetupError::ServerName { .. } => None,
        }
    }
}

/// Verifies against the system roots plus `ca_file`, or accepts anything when `insecure`
/// (`ca_file` is then not read).
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Setup)?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = native_roots().clone();
        if let Some(path) = ca_file {
            for cert in read_pem_certs(path)? {
                roots.add(cert).map_err(|source| TlsSetupError::CaCert {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    pem::read_certs(path).map_err(|source| TlsSetupError::CaFile {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsSetupError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsSetupError::ServerName {
        host: host.to_owned(),
    })
}

/// `insecure: true`: any certificate is accepted, but handshake signatures are still checked
/// so the peer at least holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_ca_file_is_explained() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(matches!(e, TlsSetupError::CaFile { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "cannot read ca_file /nonexistent/ca.pem: No such file or directory"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_explained() {
        let dir = std::env::temp_dir().join(format!("vw-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not pem at all\n").unwrap();
        let e = client_config(Some(&path), false).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.ends_with("no PEM certificate in it"), "{e}");
    }

    #[test]
    fn insecure_ignores_ca_file() {
        assert!(client_config(Some(Path::new("/nonexistent/ca.pem")), true).is_ok());
    }
}
