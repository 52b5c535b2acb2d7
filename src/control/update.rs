//! UPDATE apply: an RFC 2136 message planned by [`crate::state::update`] is one
//! change of the state, like an API write: checked whole against the zone
//! (nothing stored if the result would be refused), stored in one transaction
//! with one serial increment, applied to the overlay and published before the
//! reply, so a client that got NOERROR reads its own write. Only what the message
//! touches is re-derived and rebuilt, as for another server's change.

use hickory_proto::op::ResponseCode;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::persist::encoding::{Touched, change_entries, serial_key};
use crate::persist::{Remote, StoreError};
use crate::state::update::{Update, plan_update};

use super::apply::RACE_RETRY_FOR;
use super::*;

/// Why an UPDATE was not applied after it was planned.
enum Failed {
    /// Another server stored a change to the zone first: plan again once seen.
    LostRace,
    Rcode(ResponseCode),
}

impl Writer {
    /// Applies an UPDATE; a message that lost a race with another server's write
    /// to the zone is planned again once the winner is seen (as an API write is).
    pub(super) async fn update_settled(
        &mut self,
        u: &Update,
        remote: &mut Option<mpsc::Receiver<Remote>>,
    ) -> ResponseCode {
        let deadline = tokio::time::Instant::now() + RACE_RETRY_FOR;
        loop {
            match self.update(u).await {
                Ok(()) => return ResponseCode::NoError,
                Err(Failed::Rcode(rc)) => return rc,
                Err(Failed::LostRace) => {}
            }
            let Some(rx) = remote.as_mut() else { return ResponseCode::ServFail };
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(first)) => {
                    self.remote(first);
                    while let Ok(more) = rx.try_recv() {
                        self.remote(more);
                    }
                }
                _ => return ResponseCode::ServFail,
            }
        }
    }

    async fn update(&mut self, u: &Update) -> Result<(), Failed> {
        let changes = plan_update(&self.in_effect(), u).map_err(Failed::Rcode)?;
        if changes.is_empty() {
            // Nothing changes (prerequisites held, every update already true or
            // ignored): no serial increment, nothing stored.
            return Ok(());
        }
        let zone = u.zone.to_lowercase();
        let mut next = self.overlay.clone();
        next.apply_all(&changes, &zone);
        let keys: Vec<String> =
            changes.iter().flat_map(change_entries).map(|(k, _)| k).chain([serial_key(&zone)]).collect();
        let touched = Touched::of(keys.iter().map(String::as_str));
        // The whole zone after the message passes the checks a zone file must,
        // or nothing is stored (each RRset alone passed the API's checks).
        let effective = self.derive(&next, &touched).map_err(|e| {
            info!(zone = %zone, error = %e, "update refused: the zone would fail its checks");
            Failed::Rcode(ResponseCode::Refused)
        })?;
        self.store.apply_all(&changes, &zone).await.map_err(|e| match e {
            StoreError::Conflict(_) => Failed::LostRace,
            e => {
                warn!(zone = %zone, error = %e, "update not stored");
                Failed::Rcode(ResponseCode::ServFail)
            }
        })?;
        self.put_in_effect_touched(next, effective, &touched);
        self.changed([zone.clone()], ChangeSource::Update);
        let what: Vec<String> = changes.iter().map(super::apply::change_label).collect();
        info!(zone = %zone, key = ?u.key.as_ref().map(|k| k.to_ascii()), changes = ?what, "update applied");
        Ok(())
    }
}
