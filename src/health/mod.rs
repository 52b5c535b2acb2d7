//! Health probes: which members are up.
//!
//! One probe stream runs per distinct [`ProbeKey`] (member address + resolved check
//! spec), however many pools share it. Streams only report results; the writer owns
//! the [`HealthTable`] with each stream's anti-flap state and publishes changes in
//! the next snapshot. Every probe has a timeout, the number of probes in flight is
//! bounded, and intervals are jittered ±10%.

pub mod file;
pub mod flap;
pub mod probe;
pub mod push;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::config::{CheckKind, PoolDef};
use flap::Flap;
pub use probe::ProbeError;

/// Probes in flight at once, across all streams.
const MAX_CONCURRENT_PROBES: usize = 256;

/// A pool's `[pool.health]` with defaults resolved (port, Host header).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    pub check: CheckKind,
    pub port: u16,
    pub path: String,
    pub host: String,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub tls_verify: bool,
}

impl ProbeSpec {
    pub fn of(pool: &PoolDef) -> ProbeSpec {
        let h = &pool.health;
        let default_port = match h.check {
            CheckKind::Https => 443,
            _ => 80,
        };
        ProbeSpec {
            check: h.check,
            port: h.port.unwrap_or(default_port),
            path: h.path.clone(),
            host: h.host.clone().unwrap_or_else(|| pool.name.to_ascii().trim_end_matches('.').to_string()),
            expect_status: h.expect_status.clone(),
            expect_body: h.expect_body.clone(),
            interval: h.interval,
            timeout: h.timeout,
            rise: h.rise,
            fall: h.fall,
            tls_verify: h.tls_verify,
        }
    }
}

/// What one probe stream probes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub addr: IpAddr,
    pub spec: Arc<ProbeSpec>,
}

impl ProbeKey {
    /// The same text on every node for the same member and check: how nodes
    /// compare their views of a member (`[cluster] health = "quorum"`).
    pub fn id(&self) -> String {
        let s = &self.spec;
        format!(
            "{} {} port={} path={} host={} expect={:?} body={:?} tls_verify={}",
            self.addr,
            s.check.as_str(),
            s.port,
            s.path,
            s.host,
            s.expect_status,
            s.expect_body,
            s.tls_verify
        )
    }
}

/// One node's health votes, as it publishes them to the others: probe id (see
/// [`ProbeKey::id`]) → up.
pub type Votes = std::collections::BTreeMap<String, bool>;

/// What the pools are built from: this node's probe results, and with
/// `health = "quorum"` the other nodes' views of the same members. A member is down
/// only when more than half of the nodes that probed it see it down; a member no
/// node has a result for yet is not answered.
pub struct ClusterView<'a> {
    pub local: &'a HealthTable,
    /// Other live nodes' views (empty: local decisions only).
    pub nodes: &'a std::collections::BTreeMap<String, Votes>,
    /// Overrides and health files, over the probes (see [`push`]).
    pub pushed: push::PushedView<'a>,
}

impl crate::snapshot::HealthView for ClusterView<'_> {
    fn is_up(&self, pool: &PoolDef, addr: IpAddr) -> bool {
        if let Some(o) = self.pushed.override_of(&pool.name, addr) {
            return o.state.is_up();
        }
        if pool.health.check == CheckKind::None || self.nodes.is_empty() {
            return self.local_vote(pool, addr).unwrap_or(false);
        }
        let (mut voters, mut down) = (0u32, 0u32);
        for up in self.ballots(pool, addr).filter_map(|(_, up)| up) {
            voters += 1;
            down += u32::from(!up);
        }
        voters > 0 && down * 2 <= voters
    }
}

impl ClusterView<'_> {
    /// Each node's view of a member, this node's first (named `None`), then the
    /// others' by name; `None` where a node has no result for it yet (and so
    /// does not vote). The votes [`crate::snapshot::HealthView::is_up`] counts.
    pub fn ballots(&self, pool: &PoolDef, addr: IpAddr) -> impl Iterator<Item = (Option<&str>, Option<bool>)> {
        let id = ProbeKey { addr, spec: Arc::new(ProbeSpec::of(pool)) }.id();
        let local = self.local_vote(pool, addr);
        std::iter::once((None, local))
            .chain(self.nodes.iter().map(move |(node, v)| (Some(node.as_str()), v.get(&id).copied())))
    }
}

impl ClusterView<'_> {
    /// This node's own view of a member: its health file's line if it has one,
    /// else its probes' result (`None` before the first); up without checks.
    pub fn local_vote(&self, pool: &PoolDef, addr: IpAddr) -> Option<bool> {
        if let Some((_, line)) = self.pushed.file_of(&pool.name, addr) {
            return Some(line.state.is_up());
        }
        if pool.health.check == CheckKind::None {
            return Some(true);
        }
        let key = ProbeKey { addr, spec: Arc::new(ProbeSpec::of(pool)) };
        self.local.members.get(&key).and_then(|h| h.flap.up)
    }

    /// This node's votes, by probe id (what it publishes to the others): its
    /// probes' results, with its health files' lines over them.
    pub fn votes<'p>(&self, pools: impl IntoIterator<Item = &'p Arc<PoolDef>>) -> Votes {
        let mut votes: Votes = self.local.members.iter().filter_map(|(k, h)| Some((k.id(), h.flap.up?))).collect();
        if self.pushed.files.files.is_empty() {
            return votes;
        }
        for def in pools.into_iter().filter(|d| d.health.check != CheckKind::None) {
            let spec = Arc::new(ProbeSpec::of(def));
            for m in &def.members {
                if let Some((_, line)) = self.pushed.file_of(&def.name, m.address) {
                    votes.insert(ProbeKey { addr: m.address, spec: spec.clone() }.id(), line.state.is_up());
                }
            }
        }
        votes
    }
}

/// Every probe key the pools need (check = none needs none).
pub fn keys_of<'a>(pools: impl IntoIterator<Item = &'a Arc<PoolDef>>) -> Vec<ProbeKey> {
    let mut out: Vec<ProbeKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in pools {
        if p.health.check == CheckKind::None {
            continue;
        }
        let spec = Arc::new(ProbeSpec::of(p));
        for m in &p.members {
            let key = ProbeKey { addr: m.address, spec: spec.clone() };
            if seen.insert(key.clone()) {
                out.push(key);
            }
        }
    }
    out
}

/// One probe's result, sent by a stream to the writer.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub key: ProbeKey,
    pub outcome: Result<(), ProbeError>,
    pub took: Duration,
    pub at: SystemTime,
}

/// Health of one probe stream, as kept by the writer and shown by the API.
#[derive(Debug, Clone)]
pub struct MemberHealth {
    pub flap: Flap,
    pub last_change: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_probe: Option<SystemTime>,
    /// How long the last successful probe took.
    pub last_rtt: Option<Duration>,
}

impl MemberHealth {
    pub fn new() -> Self {
        MemberHealth { flap: Flap::default(), last_change: None, last_error: None, last_probe: None, last_rtt: None }
    }

    /// "up", "down" or "unknown" (not probed yet).
    pub fn state(&self) -> &'static str {
        match self.flap.up {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        }
    }
}

impl Default for MemberHealth {
    fn default() -> Self {
        Self::new()
    }
}

/// Health of every probe stream.
#[derive(Debug, Default, Clone)]
pub struct HealthTable {
    pub members: HashMap<ProbeKey, MemberHealth>,
}

impl HealthTable {
    /// Applies a result; returns true when the member's up/down state changed.
    pub fn apply(&mut self, r: &ProbeResult) -> bool {
        let h = self.members.entry(r.key.clone()).or_default();
        h.last_probe = Some(r.at);
        match &r.outcome {
            Ok(()) => h.last_rtt = Some(r.took),
            Err(e) => h.last_error = Some(e.to_string()),
        }
        let changed = h.flap.record(r.outcome.is_ok(), r.key.spec.rise, r.key.spec.fall);
        if changed {
            h.last_change = Some(r.at);
        }
        changed
    }

    /// Whether `addr` in `pool` is up: always with check = none; never before its
    /// first probe result.
    pub fn is_up(&self, pool: &PoolDef, addr: IpAddr) -> bool {
        if pool.health.check == CheckKind::None {
            return true;
        }
        let key = ProbeKey { addr, spec: Arc::new(ProbeSpec::of(pool)) };
        self.members.get(&key).and_then(|h| h.flap.up).unwrap_or(false)
    }

    pub fn get(&self, pool: &PoolDef, addr: IpAddr) -> Option<&MemberHealth> {
        if pool.health.check == CheckKind::None {
            return None;
        }
        self.members.get(&ProbeKey { addr, spec: Arc::new(ProbeSpec::of(pool)) })
    }

    /// Forgets keys no longer probed.
    pub fn retain(&mut self, keys: &[ProbeKey]) {
        let keep: std::collections::HashSet<&ProbeKey> = keys.iter().collect();
        self.members.retain(|k, _| keep.contains(k));
    }
}

impl crate::snapshot::HealthView for HealthTable {
    fn is_up(&self, pool: &PoolDef, address: IpAddr) -> bool {
        HealthTable::is_up(self, pool, address)
    }
}

/// Runs the probe streams.
pub struct Prober {
    results: mpsc::Sender<ProbeResult>,
    limit: Arc<Semaphore>,
    clients: Clients,
    streams: HashMap<ProbeKey, JoinHandle<()>>,
}

/// The HTTP clients probes share, and the source address (`[health] source_address`).
#[derive(Clone)]
struct Clients {
    /// Plain HTTP from the source address (used for members of its family).
    http_src: reqwest::Client,
    /// Plain HTTP from any address.
    http: reqwest::Client,
    source: Option<IpAddr>,
}

impl Clients {
    fn http_for(&self, target: IpAddr) -> &reqwest::Client {
        if probe::source_for(self.source, target).is_some() { &self.http_src } else { &self.http }
    }

    fn https_for(&self, key: &ProbeKey) -> Option<reqwest::Client> {
        (key.spec.check == CheckKind::Https)
            .then(|| probe::https_client(key, probe::source_for(self.source, key.addr)).ok())
            .flatten()
    }
}

impl Prober {
    /// Probes leave from `source` when set (for members of its family).
    pub fn new(results: mpsc::Sender<ProbeResult>, source: Option<IpAddr>) -> Self {
        let http = probe::http_client(None);
        let http_src = if source.is_some() { probe::http_client(source) } else { http.clone() };
        Prober {
            results,
            limit: Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES)),
            clients: Clients { http_src, http, source },
            streams: HashMap::new(),
        }
    }

    /// Probes every key once, concurrently (bounded), and returns the results.
    pub async fn first_round(&self, keys: &[ProbeKey]) -> Vec<ProbeResult> {
        let mut set = tokio::task::JoinSet::new();
        for key in keys {
            let key = key.clone();
            let limit = self.limit.clone();
            let clients = self.clients.clone();
            set.spawn(async move {
                let https = clients.https_for(&key);
                let _permit = limit.acquire_owned().await;
                probe_once(&key, &clients, https.as_ref()).await
            });
        }
        let mut out = Vec::with_capacity(keys.len());
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
        out
    }

    /// Makes the running streams exactly `keys`: starts new ones (probing at once
    /// if `immediate`), stops removed ones. Returns the keys that were started.
    pub fn sync(&mut self, keys: &[ProbeKey], immediate: bool) -> Vec<ProbeKey> {
        let want: std::collections::HashSet<&ProbeKey> = keys.iter().collect();
        self.streams.retain(|k, h| {
            let keep = want.contains(k);
            if !keep {
                h.abort();
            }
            keep
        });
        let mut started = Vec::new();
        for key in keys {
            if self.streams.contains_key(key) {
                continue;
            }
            let task = tokio::spawn(stream(
                key.clone(),
                self.results.clone(),
                self.limit.clone(),
                self.clients.clone(),
                immediate,
            ));
            self.streams.insert(key.clone(), task);
            started.push(key.clone());
        }
        started
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for h in self.streams.values() {
            h.abort();
        }
    }
}

async fn probe_once(key: &ProbeKey, clients: &Clients, https: Option<&reqwest::Client>) -> ProbeResult {
    let start = Instant::now();
    let at = SystemTime::now();
    let run = probe::run(key, clients.http_for(key.addr), https, clients.source);
    let outcome = match tokio::time::timeout(key.spec.timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(key.spec.timeout)),
    };
    ProbeResult { key: key.clone(), outcome, took: start.elapsed(), at }
}

/// One stream: probe every (jittered) interval, measured start to start.
async fn stream(
    key: ProbeKey,
    results: mpsc::Sender<ProbeResult>,
    limit: Arc<Semaphore>,
    clients: Clients,
    immediate: bool,
) {
    let https = clients.https_for(&key);
    let mut next = if immediate {
        tokio::time::Instant::now()
    } else {
        tokio::time::Instant::now() + probe::jitter(key.spec.interval)
    };
    loop {
        tokio::time::sleep_until(next).await;
        next += probe::jitter(key.spec.interval);
        let result = {
            let Ok(_permit) = limit.acquire().await else { return };
            probe_once(&key, &clients, https.as_ref()).await
        };
        if results.send(result).await.is_err() {
            return;
        }
        // A probe that took longer than the interval does not cause a burst.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}
