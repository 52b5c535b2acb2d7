//! Load feedback: the weight a backend reports in its health answer
//! (`weight_from = "header:NAME"` or `"json:$.field"`), read from the response,
//! and the member's effective weight from it: bounded, smoothed, ramped.

use http::HeaderName;

pub use crate::config::{BadWeightSource, WeightSource as Source};

/// Why a backend's answer holds no weight (the probe still passes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWeight {
    #[error("no {0} header")]
    NoHeader(HeaderName),
    #[error("{name}: {text:?} is not a weight")]
    Header { name: HeaderName, text: String },
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("{0} is not a non-negative number in the body")]
    Json(String),
}

/// The weight in header `name`, whose value (`None`: absent) the probe found.
pub fn from_header(name: &HeaderName, value: Option<&[u8]>) -> Result<f64, BadWeight> {
    let value = value.ok_or_else(|| BadWeight::NoHeader(name.clone()))?;
    let text = std::str::from_utf8(value).unwrap_or("").trim();
    number(text.parse().ok()).ok_or_else(|| BadWeight::Header { name: name.clone(), text: text.to_string() })
}

/// The weight at `path` in a JSON body.
pub fn from_json(body: &[u8], path: &[String]) -> Result<f64, BadWeight> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| BadWeight::NotJson(e.to_string()))?;
    let at = path.iter().try_fold(&doc, |v, field| v.get(field));
    number(at.and_then(serde_json::Value::as_f64)).ok_or_else(|| BadWeight::Json(format!("$.{}", path.join("."))))
}

/// A finite, non-negative weight.
fn number(n: Option<f64>) -> Option<f64> {
    n.filter(|w| w.is_finite() && *w >= 0.0)
}

/// How much of the distance to a new report the smoothed weight moves: each
/// report moves it half way (an exponentially weighted moving average), so one
/// odd answer moves a member's share at most half way.
const SMOOTHING: f64 = 0.5;

/// A slow-starting member's weight begins at this share of its full weight.
const RAMP_FLOOR: f64 = 0.05;

/// The smoothed weight after `report`, from `previous` (`None`: the first).
pub fn smooth(previous: Option<f64>, report: f64) -> f64 {
    match previous {
        Some(p) => p + SMOOTHING * (report - p),
        None => report,
    }
}

/// The share of its weight a member up for `up_for` takes with `slow_start`:
/// from 5% straight up to all of it; `None` once it has all of it.
pub fn ramp(slow_start: Option<std::time::Duration>, up_for: std::time::Duration) -> Option<f64> {
    let total = slow_start?.as_secs_f64();
    let share = up_for.as_secs_f64() / total;
    (share < 1.0).then(|| share.max(RAMP_FLOOR))
}

/// A weight as the policies take it (see [`crate::snapshot::candidate_weight`]).
pub fn scaled(weight: f64) -> u32 {
    crate::snapshot::candidate_weight(weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_read_as_non_negative_numbers() {
        let path = vec!["load".to_string(), "weight".to_string()];
        assert_eq!(from_json(br#"{"load":{"weight":7.5}}"#, &path), Ok(7.5));
        assert!(from_json(br#"{"load":{"weight":"7"}}"#, &path).is_err());
        assert!(from_json(b"<html>", &path).is_err());
        let name = HeaderName::from_static("x-lb-weight");
        assert_eq!(from_header(&name, Some(b" 12 ")), Ok(12.0));
        assert!(from_header(&name, Some(b"-1")).is_err());
        assert_eq!(from_header(&name, None), Err(BadWeight::NoHeader(name.clone())));
    }

    #[test]
    fn reports_are_smoothed_half_way_and_slow_start_ramps_from_five_percent() {
        assert_eq!(smooth(None, 10.0), 10.0);
        assert_eq!(smooth(Some(10.0), 20.0), 15.0);
        let s = |secs: f64| std::time::Duration::from_secs_f64(secs);
        assert_eq!(ramp(None, s(0.0)), None);
        assert_eq!(ramp(Some(s(30.0)), s(0.0)), Some(0.05));
        assert_eq!(ramp(Some(s(30.0)), s(15.0)), Some(0.5));
        assert_eq!(ramp(Some(s(30.0)), s(30.0)), None);
        assert_eq!((scaled(2.5), scaled(0.0), scaled(1.0)), (250, 1, 100));
    }
}
