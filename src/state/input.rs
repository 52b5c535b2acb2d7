//! What an API request carries, read into typed values: pool and owner names,
//! member addresses, JSON bodies (a bad value names its field), and the checks a
//! pool must pass that need no zone. Each refusal is the `ApiError` the client sees.

use std::net::IpAddr;

use hickory_proto::rr::Name;

use crate::config::{NameError, PoolDef, parse_fqdn};
use crate::state::api::ApiError;

/// The checks `lbdns check` makes of a pool that need no zone, so the API stores
/// nothing the config file would refuse (`regions`: the config's `[regions]`).
pub fn validate_pool(def: &PoolDef, regions: &std::collections::BTreeMap<String, Vec<String>>) -> Result<(), ApiError> {
    let mut problems = def.validate();
    problems.extend(crate::config::unlisted_regions(def, regions));
    if def.line == 0 && def.health.0.iter().any(|h| h.headers_file.is_some()) {
        let msg = format!("pool {}: health headers_file is read from the config file only; send `headers`", def.name);
        problems.push((None, msg));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let msgs: Vec<String> = problems.into_iter().map(|(_, m)| m).collect();
        Err(ApiError::unprocessable(msgs.join("; ")))
    }
}

pub fn pool_name(s: &str) -> Result<Name, ApiError> {
    parse_fqdn(s).map_err(|e| ApiError::unprocessable(format!("pool name: {e}")))
}

/// An owner name in a records URL: `@` is the apex; a name with a final dot, or
/// one that equals or ends in the zone's origin, is absolute; any other name is
/// relative to the zone (as in a zone file, plus the origin suffix rule, so that
/// both `www` and `www.example.test` mean `www.example.test.`).
pub fn name_in_zone(text: &str, origin: &Name) -> Result<Name, NameError> {
    if text.trim() == "@" {
        return Ok(origin.clone());
    }
    let absolute = parse_fqdn(text)?;
    if text.trim().ends_with('.') || origin.zone_of(&absolute) {
        return Ok(absolute);
    }
    let mut relative = absolute;
    relative.set_fqdn(false);
    relative.append_domain(origin).map(|n| n.to_lowercase()).map_err(|source| NameError::InZone {
        name: text.to_string(),
        origin: origin.to_string(),
        source: Box::new(source),
    })
}

/// A member address in a URL: the same 400 and message as in a body.
pub fn member_address(s: &str) -> Result<IpAddr, ApiError> {
    s.parse().map_err(|e: std::net::AddrParseError| ApiError::bad_request(format!("address: {e}")))
}

/// A JSON request body. A value that does not fit names its field
/// (`members[0].address: invalid IP address syntax`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request has no body: a JSON object is needed"));
    }
    let syntax = |e: serde_json::Error| ApiError::bad_request(format!("invalid JSON body: {e}"));
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() || path == "." {
            return syntax(inner);
        }
        // serde_json adds " at line L column C"; the field says where.
        let text = inner.to_string();
        let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m).to_string();
        ApiError::bad_request(format!("{path}: {text}"))
    })?;
    de.end().map_err(syntax)?;
    Ok(value)
}

/// `PUT /v1/zones/{origin}/records/{name}/{type}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RRsetBody {
    pub ttl: u32,
    pub data: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn names_in_record_urls() {
        let origin = Name::from_str("example.test.").unwrap();
        let at = |s: &str| name_in_zone(s, &origin).unwrap().to_ascii();
        assert_eq!(at("@"), "example.test.");
        assert_eq!(at("www"), "www.example.test.");
        assert_eq!(at("www.example.test"), "www.example.test.");
        assert_eq!(at("WWW.Example.Test."), "www.example.test.");
        assert_eq!(at("example.test"), "example.test.");
        assert_eq!(at("www.other.test"), "www.other.test.example.test.");
        assert_eq!(at("www.other.test."), "www.other.test.");
        assert_eq!(at("xexample.test"), "xexample.test.example.test.", "labels, not characters");
        assert!(name_in_zone("", &origin).is_err());
    }
}
