//! Planning `PUT /v1/pools/{pool}/members/{address}/health`: an operator's
//! override of a member's health ([`crate::health::push`]). The body is
//! `{"state": "down" | "up" | "auto", "expires_in": "60s", "reason": "..."}`;
//! `auto` hands the member back to its probes (and health file).

use std::time::{Duration, SystemTime};

use super::input::{member_address, parse_json, pool_name};
use super::{InEffect, Planned};
use crate::health::push::{HealthOverride, Pushed};
use crate::state::api::ApiError;
use crate::state::overlay::Change;

/// Longest `reason` kept (it is shown in the API, events and logs).
pub const MAX_REASON: usize = 256;
/// Longest `expires_in`: an override meant to stay is given without one.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(366 * 24 * 3600);

/// The request body, as given.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthBody {
    state: String,
    #[serde(default)]
    expires_in: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl InEffect<'_> {
    /// An override of a member that exists in the pool in effect; `Ok(None)`
    /// for `auto` on a member without one (nothing to store).
    pub(super) fn plan_member_health(
        &self,
        pool: &str,
        address: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Option<Planned>, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let (def, _) = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
        if !def.members.iter().any(|m| m.address == address) {
            return Err(ApiError::not_found(format!("pool {name} has no member {address}")));
        }
        let body: HealthBody = parse_json(body)?;
        let zone = self.pool_zone(&name);
        let state = match body.state.as_str() {
            "down" => Pushed::Down,
            "up" => Pushed::Up,
            "auto" => {
                if body.expires_in.is_some() {
                    return Err(ApiError::unprocessable("expires_in: not with state \"auto\" (it ends an override)"));
                }
                if !self.overlay.health.contains_key(&(name.clone(), address)) {
                    return Ok(None);
                }
                return Ok(Some(Planned::new(Change::ClearHealth { pool: name, address }, zone, false)));
            }
            other => {
                return Err(ApiError::unprocessable(format!(
                    "state: {other:?}: expected \"down\", \"up\" or \"auto\""
                )));
            }
        };
        let expires_at = body.expires_in.as_deref().map(|t| expiry(t, now)).transpose()?;
        let reason = body.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        if let Some(r) = &reason {
            if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) {
                return Err(ApiError::unprocessable(format!(
                    "reason: at most {MAX_REASON} characters, without control characters"
                )));
            }
        }
        let created = !self.overlay.health.get(&(name.clone(), address)).is_some_and(|o| o.in_force(now));
        let over = HealthOverride { state, reason, expires_at };
        Ok(Some(Planned::new(Change::PutHealth { pool: name, address, over }, zone, created)))
    }
}

/// `expires_in` ("60s", "5m", "1h 30m") from `now`.
fn expiry(text: &str, now: SystemTime) -> Result<SystemTime, ApiError> {
    let d = humantime::parse_duration(text)
        .map_err(|e| ApiError::unprocessable(format!("expires_in: {text:?}: {e} (e.g. \"60s\", \"5m\", \"2h\")")))?;
    if d.is_zero() || d > MAX_EXPIRES_IN {
        return Err(ApiError::unprocessable(format!(
            "expires_in: {text:?}: must be above 0 and at most 366 days (leave it out for an override until changed)"
        )));
    }
    Ok(now + d)
}
