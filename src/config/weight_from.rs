//! `weight_from`: where an http(s) health check reads the weight a backend
//! reports (load feedback), parsed once when the config or an API body is read.

use http::HeaderName;

/// Where an http(s) check reads the member's weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WeightSource {
    /// A response header holding a number.
    Header(HeaderName),
    /// A number in the JSON body, by field names from the root (`$.a.b`).
    Json(Vec<String>),
}

/// Why a `weight_from` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWeightSource {
    #[error("weight_from must be \"header:NAME\" or \"json:$.FIELD\", not {0:?}")]
    Form(String),
    #[error("weight_from: {0:?} is not a header name")]
    Header(String),
}

impl std::str::FromStr for WeightSource {
    type Err = BadWeightSource;

    fn from_str(s: &str) -> Result<WeightSource, BadWeightSource> {
        if let Some(h) = s.strip_prefix("header:") {
            return HeaderName::from_bytes(h.trim().as_bytes())
                .map(WeightSource::Header)
                .map_err(|_| BadWeightSource::Header(h.to_string()));
        }
        let path = s.strip_prefix("json:$").ok_or_else(|| BadWeightSource::Form(s.to_string()))?;
        let fields: Vec<String> = path.split('.').skip(1).map(str::to_string).collect();
        if !path.starts_with('.') || fields.iter().any(String::is_empty) {
            return Err(BadWeightSource::Form(s.to_string()));
        }
        Ok(WeightSource::Json(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_a_header_or_a_json_path() {
        assert_eq!("header:X-LB-Weight".parse(), Ok(WeightSource::Header(HeaderName::from_static("x-lb-weight"))));
        assert_eq!("json:$.load.weight".parse(), Ok(WeightSource::Json(vec!["load".into(), "weight".into()])));
        assert!("json:weight".parse::<WeightSource>().is_err());
        assert!("json:$.".parse::<WeightSource>().is_err());
        assert!("cookie:x".parse::<WeightSource>().is_err());
        assert!("header:bad name".parse::<WeightSource>().is_err());
    }
}
