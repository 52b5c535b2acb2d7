//! `lbdns export` and `lbdns import`: the API state (pools, member overrides,
//! RRsets, serial counters; not the config or zone files) as one JSON document, to
//! move from the embedded store to etcd (or back, or between etcd clusters).
//!
//! ```json
//! {"lbdns_state": 1, "entries": {"pools/api.example.test.": {...}, "serials/example.test.": 3}}
//! ```
//! Keys are the etcd keys below the prefix; values are what is stored there.

use std::collections::BTreeMap;

use serde_json::Value;

use super::durable::{SqliteStore, Store};
use super::etcd::{self, EtcdStore, State};
use super::overlay::Overlay;
use crate::config::Config;

const FORMAT: u64 = 1;

/// Reads the configured store (etcd with `[cluster] store = "etcd"`, else the
/// embedded one under `state_dir`) and returns its state as JSON.
pub async fn export(config: &Config) -> Result<String, String> {
    let overlay = match &config.etcd {
        Some(s) => {
            let mut client = etcd::connect(s).await?;
            let (entries, _) = tokio::time::timeout(s.timeout, etcd::load_all(&mut client, &s.prefix))
                .await
                .map_err(|_| format!("etcd {} did not answer", s.endpoints.join(",")))??;
            let mut state = State::default();
            for (k, v, _) in &entries {
                state.apply_key(k, Some(v))?;
            }
            state.overlay
        }
        None => SqliteStore::open(&config.admin.state_dir).and_then(|mut s| s.load()).map_err(|e| e.to_string())?,
    };
    let mut entries = BTreeMap::new();
    for (k, v) in etcd::entries(&overlay) {
        entries.insert(k, serde_json::from_str::<Value>(&v).unwrap_or(Value::String(v)));
    }
    let doc = serde_json::json!({ "lbdns_state": FORMAT, "entries": entries });
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n")
}

/// Parses an exported document.
pub fn parse(text: &str) -> Result<Overlay, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not an lbdns export: {e}"))?;
    if doc.get("lbdns_state").and_then(Value::as_u64) != Some(FORMAT) {
        return Err(format!("not an lbdns export: \"lbdns_state\": {FORMAT} missing"));
    }
    let entries = doc.get("entries").and_then(Value::as_object).ok_or("not an lbdns export: no \"entries\" object")?;
    let mut state = State::default();
    for (k, v) in entries {
        let text = match v {
            Value::String(s) if k.starts_with("serials/") => s.clone(),
            other => other.to_string(),
        };
        state.apply_key(k, Some(text.as_bytes()))?;
    }
    Ok(state.overlay)
}

/// Writes an exported document into the configured store, which must be empty.
/// Must run on a multi-thread runtime. Returns the number of entries written.
pub async fn import(config: &Config, text: &str) -> Result<usize, String> {
    let overlay = parse(text)?;
    match &config.etcd {
        Some(s) => {
            let mut store = EtcdStore::open_reachable(s).await?;
            // The store blocks on etcd from a worker thread, as in the server.
            let task = tokio::spawn(async move { store.import(&overlay) });
            task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
        }
        None => {
            SqliteStore::open(&config.admin.state_dir).and_then(|mut s| s.import(&overlay)).map_err(|e| e.to_string())
        }
    }
}
