//! Domain names as the config and the admin API write them.

use hickory_proto::rr::Name;

/// A domain name that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("invalid name {name:?}: {source}")]
    Invalid { name: String, source: Box<hickory_proto::ProtoError> },
    /// A relative name that is too long once the zone's origin is appended.
    #[error("{name:?} in {origin}: {source}")]
    InZone { name: String, origin: String, source: Box<hickory_proto::ProtoError> },
}

/// Parses an absolute domain name; a missing final dot is added.
pub fn parse_fqdn(s: &str) -> Result<Name, NameError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let mut n =
        Name::from_ascii(s).map_err(|source| NameError::Invalid { name: s.to_string(), source: Box::new(source) })?;
    n.set_fqdn(true);
    Ok(n.to_lowercase())
}
