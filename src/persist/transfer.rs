//! `lbdns export` and `lbdns import`: the API state (pools, member overrides,
//! RRsets, serial counters; not the config or zone files) as one JSON document, to
//! move from the embedded store to etcd (or back, or between etcd clusters).
//!
//! ```json
//! {"lbdns_state": 2, "entries": {"pools/api.example.test.": {...}, "serials/example.test.": 3}}
//! ```
//! Keys and values are the shared encoding (`persist::encoding`), as etcd
//! stores them below its prefix.
//! Format 2 stores a member override as the fields it sets; format 1 (the
//! previous version) stored the whole member, and is still read (as an override
//! of every field, see `overlay::decode_member`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::encoding::{self, BadKey};
use super::etcd::{EtcdError, EtcdStore};
use super::sqlite::SqliteStore;
use super::{State, Store, StoreError};
use crate::config::Config;
use crate::rdata::{self, DataError};
use crate::state::overlay::Overlay;

/// Why an export or import failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] BadKey),
    #[error("not an lbdns export: {0}")]
    NotJson(serde_json::Error),
    #[error("not an lbdns export: no \"lbdns_state\" format number")]
    NoFormat,
    #[error("lbdns export format {0} is newer than this lbdns reads (1 or 2)")]
    Newer(u64),
    #[error("not an lbdns export: no \"entries\" object")]
    NoEntries,
    /// Record data the server could not serve.
    #[error("RRset {name} {rtype}: {source}")]
    Data { name: String, rtype: String, source: DataError },
}

const FORMAT: u64 = 2;
/// Formats [`parse`] reads.
const READS: [u64; 2] = [1, 2];

/// The configured store: etcd with `[cluster] store = "etcd"` (which must be
/// reachable), else the embedded one under `state_dir`.
async fn open(config: &Config) -> Result<Box<dyn Store>, TransferError> {
    Ok(match &config.etcd {
        Some(s) => Box::new(EtcdStore::open_reachable(s).await?),
        None => Box::new(SqliteStore::open(&config.admin.state_dir)?),
    })
}

/// Reads the configured store and returns its state as JSON.
pub async fn export(config: &Config) -> Result<String, TransferError> {
    let overlay = open(config).await?.load().await?;
    Ok(document(overlay))
}

/// The export document of `overlay` (what [`parse`] reads back).
pub fn document(mut overlay: Overlay) -> String {
    // What the API would show; data stored before it was checked stays as it
    // is, for `import` to refuse by name.
    for ((zone, _, rtype), set) in overlay.rrsets.iter_mut() {
        if let Some(set) = set {
            if let Ok(data) = rdata::canonical(*rtype, &set.data, zone) {
                set.data = data;
            }
        }
    }
    let mut entries = BTreeMap::new();
    for (k, v) in encoding::entries(&overlay) {
        entries.insert(k, serde_json::from_str::<Value>(&v).unwrap_or(Value::String(v)));
    }
    let doc = serde_json::json!({ "lbdns_state": FORMAT, "entries": entries });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Parses an exported document.
pub fn parse(text: &str) -> Result<Overlay, TransferError> {
    let doc: Value = serde_json::from_str(text).map_err(TransferError::NotJson)?;
    match doc.get("lbdns_state").and_then(Value::as_u64) {
        Some(v) if READS.contains(&v) => {}
        Some(v) => return Err(TransferError::Newer(v)),
        None => return Err(TransferError::NoFormat),
    }
    let entries = doc.get("entries").and_then(Value::as_object).ok_or(TransferError::NoEntries)?;
    let mut state = State::default();
    for (k, v) in entries {
        let text = match v {
            Value::String(s) if k.starts_with("serials/") => s.clone(),
            other => other.to_string(),
        };
        state.apply_key(k, Some(text.as_bytes()))?;
    }
    let mut overlay = state.overlay;
    // Nothing the server could not serve is imported.
    for ((zone, name, rtype), set) in overlay.rrsets.iter_mut() {
        if let Some(set) = set {
            set.data = rdata::canonical(*rtype, &set.data, zone).map_err(|source| TransferError::Data {
                name: name.to_string(),
                rtype: rtype.to_string(),
                source,
            })?;
        }
    }
    Ok(overlay)
}

/// Writes an exported document into the configured store, which must be empty.
/// Returns the number of entries written.
pub async fn import(config: &Config, text: &str) -> Result<usize, TransferError> {
    let overlay = parse(text)?;
    Ok(open(config).await?.import(&overlay).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_fqdn;
    use crate::state::overlay::MemberFields;

    /// An export of the previous version (format 1, whole members) imports, as
    /// overrides of every field the member had; an unknown format is refused.
    #[test]
    fn format_1_exports_still_import() {
        let old = r#"{"lbdns_state": 1, "entries": {
            "members/www.example.test./192.0.2.1": {"address": "192.0.2.1", "weight": 2, "region": null, "enabled": false},
            "members/www.example.test./192.0.2.2": null,
            "serials/example.test.": 2}}"#;
        let o = parse(old).unwrap();
        let www = parse_fqdn("www.example.test.").unwrap();
        let set = MemberFields { weight: Some(2), region: None, enabled: Some(false), probe: None };
        assert_eq!(o.members[&(www.clone(), "192.0.2.1".parse().unwrap())], Some(set));
        assert_eq!(o.members[&(www, "192.0.2.2".parse().unwrap())], None);
        let e = parse(&old.replace("\"lbdns_state\": 1", "\"lbdns_state\": 3")).unwrap_err();
        assert!(matches!(e, TransferError::Newer(3)), "{e}");
    }
}
