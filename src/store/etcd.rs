//! API state in etcd, shared by several lbdns servers (`[cluster] store = "etcd"`).
//!
//! Keys under the prefix (names percent-encode `%` and `/`):
//! - `pools/NAME` → an API pool (JSON, as the API takes it)
//! - `members/POOL/ADDRESS` → a member override of a config pool: the fields it
//!   sets (JSON, `null` = removed; a whole member, as the previous version stored
//!   it, sets every field)
//! - `rrsets/ZONE/NAME/TYPE` → an RRset override (JSON, `null` = deleted)
//!
//! An override reverted through the API (`DELETE …/override`) is its key deleted.
//! - `serials/ZONE` → how many changes the zone has had (its SOA serial bump)
//! - `nodes/NODE` → that node's probe results, attached to a lease (gone when it dies)
//! - `txn/NODE` → a random mark of that node's last write, so that after a try
//!   whose reply was lost the node can tell whether it was applied
//!
//! A write is one etcd transaction: the change and the zone's serial counter, on
//! condition that the counter is still the one this node last saw (so two nodes
//! cannot both validate a change against the same state). The 2xx goes out only
//! after etcd acknowledged it. Every node watches the prefix from the revision it
//! loaded and applies what it sees, skipping its own writes (already applied) and
//! anything at or below the loaded revision: nothing missed, nothing applied twice.
//! When the watch breaks (etcd down, compaction) the node loads everything again at
//! a new revision and watches on from there.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use hickory_proto::rr::{Name, RecordType};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::durable::{Observed, Remote, State, Store, StoreError};
use super::overlay::{Change, Overlay, StoredRRset, decode_member, encode_member};
use crate::config::{ApiPoolConfig, EtcdSettings, NameError, parse_fqdn};
use crate::health::Votes;

/// Why etcd could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No connection; with authentication, the login failed.
    #[error("etcd {endpoints}: {reason}")]
    Connect { endpoints: String, reason: String },
    /// A read failed.
    #[error("etcd: {reason}")]
    Read { reason: String },
    #[error("etcd did not answer")]
    Timeout,
    #[error("etcd {endpoints} did not answer")]
    NoAnswer { endpoints: String },
    /// The credentials, or their access to the prefix: the config is wrong.
    #[error(
        "etcd {endpoints} refused the [cluster] credentials (username, password_file, cert_file) \
         or their access to {prefix}: {reason}"
    )]
    Refused { endpoints: String, prefix: String, reason: String },
    #[error("etcd {endpoints} unavailable: {reason}")]
    Unavailable { endpoints: String, reason: String },
}

/// A stored key whose value does not decode.
#[derive(Debug, thiserror::Error)]
#[error("etcd key {key}: {reason}")]
pub struct BadKey {
    pub key: String,
    pub reason: String,
}

/// Keys (relative to the prefix) with their values (`None`: deleted).
type KeyValues = Vec<(String, Option<Vec<u8>>)>;

// ---------------------------------------------------------------------------
// Keys and values.

fn enc(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

fn dec(s: &str) -> String {
    s.replace("%2F", "/").replace("%25", "%")
}

fn name(s: &str) -> Result<Name, NameError> {
    parse_fqdn(&dec(s))
}

/// Whether a key holds API state (not a node's health view or write mark).
pub fn is_api_key(key: &str) -> bool {
    !key.starts_with("nodes/") && !key.starts_with("txn/")
}

/// What a changed key touches in the state in effect, so that applying another
/// server's change costs what the change touches, as applying one's own does.
#[derive(Debug, Default, PartialEq)]
pub struct Touched {
    /// Zones whose RRsets changed (re-derived and rebuilt).
    pub records: std::collections::BTreeSet<Name>,
    /// Zones whose serial counter changed.
    pub serials: std::collections::BTreeSet<Name>,
    /// Pools that were put, deleted, or had a member changed.
    pub pools: std::collections::BTreeSet<Name>,
}

impl Touched {
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a str>) -> Touched {
        let mut t = Touched::default();
        for key in keys {
            let parts: Vec<&str> = key.split('/').collect();
            match parts.as_slice() {
                ["rrsets", z, ..] => t.records.extend(name(z).ok()),
                ["serials", z] => t.serials.extend(name(z).ok()),
                ["pools", p] | ["members", p, _] => t.pools.extend(name(p).ok()),
                _ => {}
            }
        }
        t
    }

    pub fn add(&mut self, other: Touched) {
        self.records.extend(other.records);
        self.serials.extend(other.serials);
        self.pools.extend(other.pools);
    }
}

/// The keys and values (`None` = delete the key) a change is stored as.
pub fn change_entries(change: &Change) -> Vec<(String, Option<String>)> {
    let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
    match change {
        Change::PutPool(def) => {
            vec![(pool_key(&def.name), Some(json(serde_json::to_string(&ApiPoolConfig::from_def(def)))))]
        }
        Change::DeletePool(n) => vec![(pool_key(n), None)],
        Change::PutMember { pool, address, fields } => {
            vec![(member_key(pool, address), Some(encode_member(&Some(fields.clone()))))]
        }
        Change::DeleteMember { pool, address } => vec![(member_key(pool, address), Some("null".into()))],
        Change::RevertMember { pool, address } => vec![(member_key(pool, address), None)],
        Change::RevertPool { pool, members } => {
            std::iter::once((pool_key(pool), None)).chain(members.iter().map(|a| (member_key(pool, a), None))).collect()
        }
        Change::PutRRset { zone, name, rtype, set } => {
            vec![(rrset_key(zone, name, *rtype), Some(json(serde_json::to_string(set))))]
        }
        Change::DeleteRRset { zone, name, rtype } => vec![(rrset_key(zone, name, *rtype), Some("null".into()))],
        Change::RevertRRset { zone, name, rtype } => vec![(rrset_key(zone, name, *rtype), None)],
    }
}

fn pool_key(pool: &Name) -> String {
    format!("pools/{}", enc(&pool.to_ascii()))
}

fn member_key(pool: &Name, address: &IpAddr) -> String {
    format!("members/{}/{address}", enc(&pool.to_ascii()))
}

fn rrset_key(zone: &Name, name: &Name, rtype: RecordType) -> String {
    format!("rrsets/{}/{}/{rtype}", enc(&zone.to_ascii()), enc(&name.to_ascii()))
}

pub fn serial_key(zone: &Name) -> String {
    format!("serials/{}", enc(&zone.to_ascii()))
}

/// Every entry of an overlay, as stored (for export and import).
pub fn entries(o: &Overlay) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for def in o.pools.values() {
        let kvs = change_entries(&Change::PutPool(Box::new(def.clone())));
        out.extend(kvs.into_iter().filter_map(|(k, v)| Some((k, v?))));
    }
    for ((pool, addr), m) in &o.members {
        out.push((member_key(pool, addr), encode_member(m)));
    }
    for ((zone, name, rtype), set) in &o.rrsets {
        out.push((rrset_key(zone, name, *rtype), serde_json::to_string(set).unwrap_or_else(|_| "null".into())));
    }
    for (zone, bumps) in &o.serials {
        out.push((serial_key(zone), bumps.to_string()));
    }
    out
}

impl State {
    /// Applies one stored key (`value` `None` = the key was deleted). Keys this
    /// version does not know are ignored; a value that does not decode is an error.
    pub fn apply_key(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), BadKey> {
        let parts: Vec<&str> = key.split('/').collect();
        let text = value.map(|v| String::from_utf8_lossy(v).into_owned());
        let bad = |e: &dyn std::fmt::Display| BadKey { key: key.to_string(), reason: e.to_string() };
        match parts.as_slice() {
            ["pools", n] => {
                let n = name(n).map_err(|e| bad(&e))?;
                match text {
                    Some(t) => {
                        let cfg: ApiPoolConfig = serde_json::from_str(&t).map_err(|e| bad(&e))?;
                        self.overlay.pools.insert(n.clone(), cfg.into_def(n));
                    }
                    None => {
                        self.overlay.pools.remove(&n);
                    }
                }
            }
            ["members", p, a] => {
                let p = name(p).map_err(|e| bad(&e))?;
                let a: IpAddr = a.parse().map_err(|e| bad(&e))?;
                match text {
                    Some(t) => {
                        let m = decode_member(&t).map_err(|e| bad(&e))?;
                        self.overlay.members.insert((p, a), m);
                    }
                    None => {
                        self.overlay.members.remove(&(p, a));
                    }
                }
            }
            ["rrsets", z, n, t] => {
                let z = name(z).map_err(|e| bad(&e))?;
                let n = name(n).map_err(|e| bad(&e))?;
                let t: RecordType = t.parse().map_err(|e| bad(&e))?;
                match text {
                    Some(body) => {
                        let set: Option<StoredRRset> = serde_json::from_str(&body).map_err(|e| bad(&e))?;
                        self.overlay.rrsets.insert((z, n, t), set);
                    }
                    None => {
                        self.overlay.rrsets.remove(&(z, n, t));
                    }
                }
            }
            ["serials", z] => {
                let z = name(z).map_err(|e| bad(&e))?;
                match text {
                    Some(t) => {
                        let bumps: u32 = t.trim().parse().map_err(|e| bad(&e))?;
                        self.overlay.serials.insert(z, bumps);
                    }
                    None => {
                        self.overlay.serials.remove(&z);
                    }
                }
            }
            ["nodes", node] => match text {
                Some(t) => {
                    let view: Votes = serde_json::from_str(&t).map_err(|e| bad(&e))?;
                    self.nodes.insert(dec(node), view);
                }
                None => {
                    self.nodes.remove(&dec(node));
                }
            },
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Connecting.

/// Connects to etcd as `[cluster]` says. Without authentication the connection
/// is lazy (this succeeds while etcd is down); with it, the client logs in here,
/// so this fails while etcd is out of reach: see [`Connector`].
pub async fn connect(s: &EtcdSettings) -> Result<Client, EtcdError> {
    connect_client(s).await.map_err(|e| EtcdError::Connect { endpoints: s.endpoints.join(","), reason: short(&e) })
}

async fn connect_client(s: &EtcdSettings) -> Result<Client, etcd_client::Error> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(s.timeout)
        .with_timeout(s.timeout)
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
    if let Some((user, password)) = &s.user {
        // etcd's tokens expire (5 minutes by default): log in again when one does,
        // rather than fail every request from then on.
        opts = opts.with_user(user.clone(), password.clone()).with_auto_token_refresh(true);
    }
    if s.ca_pem.is_some() || s.identity_pem.is_some() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = TlsOptions::new();
        if let Some(ca) = &s.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &s.identity_pem {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        opts = opts.with_tls(tls);
    }
    Client::connect(&s.endpoints, Some(opts)).await
}

/// Whether etcd answered and refused these credentials (as opposed to not
/// answering): a configuration error, not an outage.
fn rejected_credentials(e: &etcd_client::Error) -> bool {
    match e {
        // gRPC status codes 7 (PERMISSION_DENIED) and 16 (UNAUTHENTICATED); a wrong
        // password is INVALID_ARGUMENT with this message.
        etcd_client::Error::GRpcStatus(st) => {
            st.message().contains("authentication failed") || matches!(st.code() as i32, 7 | 16)
        }
        _ => false,
    }
}

/// The etcd client, made on first use and kept. A server must start and serve
/// its files while etcd is out of reach, but a client with credentials cannot
/// be made then (it logs in while connecting), so every user of the client asks
/// the connector, which connects (and logs in) when etcd is back.
#[derive(Clone)]
pub struct Connector {
    settings: std::sync::Arc<EtcdSettings>,
    client: std::sync::Arc<tokio::sync::Mutex<Option<Client>>>,
}

impl Connector {
    pub fn new(settings: &EtcdSettings) -> Connector {
        Connector { settings: std::sync::Arc::new(settings.clone()), client: Default::default() }
    }

    /// The client, connecting first if there is none yet.
    pub async fn get(&self) -> Result<Client, etcd_client::Error> {
        let mut slot = self.client.lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.settings.timeout, connect_client(&self.settings))
            .await
            .map_err(|_| etcd_client::Error::InvalidArgs(format!("no answer within {:?}", self.settings.timeout)))??;
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// Reads every key under `prefix`: (relative key, value, mod revision) and the
/// store's revision.
pub async fn load_all(client: &mut Client, prefix: &str) -> Result<(Vec<(String, Vec<u8>, i64)>, i64), EtcdError> {
    load_all_raw(client, prefix).await.map_err(|e| EtcdError::Read { reason: short(&e) })
}

async fn load_all_raw(
    client: &mut Client,
    prefix: &str,
) -> Result<(Vec<(String, Vec<u8>, i64)>, i64), etcd_client::Error> {
    let resp = client.get(prefix, Some(GetOptions::new().with_prefix())).await?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let entries = resp
        .kvs()
        .iter()
        .filter_map(|kv| {
            let key = std::str::from_utf8(kv.key()).ok()?.strip_prefix(prefix)?.to_string();
            Some((key, kv.value().to_vec(), kv.mod_revision()))
        })
        .collect();
    Ok((entries, revision))
}

// ---------------------------------------------------------------------------
// The store the writer writes through.

pub struct EtcdStore {
    conn: Connector,
    endpoints: String,
    prefix: String,
    timeout: Duration,
    /// Per zone: (changes so far, revision of its serial key), as this node knows them.
    serials: HashMap<Name, (u32, i64)>,
    /// Revision of the last full load: events at or below it are in it.
    loaded: i64,
    /// This node's own writes whose watch events have not come back, by revision:
    /// their keys and values (relative), so that a full load older than them
    /// does not take them back out of what the node serves.
    own: BTreeMap<i64, KeyValues>,
    initial: Option<State>,
    /// `txn/NODE`: written with every change, only by this node.
    mark_key: String,
}

/// What [`EtcdStore`] does when etcd cannot be reached as it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreachable {
    /// Start empty and load the state when etcd is back (a server).
    ServeFiles,
    /// Fail (export and import).
    Fail,
}

impl EtcdStore {
    /// Connects and loads the state. When etcd cannot be reached the store starts
    /// empty (config and zone files only) and the watch loads it when etcd is back.
    /// Credentials that etcd refuses are an error: the config is wrong.
    pub async fn open(s: &EtcdSettings) -> Result<EtcdStore, EtcdError> {
        EtcdStore::open_when_unreachable(s, Unreachable::ServeFiles).await
    }

    /// Connects and loads the state; an unreachable etcd is an error. For `lbdns
    /// export` and `import`, which have nothing to do without it.
    pub async fn open_reachable(s: &EtcdSettings) -> Result<EtcdStore, EtcdError> {
        EtcdStore::open_when_unreachable(s, Unreachable::Fail).await
    }

    async fn open_when_unreachable(s: &EtcdSettings, unreachable: Unreachable) -> Result<EtcdStore, EtcdError> {
        let conn = Connector::new(s);
        let mut store = EtcdStore {
            conn: conn.clone(),
            endpoints: s.endpoints.join(","),
            prefix: s.prefix.clone(),
            timeout: s.timeout,
            serials: HashMap::new(),
            loaded: 0,
            own: BTreeMap::new(),
            initial: None,
            mark_key: format!("{}txn/{}", s.prefix, enc(&s.node)),
        };
        // Err(Err(..)): refused, a configuration error; Err(Ok(..)): out of reach.
        let refused_or_unreachable = |e: etcd_client::Error| {
            if rejected_credentials(&e) {
                Err(EtcdError::Refused {
                    endpoints: store.endpoints.clone(),
                    prefix: s.prefix.clone(),
                    reason: short(&e),
                })
            } else {
                Ok(short(&e))
            }
        };
        let load = async {
            let mut client = conn.get().await.map_err(refused_or_unreachable)?;
            tokio::time::timeout(s.timeout, load_all_raw(&mut client, &s.prefix))
                .await
                .map_err(|_| Ok(format!("no answer within {:?}", s.timeout)))?
                .map_err(refused_or_unreachable)
        };
        match load.await {
            Ok((entries, revision)) => {
                let state = store.observe_full(&entries, revision);
                info!(keys = entries.len(), revision, "loaded state from etcd");
                store.initial = Some(state);
                Ok(store)
            }
            Err(Err(refused)) => Err(refused),
            Err(Ok(e)) if unreachable == Unreachable::Fail => {
                Err(EtcdError::Unavailable { endpoints: s.endpoints.join(","), reason: e })
            }
            Err(Ok(e)) => {
                warn!(error = %e, "etcd unreachable at start: serving config and zone files until it is back");
                // Nothing loaded: the files alone, until the watch's full load.
                store.initial = Some(State::default());
                Ok(store)
            }
        }
    }

    /// The client (made when etcd is first reached), for the watch and health tasks.
    pub fn connector(&self) -> Connector {
        self.conn.clone()
    }

    /// Decodes a full load and records its serial revisions.
    pub fn observe_full(&mut self, entries: &[(String, Vec<u8>, i64)], revision: i64) -> State {
        let mut state = State::default();
        self.serials.clear();
        for (k, v, rev) in entries {
            if let Err(e) = state.apply_key(k, Some(v)) {
                warn!("{e}");
            }
            if let Some(z) = k.strip_prefix("serials/").and_then(|z| name(z).ok()) {
                let bumps = state.overlay.serials.get(&z).copied().unwrap_or(0);
                self.serials.insert(z, (bumps, *rev));
            }
        }
        self.loaded = revision;
        // Own writes after `revision` are not in this load, but the writer applied
        // and acknowledged them already (the load was queued before they were
        // made): keep them, so DNS never goes back to before an acknowledged write.
        // Their watch events are then skipped as own. Older ones are in the load.
        self.own.retain(|rev, _| *rev > revision);
        for (rev, kvs) in &self.own {
            for (k, v) in kvs {
                if let Err(e) = state.apply_key(k, v.as_deref()) {
                    warn!("{e}");
                }
                if let Some(z) = k.strip_prefix("serials/").and_then(|z| name(z).ok()) {
                    let bumps = state.overlay.serials.get(&z).copied().unwrap_or(0);
                    self.serials.insert(z, (bumps, *rev));
                }
            }
        }
        state
    }

    /// Drops from `changes` what this node already has (its own writes, and what
    /// a full load covered) and records the serial revisions of the rest.
    pub fn observe_changes(&mut self, changes: Vec<(String, Option<Vec<u8>>, i64)>) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        // etcd never splits one revision's events over two watch responses, so an
        // own write is done with once its revision has been seen (whatever the
        // order of its keys).
        let mut seen_own = Vec::new();
        for (k, v, rev) in changes {
            if rev <= self.loaded {
                continue;
            }
            if self.own.contains_key(&rev) {
                seen_own.push(rev);
                continue;
            }
            if let Some(z) = k.strip_prefix("serials/").and_then(|z| name(z).ok()) {
                let bumps = v.as_deref().and_then(|b| std::str::from_utf8(b).ok()?.trim().parse().ok()).unwrap_or(0);
                // A deleted key compares as mod revision 0 in a transaction.
                self.serials.insert(z, (bumps, if v.is_some() { rev } else { 0 }));
            }
            out.push((k, v));
        }
        for rev in seen_own {
            self.own.remove(&rev);
        }
        out
    }

    /// Records this node's write of `change`, the zone's `bumps`-th, stored at
    /// `revision`.
    fn wrote(&mut self, change: &Change, zone: &Name, bumps: u32, revision: i64) {
        self.serials.insert(zone.clone(), (bumps, revision));
        let mut kvs: KeyValues =
            change_entries(change).into_iter().map(|(k, v)| (k, v.map(String::into_bytes))).collect();
        kvs.push((serial_key(zone), Some(bumps.to_string().into_bytes())));
        self.own.insert(revision, kvs);
    }

    /// The etcd operations that store `change`. A pool's overrides are removed
    /// with one range delete (etcd allows 128 operations per transaction, and a
    /// pool may have more overrides); the transaction's condition on the zone's
    /// serial makes it remove exactly the overrides the change was planned with.
    fn change_ops(&self, change: &Change) -> Vec<TxnOp> {
        if let Change::RevertPool { pool, .. } = change {
            let members = format!("{}members/{}/", self.prefix, enc(&pool.to_ascii()));
            return vec![
                TxnOp::delete(format!("{}{}", self.prefix, pool_key(pool)), None),
                TxnOp::delete(members, Some(DeleteOptions::new().with_prefix())),
            ];
        }
        change_entries(change)
            .into_iter()
            .map(|(k, v)| {
                let key = format!("{}{k}", self.prefix);
                match v {
                    Some(v) => TxnOp::put(key, v, None),
                    None => TxnOp::delete(key, None),
                }
            })
            .collect()
    }

    fn conflict(&self, zone: &Name) -> StoreError {
        StoreError::Conflict(format!(
            "zone {zone} was changed on another server at the same moment; this server has not seen that change yet, retry"
        ))
    }

    /// After a retried write: whether an earlier try was applied, i.e. this
    /// node's mark key holds that write's `mark` (only this node writes it, and
    /// only together with a change); the revision it was applied at if so.
    fn landed(&self, mark: &str) -> Result<Option<i64>, StoreError> {
        let (conn, key) = (self.conn.clone(), self.mark_key.clone());
        let r = self.block(async move { conn.get().await?.get(key, None).await })?;
        Ok(r.kvs().first().filter(|kv| kv.value() == mark.as_bytes()).map(|kv| kv.mod_revision()))
    }

    fn block<T>(&self, f: impl std::future::Future<Output = Result<T, etcd_client::Error>>) -> Result<T, StoreError> {
        let timeout = self.timeout;
        let run = async move { tokio::time::timeout(timeout, f).await };
        let r = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run));
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("etcd {} unavailable: {}", self.endpoints, short(&e)))),
            Err(_) => {
                Err(StoreError::Unavailable(format!("etcd {} did not answer within {timeout:?}", self.endpoints)))
            }
        }
    }
}

impl Store for EtcdStore {
    fn load(&mut self) -> Result<Overlay, StoreError> {
        match self.initial.take() {
            Some(s) => Ok(s.overlay),
            None => {
                let (conn, prefix, timeout) = (self.conn.clone(), self.prefix.clone(), self.timeout);
                let (entries, revision) = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async move {
                        let mut client = conn.get().await.map_err(|e| EtcdError::Read { reason: short(&e) })?;
                        tokio::time::timeout(timeout, load_all(&mut client, &prefix))
                            .await
                            .map_err(|_| EtcdError::Timeout)?
                    })
                })
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Ok(self.observe_full(&entries, revision).overlay)
            }
        }
    }

    fn apply(&mut self, change: &Change, zone: &Name) -> Result<(), StoreError> {
        let (bumps, rev) = self.serials.get(zone).copied().unwrap_or((0, 0));
        let serial = format!("{}{}", self.prefix, serial_key(zone));
        let mut ops = self.change_ops(change);
        let mark = format!("{:016x}", fastrand::u64(..));
        ops.push(TxnOp::put(self.mark_key.clone(), mark.clone(), None));
        // Last: the watch takes the serial key as the end of a transaction.
        ops.push(TxnOp::put(serial.clone(), (bumps + 1).to_string(), None));
        let txn = Txn::new().when(vec![Compare::mod_revision(serial.clone(), CompareOp::Equal, rev)]).and_then(ops);
        // The client spreads requests over all endpoints and does not skip a dead
        // one: a request sent to it fails at once, and another try reaches a live
        // member. A try that failed after reaching etcd may have been applied; the
        // condition then fails, and the mark tells whether it was ours.
        // Each try has the timeout; all tries together three times it, so that a try
        // stuck on a member that just died (a leader election) is followed by one
        // that reaches a live member.
        let deadline = std::time::Instant::now() + self.timeout * 3;
        let mut tries = 0;
        let revision = loop {
            tries += 1;
            let (conn, t) = (self.conn.clone(), txn.clone());
            match self.block(async move { conn.get().await?.txn(t).await }) {
                Ok(resp) if resp.succeeded() => break resp.header().map(|h| h.revision()).unwrap_or(0),
                Ok(_) if tries > 1 => match self.landed(&mark)? {
                    Some(r) => break r,
                    None => return Err(self.conflict(zone)),
                },
                Ok(_) => return Err(self.conflict(zone)),
                Err(e) if std::time::Instant::now() < deadline && tries < 8 => {
                    tracing::debug!(error = %e, "etcd write failed; retrying");
                    std::thread::sleep(Duration::from_millis(20 * tries));
                }
                Err(e) => return Err(e),
            }
        };
        self.wrote(change, zone, bumps + 1, revision);
        Ok(())
    }

    fn observe(&mut self, remote: Remote) -> Observed {
        match remote {
            Remote::Full { entries, revision } => Observed::Full(self.observe_full(&entries, revision)),
            Remote::Changes(c) => Observed::Changes(self.observe_changes(c)),
            Remote::Lost => Observed::Lost,
        }
    }

    fn import(&mut self, o: &Overlay) -> Result<usize, StoreError> {
        let (conn, prefix) = (self.conn.clone(), self.prefix.clone());
        let existing = self.block(async move {
            conn.get().await?.get(prefix.clone(), Some(GetOptions::new().with_prefix().with_count_only())).await
        })?;
        if existing.count() > 0 {
            return Err(StoreError::Conflict(format!(
                "etcd already holds {} keys under {}: import only into an empty prefix",
                existing.count(),
                self.prefix
            )));
        }
        let all = entries(o);
        // etcd allows 128 operations per transaction by default.
        for chunk in all.chunks(100) {
            let ops: Vec<TxnOp> =
                chunk.iter().map(|(k, v)| TxnOp::put(format!("{}{k}", self.prefix), v.clone(), None)).collect();
            let conn = self.conn.clone();
            self.block(async move { conn.get().await?.txn(Txn::new().and_then(ops)).await })?;
        }
        Ok(all.len())
    }
}

/// An etcd error without the transport's debug dump.
fn short(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Background tasks: the watch, and this node's health view under a lease.

/// Watches the prefix from `start` (the revision after the last load; `None` =
/// load everything first) and sends what changes, until `tx` closes.
pub async fn watch_loop(conn: Connector, prefix: String, start: Option<i64>, tx: mpsc::Sender<Remote>) {
    let mut next = start;
    let mut lost = false;
    // Retry soon (the client may have picked a dead member; the next try picks
    // another), then back off to once a second while etcd stays away.
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut client = match conn.get().await {
            Ok(c) => c,
            Err(e) => {
                if !lost {
                    warn!(error = %short(&e), "etcd unreachable; serving the last known state");
                    lost = true;
                    let _ = tx.send(Remote::Lost).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let from = match next {
            Some(n) => n,
            None => match load_all(&mut client, &prefix).await {
                Ok((entries, revision)) => {
                    if tx.send(Remote::Full { entries, revision }).await.is_err() {
                        return;
                    }
                    info!(revision, "state loaded from etcd");
                    revision + 1
                }
                Err(e) => {
                    if !lost {
                        warn!(error = %e, "etcd unreachable; serving the last known state");
                        lost = true;
                        let _ = tx.send(Remote::Lost).await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        next = Some(from);
        let opts = WatchOptions::new().with_prefix().with_start_revision(from).with_progress_notify();
        let mut stream = match client.watch(prefix.clone(), Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                if !lost {
                    warn!(error = %e, "etcd watch failed; serving the last known state");
                    lost = true;
                    let _ = tx.send(Remote::Lost).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                next = None;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    backoff = Duration::from_millis(50);
                    if lost {
                        info!("etcd reachable again");
                        lost = false;
                    }
                    if resp.compact_revision() > 0 || resp.canceled() {
                        warn!(compacted = resp.compact_revision(), "etcd history compacted; loading everything");
                        next = None;
                        break;
                    }
                    let mut changes = Vec::new();
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let Some(key) = std::str::from_utf8(kv.key()).ok().and_then(|k| k.strip_prefix(&prefix)) else {
                            continue;
                        };
                        let value = match ev.event_type() {
                            EventType::Put => Some(kv.value().to_vec()),
                            EventType::Delete => None,
                        };
                        changes.push((key.to_string(), value, kv.mod_revision()));
                        next = Some(next.unwrap_or(0).max(kv.mod_revision() + 1));
                    }
                    if let Some(h) = resp.header() {
                        next = Some(next.unwrap_or(0).max(h.revision() + 1));
                    }
                    if !changes.is_empty() && tx.send(Remote::Changes(changes)).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    if !lost {
                        warn!("etcd watch broken; serving the last known state, resuming when etcd is back");
                        lost = true;
                        let _ = tx.send(Remote::Lost).await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    // Reload rather than resume: the other nodes' health views were
                    // dropped when etcd was lost, and a full load brings them back.
                    next = None;
                    break;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// How long a node's health view outlives it.
const NODE_TTL: i64 = 6;

/// Publishes this node's health view at `nodes/NODE` under a lease, and keeps the
/// lease alive; when the node dies the key expires and others stop counting it.
pub async fn health_loop(conn: Connector, prefix: String, node: String, mut views: watch::Receiver<Votes>) {
    let key = format!("{prefix}nodes/{}", enc(&node));
    loop {
        let run = async {
            let mut client = conn.get().await?;
            let lease = client.lease_grant(NODE_TTL, None).await?.id();
            let (mut keeper, mut acks) = client.lease_keep_alive(lease).await?;
            let body = serde_json::to_string(&*views.borrow_and_update()).unwrap_or_default();
            client.put(key.clone(), body, Some(PutOptions::new().with_lease(lease))).await?;
            let mut tick = tokio::time::interval(Duration::from_secs((NODE_TTL / 3).max(1) as u64));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        keeper.keep_alive().await?;
                        // The keep-alive stream has no request deadline of its own: an
                        // answer that does not come means a new lease, like one that is gone.
                        let ack = tokio::time::timeout(Duration::from_secs(2), acks.message()).await;
                        match ack {
                            Ok(Ok(Some(a))) if a.ttl() > 0 => {}
                            Ok(Err(e)) => return Err(e),
                            _ => return Ok::<(), etcd_client::Error>(()), // lease gone: grant a new one
                        }
                    }
                    r = views.changed() => {
                        if r.is_err() {
                            let _ = client.lease_revoke(lease).await;
                            return Ok(());
                        }
                        let body = serde_json::to_string(&*views.borrow_and_update()).unwrap_or_default();
                        client.put(key.clone(), body, Some(PutOptions::new().with_lease(lease))).await?;
                    }
                }
            }
        };
        let r = run.await;
        if views.has_changed().is_err() {
            return;
        }
        if let Err(e) = r {
            tracing::debug!(error = %e, "publishing health to etcd failed; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllDown, HealthConfig, MemberConfig, PolicyName, PoolDef};
    use crate::store::overlay::MemberFields;

    /// Every kind of change survives the trip through keys and values.
    #[test]
    fn entries_round_trip() {
        let zone = parse_fqdn("example.test.").unwrap();
        let mut o = Overlay::default();
        let changes = vec![
            Change::PutPool(Box::new(PoolDef {
                name: parse_fqdn("api.example.test.").unwrap(),
                policy: PolicyName::Weighted,
                ttl: 5,
                max_answers: 1,
                all_down: AllDown::Empty,
                fallback: vec![],
                health: HealthConfig::default(),
                members: vec![MemberConfig {
                    address: "192.0.2.1".parse().unwrap(),
                    weight: 3,
                    region: None,
                    enabled: true,
                }],
                line: 0,
            })),
            Change::PutMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "2001:db8::9".parse().unwrap(),
                fields: MemberFields { weight: None, region: Some("eu".into()), enabled: Some(false) },
            },
            Change::DeleteMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.10".parse().unwrap(),
            },
            Change::PutRRset {
                zone: zone.clone(),
                name: parse_fqdn("new.example.test.").unwrap(),
                rtype: RecordType::TXT,
                set: StoredRRset { ttl: 60, data: vec!["\"a/b%c\"".into()] },
            },
            Change::DeleteRRset {
                zone: zone.clone(),
                name: parse_fqdn("static.example.test.").unwrap(),
                rtype: RecordType::AAAA,
            },
        ];
        for c in &changes {
            o.apply(c, &zone);
        }
        let mut s = State::default();
        for (k, v) in entries(&o) {
            s.apply_key(&k, Some(v.as_bytes())).unwrap();
        }
        assert_eq!(s.overlay, o);
        // A deleted pool key removes the pool.
        s.apply_key("pools/api.example.test.", None).unwrap();
        assert!(s.overlay.pools.is_empty());
        assert!(s.apply_key("pools/api.example.test.", Some(b"{not json")).is_err());
        // A reverted override deletes its key; a pool's, every key of the pool.
        let www = parse_fqdn("www.example.test.").unwrap();
        let revert = Change::RevertPool {
            pool: www.clone(),
            members: vec!["2001:db8::9".parse().unwrap(), "192.0.2.10".parse().unwrap()],
        };
        for (k, v) in change_entries(&revert) {
            assert_eq!(v, None);
            s.apply_key(&k, None).unwrap();
        }
        assert!(s.overlay.members.keys().all(|(p, _)| *p != www), "{:?}", s.overlay.members);
        // The previous version's whole member reads as every field set.
        let old = r#"{"address":"192.0.2.1","weight":3,"region":null,"enabled":false}"#;
        s.apply_key("members/www.example.test./192.0.2.1", Some(old.as_bytes())).unwrap();
        let set = MemberFields { weight: Some(3), region: None, enabled: Some(false) };
        assert_eq!(s.overlay.members[&(www, "192.0.2.1".parse().unwrap())], Some(set));
        assert_eq!(enc("a/b%c"), "a%2Fb%25c");
        assert_eq!(dec(&enc("a/b%c")), "a/b%c");
    }

    fn store() -> EtcdStore {
        let settings = EtcdSettings {
            endpoints: vec!["http://127.0.0.1:1".into()],
            prefix: "/lbdns/".into(),
            health: crate::config::ClusterHealth::Local,
            node: "n".into(),
            user: None,
            ca_pem: None,
            identity_pem: None,
            timeout: Duration::from_secs(1),
        };
        EtcdStore {
            conn: Connector::new(&settings),
            endpoints: String::new(),
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            serials: HashMap::new(),
            loaded: 0,
            own: BTreeMap::new(),
            initial: None,
            mark_key: "/lbdns/txn/n".into(),
        }
    }

    /// A full load queued before this node's own write but applied after it must
    /// not take the (acknowledged) write back out; the write's watch events are
    /// then skipped, and a later load that covers it forgets it.
    #[test]
    fn a_full_load_older_than_an_own_write_keeps_it() {
        let zone = parse_fqdn("c.test.").unwrap();
        let change = Change::PutRRset {
            zone: zone.clone(),
            name: parse_fqdn("w.c.test.").unwrap(),
            rtype: RecordType::A,
            set: StoredRRset { ttl: 60, data: vec!["192.0.2.7".into()] },
        };
        let mut s = store();
        s.wrote(&change, &zone, 3, 10);
        // Loaded at revision 8: the zone had 2 changes then.
        let state = s.observe_full(&[("serials/c.test.".into(), b"2".to_vec(), 7)], 8);
        let mut want = Overlay::default();
        want.apply(&change, &zone);
        assert_eq!(state.overlay.rrsets, want.rrsets);
        assert_eq!(state.overlay.serials.get(&zone), Some(&3));
        assert_eq!(s.serials.get(&zone), Some(&(3, 10)), "the next write is conditional on the own write");
        // Its watch events come back: nothing to apply.
        let (k, v) = change_entries(&change).remove(0);
        let events = vec![(k, v.map(String::into_bytes), 10), ("serials/c.test.".into(), Some(b"3".to_vec()), 10)];
        assert!(s.observe_changes(events).is_empty());
        // Another node's change after it is applied.
        let other = vec![("serials/c.test.".into(), Some(b"4".to_vec()), 11)];
        assert_eq!(s.observe_changes(other).len(), 1);
        // A load at or after the write forgets it.
        s.wrote(&change, &zone, 5, 12);
        s.observe_full(&[], 12);
        assert!(s.own.is_empty());
    }
}
