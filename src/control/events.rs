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

use crate::config::CheckKind;
use crate::health::ProbeKey;
use crate::state::api::ApiRequest;

use super::Writer;

/// One member state change in one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// RFC 3339, UTC, seconds.
    pub time: String,
    pub pool: String,
    pub address: IpAddr,
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
                address: key.1,
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

impl Writer {
    /// This server's node name in a cluster, for [`Event::node`].
    fn node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node.as_str())
    }

    /// Every member's state in effect, as the status page shows it.
    pub(super) fn member_states(&self) -> MemberStates {
        let mut states = MemberStates::new();
        for (def, _) in &self.effective.pools {
            for m in &def.members {
                let state = match (m.enabled, def.health.check) {
                    (false, _) => "drained",
                    (true, CheckKind::None) => "up",
                    (true, _) => self.health.get(def, m.address).map_or("unknown", |h| h.state()),
                };
                states.insert((def.name.to_ascii(), m.address), state);
            }
        }
        states
    }

    /// Records what changed between `before` and now, for `reason`.
    pub(super) fn record_since(&self, before: &MemberStates, reason: impl Fn(&'static str, &'static str) -> String) {
        for e in transitions(before, &self.member_states(), reason, self.node()) {
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
                    address: key.addr,
                    from,
                    to,
                    reason: reason.to_string(),
                    node: self.node().map(str::to_string),
                });
            }
        }
    }
}

/// Whether a request may change a member's state (reads are not diffed).
pub(super) fn is_write(req: &ApiRequest) -> bool {
    !matches!(req, ApiRequest::ListPools | ApiRequest::GetPool(_) | ApiRequest::ListZones | ApiRequest::GetRecords(_))
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
            address: "192.0.2.1".parse().unwrap(),
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
        assert_eq!((got[0].address, got[0].from, got[0].to), (a, "up", "drained"));
        assert_eq!(got[0].reason, "drained through the API");
        assert_eq!(got[0].node.as_deref(), Some("n1"));
    }
}
