//! What a probe reports: why it failed ([`ProbeError`], logged when a member goes
//! down and shown by the API), or what it saw besides passing ([`Passed`]).

use std::net::SocketAddr;
use std::time::Duration;

/// Why a probe failed: logged when a member goes down, and shown by the API as
/// the member's last error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    #[error("connect {target}: {reason}")]
    Connect { target: SocketAddr, reason: String },
    /// The HTTP(S) request failed; the reason with its cause chain.
    #[error("{0}")]
    Request(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("status {status}, expected {expected:?}")]
    Status { status: u16, expected: Vec<u16> },
    #[error("body does not contain {0:?}")]
    Body(String),
    #[error("body does not match /{0}/")]
    BodyRegex(String),
    #[error("weight: {0}")]
    Weight(String),
    #[error("DNS: {0}")]
    Dns(String),
    #[error("rcode {got}, expected {expected}")]
    Rcode { got: String, expected: String },
    #[error("answer does not contain {0:?}")]
    Answer(String),
    #[error("certificate expires in {days} days, fewer than min_cert_days {min}")]
    CertDays { days: i64, min: u32 },
    #[error("cannot set up the check: {0}")]
    Client(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// One of several checks failed: which one (1-based) and why.
    #[error("check {n} ({kind}): {error}")]
    Check { n: usize, kind: &'static str, error: Box<ProbeError> },
}

/// What a passing probe reports besides passing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passed {
    /// With `weight_from`: the weight the backend reported, or why none could be
    /// read (which does not fail the probe: the member keeps its last weight).
    pub weight: Reported,
    /// A `tls` check: days until the leaf certificate expires.
    pub cert_days: Option<i64>,
}

impl ProbeError {
    /// The days to expiry a failure still learnt (`min_cert_days` not met).
    pub fn cert_days(&self) -> Option<i64> {
        match self {
            ProbeError::CertDays { days, .. } => Some(*days),
            ProbeError::Check { error, .. } => error.cert_days(),
            _ => None,
        }
    }
}

/// A reported weight (`None` without `weight_from`).
pub type Reported = Option<Result<f64, super::weight::BadWeight>>;
