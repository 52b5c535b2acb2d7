//! One probe: `tcp` connects; `http`/`https` GET the path with the Host header, follow
//! no redirect, and check the status and optionally a body substring. The caller
//! bounds every probe with the spec's timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::ProbeKey;
use crate::config::CheckKind;

/// Why a probe failed: logged when a member goes down, and shown by the API as
/// the member's last error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("connect {target}: {reason}")]
    Connect { target: SocketAddr, reason: String },
    /// The HTTP(S) request failed; the reason with its cause chain.
    #[error("{0}")]
    Request(String),
    #[error("status {status}, expected {expected:?}")]
    Status { status: u16, expected: Vec<u16> },
    #[error("body does not contain {0:?}")]
    Body(String),
    #[error("no HTTPS client")]
    NoClient,
    #[error("cannot build HTTPS client: {0}")]
    Client(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// Largest body read when looking for `expect_body`.
const MAX_BODY: usize = 64 * 1024;

/// The shared plain-HTTP client: no redirects, no proxy, no pooling beyond a few
/// idle connections (probes are spaced out; a fresh connection is the real test).
pub fn http_client(source: Option<IpAddr>) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .user_agent(concat!("lbdns/", env!("CARGO_PKG_VERSION"), " health-check"))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// An HTTPS client for one stream: the member's address is pinned for `host`, so
/// that the certificate is verified against `host` while connecting to the member.
pub fn https_client(key: &ProbeKey, source: Option<IpAddr>) -> Result<reqwest::Client, ProbeError> {
    install_crypto();
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .resolve(&key.spec.host, SocketAddr::new(key.addr, key.spec.port))
        .tls_danger_accept_invalid_certs(!key.spec.tls_verify)
        .user_agent(concat!("lbdns/", env!("CARGO_PKG_VERSION"), " health-check"))
        .build()
        .map_err(|e| ProbeError::Client(e.to_string()))
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The probe source address for `target`, if one is set of its family.
pub fn source_for(source: Option<IpAddr>, target: IpAddr) -> Option<IpAddr> {
    source.filter(|s| s.is_ipv4() == target.is_ipv4())
}

async fn tcp_connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(src) = source_for(source, target.ip()) else { return TcpStream::connect(target).await };
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(src, 0))?;
    socket.connect(target).await
}

/// Runs one probe (without its timeout). `Err` says why it failed.
pub async fn run(
    key: &ProbeKey,
    http: &reqwest::Client,
    https: Option<&reqwest::Client>,
    source: Option<IpAddr>,
) -> Result<(), ProbeError> {
    let spec = &key.spec;
    let target = SocketAddr::new(key.addr, spec.port);
    match spec.check {
        CheckKind::None => Ok(()),
        CheckKind::Tcp => tcp_connect(target, source)
            .await
            .map(drop)
            .map_err(|e| ProbeError::Connect { target, reason: e.to_string() }),
        CheckKind::Http => {
            let url = format!("http://{target}{}", spec.path);
            let req = http.get(&url).header(reqwest::header::HOST, &spec.host);
            check_response(req.send().await, spec).await
        }
        CheckKind::Https => {
            let client = https.ok_or(ProbeError::NoClient)?;
            let host = if spec.host.parse::<std::net::IpAddr>().is_ok() {
                target.to_string()
            } else {
                format!("{}:{}", spec.host, spec.port)
            };
            let url = format!("https://{host}{}", spec.path);
            check_response(client.get(&url).send().await, spec).await
        }
    }
}

async fn check_response(resp: reqwest::Result<reqwest::Response>, spec: &super::ProbeSpec) -> Result<(), ProbeError> {
    let mut resp = resp.map_err(|e| describe(&e))?;
    let status = resp.status().as_u16();
    if !spec.expect_status.contains(&status) {
        return Err(ProbeError::Status { status, expected: spec.expect_status.clone() });
    }
    if let Some(want) = &spec.expect_body {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        if !String::from_utf8_lossy(&body).contains(want.as_str()) {
            return Err(ProbeError::Body(want.clone()));
        }
    }
    Ok(())
}

/// reqwest errors hide their cause chain in `Display`; show it.
fn describe(e: &reqwest::Error) -> ProbeError {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    ProbeError::Request(s)
}

/// Interval jittered by ±10%.
pub fn jitter(interval: Duration) -> Duration {
    let f = 0.9 + fastrand::f64() * 0.2;
    interval.mul_f64(f)
}
