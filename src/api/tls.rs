//! HTTPS for the API (`api.tls`): the server's acceptor from PEM files, and the CLI's client
//! configuration, which trusts exactly the certificate in `api.tls.cert_file` (the CLI runs on
//! the same host and reads the same config, so pinning beats name checks against whatever
//! address `api.listen` happens to be).
//!
//! File reads block: callers run these off the async runtime.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, InconsistentKeys, ServerConfig, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroizing;

use crate::config::secret_file::{self, Owner, SecretFileError};
use crate::pem::{self, provider, PemError, PemKeyError};

/// Why `api.tls` cannot be used. The text names the config key and the file.
#[derive(Debug)]
pub enum TlsError {
    /// `api.tls.cert_file` could not be read or holds no certificate.
    Cert { path: PathBuf, source: PemError },
    /// `api.tls.key_file` breaks the secret-file rule or cannot be read.
    KeyFile(SecretFileError),
    /// `api.tls.key_file` holds no usable private key.
    Key { path: PathBuf, source: PemKeyError },
    /// The crypto provider refused the protocol versions (a build problem, not the files).
    Setup(Error),
    /// The certificate and the key do not belong together.
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: Error,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Cert { path, source } => {
                let shown = path.display();
                match source {
                    PemError::Read(e) => write!(f, "api.tls.cert_file {shown}: {e}"),
                    PemError::Bad(e) => write!(f, "api.tls.cert_file {shown}: bad PEM: {e}"),
                    PemError::Empty => {
                        write!(f, "api.tls.cert_file {shown}: no PEM certificate in it")
                    }
                }
            }
            TlsError::KeyFile(e) => f.write_str(&e.message),
            TlsError::Key { path, source } => {
                write!(f, "api.tls.key_file {}: {source}", path.display())
            }
            TlsError::Setup(e) => write!(f, "TLS setup: {e}"),
            TlsError::Pair { cert, key, source } => write!(
                f,
                "api.tls: {} and {} do not make a usable pair: {source}",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Cert { source, .. } => Some(source),
            TlsError::Key { source, .. } => Some(source),
            TlsError::KeyFile(e) => Some(e),
            TlsError::Setup(e) | TlsError::Pair { source: e, .. } => Some(e),
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem::read_certs(path).map_err(|source| TlsError::Cert {
        path: path.to_path_buf(),
        source,
    })
}

/// The private key, under the secret-file rule (`config::secret_file`). The PEM text and the
/// DER are zeroed when dropped; what lives on is ring's parsed signing key, for as long as the
/// API serves TLS (ring does not zero its key material on drop).
fn read_key(path: &Path) -> Result<Zeroizing<PrivateKeyDer<'static>>, TlsError> {
    let pem = secret_file::read(
        path,
        "api.tls.key_file: API TLS key",
        1 << 20,
        Owner::ThisProcess,
    )
    .map_err(TlsError::KeyFile)?;
    pem::private_key(&pem).map_err(|source| TlsError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// `check-config`: the TLS pair loads as the daemon would load it.
pub fn check(cert_file: &Path, key_file: &Path) -> Result<(), TlsError> {
    acceptor(cert_file, key_file).map(drop)
}

/// The server side of `api.tls`.
pub(crate) fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let pair_error = |source| TlsError::Pair {
        cert: cert_file.to_path_buf(),
        key: key_file.to_path_buf(),
        source,
    };
    // By reference, so the only DER copy is ours (zeroed at the end of this function):
    // `with_single_cert` would take the key by value and drop it unzeroed. `provider()` is ring.
    let signing_key = crypto::ring::sign::any_supported_type(&key).map_err(pair_error)?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        // As `with_single_cert`: a key type whose public half cannot be compared is accepted.
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(source) => return Err(pair_error(source)),
    }
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The CLI's side: trusts exactly the leaf certificate in `cert_file`.
pub(crate) fn pinned_connector(cert_file: &Path) -> Result<TlsConnector, TlsError> {
    let leaf = read_certs(cert_file)?.swap_remove(0);
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { leaf, provider }))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name the CLI sends in SNI; the pinned verifier ignores it.
pub(crate) fn sni() -> ServerName<'static> {
    ServerName::try_from("vipwarden-api").expect("a valid DNS name")
}

/// Accepts the one certificate configured, and checks the handshake signatures against it, so
/// the server proves it holds that certificate's key.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::General(
                "the API presented a certificate other than api.tls.cert_file".into(),
            ))
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
