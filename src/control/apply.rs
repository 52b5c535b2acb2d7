//! API apply: a request planned by [`crate::state`], stored, applied to the overlay
//! and published before its reply, so a client reads its own write. A write that
//! lost a race with another server is planned again once the winner is seen.

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::info;

use crate::persist::{Remote, StoreError};
use crate::state::api::{ApiError, ApiRequest, Reply};
use crate::state::overlay::{self, Change};

use crate::snapshot::Zone;
use crate::state::{self, Planned, held, pool_name};

use super::*;

impl Writer {
    /// Answers an API request. A write that lost a race with another server's
    /// write to the same zone is not refused at once: this server waits for the
    /// winner's change on the watch, applies it, and validates and stores the
    /// request again on the new state (so two automation clients writing through
    /// two servers both succeed, and a write that now conflicts with the winner's
    /// gets the same answer it would have got in sequence). Only a race lost for
    /// `RACE_RETRY_FOR` answers 409.
    pub(super) async fn api_settled(
        &mut self,
        req: ApiRequest,
        remote: &mut Option<mpsc::Receiver<Remote>>,
    ) -> Result<Reply, ApiError> {
        let deadline = tokio::time::Instant::now() + RACE_RETRY_FOR;
        loop {
            let r = self.api(req.clone()).await;
            if !matches!(r, Err(ApiError::LostRace(_))) || tokio::time::Instant::now() >= deadline {
                return r;
            }
            let Some(rx) = remote.as_mut() else { return r };
            self.metrics.admin_write_retries.inc();
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

    pub(super) async fn api(&mut self, req: ApiRequest) -> Result<Reply, ApiError> {
        match req {
            ApiRequest::ListPools => {
                let all: Vec<Value> = self.effective.pools.iter().map(|p| self.pool_json(p)).collect();
                Ok(Reply::Ok(Value::Array(all)))
            }
            ApiRequest::GetPool(name) => {
                let name = pool_name(&name)?;
                let p =
                    self.in_effect().find_pool(&name).ok_or_else(|| ApiError::not_found(format!("no pool {name}")))?;
                Ok(Reply::Ok(self.pool_json(p)))
            }
            ApiRequest::ListZones => {
                let all: Vec<Value> = self.effective.zones.iter().map(|z| self.zone_summary_json(z)).collect();
                Ok(Reply::Ok(Value::Array(all)))
            }
            ApiRequest::GetRecords(origin) => {
                let z = self.in_effect().find_zone(&origin)?;
                Ok(Reply::Ok(self.records_json(&z)))
            }
            ApiRequest::Explain(q) => self.explain(&q),
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
                let health_of = match &other {
                    ApiRequest::PutMemberHealth(pool, address, ..) => Some((pool.clone(), address.clone())),
                    _ => None,
                };
                // Nothing to store: a DELETE of what is already deleted, or
                // "auto" for a member without an override (its state is shown).
                let Some(Planned { change, zone, created }) = state::plan(&self.in_effect(), other)? else {
                    return Ok(match health_of {
                        Some((pool, address)) => Reply::Ok(self.member_json_at(&pool, &address)),
                        None => Reply::NoContent,
                    });
                };
                self.commit(change.clone(), &zone).await?;
                if let Change::DeleteRRset { zone, name, rtype } | Change::RevertRRset { zone, name, rtype } = &change {
                    self.refused.remove(&(zone.clone(), name.clone(), *rtype));
                }
                if deletes {
                    return Ok(Reply::NoContent);
                }
                let body = match &change {
                    Change::PutPool(def) => {
                        self.in_effect().find_pool(&def.name).map(|p| self.pool_json(p)).unwrap_or(Value::Null)
                    }
                    Change::PutMember { pool, .. } => {
                        self.in_effect().find_pool(pool).map(|p| self.pool_json(p)).unwrap_or(Value::Null)
                    }
                    Change::PutHealth { pool, address, .. } | Change::ClearHealth { pool, address } => {
                        self.member_json_of(pool, *address)
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
    /// to what the change touches: an RRset change lays one node over its zone
    /// (and re-encodes the SOA), a member change rebuilds one pool.
    pub(super) async fn commit(&mut self, change: Change, zone: &Name) -> Result<(), ApiError> {
        // Everything that can fail is tried before anything is stored.
        let new_zone = match &change {
            Change::PutRRset { .. } | Change::DeleteRRset { .. } | Change::RevertRRset { .. } => {
                Some(self.zone_with(&change, zone).map_err(|e| ApiError::conflict(e.to_string()))?)
            }
            _ => None,
        };
        if let (Some(z), Change::RevertRRset { name, rtype, .. }) = (&new_zone, &change) {
            self.in_effect().check_restored(z, name, *rtype)?;
        }
        self.store.apply(&change, zone).await.map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::LostRace(format!("change not stored: {m}")),
            e => ApiError::Unavailable(format!("change not stored: {e}")),
        })?;
        self.overlay.apply(&change, zone);
        let published = match new_zone {
            Some(z) => {
                if let Some(slot) = self.effective.zones.iter_mut().find(|x| x.origin == *zone) {
                    *slot = z;
                }
                self.publish_zone(zone)
            }
            None => self.publish_pool_change(&change, zone),
        };
        // The change is stored; a failure to publish it is a bug, not a bad request.
        published.map_err(|e| ApiError::Internal(e.to_string()))?;
        self.changed([zone.clone()], ChangeSource::Api);
        info!(change = ?change_label(&change), zone = %zone, "admin change applied");
        Ok(())
    }

    /// Publishes a pool or member change (already applied to the overlay): the
    /// changed pool derived again alone and rebuilt, its probes following it,
    /// and the zone's serial advanced; or a full build when the pool list
    /// changed (zones mark their pool nodes by position). A member write at
    /// 10,000 pools looks at its own pool.
    fn publish_pool_change(&mut self, change: &Change, zone: &Name) -> Result<(), StateError> {
        let name = changed_pool(change).unwrap_or(zone).clone();
        let at = self.effective.position(&name).filter(|_| !self.effective.pools_moved);
        match (at, self.in_effect().derive_pool(&name)) {
            (Some(i), Some(now)) => {
                let before = std::mem::replace(&mut self.effective.pools[i], now);
                self.publish_pool(&name, zone)?;
                self.follow_pool(&before.0, i);
                Ok(())
            }
            // An override of a pool not in effect (it left the config): only the serial.
            (None, None) if !self.effective.pools_moved => self.publish_serial(zone),
            _ => {
                let pools = overlay::effective_pools(&self.sources, &self.overlay);
                self.effective.pools_moved |= !super::effect::same_names(&pools, &self.effective.pools);
                self.effective.set_pools(pools);
                self.follow_pools();
                self.publish()
            }
        }
    }

    /// The zone `origin` in effect with an RRset change applied (its node laid
    /// over the zone), checked where it changed.
    pub(super) fn zone_with(&self, change: &Change, origin: &Name) -> Result<Arc<Zone>, StateError> {
        let base = self.in_effect().zone(origin).ok_or(StateError::NoZone)?;
        let (name, rtype, set) = match change {
            Change::PutRRset { name, rtype, set, .. } => {
                (name, *rtype, overlay::api_rrset(name, *rtype, Some(set), origin)?)
            }
            Change::DeleteRRset { name, rtype, .. } => (name, *rtype, None),
            // The zone file's RRset, if it has one, shows again.
            Change::RevertRRset { name, rtype, .. } => (name, *rtype, super::effect::file_rrset(base, name, *rtype)),
            _ => return Ok(base.clone()),
        };
        let z = Arc::new(base.with_rrset_at(name, rtype, set));
        // The zone in effect passed every check: only what the change touches is
        // checked again. An RRset at `name` other than the changed one keeps
        // where it came from.
        // The changed RRset is the API's (a PUT) or the file's again (a revert),
        // whatever the overlay says until the change is applied to it.
        let state = self.in_effect();
        let whence = |t: RecordType| match change {
            Change::PutRRset { .. } if t == rtype => format!("{t} set through the API"),
            Change::RevertRRset { .. } if t == rtype => {
                state::whence(state.sources, &crate::state::overlay::Overlay::default(), origin, name, t)
            }
            _ => state.whence(origin, name, t),
        };
        held::check_change(&z, name, &whence)?;
        Ok(z)
    }
}

/// How long an API write that lost a race keeps catching up and trying again
/// before it answers 409.
pub(super) const RACE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The pool a pool or member change is about.
fn changed_pool(c: &Change) -> Option<&Name> {
    match c {
        Change::PutPool(d) => Some(&d.name),
        Change::DeletePool(pool)
        | Change::PutMember { pool, .. }
        | Change::DeleteMember { pool, .. }
        | Change::RevertMember { pool, .. }
        | Change::RevertPool { pool, .. }
        | Change::PutHealth { pool, .. }
        | Change::ClearHealth { pool, .. } => Some(pool),
        Change::PutRRset { .. } | Change::DeleteRRset { .. } | Change::RevertRRset { .. } => None,
    }
}

pub(super) fn change_label(c: &Change) -> String {
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
        Change::PutHealth { pool, address, over } => format!("health of {address} in {pool}: {}", over.state.as_str()),
        Change::ClearHealth { pool, address } => format!("health of {address} in {pool}: auto"),
    }
}
