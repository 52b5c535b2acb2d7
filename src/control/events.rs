//! The events history: a bounded, in-memory list of member state transitions
//! (`GET /v1/events`, `/ui/api/events`, `lbdns events`).
//!
//! Only the writer records, at the places where it applies a change (a probe
//! result, an API write, another server's write, a reload), one event per pool
//! member whose state (`up`, `down`, `drained`, `unknown`) changed. Readers take a
//! copy under a short lock; nothing here is on the query path. The history holds
//! at most [`Events::CAPACITY`] items; the oldest is dropped first. It is not
//! persisted: a restart starts it empty.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::health::ProbeKey;

use super::Writer;

/// One member state change in one pool, or (without an address) a pool's
/// change between `up` (some member eligible) and `all-down` (none is, so the
/// pool answers its `all_down` policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// RFC 3339, UTC, seconds.
    pub time: String,
    pub pool: String,
    /// `None` for a pool's own change.
    pub address: Option<IpAddr>,
    pub from: &'static str,
    pub to: &'static str,
    /// The probe error, `probe passed`, or what an operator did.
    pub reason: String,
    /// This server's `[cluster] node` name; `null` outside a cluster.
    pub node: Option<String>,
}

/// The shared history: the writer pushes, the admin API reads.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Mutex<VecDeque<Event>>>,
    capacity: usize,
}

impl Default for Events {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl Events {
    /// How many events are kept.
    pub const CAPACITY: usize = 1000;

    pub fn with_capacity(capacity: usize) -> Self {
        Events { inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(64)))), capacity: capacity.max(1) }
    }

    /// Appends an event, dropping the oldest beyond the capacity.
    pub fn push(&self, event: Event) {
        // A panic while holding the lock cannot leave the deque half-changed.
        let mut list = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while list.len() >= self.capacity {
            list.pop_front();
        }
        list.push_back(event);
    }

    /// The newest `limit` events (all without a limit), newest first.
    pub fn newest(&self, limit: Option<usize>) -> Vec<Event> {
        let list = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().rev().take(limit.unwrap_or(usize::MAX)).cloned().collect()
    }
}

/// Each pool member's state: `(pool, address)` to `up`/`down`/`drained`/`unknown`.
pub(super) type MemberStates = BTreeMap<(String, IpAddr), &'static str>;

/// The events for members whose state differs between `before` and `after`;
/// members added or removed are not transitions.
pub(super) fn transitions(
    before: &MemberStates,
    after: &MemberStates,
    reason: impl Fn(&'static str, &'static str) -> String,
    node: Option<&str>,
) -> Vec<Event> {
    let time = rfc3339_now();
    after
        .iter()
        .filter_map(|(key, &to)| {
            let from = *before.get(key)?;
            (from != to).then(|| Event {
                time: time.clone(),
                pool: key.0.clone(),
                address: Some(key.1),
                from,
                to,
                reason: reason(from, to),
                node: node.map(str::to_string),
            })
        })
        .collect()
}

/// What an API write did to a member, from its state change.
pub(super) fn api_reason(from: &'static str, to: &'static str) -> String {
    match (from, to) {
        (_, "drained") => "drained through the API".into(),
        ("drained", _) => "undrained through the API".into(),
        _ => "changed through the API".into(),
    }
}

/// Which members a write can change the state of: none (an RRset write),
/// those of one pool (an API write), of some pools (another server's change),
/// or any.
pub(super) enum Scope {
    Nothing,
    Pool(hickory_proto::rr::Name),
    Pools(std::collections::BTreeSet<hickory_proto::rr::Name>),
    All,
}

impl Scope {
    /// The scope of the write `req` (the caller tells writes from reads).
    pub(super) fn of(req: &crate::state::api::ApiRequest) -> Scope {
        use crate::state::api::ApiRequest as R;
        let pool = match req {
            R::PutRRset(..) | R::DeleteRRset(..) | R::DeleteRRsetOverride(..) => return Scope::Nothing,
            R::PutPool(p, _) | R::DeletePool(p) | R::DeletePoolOverride(p) => p,
            R::PutMember(p, ..) | R::DeleteMember(p, _) | R::DeleteMemberOverride(p, _) | R::PutMemberHealth(p, ..) => {
                p
            }
            _ => return Scope::All,
        };
        crate::state::pool_name(pool).map_or(Scope::All, Scope::Pool)
    }

    /// The scope of what arrived from etcd: the pools its keys name (a member,
    /// pool or pushed-health key), any member when a node's view (its votes)
    /// changed or the whole state was loaded, none for RRsets and serials.
    pub(super) fn of_remote(r: &crate::persist::Remote) -> Scope {
        use crate::persist::encoding::{Touched, is_node_key};
        match r {
            crate::persist::Remote::Changes(list) if !list.iter().any(|(k, ..)| is_node_key(k)) => {
                let pools = Touched::of(list.iter().map(|(k, ..)| k.as_str())).pools;
                if pools.is_empty() { Scope::Nothing } else { Scope::Pools(pools) }
            }
            _ => Scope::All,
        }
    }

    fn covers(&self, pool: &hickory_proto::rr::Name) -> bool {
        match self {
            Scope::Nothing => false,
            Scope::Pool(p) => p == pool,
            Scope::Pools(ps) => ps.contains(pool),
            Scope::All => true,
        }
    }
}

impl Writer {
    /// This server's node name in a cluster, for [`Event::node`].
    fn node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node.as_str())
    }

    /// Every member's state in effect, as the status page shows it.
    pub(super) fn member_states(&self) -> MemberStates {
        self.member_states_in(&Scope::All)
    }

    /// The state of the members in `scope`: an API write looks at what it can
    /// change (an RRset write at no pool), not at every pool.
    pub(super) fn member_states_in(&self, scope: &Scope) -> MemberStates {
        let mut states = MemberStates::new();
        let mut add = |def: &crate::config::PoolDef| {
            for m in &def.members {
                states.insert((def.name.to_ascii(), m.address), self.member_state(def, m));
            }
        };
        match scope {
            // One pool: found by name, no other pool looked at.
            Scope::Pool(p) => self.in_effect().find_pool(p).into_iter().for_each(|(d, _)| add(d)),
            Scope::Pools(ps) => ps.iter().filter_map(|p| self.in_effect().find_pool(p)).for_each(|(d, _)| add(d)),
            _ => self.effective.pools.iter().filter(|(d, _)| scope.covers(&d.name)).for_each(|(d, _)| add(d)),
        }
        states
    }

    /// Records what changed between `before` and now, each with the reason
    /// `reason` gives for its pool (parsed back from the event) and address.
    /// Only the members in `scope` (`before` taken in it) are looked at.
    pub(super) fn record_since_each(
        &self,
        before: &MemberStates,
        scope: &Scope,
        reason: impl Fn(Option<&hickory_proto::rr::Name>, IpAddr) -> String,
    ) {
        for mut e in transitions(before, &self.member_states_in(scope), |_, _| String::new(), self.node()) {
            let pool = crate::config::parse_fqdn(&e.pool).ok();
            if let Some(a) = e.address {
                e.reason = reason(pool.as_ref(), a);
            }
            self.events.push(e);
        }
    }

    /// Records what changed between `before` and now, for `reason`.
    pub(super) fn record_since(&self, before: &MemberStates, reason: impl Fn(&'static str, &'static str) -> String) {
        self.record_since_in(before, &Scope::All, reason);
    }

    /// [`Writer::record_since`] for the members in `scope` (`before` taken in it).
    pub(super) fn record_since_in(
        &self,
        before: &MemberStates,
        scope: &Scope,
        reason: impl Fn(&'static str, &'static str) -> String,
    ) {
        for e in transitions(before, &self.member_states_in(scope), reason, self.node()) {
            self.events.push(e);
        }
    }

    /// Records a probe stream's health change in every pool that probes it
    /// this way; a drained member's state stays `drained`, so it gets none.
    pub(super) fn record_probe(&self, key: &ProbeKey, from: &'static str, reason: &str) {
        let to = self.health.members.get(key).map_or("unknown", |h| h.state());
        if from == to {
            return;
        }
        let time = rfc3339_now();
        let snap = self.snapshot.load();
        for i in self.by_probe.pools_of([key]) {
            let Some(def) = snap.pools.get(i as usize).map(|p| &p.def) else { continue };
            if def.members.iter().any(|m| m.address == key.addr && m.enabled) {
                self.events.push(Event {
                    time: time.clone(),
                    pool: def.name.to_ascii(),
                    address: Some(key.addr),
                    from,
                    to,
                    reason: reason.to_string(),
                    node: self.node().map(str::to_string),
                });
            }
        }
    }
}

/// Since when a pool has been all down, and whether its coming back up is an
/// event (not for a pool that was down only because it was just added).
#[derive(Debug, Clone, Copy)]
pub(super) struct PoolDown {
    pub since: SystemTime,
    telling: bool,
}

/// The families of `pool` that have members but none eligible (enabled and
/// up): for these it answers its `all_down` policy.
fn families_down(pool: &crate::snapshot::Pool) -> Vec<&'static str> {
    let names = ["IPv4", "IPv6"];
    (0..2).filter(|&f| !pool.family[f].all.is_empty() && pool.family[f].eligible.is_empty()).map(|f| names[f]).collect()
}

impl Writer {
    /// Notes which pools are all down in the snapshot in effect and since when,
    /// recording each pool that went all down or came back as an event (not at
    /// start-up, and not for a pool just added, as for members). Pools that are
    /// gone are forgotten. Nothing to do while the snapshot is the one seen last.
    pub(super) fn note_all_down(&mut self, record: bool) {
        let snapshot = self.snapshot.load_full();
        if std::ptr::eq(self.all_down_seen.as_ptr(), Arc::as_ptr(&snapshot)) {
            return;
        }
        self.all_down_seen = Arc::downgrade(&snapshot);
        // A change that touched no pool (an RRset write) published the same
        // pools; one that rebuilt a few (a member write) looks at those.
        let before = std::mem::replace(&mut self.all_down_pools, snapshot.pools.clone());
        let now = SystemTime::now();
        if let Some(changed) = snapshot.pools.changed_since(&before) {
            let same_names = changed.iter().all(|&i| {
                let (a, b) = (snapshot.pools.get(i), before.get(i));
                a.zip(b).is_some_and(|(a, b)| a.name_text == b.name_text)
            });
            if same_names {
                for pool in changed.iter().filter_map(|&i| snapshot.pools.get(i)) {
                    self.note_pool(pool, true, record, now);
                }
                return;
            }
        }
        let known: std::collections::HashSet<&str> = before.iter().map(|p| p.name_text.as_str()).collect();
        let mut next = std::collections::HashMap::new();
        for pool in &snapshot.pools {
            if let Some(since) = self.down_since(pool, known.contains(pool.name_text.as_str()), record, now) {
                next.insert(pool.name_text.clone(), since);
            }
        }
        self.all_down = next;
    }

    /// [`Writer::note_all_down`] after a change that rebuilt only the pools at
    /// `which` (a health flip): every other pool is the one seen before, so a flip
    /// at 100,000 pools looks at its own.
    pub(super) fn note_all_down_of(&mut self, which: &std::collections::BTreeSet<u32>) {
        let snapshot = self.snapshot.load_full();
        self.all_down_seen = Arc::downgrade(&snapshot);
        let before = std::mem::replace(&mut self.all_down_pools, snapshot.pools.clone());
        let now = SystemTime::now();
        for &i in which {
            let Some(pool) = snapshot.pools.get(i as usize) else { continue };
            let known = before.get(i as usize).is_some_and(|b| b.name_text == pool.name_text);
            self.note_pool(pool, known, true, now);
        }
    }

    /// Notes of `pool` (`known`: in the snapshot seen before) whether it is all
    /// down, and since when.
    fn note_pool(&mut self, pool: &crate::snapshot::Pool, known: bool, record: bool, now: SystemTime) {
        match self.down_since(pool, known, record, now) {
            Some(since) => self.all_down.insert(pool.name_text.clone(), since),
            None => self.all_down.remove(&pool.name_text),
        };
    }

    /// Since when `pool` (as now published) is all down, from what was noted of
    /// it before (`known`: whether it was in the pools seen before); a change is
    /// recorded as an event if `record`.
    fn down_since(&self, pool: &crate::snapshot::Pool, known: bool, record: bool, now: SystemTime) -> Option<PoolDown> {
        let down = families_down(pool);
        match (self.all_down.get(&pool.name_text), known, down.is_empty()) {
            (Some(d), _, false) => Some(*d),
            (Some(d), _, true) => {
                if record && d.telling {
                    self.push_pool(pool, "all-down", "up", "a member is eligible again".into());
                }
                None
            }
            (None, true, false) => {
                if record {
                    let policy = serde_json::to_value(pool.all_down).ok();
                    let policy = policy.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
                    let or = down.join(" or ");
                    let why = format!("no {or} member is up and enabled: answering all_down = \"{policy}\"");
                    self.push_pool(pool, "up", "all-down", why);
                }
                Some(PoolDown { since: now, telling: true })
            }
            // A pool down at start-up is news when it comes up; a pool just
            // added is down only until its members' first probes.
            (None, false, false) => Some(PoolDown { since: now, telling: !record }),
            (None, _, true) => None,
        }
    }

    fn push_pool(&self, pool: &crate::snapshot::Pool, from: &'static str, to: &'static str, reason: String) {
        self.events.push(Event {
            time: rfc3339_now(),
            pool: pool.name_text.clone(),
            address: None,
            from,
            to,
            reason,
            node: self.node().map(str::to_string),
        });
    }
}

pub(super) fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> Event {
        Event {
            time: "2026-01-01T00:00:00Z".into(),
            pool: format!("p{n}"),
            address: Some("192.0.2.1".parse().unwrap()),
            from: "up",
            to: "down",
            reason: "x".into(),
            node: None,
        }
    }

    #[test]
    fn history_is_bounded_and_newest_first() {
        let events = Events::with_capacity(3);
        for n in 0..5 {
            events.push(event(n));
        }
        let pools: Vec<String> = events.newest(None).into_iter().map(|e| e.pool).collect();
        assert_eq!(pools, ["p4", "p3", "p2"]);
        assert_eq!(events.newest(Some(1))[0].pool, "p4");
    }

    #[test]
    fn transitions_skip_unchanged_added_and_removed_members() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let before: MemberStates = [(("p".into(), a), "up"), (("p".into(), b), "up")].into();
        let after: MemberStates =
            [(("p".into(), a), "drained"), (("p".into(), b), "up"), (("p".into(), c), "up")].into();
        let got = transitions(&before, &after, api_reason, Some("n1"));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].address, got[0].from, got[0].to), (Some(a), "up", "drained"));
        assert_eq!(got[0].reason, "drained through the API");
        assert_eq!(got[0].node.as_deref(), Some("n1"));
    }
}
