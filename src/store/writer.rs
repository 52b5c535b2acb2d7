//! The one writer: the only task that publishes snapshots.
//!
//! Inputs arrive on bounded channels: probe results, admin API requests and, with
//! etcd, what other servers changed.
//! Probe results already queued are applied as one batch, so a burst of health
//! changes is a single swap. An API change is validated against the current state,
//! stored durably, applied to the overlay and published before its reply is sent,
//! so a client that got a 2xx reads its own write from DNS.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use super::api::{ApiError, ApiRequest, Reply};
use super::cname;
use super::durable::{Observed, Remote, State, Store, StoreError};
use super::etcd::Touched;
use super::overlay::{self, ApiRecordError, Change, MemberFields, Origin, Overlay, StoredRRset};

use crate::config::{ApiPoolConfig, CheckKind, MemberConfig, NameError, PoolDef, parse_fqdn};
use crate::health::{self, ClusterView, HealthTable, ProbeKey, ProbeResult, ProbeSpec, Prober, Votes};
use crate::problem::Problem;
use crate::rdata::RecordError;
use crate::sources::{Clash, Sources, check_pool_placement, clash};
use crate::store::snapshot::Snapshot;
use crate::zone::{self, ZoneCheckError, ZoneData};

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
}

/// The state in effect: sources with the overlay applied.
#[derive(Clone)]
struct Effective {
    zones: Vec<Arc<ZoneData>>,
    pools: Vec<(Arc<PoolDef>, Origin)>,
}

pub struct Writer {
    sources: Sources,
    overlay: Overlay,
    store: Box<dyn Store>,
    health: HealthTable,
    prober: Prober,
    snapshot: Arc<ArcSwap<Snapshot>>,
    effective: Effective,
    metrics: Option<crate::metrics::Metrics>,
    /// Other nodes' health views (`health = "quorum"`; empty otherwise).
    nodes: BTreeMap<String, Votes>,
    cluster: Option<ClusterLink>,
    /// Set when the last API write lost a race with another server's write to the
    /// same zone (etcd): the request is then tried again once this server has seen
    /// the winner's change.
    lost_race: bool,
    /// Stored RRset changes that the files refuse (left out of the state in
    /// effect); a DELETE of one is allowed, so that it can be dropped.
    refused: std::collections::BTreeSet<RRsetKey>,
    /// When and by what each zone's served content last changed (`GET /v1/zones`).
    last_change: std::collections::HashMap<Name, LastChange>,
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
}

type ZoneMap = rustc_hash::FxHashMap<Box<[u8]>, Arc<super::snapshot::Zone>>;

/// How long an API write that lost a race keeps catching up and trying again
/// before it answers 409.
const RACE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The writer's side of `[cluster] store = "etcd"`.
pub struct ClusterLink {
    pub node: String,
    pub quorum: bool,
    /// What the watch sees.
    pub remote: Option<mpsc::Receiver<Remote>>,
    /// This node's health view, for the task that publishes it.
    pub views: watch::Sender<Votes>,
}

impl Writer {
    /// Loads the stored API changes over `sources`. The first snapshot is built by
    /// [`Writer::start`], after the first probe round.
    pub fn new(sources: Sources, mut store: Box<dyn Store>, prober: Prober) -> Result<Writer, StateError> {
        let overlay = store.load()?;
        let (overlay, effective, refused) = fit(&sources, overlay)?;
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot {
            zones: Arc::default(),
            pools: Vec::new(),
            edns_udp_size: sources.config.dns.edns_udp_size,
            regions: Arc::default(),
            geoip: None,
        }));
        let mut writer = Writer {
            sources,
            overlay,
            store,
            health: HealthTable::default(),
            prober,
            snapshot,
            effective,
            metrics: None,
            nodes: BTreeMap::new(),
            cluster: None,
            lost_race: false,
            refused: refused.into_iter().collect(),
            last_change: Default::default(),
        };
        writer.note_file_changes(None);
        Ok(writer)
    }

    /// Joins a cluster: remote changes come from the watch, the health view goes out.
    pub fn set_cluster(&mut self, link: ClusterLink) {
        self.cluster = Some(link);
    }

    fn view(&self) -> ClusterView<'_> {
        ClusterView { local: &self.health, nodes: &self.nodes }
    }

    /// Hands this node's current view to the publishing task, if it changed.
    fn share_view(&self) {
        if let Some(c) = &self.cluster {
            let view = self.health.view();
            c.views.send_if_modified(|v| {
                if *v == view {
                    return false;
                }
                *v = view;
                true
            });
        }
    }

    /// Applies what another server changed (or what a reconnect loaded).
    fn remote(&mut self, r: Remote) {
        match self.store.observe(r) {
            Observed::Nothing => {}
            Observed::Lost => {
                if !self.nodes.is_empty() {
                    let before = std::mem::take(&mut self.nodes);
                    warn!("etcd out of reach: health decided by this node's probes alone");
                    let votes = changed_votes(&before, &self.nodes);
                    self.republish_members(|k| votes.contains(&k.id()));
                }
            }
            Observed::Full(state) => {
                self.set_nodes(state.nodes);
                match fit(&self.sources, state.overlay) {
                    Ok((overlay, e, refused)) => {
                        self.refused = refused.into_iter().collect();
                        let before = self.overlay.serials.clone();
                        self.put_in_effect(overlay, e);
                        let after = &self.overlay.serials;
                        let moved: Vec<Name> = before
                            .keys()
                            .chain(after.keys())
                            .filter(|z| before.get(*z) != after.get(*z))
                            .cloned()
                            .collect();
                        self.changed(moved, ChangeSource::Etcd);
                    }
                    Err(e) => error!(error = %e, "cannot derive the state from the files alone"),
                }
            }
            Observed::Changes(list) => {
                // Health views and write marks change nothing served by themselves.
                let api = list.iter().any(|(k, _)| super::etcd::is_api_key(k));
                // Applied to a copy: what is served and the overlay it comes from
                // stay one, even when this server's files refuse a change.
                let before = self.nodes.clone();
                let overlay = if api { self.overlay.clone() } else { Overlay::default() };
                let mut st = State { overlay, nodes: std::mem::take(&mut self.nodes) };
                for (k, v) in &list {
                    if let Err(e) = st.apply_key(k, v.as_deref()) {
                        warn!("{e}");
                    }
                }
                self.set_nodes(st.nodes);
                if api {
                    info!(keys = list.len(), "applying changes from etcd");
                    self.apply_remote(st.overlay, &list);
                }
                let votes = changed_votes(&before, &self.nodes);
                if !votes.is_empty() {
                    self.republish_members(|k| votes.contains(&k.id()));
                }
            }
        }
    }

    /// Puts another server's API changes (`overlay`, made from `list`) in effect,
    /// re-deriving and rebuilding only what they touch.
    fn apply_remote(&mut self, overlay: Overlay, list: &[(String, Option<Vec<u8>>)]) {
        let api_keys = || list.iter().filter(|(k, _)| super::etcd::is_api_key(k));
        let touched = Touched::of(api_keys().map(|(k, _)| k.as_str()));
        match self.derive(&overlay, &touched) {
            Ok(e) => self.put_in_effect_touched(overlay, e, &touched),
            Err(e) => {
                // Another server accepted a change that this server's config or
                // zone files refuse (they differ). Take the changes one key at a
                // time and leave out only what does not fit, so that later changes
                // keep arriving.
                error!(error = %e, "a change from etcd conflicts with this server's config or zone files");
                let keys: Vec<(String, Option<Vec<u8>>)> = api_keys().cloned().collect();
                let (overlay, e, touched, refused) =
                    fit_keys(&self.sources, self.overlay.clone(), self.effective.clone(), &keys);
                self.refused.extend(refused);
                self.put_in_effect_touched(overlay, e, &touched);
            }
        }
    }

    /// The state in effect with `overlay`, re-deriving only what `t` touches.
    fn derive(&self, overlay: &Overlay, t: &Touched) -> Result<Effective, StateError> {
        derive(&self.sources, &self.effective, overlay, t)
    }

    /// Makes `overlay` and `effective` (derived from it, differing from the state
    /// in effect only in what `t` touches) the state in effect, and publishes it
    /// rebuilding only the touched zones and pools.
    fn put_in_effect_touched(&mut self, overlay: Overlay, effective: Effective, t: &Touched) {
        // Compared with what is published (zones index pools by position there).
        let published = self.snapshot.load_full();
        let same_pool_names = published.pools.len() == effective.pools.len()
            && published.pools.iter().zip(&effective.pools).all(|(p, (d, _))| p.def.name == d.name);
        if !same_pool_names {
            // Pools created or deleted: the pool index of every zone changes.
            return self.put_in_effect(overlay, effective);
        }
        self.overlay = overlay;
        self.effective = effective;
        self.changed(t.records.iter().chain(&t.serials).cloned(), ChangeSource::Etcd);
        if !t.pools.is_empty() {
            self.follow_pools();
            let prev = self.snapshot.load_full();
            let pools = self.pools_rebuilt(&prev, |name| t.pools.contains(name));
            self.snapshot.store(Arc::new(prev.with_parts(prev.zones.clone(), pools)));
        }
        for z in &t.records {
            if let Err(e) = self.publish_zone(z) {
                error!(zone = %z, error = %e, "cannot publish the zone from etcd");
            }
        }
        for z in t.serials.difference(&t.records) {
            if let Err(e) = self.publish_serial(z) {
                error!(zone = %z, error = %e, "cannot publish the serial from etcd");
            }
        }
    }

    /// Rebuilds the pools with a member whose probe `changed` says changed
    /// (its result here, or another node's vote); zones are shared.
    fn republish_members(&mut self, changed: impl Fn(&ProbeKey) -> bool) {
        let prev = self.snapshot.load_full();
        let view = self.view();
        let next = super::rebuild_pools(&prev, &view, |def| {
            if def.health.check == CheckKind::None {
                return false;
            }
            let spec = Arc::new(ProbeSpec::of(def));
            def.members.iter().any(|m| changed(&ProbeKey { addr: m.address, spec: spec.clone() }))
        });
        self.snapshot.store(Arc::new(next));
    }

    /// The published pools with those `which` names rebuilt from their
    /// definitions in effect (and this node's view of health).
    fn pools_rebuilt(&self, prev: &Snapshot, which: impl Fn(&Name) -> bool) -> Vec<Arc<super::snapshot::Pool>> {
        let view = self.view();
        let defs: std::collections::HashMap<&Name, &Arc<PoolDef>> =
            self.effective.pools.iter().map(|(p, _)| (&p.name, p)).collect();
        prev.pools
            .iter()
            .map(|p| match defs.get(&p.def.name) {
                Some(d) if which(&p.def.name) => {
                    Arc::new(super::snapshot::build_pool((*d).clone(), &view, Some(p), &prev.regions))
                }
                _ => p.clone(),
            })
            .collect()
    }

    /// Probes follow the pools in effect: new members are probed at once,
    /// removed ones stop and are forgotten. Returns the probes started.
    fn follow_pools(&mut self) -> usize {
        let keys = self.probe_keys();
        let started = self.prober.sync(&keys, true).len();
        self.health.retain(&keys);
        self.share_view();
        started
    }

    /// Makes `overlay` (with `effective`, derived from it) the state in effect:
    /// probes follow its pools, and it is published.
    fn put_in_effect(&mut self, overlay: Overlay, effective: Effective) {
        self.overlay = overlay;
        self.effective = effective;
        self.follow_pools();
        if let Err(e) = self.publish() {
            error!(error = %e, "cannot publish the state from etcd");
        }
    }

    fn set_nodes(&mut self, mut nodes: BTreeMap<String, Votes>) {
        match &self.cluster {
            Some(c) if c.quorum => {
                nodes.remove(&c.node);
                self.nodes = nodes;
            }
            _ => self.nodes.clear(),
        }
    }

    /// Probe durations are recorded here from now on.
    pub fn set_metrics(&mut self, m: crate::metrics::Metrics) {
        self.metrics = Some(m);
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
                    warn!(address = %r.key.addr, check = r.key.spec.check.as_str(), reason = %e, "member down at start");
                }
            }
            info!(probes = results.len(), down, took = ?started.elapsed(), "first probe round done");
        }
        self.share_view();
        self.publish()
    }

    pub fn snapshot(&self) -> Arc<ArcSwap<Snapshot>> {
        self.snapshot.clone()
    }

    fn pool_defs(&self) -> Vec<Arc<PoolDef>> {
        self.effective.pools.iter().map(|(p, _)| p.clone()).collect()
    }

    fn probe_keys(&self) -> Vec<ProbeKey> {
        health::keys_of(&self.pool_defs())
    }

    /// Builds and publishes a full snapshot of the effective state.
    fn publish(&mut self) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let pools = self.pool_defs();
        let next = super::build(
            &self.effective.zones,
            &pools,
            &self.view(),
            &self.overlay.serials,
            super::Settings {
                edns_udp_size: self.sources.config.dns.edns_udp_size,
                regions: Arc::new(self.sources.config.regions.clone()),
                geoip: self.sources.geoip.clone(),
            },
            Some(&prev),
        )?;
        self.snapshot.store(Arc::new(next));
        Ok(())
    }

    pub async fn run(
        mut self,
        mut probes: mpsc::Receiver<ProbeResult>,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let keys = self.probe_keys();
        self.prober.sync(&keys, false);
        let mut remote = self.cluster.as_mut().and_then(|c| c.remote.take());
        loop {
            tokio::select! {
                Some(r) = async { match remote.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    self.remote(r);
                }
                r = probes.recv() => {
                    let Some(first) = r else { return };
                    let mut changed: HashSet<ProbeKey> = HashSet::new();
                    self.apply_probe(first, &mut changed);
                    while let Ok(more) = probes.try_recv() {
                        self.apply_probe(more, &mut changed);
                    }
                    if !changed.is_empty() {
                        self.republish_members(|k| changed.contains(k));
                        self.share_view();
                    }
                }
                c = commands.recv() => match c {
                    Some(Command::Health(reply)) => { let _ = reply.send(self.health.clone()); }
                    Some(Command::Api(req, reply)) => {
                        let r = self.api_settled(req, &mut remote).await;
                        let _ = reply.send(r);
                    }
                    Some(Command::Reload(sources, reply)) => {
                        let r = self.reload(*sources);
                        let _ = reply.send(r);
                    }
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Replaces the sources (config and zone files) in one swap. On any error the
    /// old state stays in effect.
    fn reload(&mut self, sources: Sources) -> Result<(), StateError> {
        let effective = effective(&sources, &self.overlay)?;
        let old = &self.sources.config;
        let new = &sources.config;
        if old.dns.listen != new.dns.listen
            || old.admin.listen != new.admin.listen
            || old.dns.threads != new.dns.threads
        {
            warn!("listen addresses and threads change only on restart; the rest of the new config is in effect");
        }
        if old.admin.state_dir != new.admin.state_dir {
            warn!("state_dir changes only on restart");
        }
        if old.admin.ui_public != new.admin.ui_public {
            warn!("[admin] ui_public changes only on restart");
        }
        let old_sources = std::mem::replace(&mut self.sources, sources);
        let old_effective = std::mem::replace(&mut self.effective, effective);
        if let Err(e) = self.publish() {
            self.sources = old_sources;
            self.effective = old_effective;
            return Err(e);
        }
        self.note_file_changes(Some(&old_sources));
        let started = self.follow_pools();
        info!(zones = self.effective.zones.len(), pools = self.effective.pools.len(), new_probes = started, "reloaded");
        Ok(())
    }

    /// Notes that `zones` changed now, by `source`.
    fn changed(&mut self, zones: impl IntoIterator<Item = Name>, source: ChangeSource) {
        let time = std::time::SystemTime::now();
        for z in zones {
            self.last_change.insert(z, LastChange { time, source });
        }
    }

    /// Notes as changed by their files the zones whose file content differs from
    /// `before`'s (every zone at start), and forgets zones no longer served.
    fn note_file_changes(&mut self, before: Option<&Sources>) {
        let differs = |z: &ZoneData| {
            let Some(old) = before.and_then(|b| b.zones.iter().find(|o| o.origin == z.origin)) else { return true };
            old.records.len() != z.records.len()
                || old
                    .records
                    .iter()
                    .zip(&z.records)
                    .any(|(a, b)| (&a.name, a.ttl, &a.rdata) != (&b.name, b.ttl, &b.rdata))
        };
        let changed: Vec<Name> = self.sources.zones.iter().filter(|z| differs(z)).map(|z| z.origin.clone()).collect();
        let served: HashSet<&Name> = self.sources.zones.iter().map(|z| &z.origin).collect();
        self.last_change.retain(|z, _| served.contains(z));
        self.changed(changed, ChangeSource::File);
    }

    fn observe_probe(&self, r: &ProbeResult) {
        if let Some(m) = &self.metrics {
            let check = crate::metrics::CheckLabel { check: r.key.spec.check.as_str().to_string() };
            m.probe_duration.get_or_create(&check).observe(r.took.as_secs_f64());
        }
    }

    fn apply_probe(&mut self, r: ProbeResult, changed: &mut HashSet<ProbeKey>) {
        self.observe_probe(&r);
        if self.health.apply(&r) {
            let up = self.health.members.get(&r.key).and_then(|h| h.flap.up).unwrap_or(false);
            let pools = self.pools_with(&r.key);
            let reason = match &r.outcome {
                Ok(()) => format!("{} consecutive passes", r.key.spec.rise),
                Err(e) => e.to_string(),
            };
            if up {
                info!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member up");
            } else {
                warn!(pools = %pools, address = %r.key.addr, check = r.key.spec.check.as_str(), %reason, "member down");
            }
            changed.insert(r.key);
        }
    }

    fn pools_with(&self, key: &ProbeKey) -> String {
        let names: Vec<String> = self
            .pool_defs()
            .iter()
            .filter(|p| p.members.iter().any(|m| m.address == key.addr) && ProbeSpec::of(p) == *key.spec)
            .map(|p| p.name.to_ascii())
            .collect();
        names.join(",")
    }

    // -----------------------------------------------------------------------
    // Admin API.

    /// Answers an API request. A write that lost a race with another server's
    /// write to the same zone is not refused at once: this server waits for the
    /// winner's change on the watch, applies it, and validates and stores the
    /// request again on the new state (so two automation clients writing through
    /// two servers both succeed, and a write that now conflicts with the winner's
    /// gets the same answer it would have got in sequence). Only a race lost for
    /// `RACE_RETRY_FOR` answers 409.
    async fn api_settled(
        &mut self,
        req: ApiRequest,
        remote: &mut Option<mpsc::Receiver<Remote>>,
    ) -> Result<Reply, ApiError> {
        let deadline = tokio::time::Instant::now() + RACE_RETRY_FOR;
        loop {
            self.lost_race = false;
            let r = self.api(req.clone());
            if !self.lost_race || tokio::time::Instant::now() >= deadline {
                return r;
            }
            let Some(rx) = remote.as_mut() else { return r };
            if let Some(m) = &self.metrics {
                m.admin_write_retries.inc();
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(first)) => {
                    self.remote(first);
                    while let Ok(more) = rx.try_recv() {
                        self.remote(more);
                    }
                }
                _ => return r,
            }
        }
    }

    fn api(&mut self, req: ApiRequest) -> Result<Reply, ApiError> {
        match req {
            ApiRequest::ListPools => {
                let all: Vec<Value> = self.effective.pools.iter().map(|p| self.pool_json(p)).collect();
                Ok(Reply::Ok(Value::Array(all)))
            }
            ApiRequest::GetPool(name) => {
                let name = pool_name(&name)?;
                let p = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
                Ok(Reply::Ok(self.pool_json(p)))
            }
            ApiRequest::ListZones => {
                let all: Vec<Value> = self.effective.zones.iter().map(|z| self.zone_summary_json(z)).collect();
                Ok(Reply::Ok(Value::Array(all)))
            }
            ApiRequest::GetRecords(origin) => {
                let z = self.find_zone(&origin)?;
                Ok(Reply::Ok(self.records_json(&z)))
            }
            other => {
                let deletes = matches!(
                    other,
                    ApiRequest::DeletePool(_)
                        | ApiRequest::DeleteMember(..)
                        | ApiRequest::DeleteRRset(..)
                        | ApiRequest::DeletePoolOverride(_)
                        | ApiRequest::DeleteMemberOverride(..)
                        | ApiRequest::DeleteRRsetOverride(..)
                );
                // Nothing to store: a DELETE of what is already deleted.
                let Some((change, zone, created)) = self.plan(other)? else {
                    return Ok(Reply::NoContent);
                };
                self.commit(change.clone(), &zone)?;
                if let Change::DeleteRRset { zone, name, rtype } | Change::RevertRRset { zone, name, rtype } = &change {
                    self.refused.remove(&(zone.clone(), name.clone(), *rtype));
                }
                if deletes {
                    return Ok(Reply::NoContent);
                }
                let body = match &change {
                    Change::PutPool(def) => self.find_pool(&def.name).map(|p| self.pool_json(p)).unwrap_or(Value::Null),
                    Change::PutMember { pool, .. } => {
                        self.find_pool(pool).map(|p| self.pool_json(p)).unwrap_or(Value::Null)
                    }
                    Change::PutRRset { zone, name, rtype, set } => {
                        let over = json!({"ttl": set.ttl, "data": set.data});
                        json!({"name": name.to_ascii(), "type": rtype.to_string(), "ttl": set.ttl, "data": set.data,
                               "source": "api", "file": self.file_rrset_json(zone, name, *rtype), "override": over})
                    }
                    _ => return Ok(Reply::NoContent),
                };
                Ok(if created { Reply::Created(body) } else { Reply::Ok(body) })
            }
        }
    }

    /// Stores, applies and publishes a validated change. The work is proportional
    /// to what the change touches: an RRset change re-derives one zone, a member
    /// change one pool (plus the zone's SOA serial).
    fn commit(&mut self, change: Change, zone: &Name) -> Result<(), ApiError> {
        // Everything that can fail is tried before anything is stored.
        let new_zone = match &change {
            Change::PutRRset { .. } | Change::DeleteRRset { .. } | Change::RevertRRset { .. } => {
                Some(self.zone_with(&change, zone).map_err(|e| ApiError::conflict(e.to_string()))?)
            }
            _ => None,
        };
        if let (Some(z), Change::RevertRRset { name, rtype, .. }) = (&new_zone, &change) {
            self.check_restored(z, name, *rtype)?;
        }
        tokio::task::block_in_place(|| self.store.apply(&change, zone)).map_err(|e| match e {
            StoreError::Conflict(m) => {
                self.lost_race = true;
                ApiError::conflict(format!("change not stored: {m}"))
            }
            e => ApiError::Unavailable(format!("change not stored: {e}")),
        })?;
        let pools_before: Vec<Name> = self.effective.pools.iter().map(|(p, _)| p.name.clone()).collect();
        self.overlay.apply(&change, zone);
        let published = if let Some(z) = new_zone {
            if let Some(slot) = self.effective.zones.iter_mut().find(|x| x.origin == *zone) {
                *slot = z;
            }
            self.publish_zone(zone)
        } else {
            self.effective.pools = overlay::effective_pools(&self.sources, &self.overlay);
            let pools_after: Vec<Name> = self.effective.pools.iter().map(|(p, _)| p.name.clone()).collect();
            self.follow_pools();
            if pools_after == pools_before {
                let name = match &change {
                    Change::PutPool(d) => d.name.clone(),
                    Change::PutMember { pool, .. }
                    | Change::DeleteMember { pool, .. }
                    | Change::RevertMember { pool, .. }
                    | Change::RevertPool { pool, .. } => pool.clone(),
                    _ => zone.clone(),
                };
                match self.find_pool(&name) {
                    Some(_) => self.publish_pool(&name, zone),
                    // An override of a pool not in effect (it left the config): only the serial.
                    None => self.publish_serial(zone),
                }
            } else {
                self.publish()
            }
        };
        // The change is stored; a failure to publish it is a bug, not a bad request.
        published.map_err(|e| ApiError::Internal(e.to_string()))?;
        self.changed([zone.clone()], ChangeSource::Api);
        info!(change = ?change_label(&change), zone = %zone, "admin change applied");
        Ok(())
    }

    /// The zone `origin` with an RRset change applied, checked.
    fn zone_with(&self, change: &Change, origin: &Name) -> Result<Arc<ZoneData>, StateError> {
        let base = self.effective.zones.iter().find(|z| z.origin == *origin).ok_or(StateError::NoZone)?;
        let (name, rtype) = match change {
            Change::PutRRset { name, rtype, .. }
            | Change::DeleteRRset { name, rtype, .. }
            | Change::RevertRRset { name, rtype, .. } => (name, *rtype),
            _ => return Ok(base.clone()),
        };
        let mut records: Vec<_> =
            base.records.iter().filter(|r| !(r.name == *name && r.rtype() == rtype)).cloned().collect();
        match change {
            Change::PutRRset { set, .. } => records.extend(overlay::api_records(name, rtype, set, origin)?),
            Change::RevertRRset { .. } => {
                // The zone file's RRset, if it has one, shows again.
                let file = self.sources.zones.iter().find(|z| z.origin == *origin).ok_or(StateError::NoZone)?;
                records.extend(file.records.iter().filter(|r| r.name == *name && r.rtype() == rtype).cloned());
            }
            _ => {}
        }
        let z = ZoneData { origin: base.origin.clone(), file: base.file.clone(), records };
        zone::check_zone(&z)?;
        Ok(Arc::new(z))
    }

    /// Publishes a change to one zone's records: that zone is rebuilt, the rest shared.
    fn publish_zone(&mut self, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let index: std::collections::BTreeMap<Name, u32> =
            prev.pools.iter().enumerate().map(|(i, p)| (p.def.name.clone(), i as u32)).collect();
        let data = self.effective.zones.iter().find(|z| z.origin == *origin).ok_or(StateError::NoZone)?;
        let bump = self.overlay.serials.get(origin).copied().unwrap_or(0);
        let zone = super::snapshot::build_zone(data, bump, &index)?;
        let mut zones = (*prev.zones).clone();
        zones.insert(zone.origin_wire.clone(), Arc::new(zone));
        self.snapshot.store(Arc::new(prev.with_parts(Arc::new(zones), prev.pools.clone())));
        Ok(())
    }

    /// Publishes a change to one pool whose name set is unchanged: the pool is
    /// rebuilt and its zone's serial advanced, in one swap; every node is shared.
    fn publish_pool(&mut self, pool: &Name, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        self.find_pool(pool).ok_or(StateError::NoPool)?;
        let pools = self.pools_rebuilt(&prev, |name| name == pool);
        let zones = self.zones_with_serial(&prev, origin)?;
        self.snapshot.store(Arc::new(prev.with_parts(Arc::new(zones), pools)));
        Ok(())
    }

    /// Publishes the zone's current serial (its counter of changes); the zone's
    /// nodes are shared.
    fn publish_serial(&mut self, origin: &Name) -> Result<(), StateError> {
        let prev = self.snapshot.load_full();
        let zones = self.zones_with_serial(&prev, origin)?;
        self.snapshot.store(Arc::new(prev.with_parts(Arc::new(zones), prev.pools.clone())));
        Ok(())
    }

    /// `prev`'s zones with `origin`'s SOA serial re-encoded from its counter.
    fn zones_with_serial(&self, prev: &Snapshot, origin: &Name) -> Result<ZoneMap, StateError> {
        let mut zones = (*prev.zones).clone();
        let key = super::snapshot::wire(origin);
        if let (Some(z), Some(data)) = (zones.get(&key), self.effective.zones.iter().find(|z| z.origin == *origin)) {
            let base = data.records.iter().find_map(|r| match &r.rdata {
                hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
            let bump = self.overlay.serials.get(origin).copied().unwrap_or(0);
            let next = z.with_serial_bump(base.unwrap_or(0), bump)?;
            zones.insert(key, Arc::new(next));
        }
        Ok(zones)
    }

    fn find_pool(&self, name: &Name) -> Option<&(Arc<PoolDef>, Origin)> {
        self.effective.pools.iter().find(|(p, _)| p.name == *name)
    }

    fn find_zone(&self, origin: &str) -> Result<Arc<ZoneData>, ApiError> {
        let origin = parse_fqdn(origin).map_err(|e| ApiError::unprocessable(format!("zone: {e}")))?;
        self.effective
            .zones
            .iter()
            .find(|z| z.origin == origin)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no zone {origin}")))
    }

    fn zone_of(&self, name: &Name) -> Option<&Arc<ZoneData>> {
        self.effective.zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels())
    }

    /// Validates a write and turns it into a stored change, the zone it belongs
    /// to, and whether it creates something; `None` when there is nothing to
    /// store (a DELETE of what is already deleted).
    fn plan(&self, req: ApiRequest) -> Result<Option<Planned>, ApiError> {
        match req {
            ApiRequest::PutPool(name, body) => self.plan_put_pool(&name, &body).map(Some),
            ApiRequest::DeletePool(name) => {
                let name = pool_name(&name)?;
                let (_, origin) =
                    self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
                if *origin == Origin::Config {
                    return Err(ApiError::conflict(format!(
                        "pool {name} is defined in the config file; remove it there and reload"
                    )));
                }
                Ok(Some((Change::DeletePool(name.clone()), self.pool_zone(&name), false)))
            }
            ApiRequest::DeletePoolOverride(name) => self.plan_revert_pool(&name).map(Some),
            ApiRequest::PutMember(pool, address, body) => self.plan_put_member(&pool, &address, &body).map(Some),
            ApiRequest::DeleteMember(pool, address) => self.plan_delete_member(&pool, &address),
            ApiRequest::DeleteMemberOverride(pool, address) => self.plan_revert_member(&pool, &address).map(Some),
            ApiRequest::PutRRset(origin, name, rtype, body) => {
                self.plan_put_rrset(&origin, &name, &rtype, &body).map(Some)
            }
            ApiRequest::DeleteRRset(origin, name, rtype) => self.plan_delete_rrset(&origin, &name, &rtype),
            ApiRequest::DeleteRRsetOverride(origin, name, rtype) => {
                self.plan_revert_rrset(&origin, &name, &rtype).map(Some)
            }
            ApiRequest::ListPools | ApiRequest::GetPool(_) | ApiRequest::ListZones | ApiRequest::GetRecords(_) => {
                Err(ApiError::NotAllowed("not a write".into()))
            }
        }
    }

    /// A zone file RRset that a revert shows again is held to the rules of a PUT:
    /// no pool behind it, no CNAME loop through it (the file was checked without
    /// the API changes made since).
    fn check_restored(&self, z: &ZoneData, name: &Name, rtype: RecordType) -> Result<(), ApiError> {
        let mut restored = z.records.iter().filter(|r| r.name == *name && r.rtype() == rtype).peekable();
        if restored.peek().is_none() {
            return Ok(());
        }
        self.check_pools_clash(z, name, rtype)?;
        if let Some(hickory_proto::rr::RData::CNAME(target)) = restored.next().map(|r| &r.rdata) {
            if let Some(chain) = cname::loop_closed_by(z, name, &target.0) {
                return Err(ApiError::unprocessable(format!(
                    "the zone file's CNAME at {name} would make a loop: {}",
                    cname::show(&chain)
                )));
            }
        }
        Ok(())
    }

    /// An RRset write keeps every pool of the zone placed as the zone file must
    /// (one rule for both: [`clash`]).
    fn check_pools_clash(&self, z: &ZoneData, name: &Name, rtype: RecordType) -> Result<(), ApiError> {
        for (def, _) in &self.effective.pools {
            let Some(c) = clash(&def.name, name, rtype, &z.origin) else { continue };
            if self.zone_of(&def.name).is_none_or(|pz| pz.origin != z.origin) {
                continue; // the pool is in a zone below this one
            }
            return Err(ApiError::conflict(match c {
                Clash::Answers => format!("{name} is a pool: its {rtype} answers come from its members"),
                Clash::Cut => format!(
                    "refused: NS at {name} would put pool {} at or below a zone cut, where it would \
                     answer with a referral (a zone file may not do this either); delete the pool first",
                    def.name
                ),
            }));
        }
        Ok(())
    }

    /// The zone a pool's changes count in (its serial advances).
    fn pool_zone(&self, pool: &Name) -> Name {
        self.zone_of(pool).map(|z| z.origin.clone()).unwrap_or(pool.clone())
    }

    fn plan_put_pool(&self, name: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let name = pool_name(name)?;
        if self.sources.pools.iter().any(|p| p.name == name) {
            return Err(ApiError::conflict(format!(
                "pool {name} is defined in the config file; change its members with PUT /v1/pools/{name}/members/ADDRESS"
            )));
        }
        let cfg: ApiPoolConfig = parse_json(body)?;
        let def = cfg.into_def(name.clone());
        validate_pool(&def, &self.sources.config.regions)?;
        check_pool_placement(&def, &self.effective.zones).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        let created = self.find_pool(&name).is_none();
        Ok((Change::PutPool(Box::new(def)), self.pool_zone(&name), created))
    }

    /// The config pool `pool` with its stored member overrides, the one of
    /// `address` replaced by `next` (`None`: no override): what a member change
    /// would put in effect.
    fn config_pool_with(&self, pool: &Name, address: IpAddr, next: Option<&Option<MemberFields>>) -> Option<PoolDef> {
        let file = self.sources.pools.iter().find(|p| p.name == *pool)?;
        let others = self.overlay.member_overrides(pool).filter(|(a, _)| *a != address);
        let mut all: Vec<(IpAddr, &Option<MemberFields>)> = others.collect();
        all.extend(next.map(|o| (address, o)));
        Some(overlay::pool_with_overrides(file, all))
    }

    /// The member `address` as the config file has it.
    fn file_member(&self, pool: &Name, address: IpAddr) -> Option<&MemberConfig> {
        let file = self.sources.pools.iter().find(|p| p.name == *pool)?;
        file.members.iter().find(|m| m.address == address)
    }

    fn plan_put_member(&self, pool: &str, address: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let (def, origin) = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
        let patch: MemberFields = parse_json(body)?;
        let created = !def.members.iter().any(|m| m.address == address);
        let zone = self.pool_zone(&name);
        if *origin == Origin::Api {
            let mut next = (**def).clone();
            let member = patch.over(address, def.members.iter().find(|m| m.address == address));
            match next.members.iter_mut().find(|m| m.address == address) {
                Some(m) => *m = member,
                None => next.members.push(member),
            }
            validate_pool(&next, &self.sources.config.regions)?;
            return Ok((Change::PutPool(Box::new(next)), zone, created));
        }
        // The override records only the fields ever set through the API (a
        // stored deletion is replaced): the others follow the config.
        let stored = match self.overlay.members.get(&(name.clone(), address)) {
            Some(Some(f)) => f.clone(),
            _ => MemberFields::default(),
        };
        let fields = stored.merged(&patch);
        if let Some(next) = self.config_pool_with(&name, address, Some(&Some(fields.clone()))) {
            validate_pool(&next, &self.sources.config.regions)?;
        }
        Ok((Change::PutMember { pool: name, address, fields }, zone, created))
    }

    /// A member of a config pool that the config has is hidden by a stored
    /// deletion (repeating it stores nothing); one that exists only through the
    /// API loses its override.
    fn plan_delete_member(&self, pool: &str, address: &str) -> Result<Option<Planned>, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let (def, origin) = self.find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
        let zone = self.pool_zone(&name);
        if *origin == Origin::Config && self.overlay.members.get(&(name.clone(), address)) == Some(&None) {
            return Ok(None);
        }
        if !def.members.iter().any(|m| m.address == address) {
            return Err(ApiError::not_found(format!("pool {name} has no member {address}")));
        }
        let mut next = (**def).clone();
        next.members.retain(|m| m.address != address);
        validate_pool(&next, &self.sources.config.regions)?;
        let change = match origin {
            Origin::Api => Change::PutPool(Box::new(next)),
            Origin::Config if self.file_member(&name, address).is_some() => {
                Change::DeleteMember { pool: name, address }
            }
            Origin::Config => Change::RevertMember { pool: name, address },
        };
        Ok(Some((change, zone, false)))
    }

    /// `DELETE /v1/pools/{name}/members/{address}/override`: the member as the
    /// config has it (gone if it does not). A member of an API pool has no file
    /// version: it is removed.
    fn plan_revert_member(&self, pool: &str, address: &str) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let address = member_address(address)?;
        let zone = self.pool_zone(&name);
        if let Some((def, Origin::Api)) = self.find_pool(&name) {
            if !def.members.iter().any(|m| m.address == address) {
                return Err(ApiError::not_found(format!("pool {name} has no member {address}")));
            }
            let mut next = (**def).clone();
            next.members.retain(|m| m.address != address);
            validate_pool(&next, &self.sources.config.regions)?;
            return Ok((Change::PutPool(Box::new(next)), zone, false));
        }
        if !self.overlay.members.contains_key(&(name.clone(), address)) {
            return Err(ApiError::not_found(format!("member {address} of pool {name} has no override")));
        }
        if let Some(next) = self.config_pool_with(&name, address, None) {
            validate_pool(&next, &self.sources.config.regions)?;
        }
        Ok((Change::RevertMember { pool: name, address }, zone, false))
    }

    /// `DELETE /v1/pools/{name}/override`: the pool as the config has it (every
    /// member override removed), or gone if it exists only through the API.
    fn plan_revert_pool(&self, pool: &str) -> Result<Planned, ApiError> {
        let name = pool_name(pool)?;
        let members: Vec<IpAddr> = self.overlay.member_overrides(&name).map(|(a, _)| a).collect();
        if members.is_empty() && !self.overlay.pools.contains_key(&name) {
            return Err(ApiError::not_found(format!("pool {name} has no override")));
        }
        Ok((Change::RevertPool { pool: name.clone(), members }, self.pool_zone(&name), false))
    }

    fn plan_put_rrset(&self, origin: &str, name: &str, rtype: &str, body: &[u8]) -> Result<Planned, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        let set: RRsetBody = parse_json(body)?;
        if set.data.is_empty() {
            return Err(ApiError::unprocessable("data: at least one record is needed (DELETE removes an RRset)"));
        }
        if set.ttl > i32::MAX as u32 {
            return Err(ApiError::unprocessable("ttl: above 2^31-1"));
        }
        // Stored and shown in the one presentation form GET renders, so a
        // read-then-write gives back the same octets.
        let data =
            crate::rdata::canonical(rtype, &set.data, &z.origin).map_err(|e| ApiError::unprocessable(e.to_string()))?;
        self.check_pools_clash(&z, &name, rtype)?;
        if rtype == RecordType::CNAME {
            let target = data
                .first()
                .map(|d| crate::rdata::parse_text(rtype, d, &z.origin))
                .transpose()
                .map_err(|e| ApiError::unprocessable(format!("data[0]: {e}")))?;
            if let Some(hickory_proto::rr::RData::CNAME(target)) = target {
                if let Some(chain) = cname::loop_closed_by(&z, &name, &target.0) {
                    return Err(ApiError::unprocessable(format!(
                        "data[0]: this CNAME would make a loop: {}",
                        cname::show(&chain)
                    )));
                }
            }
        }
        let created = !z.records.iter().any(|r| r.name == name && r.rtype() == rtype);
        let change = Change::PutRRset { zone: z.origin.clone(), name, rtype, set: StoredRRset { ttl: set.ttl, data } };
        Ok((change, z.origin.clone(), created))
    }

    /// Whether the zone file of `origin` has an RRset `name`/`rtype`.
    fn file_has_rrset(&self, origin: &Name, name: &Name, rtype: RecordType) -> bool {
        let file = self.sources.zones.iter().find(|z| z.origin == *origin);
        file.is_some_and(|z| z.records.iter().any(|r| r.name == *name && r.rtype() == rtype))
    }

    /// A zone file's RRset is hidden by a stored deletion (repeating it stores
    /// nothing); one that exists only through the API loses its override (also
    /// one the files refuse, which is not in effect).
    fn plan_delete_rrset(&self, origin: &str, name: &str, rtype: &str) -> Result<Option<Planned>, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        if rtype == RecordType::NS && name == z.origin {
            return Err(ApiError::conflict(format!(
                "refused: deleting the NS RRset at the apex of {name} would leave the zone without \
                 name servers, and a zone must have NS records at its apex; replace it with PUT instead"
            )));
        }
        let key = (z.origin.clone(), name.clone(), rtype);
        let stored = self.overlay.rrsets.get(&key);
        if stored == Some(&None) {
            return Ok(None);
        }
        let overridden = stored.is_some() || self.refused.contains(&key);
        let (zone, name) = (z.origin.clone(), name);
        let change = if self.file_has_rrset(&zone, &name, rtype) {
            Change::DeleteRRset { zone: zone.clone(), name, rtype }
        } else if overridden {
            Change::RevertRRset { zone: zone.clone(), name, rtype }
        } else {
            return Err(ApiError::not_found(format!("no {rtype} records at {name}")));
        };
        Ok(Some((change, zone, false)))
    }

    /// `DELETE /v1/zones/{origin}/records/{name}/{type}/override`: the RRset as
    /// the zone file has it (gone if it does not).
    fn plan_revert_rrset(&self, origin: &str, name: &str, rtype: &str) -> Result<Planned, ApiError> {
        let z = self.find_zone(origin)?;
        let (name, rtype) = self.rrset_key(&z, name, rtype)?;
        let key = (z.origin.clone(), name.clone(), rtype);
        if !self.overlay.rrsets.contains_key(&key) && !self.refused.contains(&key) {
            return Err(ApiError::not_found(format!("the {rtype} RRset at {name} has no override")));
        }
        Ok((Change::RevertRRset { zone: z.origin.clone(), name, rtype }, z.origin.clone(), false))
    }

    fn rrset_key(&self, z: &ZoneData, name: &str, rtype: &str) -> Result<(Name, RecordType), ApiError> {
        let name = name_in_zone(name, &z.origin).map_err(|e| ApiError::unprocessable(format!("name: {e}")))?;
        if !z.origin.zone_of(&name) {
            return Err(ApiError::unprocessable(format!("name: {name} is not inside zone {}", z.origin)));
        }
        let rtype: RecordType = rtype
            .to_ascii_uppercase()
            .parse()
            .ok()
            .filter(|t| !matches!(t, RecordType::Unknown(_)))
            .ok_or_else(|| ApiError::unprocessable(format!("type: unknown record type {rtype:?}")))?;
        if zone::is_meta_type(rtype) || rtype == RecordType::SOA {
            return Err(ApiError::unprocessable(format!(
                "type: {rtype} cannot be changed through the API (the SOA serial is managed by lbdns)"
            )));
        }
        Ok((name, rtype))
    }

    /// A pool for `GET`: the values in effect, and beside them what the config
    /// file says (`file`, `null` for an API pool) and what the API laid over it
    /// (`override`: the member overrides of a config pool, `null` without any;
    /// the whole definition of an API pool). `source` is `config` when the pool
    /// is exactly as the config says, `api` otherwise.
    fn pool_json(&self, (def, origin): &(Arc<PoolDef>, Origin)) -> Value {
        let file = match origin {
            Origin::Config => self.sources.pools.iter().find(|p| p.name == def.name),
            Origin::Api => None,
        };
        let members: Vec<Value> = def.members.iter().map(|m| self.member_json(def, m, file)).collect();
        let over = match file {
            None => serde_json::to_value(ApiPoolConfig::from_def(def)).unwrap_or(Value::Null),
            Some(_) => {
                let list: Vec<Value> = self
                    .overlay
                    .member_overrides(&def.name)
                    .map(|(a, o)| match o {
                        Some(f) => member_fields_json(a, f),
                        None => json!({"address": a, "deleted": true}),
                    })
                    .collect();
                if list.is_empty() { Value::Null } else { json!({ "members": list }) }
            }
        };
        let mut v = serde_json::to_value(ApiPoolConfig::from_def(def)).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("name".into(), json!(def.name.to_ascii()));
            map.insert("source".into(), json!(if file.is_some() && over.is_null() { "config" } else { "api" }));
            map.insert("members".into(), Value::Array(members));
            let file = file.map(|f| serde_json::to_value(ApiPoolConfig::from_def(f)).unwrap_or(Value::Null));
            map.insert("file".into(), file.unwrap_or(Value::Null));
            map.insert("override".into(), over);
        }
        v
    }

    /// The SOA serial served for `origin` now.
    fn served_serial(&self, origin: &Name) -> Option<u32> {
        self.snapshot.load().zones.get(&*super::snapshot::wire(origin)).map(|zz| zz.serial)
    }

    /// One zone for `GET /v1/zones`.
    fn zone_summary_json(&self, z: &ZoneData) -> Value {
        let rrsets: HashSet<(&Name, RecordType)> = z.records.iter().map(|r| (&r.name, r.rtype())).collect();
        let last = self.last_change.get(&z.origin);
        json!({
            "origin": z.origin.to_ascii(),
            "serial": self.served_serial(&z.origin),
            "rrsets": rrsets.len(),
            "last_change": last.map(|l| json!({"time": rfc3339(l.time), "source": l.source})),
        })
    }

    /// A member for `GET`, with its `file` and `override` values (see
    /// [`Writer::pool_json`]); `file_pool` is the pool in the config, if there.
    fn member_json(&self, def: &PoolDef, m: &MemberConfig, file_pool: Option<&Arc<PoolDef>>) -> Value {
        let h = self.health.get(def, m.address);
        let state = match (def.health.check, h) {
            (CheckKind::None, _) => "none",
            (_, Some(h)) => h.state(),
            (_, None) => "unknown",
        };
        let file = file_pool.and_then(|p| p.members.iter().find(|f| f.address == m.address));
        let over = match file_pool {
            // A member of an API pool is all override.
            None => json!({"weight": m.weight, "region": m.region, "enabled": m.enabled}),
            Some(_) => match self.overlay.members.get(&(def.name.clone(), m.address)) {
                Some(Some(f)) => serde_json::to_value(f).unwrap_or(Value::Null),
                _ => Value::Null,
            },
        };
        json!({
            "address": m.address,
            "weight": m.weight,
            "region": m.region,
            "enabled": m.enabled,
            "source": if file.is_some() && over.is_null() { "config" } else { "api" },
            "file": file.map(|f| json!({"weight": f.weight, "region": f.region, "enabled": f.enabled})),
            "override": over,
            "health": state,
            "last_change": h.and_then(|h| h.last_change).map(rfc3339),
            "last_error": h.and_then(|h| h.last_error.clone()),
            "last_rtt_ms": h.and_then(|h| h.last_rtt).map(|d| d.as_secs_f64() * 1000.0),
        })
    }

    /// The zone file's RRset `name`/`rtype` as `GET` shows it (`null` if none).
    fn file_rrset_json(&self, origin: &Name, name: &Name, rtype: RecordType) -> Value {
        let Some(file) = self.sources.zones.iter().find(|z| z.origin == *origin) else { return Value::Null };
        let records: Vec<_> = file.records.iter().filter(|r| r.name == *name && r.rtype() == rtype).cloned().collect();
        match rrset_texts(&records).into_values().next() {
            Some((ttl, data)) => json!({"ttl": ttl, "data": data}),
            None => Value::Null,
        }
    }

    /// A zone's RRsets in effect for `GET`, each with what the zone file says
    /// (`file`, `null` when it has no such RRset) and the API's replacement
    /// (`override`, `null` without one). `source` is `zone` without an override,
    /// `api` with one. Stored deletions are listed apart (`deleted`), with the
    /// zone file's RRset they hide.
    fn records_json(&self, z: &ZoneData) -> Value {
        let serial = self.served_serial(&z.origin);
        let file = self.sources.zones.iter().find(|f| f.origin == z.origin);
        let mut file_sets = file.map(|f| rrset_texts(&f.records)).unwrap_or_default();
        let mut served = rrset_texts(&z.records);
        if let Some(serial) = serial {
            with_served_soa(&mut served, z, serial);
        }
        let records: Vec<Value> = served
            .into_iter()
            .map(|(key, (ttl, data))| {
                let over = parse_fqdn(&key.0)
                    .ok()
                    .zip(key.1.parse::<RecordType>().ok())
                    .and_then(|(n, rt)| self.overlay.rrsets.get(&(z.origin.clone(), n, rt)))
                    .map(|o| json!(o));
                let file = file_sets.remove(&key).map(|(ttl, data)| json!({"ttl": ttl, "data": data}));
                let (name, t) = key;
                json!({"name": name, "type": t, "ttl": ttl, "data": data,
                       "source": if over.is_some() { "api" } else { "zone" },
                       "file": file, "override": over})
            })
            .collect();
        // Stored deletions, so that what hides a zone file's RRset can be seen.
        let deleted: Vec<Value> = self
            .overlay
            .rrsets
            .iter()
            .filter(|((o, _, _), set)| *o == z.origin && set.is_none())
            .map(|((_, name, rtype), _)| {
                let key = (name.to_ascii(), rtype.to_string());
                let file = file_sets.remove(&key).map(|(ttl, data)| json!({"ttl": ttl, "data": data}));
                json!({"name": key.0, "type": key.1, "file": file})
            })
            .collect();
        json!({"zone": z.origin.to_ascii(), "serial": serial, "records": records, "deleted": deleted})
    }
}

/// RRsets as the API shows them: (name, type) → (TTL, data in presentation form).
fn rrset_texts(records: &[zone::ZoneRecord]) -> BTreeMap<(String, String), (u32, Vec<String>)> {
    let mut sets: BTreeMap<(String, String), (u32, Vec<String>)> = BTreeMap::new();
    for r in records {
        let e = sets.entry((r.name.to_ascii(), r.rtype().to_string())).or_insert((r.ttl, Vec::new()));
        e.0 = e.0.min(r.ttl);
        e.1.push(crate::rdata::render(&r.rdata));
    }
    sets
}

/// The SOA in `sets` as served: with `serial`, which counts the API changes too,
/// rather than the zone file's.
fn with_served_soa(sets: &mut BTreeMap<(String, String), (u32, Vec<String>)>, z: &ZoneData, serial: u32) {
    let soa = z.records.iter().find_map(|r| match &r.rdata {
        hickory_proto::rr::RData::SOA(soa) if r.name == z.origin => Some(soa),
        _ => None,
    });
    let Some(soa) = soa else { return };
    let mut soa = soa.clone();
    soa.serial = serial;
    if let Some((_, data)) = sets.get_mut(&(z.origin.to_ascii(), RecordType::SOA.to_string())) {
        *data = vec![hickory_proto::rr::RData::SOA(soa).to_string()];
    }
}

/// A member override's set fields, with the member's address.
fn member_fields_json(address: IpAddr, f: &MemberFields) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("address".into(), json!(address));
    }
    v
}

/// Sources with the overlay applied, checked.
fn effective(sources: &Sources, overlay: &Overlay) -> Result<Effective, StateError> {
    let mut zones = Vec::with_capacity(sources.zones.len());
    for z in &sources.zones {
        let ez = overlay::effective_zone(z, overlay)?;
        if !Arc::ptr_eq(&ez, z) {
            zone::check_zone(&ez)?;
        }
        zones.push(ez);
    }
    // API pools are placed-checked when written (`plan`), and RRset writes are
    // checked against pools there too, so this stays linear in the data.
    let pools = overlay::effective_pools(sources, overlay);
    Ok(Effective { zones, pools })
}

/// `base` (the state in effect) with `overlay`, re-deriving only what `t`
/// touches: the zones whose RRsets changed (checked), and the pools if any changed.
fn derive(sources: &Sources, base: &Effective, overlay: &Overlay, t: &Touched) -> Result<Effective, StateError> {
    let mut zones = base.zones.clone();
    for slot in zones.iter_mut().filter(|z| t.records.contains(&z.origin)) {
        let Some(file) = sources.zones.iter().find(|z| z.origin == slot.origin) else { continue };
        let ez = overlay::effective_zone(file, overlay)?;
        if !Arc::ptr_eq(&ez, file) {
            zone::check_zone(&ez)?;
        }
        *slot = ez;
    }
    let pools = if t.pools.is_empty() { base.pools.clone() } else { overlay::effective_pools(sources, overlay) };
    Ok(Effective { zones, pools })
}

/// The state in effect from `overlay` over the files. When the files refuse some
/// of it (a zone file changed under a stored API change, or another server's
/// files differ), what fits, each change left out logged: one stale change must
/// not keep a server from starting or from following the others.
fn fit(sources: &Sources, overlay: Overlay) -> Result<(Overlay, Effective, Vec<RRsetKey>), StateError> {
    match effective(sources, &overlay) {
        Ok(e) => Ok((overlay, e, Vec::new())),
        Err(e) => {
            error!(error = %e, "stored API changes conflict with the config or zone files, or cannot be served; applying what fits");
            let files = effective(sources, &Overlay::default())?;
            let keys: Vec<(String, Option<Vec<u8>>)> =
                super::etcd::entries(&overlay).into_iter().map(|(k, v)| (k, Some(v.into_bytes()))).collect();
            let (overlay, e, _, refused) = fit_keys(sources, Overlay::default(), files, &keys);
            Ok((overlay, e, refused))
        }
    }
}

/// Applies stored `keys` to `overlay` (in effect as `base`) one at a time,
/// leaving out each that the config or zone files refuse, or that cannot be
/// served (data stored before it was checked), each logged.
fn fit_keys(
    sources: &Sources,
    mut overlay: Overlay,
    mut base: Effective,
    keys: &[(String, Option<Vec<u8>>)],
) -> (Overlay, Effective, Touched, Vec<RRsetKey>) {
    let mut all = Touched::default();
    let mut refused = Vec::new();
    for (k, v) in keys {
        let mut one = State { overlay: overlay.clone(), nodes: BTreeMap::new() };
        if one.apply_key(k, v.as_deref()).is_err() {
            continue;
        }
        let t = Touched::of([k.as_str()]);
        match derive(sources, &base, &one.overlay, &t) {
            Ok(e) => {
                overlay = one.overlay;
                base = e;
                all.add(t);
            }
            Err(e) => {
                error!(key = %k, error = %e, "stored API change not applied: the files refuse it, or it cannot be served");
                let mut alone = State::default();
                if alone.apply_key(k, v.as_deref()).is_ok() {
                    refused.extend(alone.overlay.rrsets.into_keys());
                }
            }
        }
    }
    (overlay, base, all, refused)
}

/// Zone, owner name and type of an RRset.
type RRsetKey = (Name, Name, RecordType);

/// A validated write: the change to store, the zone whose serial it advances,
/// and whether it creates something (201).
type Planned = (Change, Name, bool);

/// Probe ids on which some node's vote differs between two sets of node views.
fn changed_votes(before: &BTreeMap<String, Votes>, after: &BTreeMap<String, Votes>) -> HashSet<String> {
    let empty = Votes::new();
    let mut ids = HashSet::new();
    for node in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(node).unwrap_or(&empty), after.get(node).unwrap_or(&empty));
        for id in b.keys().chain(a.keys()) {
            if b.get(id) != a.get(id) {
                ids.insert(id.clone());
            }
        }
    }
    ids
}

/// The checks `lbdns check` makes of a pool that need no zone, so the API stores
/// nothing the config file would refuse (`regions`: the config's `[regions]`).
fn validate_pool(def: &PoolDef, regions: &std::collections::BTreeMap<String, Vec<String>>) -> Result<(), ApiError> {
    let mut problems = def.validate();
    problems.extend(crate::config::unlisted_regions(def, regions));
    if problems.is_empty() {
        Ok(())
    } else {
        let msgs: Vec<String> = problems.into_iter().map(|(_, m)| m).collect();
        Err(ApiError::unprocessable(msgs.join("; ")))
    }
}

fn pool_name(s: &str) -> Result<Name, ApiError> {
    parse_fqdn(s).map_err(|e| ApiError::unprocessable(format!("pool name: {e}")))
}

/// An owner name in a records URL: `@` is the apex; a name with a final dot, or
/// one that equals or ends in the zone's origin, is absolute; any other name is
/// relative to the zone (as in a zone file, plus the origin suffix rule, so that
/// both `www` and `www.example.test` mean `www.example.test.`).
fn name_in_zone(text: &str, origin: &Name) -> Result<Name, NameError> {
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
fn member_address(s: &str) -> Result<IpAddr, ApiError> {
    s.parse().map_err(|e: std::net::AddrParseError| ApiError::bad_request(format!("address: {e}")))
}

/// A JSON request body. A value that does not fit names its field
/// (`members[0].address: invalid IP address syntax`).
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn change_label(c: &Change) -> String {
    match c {
        Change::PutPool(d) => format!("put pool {}", d.name),
        Change::DeletePool(n) => format!("delete pool {n}"),
        Change::PutMember { pool, address, .. } => format!("put member {address} of {pool}"),
        Change::DeleteMember { pool, address } => format!("delete member {address} of {pool}"),
        Change::RevertMember { pool, address } => format!("revert member {address} of {pool}"),
        Change::RevertPool { pool, .. } => format!("revert pool {pool}"),
        Change::PutRRset { name, rtype, .. } => format!("put {name} {rtype}"),
        Change::DeleteRRset { name, rtype, .. } => format!("delete {name} {rtype}"),
        Change::RevertRRset { name, rtype, .. } => format!("revert {name} {rtype}"),
    }
}

/// `PUT /v1/zones/{origin}/records/{name}/{type}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RRsetBody {
    ttl: u32,
    data: Vec<String>,
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
