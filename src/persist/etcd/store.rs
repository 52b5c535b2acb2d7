//! The store the writer writes through when the state lives in etcd: one etcd
//! transaction per change, conditional on the zone's serial counter.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, SortOrder, SortTarget, Txn, TxnOp};
use hickory_proto::rr::Name;
use tracing::{info, warn};

use super::EtcdError;
use super::client::{Connector, load_all, load_all_raw, rejected_credentials, short};
use crate::config::EtcdSettings;
use crate::persist::encoding::{
    JOURNAL, change_entries, enc, entries, journal_key, journal_prefix, name, parse_journal_key, pool_key, serial_key,
};
use crate::persist::{Observed, Remote, State, Store, StoreError, StoredJournals};
use crate::state::overlay::{Change, Overlay};

/// Keys (relative to the prefix) with their values (`None`: deleted).
type KeyValues = Vec<(String, Option<Vec<u8>>)>;

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
    /// This node's name: its IXFR journal lives under `journal/NODE/`.
    node: String,
    /// Per zone: the sequence number of this node's newest stored journal entry.
    journal_seqs: HashMap<Name, u64>,
    /// Whether etcd answered when the store opened (else the journal is not read
    /// at start: the server is not kept waiting for it).
    reached: bool,
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
            node: s.node.clone(),
            journal_seqs: HashMap::new(),
            reached: false,
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
                store.reached = true;
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

    /// Records this node's write of `changes`, the zone's `bumps`-th, stored at
    /// `revision`.
    fn wrote(&mut self, changes: &[Change], zone: &Name, bumps: u32, revision: i64) {
        self.serials.insert(zone.clone(), (bumps, revision));
        let mut kvs: KeyValues =
            changes.iter().flat_map(change_entries).map(|(k, v)| (k, v.map(String::into_bytes))).collect();
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
    async fn landed(&self, mark: &str) -> Result<Option<i64>, StoreError> {
        let (conn, key) = (self.conn.clone(), self.mark_key.clone());
        let r = self.call(async move { conn.get().await?.get(key, None).await }).await?;
        Ok(r.kvs().first().filter(|kv| kv.value() == mark.as_bytes()).map(|kv| kv.mod_revision()))
    }

    /// The sequence number of this node's newest stored journal entry of `zone`
    /// (0: none), asked of etcd the first time (the entries loaded at start set
    /// it for the zones they hold).
    async fn journal_seq(&mut self, zone: &Name) -> Result<u64, StoreError> {
        if let Some(seq) = self.journal_seqs.get(zone) {
            return Ok(*seq);
        }
        let (conn, prefix) = (self.conn.clone(), format!("{}{}", self.prefix, journal_prefix(&self.node, zone)));
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(1)
            .with_keys_only();
        let resp = self.call(async move { conn.get().await?.get(prefix, Some(opts)).await }).await?;
        let seq = resp
            .kvs()
            .first()
            .and_then(|kv| std::str::from_utf8(kv.key()).ok()?.rsplit('/').next()?.parse().ok())
            .unwrap_or(0);
        self.journal_seqs.insert(zone.clone(), seq);
        Ok(seq)
    }

    /// Runs one etcd request with the timeout.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("etcd {} unavailable: {}", self.endpoints, short(&e)))),
            Err(_) => {
                Err(StoreError::Unavailable(format!("etcd {} did not answer within {timeout:?}", self.endpoints)))
            }
        }
    }

    /// Sends the write's transaction until etcd answers, and returns the revision
    /// it was stored at, or the conflict. The client spreads requests over all
    /// endpoints and does not skip a dead one: a request sent to it fails at once,
    /// and another try reaches a live member. A try that failed after reaching
    /// etcd may have been applied; the condition then fails, and the mark tells
    /// whether it was ours. Each try has the timeout; all tries together three
    /// times it, so that a try stuck on a member that just died (a leader
    /// election) is followed by one that reaches a live member.
    async fn send(&self, txn: Txn, mark: &str, zone: &Name) -> Result<i64, StoreError> {
        let deadline = tokio::time::Instant::now() + self.timeout * 3;
        let mut tries = 0;
        loop {
            tries += 1;
            let (conn, t) = (self.conn.clone(), txn.clone());
            match self.call(async move { conn.get().await?.txn(t).await }).await {
                Ok(resp) if resp.succeeded() => return Ok(resp.header().map(|h| h.revision()).unwrap_or(0)),
                Ok(_) if tries > 1 => return self.landed(mark).await?.ok_or_else(|| self.conflict(zone)),
                Ok(_) => return Err(self.conflict(zone)),
                Err(e) if tokio::time::Instant::now() < deadline && tries < 8 => {
                    tracing::debug!(error = %e, "etcd write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn load(&mut self) -> Result<Overlay, StoreError> {
        if let Some(s) = self.initial.take() {
            return Ok(s.overlay);
        }
        let (conn, prefix, timeout) = (self.conn.clone(), self.prefix.clone(), self.timeout);
        let read = async move {
            let mut client = conn.get().await.map_err(|e| EtcdError::Read { reason: short(&e) })?;
            tokio::time::timeout(timeout, load_all(&mut client, &prefix)).await.map_err(|_| EtcdError::Timeout)?
        };
        let (entries, revision) = read.await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(self.observe_full(&entries, revision).overlay)
    }

    async fn apply_all(&mut self, changes: &[Change], zone: &Name) -> Result<(), StoreError> {
        let (bumps, rev) = self.serials.get(zone).copied().unwrap_or((0, 0));
        let serial = format!("{}{}", self.prefix, serial_key(zone));
        let mut ops: Vec<TxnOp> = changes.iter().flat_map(|c| self.change_ops(c)).collect();
        let mark = format!("{:016x}", fastrand::u64(..));
        ops.push(TxnOp::put(self.mark_key.clone(), mark.clone(), None));
        // Last: the watch takes the serial key as the end of a transaction.
        ops.push(TxnOp::put(serial.clone(), (bumps + 1).to_string(), None));
        let txn = Txn::new().when(vec![Compare::mod_revision(serial.clone(), CompareOp::Equal, rev)]).and_then(ops);
        let revision = self.send(txn, &mark, zone).await?;
        self.wrote(changes, zone, bumps + 1, revision);
        Ok(())
    }

    /// The serial key alone, in one transaction conditioned like a change's, so
    /// that every node serves the new serial (the watch brings it to them).
    async fn bump(&mut self, zone: &Name) -> Result<(), StoreError> {
        let (bumps, rev) = self.serials.get(zone).copied().unwrap_or((0, 0));
        let serial = format!("{}{}", self.prefix, serial_key(zone));
        let mark = format!("{:016x}", fastrand::u64(..));
        let ops = vec![
            TxnOp::put(self.mark_key.clone(), mark.clone(), None),
            TxnOp::put(serial.clone(), (bumps + 1).to_string(), None),
        ];
        let txn = Txn::new().when(vec![Compare::mod_revision(serial, CompareOp::Equal, rev)]).and_then(ops);
        let revision = self.send(txn, &mark, zone).await?;
        self.serials.insert(zone.clone(), (bumps + 1, revision));
        self.own.insert(revision, vec![(serial_key(zone), Some((bumps + 1).to_string().into_bytes()))]);
        Ok(())
    }

    /// Puts the entry under the zone's next sequence number and deletes, with one
    /// range delete, every older entry but the newest `keep - 1`: two operations
    /// whatever the journal holds. Not conditional: only this node writes under
    /// `journal/NODE/`, and a retried write puts the same key again.
    async fn journal(&mut self, zone: &Name, entry: Vec<u8>, keep: usize) -> Result<(), StoreError> {
        let seq = self.journal_seq(zone).await? + 1;
        // The number is used even if the write fails: a write that failed after
        // reaching etcd may have been stored, and the next must not replace it.
        self.journal_seqs.insert(zone.clone(), seq);
        let first_kept = (seq + 1).saturating_sub(keep.max(1) as u64);
        let key = |seq| format!("{}{}", self.prefix, journal_key(&self.node, zone, seq));
        let older = DeleteOptions::new().with_range(key(first_kept));
        let txn = Txn::new().and_then(vec![
            TxnOp::put(key(seq), entry, None),
            TxnOp::delete(format!("{}{}", self.prefix, journal_prefix(&self.node, zone)), Some(older)),
        ]);
        let conn = self.conn.clone();
        self.call(async move { conn.get().await?.txn(txn).await }).await?;
        Ok(())
    }

    /// This node's journal entries, by zone, oldest first. Read with no limit
    /// on the answer's size (the client's default is 4 MiB; a journal may hold
    /// more); not read when etcd was out of reach at start (IXFR starts afresh).
    async fn load_journals(&mut self) -> Result<StoredJournals, StoreError> {
        if !self.reached {
            return Err(StoreError::Unavailable(format!("etcd {} was out of reach at start", self.endpoints)));
        }
        let mine = format!("{}{JOURNAL}{}/", self.prefix, enc(&self.node));
        let (conn, from) = (self.conn.clone(), mine.clone());
        let resp = self
            .call(async move {
                let mut kv = conn.get().await?.kv_client().max_decoding_message_size(usize::MAX);
                kv.get(from, Some(GetOptions::new().with_prefix())).await
            })
            .await?;
        let mut out: StoredJournals = Vec::new();
        for kv in resp.kvs() {
            let rest = std::str::from_utf8(kv.key()).ok().and_then(|k| k.strip_prefix(&mine));
            let Some((zone, seq)) = rest.and_then(parse_journal_key) else {
                warn!(key = %String::from_utf8_lossy(kv.key()), "not an IXFR journal key: left out");
                continue;
            };
            self.journal_seqs.insert(zone.clone(), seq);
            match out.last_mut() {
                Some((z, list)) if *z == zone => list.push(kv.value().to_vec()),
                _ => out.push((zone, vec![kv.value().to_vec()])),
            }
        }
        Ok(out)
    }

    fn observe(&mut self, remote: Remote) -> Observed {
        match remote {
            Remote::Full { entries, revision } => Observed::Full(self.observe_full(&entries, revision)),
            Remote::Changes(c) => Observed::Changes(self.observe_changes(c)),
            Remote::Lost => Observed::Lost,
        }
    }

    async fn import(&mut self, o: &Overlay) -> Result<usize, StoreError> {
        let (conn, prefix) = (self.conn.clone(), self.prefix.clone());
        let existing = self
            .call(async move {
                conn.get().await?.get(prefix.clone(), Some(GetOptions::new().with_prefix().with_count_only())).await
            })
            .await?;
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
            self.call(async move { conn.get().await?.txn(Txn::new().and_then(ops)).await }).await?;
        }
        Ok(all.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_fqdn;
    use crate::state::overlay::StoredRRset;
    use hickory_proto::rr::RecordType;

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
            probe_share: None,
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
            node: "n".into(),
            journal_seqs: HashMap::new(),
            reached: false,
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
            set: StoredRRset::api(60, vec!["192.0.2.7".into()]),
        };
        let mut s = store();
        s.wrote(std::slice::from_ref(&change), &zone, 3, 10);
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
        s.wrote(std::slice::from_ref(&change), &zone, 5, 12);
        s.observe_full(&[], 12);
        assert!(s.own.is_empty());
    }
}
