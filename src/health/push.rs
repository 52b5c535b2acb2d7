//! Health pushed from outside the probes: an operator's override through the
//! admin API (shared state, stored like other API changes) and this node's
//! `health_file` entries (its own vote). Precedence, from the top: a drained
//! member is never answered; an override in force decides; then the health
//! file's line for the member; then the probes (or the nodes' quorum).
//!
//! An override carries its expiry as an absolute time, so every node of a
//! cluster, and a restarted server, lets it lapse at the same moment without
//! anything being written: a lapsed override is inert until it is replaced.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use hickory_proto::rr::Name;
use serde::{Deserialize, Serialize};

/// The state an override or a health file line pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pushed {
    Down,
    Up,
}

impl Pushed {
    pub fn as_str(self) -> &'static str {
        match self {
            Pushed::Down => "down",
            Pushed::Up => "up",
        }
    }

    pub fn is_up(self) -> bool {
        self == Pushed::Up
    }

    /// The value of `lbdns_member_override`: 1 down, 2 up (0 is no override).
    pub fn gauge(self) -> i64 {
        match self {
            Pushed::Down => 1,
            Pushed::Up => 2,
        }
    }
}

/// An operator's override of a member's health
/// (`PUT /v1/pools/{pool}/members/{address}/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthOverride {
    pub state: Pushed,
    pub reason: Option<String>,
    /// `None`: until changed.
    pub expires_at: Option<SystemTime>,
}

impl HealthOverride {
    /// Whether it still decides at `now`.
    pub fn in_force(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// The stored form: RFC 3339 with milliseconds, so a short expiry survives the trip.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    state: Pushed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

/// Why a stored override does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("expires_at: {0}")]
    Time(#[from] humantime::TimestampError),
}

/// An override as stored (SQLite body, etcd value, export).
pub fn encode_override(o: &HealthOverride) -> String {
    let stored = Stored {
        state: o.state,
        reason: o.reason.clone(),
        expires_at: o.expires_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
    };
    serde_json::to_string(&stored).unwrap_or_else(|_| "null".into())
}

pub fn decode_override(text: &str) -> Result<HealthOverride, DecodeError> {
    let s: Stored = serde_json::from_str(text)?;
    let expires_at = s.expires_at.as_deref().map(humantime::parse_rfc3339).transpose()?;
    Ok(HealthOverride { state: s.state, reason: s.reason, expires_at })
}

/// The overrides stored, by pool and member address.
pub type Overrides = BTreeMap<(Name, IpAddr), HealthOverride>;

/// One line of a health file that names a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub state: Pushed,
    pub reason: Option<String>,
    pub line: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overrides_round_trip_with_their_expiry() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let o = HealthOverride { state: Pushed::Down, reason: Some("maintenance".into()), expires_at: Some(at) };
        let text = encode_override(&o);
        assert_eq!(text, r#"{"state":"down","reason":"maintenance","expires_at":"2027-01-15T08:00:00.123Z"}"#);
        assert_eq!(decode_override(&text).unwrap(), o);
        let forever = HealthOverride { state: Pushed::Up, reason: None, expires_at: None };
        assert_eq!(decode_override(&encode_override(&forever)).unwrap(), forever);
        assert!(decode_override(r#"{"state":"sideways"}"#).is_err());
        assert!(decode_override(r#"{"state":"up","expires_at":"soon"}"#).is_err());
    }

    #[test]
    fn an_override_lapses_at_its_expiry() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let o = HealthOverride { state: Pushed::Down, reason: None, expires_at: Some(at) };
        assert!(o.in_force(at - Duration::from_millis(1)));
        assert!(!o.in_force(at));
        assert!(HealthOverride { expires_at: None, ..o }.in_force(at + Duration::from_secs(1 << 30)));
    }
}
