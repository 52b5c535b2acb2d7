//! Load feedback: the weight a backend reports in its health answer
//! (`weight_from = "header:NAME"` or `"json:$.field"`), read from the response.
//! Bounding, smoothing and slow start are the health table's (see `mod.rs`).

use http::{HeaderMap, HeaderName};

use super::error::ProbeError;

/// Where an http(s) check reads the member's weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A response header holding a number.
    Header(HeaderName),
    /// A number in the JSON body, by field names from the root (`$.a.b`).
    Json(Vec<String>),
}

/// Why a `weight_from` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSource {
    #[error("weight_from must be \"header:NAME\" or \"json:$.FIELD\", not {0:?}")]
    Form(String),
    #[error("weight_from: {0:?} is not a header name")]
    Header(String),
}

impl std::str::FromStr for Source {
    type Err = BadSource;

    fn from_str(s: &str) -> Result<Source, BadSource> {
        if let Some(h) = s.strip_prefix("header:") {
            return HeaderName::from_bytes(h.trim().as_bytes())
                .map(Source::Header)
                .map_err(|_| BadSource::Header(h.to_string()));
        }
        let path = s.strip_prefix("json:$").ok_or_else(|| BadSource::Form(s.to_string()))?;
        let fields: Vec<String> = path.split('.').skip(1).map(str::to_string).collect();
        if !path.starts_with('.') || fields.iter().any(String::is_empty) {
            return Err(BadSource::Form(s.to_string()));
        }
        Ok(Source::Json(fields))
    }
}

/// The weight in header `name`.
pub fn from_header(headers: &HeaderMap, name: &HeaderName) -> Result<f64, ProbeError> {
    let value = headers.get(name).ok_or_else(|| ProbeError::Weight(format!("no {name} header")))?;
    let text = value.to_str().unwrap_or("").trim();
    number(text.parse().ok(), || format!("{name}: {text:?} is not a weight"))
}

/// The weight at `path` in a JSON body.
pub fn from_json(body: &[u8], path: &[String]) -> Result<f64, ProbeError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ProbeError::Weight(format!("body is not JSON: {e}")))?;
    let at = path.iter().try_fold(&doc, |v, field| v.get(field));
    let shown = || format!("$.{}", path.join("."));
    number(at.and_then(serde_json::Value::as_f64), || format!("{} is not a number in the body", shown()))
}

/// A finite, non-negative weight, or the failure `why` says.
fn number(n: Option<f64>, why: impl FnOnce() -> String) -> Result<f64, ProbeError> {
    n.filter(|w| w.is_finite() && *w >= 0.0).ok_or_else(|| ProbeError::Weight(why()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_a_header_or_a_json_path() {
        assert_eq!("header:X-LB-Weight".parse(), Ok(Source::Header(HeaderName::from_static("x-lb-weight"))));
        assert_eq!("json:$.load.weight".parse(), Ok(Source::Json(vec!["load".into(), "weight".into()])));
        assert!("json:weight".parse::<Source>().is_err());
        assert!("json:$.".parse::<Source>().is_err());
        assert!("cookie:x".parse::<Source>().is_err());
        assert!("header:bad name".parse::<Source>().is_err());
    }

    #[test]
    fn weights_are_read_as_non_negative_numbers() {
        let path = vec!["load".to_string(), "weight".to_string()];
        assert_eq!(from_json(br#"{"load":{"weight":7.5}}"#, &path), Ok(7.5));
        assert!(from_json(br#"{"load":{"weight":"7"}}"#, &path).is_err());
        assert!(from_json(b"<html>", &path).is_err());
        let mut h = HeaderMap::new();
        let name = HeaderName::from_static("x-lb-weight");
        h.insert(name.clone(), " 12 ".parse().unwrap());
        assert_eq!(from_header(&h, &name), Ok(12.0));
        h.insert(name.clone(), "-1".parse().unwrap());
        assert!(from_header(&h, &name).is_err());
    }
}
