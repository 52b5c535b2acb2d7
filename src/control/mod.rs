//! The one writer: the only task that publishes snapshots.
//!
//! Inputs arrive on bounded channels: probe results, admin API requests and, with
//! etcd, what other servers changed.
//! Probe results already queued are applied as one batch, so a burst of health
//! changes is a single swap. An API change is validated against the current state,
//! stored durably, applied to the overlay and published before its reply is sent,
//! so a client that got a 2xx reads its own write from DNS.

mod apply;
mod effect;
mod events;
mod explain;
mod outcomes;
mod probes;
mod publish;
mod pushed;
mod reload;
mod remote;
mod render;
mod share;
mod thread;
mod update;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::persist::{Remote, Store, StoreError};
use crate::state::api::{ApiError, ApiRequest, Reply};
use crate::state::overlay::{ApiRecordError, Origin, Overlay};

use crate::config::PoolDef;
use crate::health::{self, HealthTable, ProbeKey, ProbeResult, Prober, Votes};
use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::rdata::RecordError;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;
use crate::sources::Sources;
use crate::state::{InEffect, RRsetKey};
use crate::zone::ZoneCheckError;
use effect::fit;
pub use events::{Event, Events};
pub use outcomes::{Outcome, Outcomes, OutcomesView};
pub use thread::WriterThread;

/// Why stored API changes would not all be put in effect over `sources` (start-up
/// then leaves out each one the files refuse, and logs it): for `lbdns check`.
pub fn stored_changes_refused(sources: &Sources, overlay: &crate::state::overlay::Overlay) -> Option<StateError> {
    effect::effective(sources, overlay).err()
}

/// Why a state could not be put in effect or published; the state in effect
/// before stays in effect.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Stored API record data that does not parse.
    #[error(transparent)]
    Records(#[from] ApiRecordError),
    /// A zone with API changes that fails the whole-zone checks.
    #[error(transparent)]
    Zone(#[from] ZoneCheckError),
    /// The snapshot could not be built (a record that does not encode).
    #[error(transparent)]
    Build(#[from] Problem),
    #[error(transparent)]
    Encode(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such zone")]
    NoZone,
    #[error("no such pool")]
    NoPool,
}

/// Requests other tasks make of the writer.
pub enum Command {
    /// A copy of the health table (for metrics).
    Health(oneshot::Sender<HealthTable>),
    /// An admin API request; the reply is the response body.
    Api(ApiRequest, oneshot::Sender<Result<Reply, ApiError>>),
    /// New sources after SIGHUP: applied as one swap, or refused whole.
    Reload(Box<Sources>, oneshot::Sender<Result<(), StateError>>),
    /// An RFC 2136 UPDATE (its TSIG verified): the RCODE to answer, sent once
    /// the change is stored and published.
    Update(Box<crate::state::update::Update>, oneshot::Sender<hickory_proto::op::ResponseCode>),
    /// From the transfer task: store this encoded IXFR journal entry of the
    /// zone, keeping the zone's newest `keep` entries.
    Journal { zone: Name, entry: Vec<u8>, keep: usize },
    /// From the transfer task: a health change altered what a transfer of the
    /// zone sends; advance its serial (stored) so that secondaries follow.
    BumpSerial(Name),
}

/// The state in effect: sources with the overlay applied.
#[derive(Clone)]
struct Effective {
    /// Each zone as its file has it (the base) with the API's RRsets laid over
    /// it: the zone the snapshot serves, but for its SOA serial, which each
    /// publish advances from the overlay's counters.
    zones: Vec<Arc<crate::snapshot::Zone>>,
    pools: Vec<(Arc<PoolDef>, Origin)>,
    /// The pool list changed since the zones were built: their pool nodes are
    /// marked for the old list until the next full publish builds them again.
    pools_moved: bool,
    /// Where each of `pools`, and each of the sources' pools, is by name.
    index: crate::state::PoolIndices,
}

impl Effective {
    fn new(
        sources: &Sources,
        zones: Vec<Arc<crate::snapshot::Zone>>,
        pools: Vec<(Arc<PoolDef>, Origin)>,
        pools_moved: bool,
    ) -> Effective {
        let index = crate::state::PoolIndices::of(sources, &pools);
        Effective { zones, pools, pools_moved, index }
    }

    /// The pools in effect are now `pools` (a list made anew).
    fn set_pools(&mut self, pools: Vec<(Arc<PoolDef>, Origin)>) {
        self.index.pools = crate::state::PoolIndex::of(pools.iter().map(|(p, _)| &p.name));
        self.pools = pools;
    }

    /// The position of pool `name` in effect.
    fn position(&self, name: &Name) -> Option<usize> {
        self.index.pools.find(name, |i| self.pools.get(i).map(|(p, _)| &p.name))
    }
}

pub struct Writer {
    sources: Sources,
    overlay: Overlay,
    store: Box<dyn Store>,
    health: HealthTable,
    prober: Prober,
    snapshot: Arc<ArcSwap<Snapshot>>,
    effective: Effective,
    metrics: Metrics,
    /// Other nodes' health views (`health = "quorum"`; empty otherwise).
    nodes: BTreeMap<String, Votes>,
    cluster: Option<ClusterLink>,
    /// Stored RRset changes that the files refuse (left out of the state in
    /// effect); a DELETE of one is allowed, so that it can be dropped.
    refused: std::collections::BTreeSet<RRsetKey>,
    /// When and by what each zone's served content last changed (`GET /v1/zones`).
    last_change: std::collections::HashMap<Name, LastChange>,
    /// Member state transitions, shared with the admin API.
    events: Events,
    /// The last API writes' results, shared with the status page.
    outcomes: Outcomes,
    /// Since when each pool that has a family with no eligible member (so it
    /// answers its `all_down` policy) has been so, by pool name. Pools with an
    /// eligible member in every family are not held (at 100,000 pools an entry
    /// for each was 8 MB).
    all_down: std::collections::HashMap<String, events::PoolDown>,
    /// The snapshot `all_down` was computed from.
    all_down_seen: std::sync::Weak<Snapshot>,
    /// The pools of that snapshot (a snapshot with the same pools changes nothing here).
    all_down_pools: crate::snapshot::Pools,
    /// Which published pools each probe stream feeds.
    by_probe: probes::PoolsByProbe,
    /// Told after each swap that the transfer task has to look at (one with
    /// zones to transfer, or the one after the last such); it waits on it.
    published: Arc<tokio::sync::Notify>,
    /// This node's health files, as last read.
    files: health::file::FileVotes,
    /// The other nodes with a health view in etcd (what `probe_share` divides over).
    live: std::collections::BTreeSet<String>,
    /// The health files to watch, for their watcher.
    file_paths: watch::Sender<Vec<std::path::PathBuf>>,
    /// What the watcher read (taken by `run`).
    file_updates: Option<mpsc::Receiver<health::file::FileUpdate>>,
    /// Overrides lapsing up to this time have been put out of effect: the time
    /// at which the writer's view of overrides stands (see `pushed`).
    expired_until: std::time::SystemTime,
}

/// The last change to a zone as this server saw it.
#[derive(Debug, Clone, Copy)]
struct LastChange {
    time: std::time::SystemTime,
    source: ChangeSource,
}

/// What changed a zone: its file (loaded at start, or changed by a reload), an
/// API write on this server, or another server's write arriving through etcd.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum ChangeSource {
    File,
    Api,
    Etcd,
    /// An RFC 2136 UPDATE on this server.
    Update,
}

type ZoneMap = rustc_hash::FxHashMap<Box<[u8]>, Arc<crate::snapshot::Zone>>;

/// The writer's side of `[cluster] store = "etcd"`.
pub struct ClusterLink {
    pub node: String,
    pub quorum: bool,
    /// `probe_share`: how many live nodes probe each member (`None`: all).
    pub probe_share: Option<u32>,
    /// What the watch sees.
    pub remote: Option<mpsc::Receiver<Remote>>,
    /// This node's health view, for the task that publishes it.
    pub views: watch::Sender<Votes>,
}

/// Everything the writer is made of, filled in by `app` before the writer starts:
/// the writer has no setters, so nothing about it changes after [`Writer::new`].
pub struct WriterParts {
    pub sources: Sources,
    pub store: Box<dyn Store>,
    pub prober: Prober,
    /// Where snapshots are published; the query path, metrics and redirects read it.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Probe durations and write retries are recorded here.
    pub metrics: Metrics,
    /// With `[cluster] store = "etcd"`: remote changes in, this node's health view out.
    pub cluster: Option<ClusterLink>,
    /// Where member state transitions are recorded; the admin API reads it.
    pub events: Events,
    /// Where API write results are recorded; the status page reads it.
    pub outcomes: Outcomes,
    /// Told after each snapshot swap the transfer task has to look at.
    pub published: Arc<tokio::sync::Notify>,
    /// The health files to watch (out) and what their watcher read (in).
    pub health_files: (watch::Sender<Vec<std::path::PathBuf>>, mpsc::Receiver<health::file::FileUpdate>),
}

impl Writer {
    /// Loads the stored API changes over the sources. The first snapshot is built by
    /// [`Writer::start`], after the first probe round.
    pub async fn new(parts: WriterParts) -> Result<Writer, StateError> {
        let WriterParts {
            sources,
            mut store,
            prober,
            snapshot,
            metrics,
            cluster,
            events,
            outcomes,
            published,
            health_files,
        } = parts;
        let overlay = store.load().await?;
        let (overlay, effective, refused) = fit(&sources, overlay)?;
        let mut writer = Writer {
            sources,
            overlay,
            store,
            health: HealthTable::default(),
            prober,
            snapshot,
            effective,
            metrics,
            nodes: BTreeMap::new(),
            cluster,
            refused: refused.into_iter().collect(),
            last_change: Default::default(),
            events,
            outcomes,
            all_down: Default::default(),
            all_down_seen: Default::default(),
            all_down_pools: Default::default(),
            by_probe: Default::default(),
            published,
            files: Default::default(),
            live: Default::default(),
            file_paths: health_files.0,
            file_updates: Some(health_files.1),
            expired_until: std::time::SystemTime::now(),
        };
        writer.follow_health_files();
        writer.note_file_changes(None);
        Ok(writer)
    }

    /// Runs the first probe round and publishes the first snapshot.
    pub async fn start(&mut self) -> Result<(), StateError> {
        let keys = self.probe_keys();
        if !keys.is_empty() {
            let started = std::time::Instant::now();
            let results = self.prober.first_round(&keys).await;
            let down = results.iter().filter(|r| r.outcome.is_err()).count();
            for r in &results {
                self.observe_probe(r);
                self.health.apply(r);
                if let Err(e) = &r.outcome {
                    warn!(address = %r.key.addr, check = %r.key.spec.label(), reason = %e, "member down at start");
                }
            }
            info!(probes = results.len(), down, took = ?started.elapsed(), "first probe round done");
        }
        self.share_view();
        self.publish()?;
        self.publish_override_gauges();
        self.publish_cert_days();
        self.note_all_down(false);
        Ok(())
    }

    fn pool_defs(&self) -> Vec<Arc<PoolDef>> {
        self.effective.pools.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The probe streams this node runs: every one the pools need, or with
    /// `probe_share` its share of them.
    fn probe_keys(&self) -> Vec<ProbeKey> {
        let mut keys = health::keys_of(&self.pool_defs());
        keys.retain(|k| self.assigned(k));
        keys
    }

    pub async fn run(
        mut self,
        mut probes: mpsc::Receiver<ProbeResult>,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: Shutdown,
    ) {
        let keys = self.probe_keys();
        self.prober.sync(&keys, false);
        let mut remote = self.cluster.as_mut().and_then(|c| c.remote.take());
        let mut files = self.file_updates.take();
        loop {
            let expiry = self.next_expiry();
            tokio::select! {
                Some(r) = async { match remote.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    // Another server's member write looks at its pool, not at every pool.
                    let scope = events::Scope::of_remote(&r);
                    let before = self.member_states_in(&scope);
                    self.remote(r);
                    self.publish_override_gauges();
                    self.record_since_each(&before, &scope, |pool, address| self.remote_reason(pool, address));
                }
                Some(u) = async { match files.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    self.apply_file(u);
                }
                _ = async { match expiry { Some(t) => tokio::time::sleep_until(pushed::deadline_of(t)).await, None => std::future::pending().await } } => {
                    let before = self.member_states();
                    self.expire_overrides();
                    self.record_since(&before, |_, _| "health override expired".into());
                }
                r = probes.recv() => {
                    let Some(first) = r else { return };
                    let started = std::time::Instant::now();
                    let mut changed: HashSet<ProbeKey> = HashSet::new();
                    self.apply_probe(first, &mut changed);
                    while let Ok(more) = probes.try_recv() {
                        self.apply_probe(more, &mut changed);
                    }
                    if !changed.is_empty() {
                        let rebuilt = self.republish_members(&changed);
                        self.note_all_down_of(&rebuilt);
                        self.share_view();
                        // What bench/scale.sh reads: a flip's cost at scale.
                        debug!(probes = changed.len(), pools = rebuilt.len(), took = ?started.elapsed(), "health change published");
                    }
                }
                c = commands.recv() => match c {
                    Some(c) => self.command(c, &mut remote).await,
                    None => return,
                },
                _ = shutdown.recv() => return,
            }
            // Whatever changed above may have left a pool with no member to answer.
            self.note_all_down(true);
        }
    }

    /// Carries out one command from the admin API, the DNS side or the transfer task.
    async fn command(&mut self, c: Command, remote: &mut Option<mpsc::Receiver<Remote>>) {
        match c {
            Command::Health(reply) => {
                let _ = reply.send(self.health.clone());
            }
            Command::Api(req, reply) => {
                let scope = outcomes::is_write(&req).then(|| events::Scope::of(&req));
                let before = scope.as_ref().map(|s| self.member_states_in(s));
                let what = outcomes::describe(&req);
                let pushed = pushed::pushed_reason(&req);
                let r = self.api_settled(req, remote).await;
                if let (Some(before), Some(scope)) = (before, &scope) {
                    match pushed {
                        Some(why) => self.record_since_in(&before, scope, |_, _| why.clone()),
                        None => self.record_since_in(&before, scope, events::api_reason),
                    }
                    self.publish_override_gauges();
                }
                if let Some(what) = what {
                    self.outcomes.write(what, &r);
                }
                // Before the reply, so that a client reads its own write's events.
                self.note_all_down(true);
                let _ = reply.send(r);
            }
            Command::Update(u, reply) => {
                let before = self.member_states();
                let r = self.update_settled(&u, remote).await;
                self.record_since(&before, |_, _| "changed by a DNS UPDATE".into());
                self.note_all_down(true);
                let _ = reply.send(r);
            }
            Command::Reload(sources, reply) => {
                // The same config bytes give the same pools (shared, not read
                // again) and the same health files: no member can change state,
                // and 400,000 members' states need not be taken twice.
                let scope = if sources.config_unchanged { events::Scope::Nothing } else { events::Scope::All };
                let before = self.member_states_in(&scope);
                let r = self.reload(*sources);
                self.record_since_in(&before, &scope, |_, _| "config reload".into());
                self.note_all_down(true);
                let _ = reply.send(r);
            }
            Command::Journal { zone, entry, keep } => {
                if let Err(e) = self.store.journal(&zone, entry, keep).await {
                    warn!(zone = %zone, error = %e, "cannot store the IXFR journal entry");
                }
            }
            Command::BumpSerial(zone) => self.bump_serial(zone).await,
        }
    }

    /// Advances `zone`'s serial by one, stored first (see [`Command::BumpSerial`]).
    async fn bump_serial(&mut self, zone: Name) {
        if let Err(e) = self.store.bump(&zone).await {
            warn!(zone = %zone, error = %e, "cannot advance the serial after a health change");
            return;
        }
        *self.overlay.serials.entry(zone.clone()).or_default() += 1;
        if let Err(e) = self.publish_serial(&zone) {
            warn!(zone = %zone, error = %e, "cannot publish the serial after a health change");
        }
    }

    /// Notes that `zones` changed now, by `source`.
    fn changed(&mut self, zones: impl IntoIterator<Item = Name>, source: ChangeSource) {
        let time = std::time::SystemTime::now();
        for z in zones {
            self.last_change.insert(z, LastChange { time, source });
        }
    }

    /// What is in effect, for planning and for answering reads.
    fn in_effect(&self) -> InEffect<'_> {
        InEffect {
            sources: &self.sources,
            overlay: &self.overlay,
            zones: &self.effective.zones,
            pools: &self.effective.pools,
            index: Some(&self.effective.index),
            refused: &self.refused,
        }
    }
}
