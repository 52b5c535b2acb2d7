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

/// The `tls` check: a TCP connection and a TLS handshake with SNI `host`, the
/// certificate verified for `host` and its dates (unless `tls_verify = false`);
/// it reports the days until the leaf certificate expires, and fails on fewer
/// than `min_cert_days` when that is set (otherwise a near expiry only shows).
pub struct TlsCheck {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    host: String,
    /// `tls_verify = false`: the chain is not verified (a private CA), but the
    /// name and dates still are: they are what this check is for.
    check_leaf: bool,
    min_days: Option<u32>,
}

impl TlsCheck {
    pub fn new(spec: &super::CheckSpec, tls: &TlsConfigs) -> Result<TlsCheck, ProbeError> {
        Ok(TlsCheck {
            connector: tls.connector(spec.tls_verify)?,
            name: server_name(&spec.host)?,
            host: spec.host.clone(),
            check_leaf: !spec.tls_verify,
            min_days: spec.min_cert_days,
        })
    }

    /// One probe: returns the leaf certificate's days to expiry.
    pub async fn run(&self, target: std::net::SocketAddr, source: Option<std::net::IpAddr>) -> Result<i64, ProbeError> {
        let tcp = super::tcp::tcp_connect(target, source)
            .await
            .map_err(|e| ProbeError::Connect { target, reason: e.to_string() })?;
        let stream =
            self.connector.connect(self.name.clone(), tcp).await.map_err(|e| ProbeError::Tls(e.to_string()))?;
        let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
        let leaf = leaf.ok_or_else(|| ProbeError::Tls("no certificate".to_string()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| ProbeError::Tls(format!("certificate: {e}")))?;
        if self.check_leaf {
            leaf_valid_for(&cert, &self.host)?;
        }
        let days = days_left(&cert);
        match self.min_days {
            Some(min) if days < i64::from(min) => Err(ProbeError::CertDays { days, min }),
            _ => Ok(days),
        }
    }
}

/// Whole days from now until the certificate's notAfter (negative once expired).
fn days_left(cert: &x509_parser::certificate::X509Certificate<'_>) -> i64 {
    let not_after = cert.validity().not_after.timestamp();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (not_after - now as i64).div_euclid(86_400)
}

/// Without chain verification: the certificate is within its dates and one of
/// its subject alternative names is `host` (a DNS name, `*.` one label deep, or
/// an address).
fn leaf_valid_for(cert: &x509_parser::certificate::X509Certificate<'_>, host: &str) -> Result<(), ProbeError> {
    use x509_parser::extensions::GeneralName;
    if !cert.validity().is_valid() {
        return Err(ProbeError::Tls("certificate is outside its validity dates".to_string()));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    let names =
        cert.subject_alternative_name().ok().flatten().map(|e| e.value.general_names.clone()).unwrap_or_default();
    let matches = names.iter().any(|n| match n {
        GeneralName::DNSName(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            match d.strip_prefix("*.") {
                Some(rest) => host.split_once('.').is_some_and(|(_, h)| h == rest),
                None => d == host,
            }
        }
        GeneralName::IPAddress(b) => ip.is_some_and(|ip| match ip {
            std::net::IpAddr::V4(v) => *b == v.octets(),
            std::net::IpAddr::V6(v) => *b == v.octets(),
        }),
        _ => false,
    });
    if matches { Ok(()) } else { Err(ProbeError::Tls(format!("certificate is not valid for {host:?}"))) }
}
