//! Health probes: which members are up.
//!
//! One probe stream runs per distinct [`ProbeKey`] (member address, where its
//! checks go, and the pool's resolved checks), however many pools share it; a
//! member with several checks is up only when all of them pass, and `rise`/`fall`
//! count combined results. Streams only report results; the writer owns the
//! [`HealthTable`] with each stream's anti-flap state and publishes changes in the
//! next snapshot. Every probe has a timeout, the number of probes in flight is
//! bounded, and intervals are jittered ±10%. The streams run on probe threads of
//! their own and start their probes on a shared tick grid (see `schedule.rs`).

mod dns;
mod error;
pub mod file;
pub mod flap;
mod grid;
mod http;
pub mod last;
pub mod probe;
pub mod push;
mod schedule;
mod stamped;
mod tcp;
mod tls;
pub mod weight;
mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::config::{CheckKind, HealthConfig, HttpMethod, MemberConfig, PoolDef};
pub use error::{Passed, ProbeError};
use flap::Flap;
pub use http::USER_AGENT;
use last::LastProbe;

/// Probes in flight at once, across all streams.
const MAX_CONCURRENT_PROBES: usize = 256;

/// One check of a pool's health table with defaults resolved (port, Host header,
/// the headers of `headers_file`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub check: CheckKind,
    pub port: u16,
    pub path: String,
    pub host: String,
    pub method: HttpMethod,
    /// `headers` then those of `headers_file`.
    pub headers: Vec<(String, String)>,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    pub expect_body_regex: Option<String>,
    pub keepalive: bool,
    pub timeout: Duration,
    pub tls_verify: bool,
    pub weight_from: Option<weight::Source>,
    /// `dns`: the name and type asked, the code expected, a value the answer holds.
    pub qname: String,
    pub qtype: String,
    pub expect_rcode: String,
    pub expect_answer: Option<String>,
    /// `tls`: fewer days to the certificate's expiry fail the check.
    pub min_cert_days: Option<u32>,
}

impl CheckSpec {
    fn of(pool: &PoolDef, h: &HealthConfig) -> CheckSpec {
        let default_port = match h.check {
            CheckKind::Https | CheckKind::Tls => 443,
            CheckKind::Dns => 53,
            _ => 80,
        };
        let headers = h.headers.iter().map(|(k, v)| (k.clone(), v.clone())).chain(h.file_headers.iter().cloned());
        CheckSpec {
            check: h.check,
            port: h.port.unwrap_or(default_port),
            path: h.path.clone(),
            host: h.host.clone().unwrap_or_else(|| pool.name.to_ascii().trim_end_matches('.').to_string()),
            method: h.method,
            headers: headers.collect(),
            expect_status: h.expect_status.clone(),
            expect_body: h.expect_body.clone(),
            expect_body_regex: h.expect_body_regex.clone(),
            keepalive: h.keepalive,
            timeout: h.timeout,
            tls_verify: h.tls_verify,
            weight_from: h.weight_from.as_deref().and_then(|w| w.parse().ok()),
            qname: h.qname.clone().unwrap_or_default(),
            qtype: h.qtype.clone().unwrap_or_else(|| "A".to_string()),
            expect_rcode: h.expect_rcode.clone().unwrap_or_else(|| "NOERROR".to_string()),
            expect_answer: h.expect_answer.clone(),
            min_cert_days: h.min_cert_days,
        }
    }

    /// This check's part of [`ProbeKey::id`]: the text of earlier versions for
    /// the keys they had, then only what is set of the newer ones (header values
    /// as a hash: the ids are published to the other nodes).
    fn id(&self) -> String {
        let mut s = format!(
            "{} port={} path={} host={} expect={:?} body={:?} tls_verify={}",
            self.check.as_str(),
            self.port,
            self.path,
            self.host,
            self.expect_status,
            self.expect_body,
            self.tls_verify
        );
        if self.method != HttpMethod::Get {
            s.push_str(" method=HEAD");
        }
        if let Some(re) = &self.expect_body_regex {
            s.push_str(&format!(" regex={re:?}"));
        }
        if self.check == CheckKind::Dns {
            s.push_str(&format!(" qname={} qtype={} rcode={}", self.qname, self.qtype, self.expect_rcode));
            if let Some(a) = &self.expect_answer {
                s.push_str(&format!(" answer={a:?}"));
            }
        }
        if let Some(d) = self.min_cert_days {
            s.push_str(&format!(" min_cert_days={d}"));
        }
        if !self.headers.is_empty() {
            use std::hash::{Hash, Hasher};
            let mut h = siphasher::sip::SipHasher13::new();
            self.headers.hash(&mut h);
            s.push_str(&format!(" headers={:016x}", h.finish()));
        }
        s
    }
}

/// What one probe stream runs: a pool's checks (all must pass) and the
/// anti-flap and timing of their combined result, from the first check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    pub checks: Vec<CheckSpec>,
    pub interval: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Bounds of a reported weight (`weight_min`, `weight_max` of the check
    /// with `weight_from`).
    pub weight_bounds: (u32, u32),
    pub slow_start: Option<Duration>,
}

impl ProbeSpec {
    /// The pool's probing checks; `None` when it has none (every member is up).
    pub fn of(pool: &PoolDef) -> Option<ProbeSpec> {
        let first = pool.health.active().next()?;
        let feedback = pool.health.active().find(|h| h.weight_from.is_some()).unwrap_or(first);
        Some(ProbeSpec {
            checks: pool.health.active().map(|h| CheckSpec::of(pool, h)).collect(),
            interval: first.interval,
            rise: first.rise,
            fall: first.fall,
            weight_bounds: (feedback.weight_min.unwrap_or(1), feedback.weight_max.unwrap_or(1000)),
            slow_start: first.slow_start,
        })
    }

    /// The longest check timeout: how long a probe can take.
    pub fn timeout(&self) -> Duration {
        self.checks.iter().map(|c| c.timeout).max().unwrap_or_default()
    }

    /// `tcp`, `http`, or the kinds joined by `+` (`tcp+http`), for logs and metrics.
    pub fn label(&self) -> String {
        self.checks.iter().map(|c| c.check.as_str()).collect::<Vec<_>>().join("+")
    }
}

/// What one probe stream probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    /// The member's address (what is answered).
    pub addr: IpAddr,
    /// The member's `probe` address: where every check goes instead.
    pub probe: Option<SocketAddr>,
    pub spec: Arc<ProbeSpec>,
}

/// Hashed by where it probes only: the writer looks a key up several times per
/// probe result, and hashing the whole spec (every check's strings) each time
/// showed in the profile. Keys equal as a whole are equal in these parts, and a
/// member is rarely probed with two specs, so this loses nothing.
impl std::hash::Hash for ProbeKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.addr.hash(state);
        self.probe.hash(state);
    }
}

impl ProbeKey {
    /// The stream of `member` in `pool`; `None` when the pool does not probe.
    pub fn of(pool: &PoolDef, member: &MemberConfig) -> Option<ProbeKey> {
        Some(ProbeKey {
            addr: member.address,
            probe: member.probe.as_deref().copied(),
            spec: Arc::new(ProbeSpec::of(pool)?),
        })
    }

    /// Where `check` connects.
    pub fn target(&self, check: &CheckSpec) -> SocketAddr {
        self.probe.unwrap_or(SocketAddr::new(self.addr, check.port))
    }

    /// The same text on every node for the same member and checks: how nodes
    /// compare their views of a member (`[cluster] health = "quorum"`).
    pub fn id(&self) -> String {
        let checks: Vec<String> = self.spec.checks.iter().map(CheckSpec::id).collect();
        let mut s = format!("{} {}", self.addr, checks.join(" & "));
        if let Some(p) = self.probe {
            s.push_str(&format!(" probe={p}"));
        }
        s
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
    pub pushed: PushedView<'a>,
}

impl crate::snapshot::HealthView for ClusterView<'_> {
    fn is_up(&self, pool: &PoolDef, member: &MemberConfig) -> bool {
        if let Some(o) = self.pushed.override_of(&pool.name, member.address) {
            return o.state.is_up();
        }
        if !pool.health.probes() || self.nodes.is_empty() {
            return self.local_vote(pool, member).unwrap_or(false);
        }
        let (mut voters, mut down) = (0u32, 0u32);
        for up in self.ballots(pool, member).filter_map(|(_, up)| up) {
            voters += 1;
            down += u32::from(!up);
        }
        voters > 0 && down * 2 <= voters
    }

    /// Weights are this node's: each node reads its own backends' reports.
    fn weight(&self, pool: &PoolDef, member: &MemberConfig) -> f64 {
        crate::snapshot::HealthView::weight(self.local, pool, member)
    }
}

impl ClusterView<'_> {
    /// Each node's view of a member, this node's first (named `None`), then the
    /// others' by name; `None` where a node has no result for it yet (and so
    /// does not vote). The votes [`crate::snapshot::HealthView::is_up`] counts.
    pub fn ballots(&self, pool: &PoolDef, member: &MemberConfig) -> impl Iterator<Item = (Option<&str>, Option<bool>)> {
        let id = ProbeKey::of(pool, member).as_ref().map(ProbeKey::id).unwrap_or_default();
        let local = self.local_vote(pool, member);
        std::iter::once((None, local))
            .chain(self.nodes.iter().map(move |(node, v)| (Some(node.as_str()), v.get(&id).copied())))
    }
}

impl ClusterView<'_> {
    /// This node's own view of a member: its health file's line if it has one,
    /// else its probes' result (`None` before the first); up without checks.
    pub fn local_vote(&self, pool: &PoolDef, member: &MemberConfig) -> Option<bool> {
        if let Some((_, line)) = self.pushed.file_of(&pool.name, member.address) {
            return Some(line.state.is_up());
        }
        let Some(key) = ProbeKey::of(pool, member) else { return Some(true) };
        self.local.members.get(&key).and_then(|h| h.flap.up)
    }

    /// This node's votes, by probe id (what it publishes to the others): its
    /// probes' results, with its health files' lines over them.
    pub fn votes<'p>(&self, pools: impl IntoIterator<Item = &'p Arc<PoolDef>>) -> Votes {
        let mut votes: Votes = self.local.members.iter().filter_map(|(k, h)| Some((k.id(), h.flap.up?))).collect();
        if self.pushed.files.files.is_empty() {
            return votes;
        }
        for def in pools {
            let Some(spec) = ProbeSpec::of(def).map(Arc::new) else { continue };
            for m in &def.members {
                if let Some((_, line)) = self.pushed.file_of(&def.name, m.address) {
                    let key = ProbeKey { addr: m.address, probe: m.probe.as_deref().copied(), spec: spec.clone() };
                    votes.insert(key.id(), line.state.is_up());
                }
            }
        }
        votes
    }
}

/// Every probe key the pools need (a pool without a probing check needs none).
pub fn keys_of<'a>(pools: impl IntoIterator<Item = &'a Arc<PoolDef>>) -> Vec<ProbeKey> {
    let mut out: Vec<ProbeKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in pools {
        let Some(spec) = ProbeSpec::of(p).map(Arc::new) else { continue };
        for m in &p.members {
            let key = ProbeKey { addr: m.address, probe: m.probe.as_deref().copied(), spec: spec.clone() };
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
    pub outcome: Result<Passed, ProbeError>,
    pub took: Duration,
    pub at: SystemTime,
    /// Its number among the results its stream sent (see [`LastProbe`]).
    pub seq: u64,
    /// What its stream shares with the writer.
    pub last: Arc<LastProbe>,
}

/// Health of one probe stream, as kept by the writer and shown by the API.
#[derive(Debug, Clone)]
pub struct MemberHealth {
    pub flap: Flap,
    pub last_change: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The last probe's time and duration, as its stream keeps them (results
    /// that change nothing else do not reach the writer).
    pub last: Option<Arc<LastProbe>>,
    /// The smoothed weight the backend reports (`weight_from`), unbounded.
    pub reported: Option<f64>,
    /// Why the last report could not be read, if it could not.
    pub weight_error: Option<String>,
    /// With `slow_start`, the share of its weight a member that came up takes
    /// (`None`: all of it), as of its last probe.
    pub ramp: Option<f64>,
    /// When it last came up from down (not from unknown: members up at
    /// start-up all start together, so there is nobody to shift load from).
    pub up_since: Option<SystemTime>,
    /// A `tls` check: days until the certificate expires, as last seen.
    pub cert_days: Option<i64>,
}

impl MemberHealth {
    pub fn new() -> Self {
        MemberHealth {
            flap: Flap::default(),
            last_change: None,
            last_error: None,
            last: None,
            reported: None,
            weight_error: None,
            ramp: None,
            up_since: None,
            cert_days: None,
        }
    }

    /// The weight of a member configured with `weight`, and where it comes from:
    /// `reported` (bounded by `bounds`) or `config`, times the slow-start ramp
    /// (`slow-start` while it ramps).
    pub fn weight(&self, weight: u32, bounds: (u32, u32)) -> (f64, &'static str) {
        let (base, source) = match self.reported {
            Some(r) => (r.clamp(f64::from(bounds.0), f64::from(bounds.1)), "reported"),
            None => (f64::from(weight), "config"),
        };
        match self.ramp {
            Some(share) => (base * share, "slow-start"),
            None => (base, source),
        }
    }

    /// Notes a passing probe's report and the ramp at `at`; returns whether the
    /// weight as the policies take it (in hundredths) may have changed.
    fn feedback(&mut self, passed: &Passed, spec: &ProbeSpec, at: SystemTime) -> bool {
        let before = (self.reported.map(weight::scaled), self.ramp.map(weight::scaled));
        match &passed.weight {
            Some(Ok(w)) => {
                self.reported = Some(weight::smooth(self.reported, *w));
                self.weight_error = None;
            }
            Some(Err(e)) => self.weight_error = Some(e.to_string()),
            None => {}
        }
        let since = self.up_since.filter(|_| self.flap.up == Some(true));
        self.ramp = since.and_then(|t| weight::ramp(spec.slow_start, at.duration_since(t).unwrap_or_default()));
        before != (self.reported.map(weight::scaled), self.ramp.map(weight::scaled))
    }

    /// How long the last successful probe took.
    pub fn last_rtt(&self) -> Option<Duration> {
        self.last.as_ref().and_then(|l| l.rtt())
    }

    /// Whether a pass now would change nothing here: the member is up with no
    /// failure counted and takes no slow-start ramp.
    fn settled(&self) -> bool {
        self.flap.settled_up() && self.ramp.is_none()
    }

    /// A stream whose entry is dropped sends its next result whatever it is, so
    /// that an entry is made again should the stream run on.
    fn unsettle(&self) {
        if let Some(l) = &self.last {
            l.applied(0, false);
        }
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

/// What applying a probe result changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The member went up or down.
    pub flipped: bool,
    /// Its weight changed (a report, or slow start).
    pub weight: bool,
}

impl HealthTable {
    /// Applies a result: the member's state, and its weight when it is up.
    pub fn apply(&mut self, r: &ProbeResult) -> Applied {
        self.share_spec(&r.key);
        let h = self.members.entry(r.key.clone()).or_default();
        let was = h.flap.up;
        if !h.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &r.last)) {
            h.last = Some(r.last.clone());
        }
        if let Err(e) = &r.outcome {
            h.last_error = Some(e.to_string());
        }
        let days = match &r.outcome {
            Ok(p) => p.cert_days,
            Err(e) => e.cert_days(),
        };
        h.cert_days = days.or(h.cert_days);
        let flipped = h.flap.record(r.outcome.is_ok(), r.key.spec.rise, r.key.spec.fall);
        if flipped {
            h.last_change = Some(r.at);
            h.up_since = (was == Some(false)).then_some(r.at);
        }
        let weight = match &r.outcome {
            Ok(passed) => h.feedback(passed, &r.key.spec, r.at),
            Err(_) => false,
        };
        r.last.applied(r.seq, h.settled());
        Applied { flipped, weight }
    }

    /// Keys `key`'s entry by `key` itself when it holds an equal spec of another
    /// allocation (the first round's keys are made apart from the streams'):
    /// keys that share their spec compare by pointer, not every check's
    /// strings, at each of the writer's lookups per result.
    fn share_spec(&mut self, key: &ProbeKey) {
        let Some((held, _)) = self.members.get_key_value(key) else { return };
        if !Arc::ptr_eq(&held.spec, &key.spec)
            && let Some(h) = self.members.remove(key)
        {
            self.members.insert(key.clone(), h);
        }
    }

    /// Whether `member` of `pool` is up: always without a probing check; never
    /// before its first probe result.
    pub fn is_up(&self, pool: &PoolDef, member: &MemberConfig) -> bool {
        let Some(key) = ProbeKey::of(pool, member) else { return true };
        self.members.get(&key).and_then(|h| h.flap.up).unwrap_or(false)
    }

    /// The health of `member` of `pool` (`None` without a probing check, or
    /// before the member's first result).
    pub fn get(&self, pool: &PoolDef, member: &MemberConfig) -> Option<&MemberHealth> {
        self.members.get(&ProbeKey::of(pool, member)?)
    }

    /// Forgets keys no longer probed.
    /// Forgets the health of `keys` (streams no longer probed).
    pub fn forget(&mut self, keys: &[ProbeKey]) {
        for k in keys {
            if let Some(h) = self.members.remove(k) {
                h.unsettle();
            }
        }
    }

    pub fn retain(&mut self, keys: &[ProbeKey]) {
        let keep: std::collections::HashSet<&ProbeKey> = keys.iter().collect();
        self.members.retain(|k, h| {
            let kept = keep.contains(k);
            if !kept {
                h.unsettle();
            }
            kept
        });
    }
}

impl crate::snapshot::HealthView for HealthTable {
    fn is_up(&self, pool: &PoolDef, member: &MemberConfig) -> bool {
        HealthTable::is_up(self, pool, member)
    }

    fn weight(&self, pool: &PoolDef, member: &MemberConfig) -> f64 {
        HealthTable::weight(self, pool, member).0
    }
}

impl HealthTable {
    /// The effective weight of `member` of `pool` and its source (`config`,
    /// `reported` or `slow-start`; see [`MemberHealth::weight`]).
    pub fn weight(&self, pool: &PoolDef, member: &MemberConfig) -> (f64, &'static str) {
        let Some(key) = ProbeKey::of(pool, member) else { return (f64::from(member.weight), "config") };
        match self.members.get(&key) {
            Some(h) => h.weight(member.weight, key.spec.weight_bounds),
            None => (f64::from(member.weight), "config"),
        }
    }
}

/// Runs the probe streams.
pub struct Prober {
    limit: Arc<Semaphore>,
    tls: tls::TlsConfigs,
    /// `[health] source_address`: probes leave from it (for members of its family).
    source: Option<IpAddr>,
    streams: HashMap<ProbeKey, JoinHandle<()>>,
    threads: schedule::ProbeThreads,
    /// The first round's runners (with their open connections), taken by the
    /// streams started next, so that start-up opens each connection once.
    warm: HashMap<ProbeKey, (probe::Runner, Arc<LastProbe>)>,
}

impl Prober {
    /// Probes leave from `source` when set (for members of its family).
    pub fn new(results: mpsc::Sender<ProbeResult>, source: Option<IpAddr>) -> Self {
        Prober {
            threads: schedule::ProbeThreads::new(results),
            limit: Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES)),
            tls: tls::TlsConfigs::new(),
            source,
            streams: HashMap::new(),
            warm: HashMap::new(),
        }
    }

    /// Probes every key once, concurrently (bounded), and returns the results.
    /// The runners are kept for the streams of the same keys started next.
    pub async fn first_round(&mut self, keys: &[ProbeKey]) -> Vec<ProbeResult> {
        let mut set = tokio::task::JoinSet::new();
        for key in keys {
            let key = key.clone();
            let limit = self.limit.clone();
            let mut runner = probe::Runner::new(&key, &self.tls, self.source);
            let last = Arc::new(LastProbe::default());
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let mut r = schedule::probe_once(&key, &mut runner, &last).await;
                r.seq = last.next_sent();
                (r, runner)
            });
        }
        let mut out = Vec::with_capacity(keys.len());
        while let Some(r) = set.join_next().await {
            if let Ok((r, runner)) = r {
                self.warm.insert(r.key.clone(), (runner, r.last.clone()));
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
        self.start(keys, immediate)
    }

    /// Stops the streams of `keys` (those running); every other stream runs on.
    pub fn stop(&mut self, keys: &[ProbeKey]) {
        for k in keys {
            if let Some(h) = self.streams.remove(k) {
                h.abort();
            }
        }
    }

    /// Starts a stream for each of `keys` not running yet (see [`Prober::sync`]);
    /// returns those started.
    pub fn start(&mut self, keys: &[ProbeKey], immediate: bool) -> Vec<ProbeKey> {
        let mut started = Vec::new();
        for key in keys {
            if self.streams.contains_key(key) {
                continue;
            }
            let (runner, last) = match self.warm.remove(key) {
                Some(warm) => warm,
                None => (probe::Runner::new(key, &self.tls, self.source), Arc::default()),
            };
            let (k, limit) = (key.clone(), self.limit.clone());
            let task = self.threads.spawn(|outbox| schedule::stream(k, outbox, limit, (runner, last), immediate));
            self.streams.insert(key.clone(), task);
            started.push(key.clone());
        }
        self.warm.clear(); // those of keys no stream wanted: their connections close
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

/// What is pushed from outside, as the health view reads it at one moment.
#[derive(Clone, Copy)]
pub struct PushedView<'a> {
    pub overrides: &'a push::Overrides,
    pub files: &'a file::FileVotes,
    pub now: SystemTime,
}

impl<'a> PushedView<'a> {
    /// The override in force on `address` of `pool`.
    pub fn override_of(&self, pool: &hickory_proto::rr::Name, address: IpAddr) -> Option<&'a push::HealthOverride> {
        if self.overrides.is_empty() {
            return None;
        }
        self.overrides.get(&(pool.clone(), address)).filter(|o| o.in_force(self.now))
    }

    /// This node's health file line for `address` of `pool`.
    pub fn file_of(
        &self,
        pool: &hickory_proto::rr::Name,
        address: IpAddr,
    ) -> Option<(&'a std::path::Path, &'a push::FileEntry)> {
        self.files.entry(pool, address)
    }
}
