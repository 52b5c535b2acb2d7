//! TLS for probes: the two client configurations every https check shares (the
//! system's roots through rustls-platform-verifier, as reqwest used, or no
//! verification with `tls_verify = false`), built once per prober.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

use super::error::ProbeError;

/// The client configurations of every TLS probe.
#[derive(Clone)]
pub struct TlsConfigs {
    /// `Err` (why) when the system's verifier could not be set up.
    verify: Result<Arc<ClientConfig>, String>,
    no_verify: Arc<ClientConfig>,
}

impl TlsConfigs {
    pub fn new() -> TlsConfigs {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let verify = ClientConfig::builder()
            .with_platform_verifier()
            .map(|b| Arc::new(b.with_no_client_auth()))
            .map_err(|e| e.to_string());
        let any = AnyCertificate(Arc::new(rustls::crypto::ring::default_provider()));
        let no_verify = ClientConfig::builder().dangerous().with_custom_certificate_verifier(Arc::new(any));
        TlsConfigs { verify, no_verify: Arc::new(no_verify.with_no_client_auth()) }
    }

    /// A connector that verifies the certificate, or (`verify = false`) does not.
    pub fn connector(&self, verify: bool) -> Result<tokio_rustls::TlsConnector, ProbeError> {
        let config = if verify { self.verify.clone().map_err(ProbeError::Client)? } else { self.no_verify.clone() };
        Ok(tokio_rustls::TlsConnector::from(config))
    }
}

impl Default for TlsConfigs {
    fn default() -> Self {
        Self::new()
    }
}

/// The name a certificate is checked against: `host`, a DNS name or an address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, ProbeError> {
    ServerName::try_from(host.to_string()).map_err(|_| ProbeError::Client(format!("{host:?} is not a TLS server name")))
}

/// `tls_verify = false`: any certificate is accepted, but the handshake's
/// signatures are still checked (so the connection is a real TLS one).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
