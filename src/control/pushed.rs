//! Health pushed from outside, as the writer keeps it: overrides lapse on one
//! timer (the next expiry among them, not a task per member), health files'
//! contents arrive from their watcher, and both are shown beside the probes'
//! state in the API, events, `explain` and `lbdns_member_override`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::Name;
use serde_json::{Value, json};

use crate::config::{MemberConfig, PoolDef};
use crate::health::file::{FileUpdate, HealthFile};
use crate::state::overlay::Origin;

use super::render::rfc3339;
use super::*;

impl Writer {
    /// A member's state in effect: `drained`, then an override's state, then
    /// its health file line's, then this node's probes' (`up` without checks,
    /// `unknown` before the first result).
    pub(super) fn member_state(&self, def: &PoolDef, m: &MemberConfig) -> &'static str {
        if !m.enabled {
            return "drained";
        }
        let view = self.view();
        if let Some(o) = view.pushed.override_of(&def.name, m.address) {
            return o.state.as_str();
        }
        if let Some((_, line)) = view.pushed.file_of(&def.name, m.address) {
            return line.state.as_str();
        }
        match (def.health.probes(), self.health.get(def, m)) {
            (false, _) => "up",
            (_, Some(h)) => h.state(),
            // Not probed here (`probe_share`): what the probers' votes say.
            (_, None) if self.shares_probes() && view.ballots(def, m).any(|(_, v)| v.is_some()) => {
                if crate::snapshot::HealthView::is_up(&view, def, m) {
                    "up"
                } else {
                    "down"
                }
            }
            (_, None) => "unknown",
        }
    }

    /// Why a member changed with another server's write: its override's
    /// reason when one is in force now.
    pub(super) fn remote_reason(&self, pool: Option<&Name>, address: IpAddr) -> String {
        match pool.and_then(|p| self.view().pushed.override_of(p, address)) {
            Some(o) => {
                let why = o.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                format!("health pushed {} through the API on another server{why}", o.state.as_str())
            }
            None => "changed on another server".into(),
        }
    }

    /// `{state, reason, expires_at}` of the override in force, or `null`.
    pub(super) fn override_json(&self, def: &PoolDef, address: IpAddr) -> Value {
        match self.view().pushed.override_of(&def.name, address) {
            Some(o) => json!({"state": o.state.as_str(), "reason": o.reason, "expires_at": o.expires_at.map(rfc3339)}),
            None => Value::Null,
        }
    }

    /// `{state, reason, file, line}` of this node's health file line, or `null`.
    pub(super) fn file_json(&self, def: &PoolDef, address: IpAddr) -> Value {
        match self.files.entry(&def.name, address) {
            Some((path, l)) => {
                json!({"state": l.state.as_str(), "reason": l.reason, "file": path.display().to_string(), "line": l.line})
            }
            None => Value::Null,
        }
    }

    /// Member `address` of `pool` for `GET` (`null` if there is none).
    pub(super) fn member_json_of(&self, pool: &Name, address: IpAddr) -> Value {
        let Some((def, origin)) = self.in_effect().find_pool(pool) else { return Value::Null };
        let file = match origin {
            Origin::Config => self.in_effect().config_pool(&def.name),
            Origin::Api => None,
        };
        let member = def.members.iter().find(|m| m.address == address);
        member.map_or(Value::Null, |m| self.member_json(def, m, file))
    }

    /// [`Writer::member_json_of`] from the request's path parts (already valid).
    pub(super) fn member_json_at(&self, pool: &str, address: &str) -> Value {
        match (crate::state::pool_name(pool), address.parse()) {
            (Ok(pool), Ok(address)) => self.member_json_of(&pool, address),
            _ => Value::Null,
        }
    }

    /// Why a member that is not drained is not eligible, by precedence.
    pub(super) fn down_because(&self, def: &PoolDef, address: IpAddr) -> &'static str {
        let view = self.view();
        if view.pushed.override_of(&def.name, address).is_some() {
            "pushed down through the API"
        } else if view.pushed.file_of(&def.name, address).is_some_and(|(_, l)| !l.state.is_up()) {
            "down in the health file"
        } else {
            "down"
        }
    }

    /// When the next override in force lapses.
    pub(super) fn next_expiry(&self) -> Option<SystemTime> {
        let after = self.expired_until;
        self.overlay.health.values().filter_map(|o| o.expires_at).filter(|t| *t > after).min()
    }

    /// Puts the overrides that lapsed since the last call out of effect: their
    /// pools are rebuilt (nothing is stored; a lapsed override is inert).
    pub(super) fn expire_overrides(&mut self) {
        let now = SystemTime::now();
        let after = std::mem::replace(&mut self.expired_until, now);
        let pools: BTreeSet<Name> = self
            .overlay
            .health
            .iter()
            .filter(|(_, o)| o.expires_at.is_some_and(|t| t > after && t <= now))
            .map(|((pool, _), _)| pool.clone())
            .collect();
        if !pools.is_empty() {
            self.publish_pools(&pools);
            self.share_view();
            self.publish_override_gauges();
        }
    }

    /// `lbdns_member_override` follows the overrides in force.
    pub(super) fn publish_override_gauges(&self) {
        let now = self.expired_until;
        let map = self
            .overlay
            .health
            .iter()
            .filter(|(_, o)| o.in_force(now))
            .map(|((pool, addr), o)| ((pool.to_ascii(), *addr), o.state.gauge()))
            .collect();
        self.metrics.overrides.store(Arc::new(map));
    }
}

impl Writer {
    /// The health files follow the config: `[health] health_file` for every pool,
    /// a pool's own in its place. A file not read yet is read now (start-up and
    /// reload publish with it), one no longer named is forgotten, and the watcher
    /// is told what to watch.
    pub(super) fn follow_health_files(&mut self) {
        let global = self.sources.config.health_file.clone();
        let by_pool: std::collections::HashMap<Name, std::path::PathBuf> =
            self.sources.pools.iter().filter_map(|p| Some((p.name.clone(), p.health.health_file()?.clone()))).collect();
        self.files.global = global;
        self.files.by_pool = by_pool;
        let paths = self.files.paths();
        self.files.files.retain(|p, _| paths.contains(p));
        for path in &paths {
            if !self.files.files.contains_key(path) {
                let file = HealthFile::read(path);
                report(path, &file);
                self.files.files.insert(path.clone(), Arc::new(file));
            }
        }
        self.outcomes.health_files(self.file_problems());
        self.file_paths.send_if_modified(|p| {
            let changed = *p != paths;
            *p = paths;
            changed
        });
    }

    /// A health file changed: the pools it drives are rebuilt, this node's votes
    /// shared, and each member it moved is an event naming the file and line.
    pub(super) fn apply_file(&mut self, u: FileUpdate) {
        if self.files.files.get(&u.path).is_some_and(|f| **f == *u.file) {
            return;
        }
        report(&u.path, &u.file);
        let before = self.member_states();
        self.files.files.insert(u.path.clone(), u.file);
        let pools: BTreeSet<Name> = self
            .effective
            .pools
            .iter()
            .filter(|(p, _)| self.files.path_of(&p.name) == Some(u.path.as_path()))
            .map(|(p, _)| p.name.clone())
            .collect();
        self.publish_pools(&pools);
        self.share_view();
        self.outcomes.health_files(self.file_problems());
        let path = u.path.display().to_string();
        self.record_since_each(&before, &super::events::Scope::All, |pool, address| {
            let line = pool.and_then(|p| self.files.entry(p, address)).map(|(_, l)| l);
            match line {
                Some(l) => {
                    format!("health file {path}:{}: {}", l.line, l.reason.as_deref().unwrap_or(l.state.as_str()))
                }
                None => format!("health file {path}: no line for it now"),
            }
        });
    }

    /// Every health file's ignored lines, `FILE:LINE: problem`.
    fn file_problems(&self) -> Vec<String> {
        let mut all: Vec<String> = self.files.files.values().flat_map(|f| f.problems.iter().cloned()).collect();
        all.sort();
        all
    }
}

/// Logs a health file's ignored lines (each time the file is read anew).
fn report(path: &std::path::Path, file: &HealthFile) {
    for p in &file.problems {
        tracing::warn!(file = %path.display(), "health file: {p} (line ignored)");
    }
}

/// What an override write did, for its events: `None` for other writes.
pub(super) fn pushed_reason(req: &crate::state::api::ApiRequest) -> Option<String> {
    let crate::state::api::ApiRequest::PutMemberHealth(_, _, body, _) = req else { return None };
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let reason = v["reason"].as_str().map(|r| format!(": {}", r.trim())).unwrap_or_default();
    Some(match v["state"].as_str() {
        Some("auto") => "health override removed through the API".to_string(),
        Some(state) => format!("health pushed {state} through the API{reason}"),
        None => "health changed through the API".to_string(),
    })
}

/// A tokio deadline for a wall-clock time (now if it has passed).
pub(super) fn deadline_of(t: SystemTime) -> tokio::time::Instant {
    tokio::time::Instant::now() + t.duration_since(SystemTime::now()).unwrap_or_default()
}
