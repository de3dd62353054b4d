//! HTTPS for the API (`api.tls`): the server's acceptor from PEM files, and the CLI's client
//! configuration, which trusts exactly the certificate in `api.tls.cert_file` (the CLI runs on
//! the same host and reads the same config, so pinning beats name checks against whatever
//! address `api.listen` happens to be).
//!
//! File reads block: callers run these off the async runtime.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, ServerConfig, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::secret_file::{self, Owner};
use crate::pem::{self, provider, PemError};

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    pem::read_certs(path).map_err(|e| match e {
        PemError::Read(e) => format!("api.tls.cert_file {shown}: {e}"),
        PemError::Bad(e) => format!("api.tls.cert_file {shown}: bad PEM: {e}"),
        PemError::Empty => format!("api.tls.cert_file {shown}: no PEM certificate in it"),
    })
}

/// The private key, under the secret-file rule (`config::secret_file`). The PEM text is zeroed
/// when this returns; the parsed key lives on inside rustls's signing key.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let shown = path.display();
    let pem = secret_file::read(
        path,
        "api.tls.key_file: API TLS key",
        1 << 20,
        Owner::ThisProcess,
    )
    .map_err(|e| e.message)?;
    pem::private_key(&pem).map_err(|e| match e {
        PemError::Empty => format!("api.tls.key_file {shown}: no PEM private key in it"),
        e => format!("api.tls.key_file {shown}: {e}"),
    })
}

/// `check-config`: the TLS pair loads as the daemon would load it.
pub fn check(cert_file: &Path, key_file: &Path) -> Result<(), String> {
    acceptor(cert_file, key_file).map(drop)
}

/// The server side of `api.tls`.
pub(crate) fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, String> {
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "api.tls: {} and {} do not make a usable pair: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The CLI's side: trusts exactly the leaf certificate in `cert_file`.
pub(crate) fn pinned_connector(cert_file: &Path) -> Result<TlsConnector, String> {
    let leaf = read_certs(cert_file)?.swap_remove(0);
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
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
