//! Where API changes persist: the [`Store`] trait, the embedded SQLite store
//! ([`sqlite`]) and the shared etcd store ([`etcd`]), both writing the one
//! encoding of [`encoding`]; `lbdns export`/`import` ([`transfer`]) go through
//! the trait. The two backends never import each other.

pub mod encoding;
pub mod etcd;
pub mod sqlite;
pub mod transfer;

use std::collections::BTreeMap;

use hickory_proto::rr::Name;

use crate::health::Votes;
use crate::state::overlay::{Change, Overlay};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("state store {path}: {message}")]
    Corrupt { path: String, message: String },
    /// An existing database file of 0 bytes: a new one is never left empty (WAL
    /// mode writes its first page at once), so this is damage, not a fresh start.
    #[error(
        "state store {path} is empty (0 bytes): the file is damaged and the API changes in it are lost; \
         restore it from a backup, or remove it (with any {path}-wal and {path}-shm) to start afresh \
         without API changes"
    )]
    Empty { path: String },
    #[error("cannot create state directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    /// The shared store cannot be reached (the change was not stored).
    #[error("{0}")]
    Unavailable(String),
    /// The change lost a race with another server's, or the target is not empty.
    #[error("{0}")]
    Conflict(String),
}

/// Where API changes live. The calls are async: etcd is awaited; SQLite's
/// calls block the caller for the disk, which the writer's own thread
/// (`lbdns-writer`) is there for. Any runtime will do, a
/// current-thread one too.
#[async_trait::async_trait]
pub trait Store: Send {
    /// Everything stored so far.
    async fn load(&mut self) -> Result<Overlay, StoreError>;
    /// Stores `change` (made in `zone`) and increments that zone's serial, in one
    /// transaction; returns once it is durable.
    async fn apply(&mut self, change: &Change, zone: &Name) -> Result<(), StoreError> {
        self.apply_all(std::slice::from_ref(change), zone).await
    }
    /// Stores `changes` (one UPDATE message, made in `zone`) and increments that
    /// zone's serial once, all in one transaction: all of them are stored, or none.
    async fn apply_all(&mut self, changes: &[Change], zone: &Name) -> Result<(), StoreError>;
    /// Stores a whole exported state into this (empty) store; returns the number of
    /// entries written. Refuses a store that already holds changes.
    async fn import(&mut self, o: &Overlay) -> Result<usize, StoreError>;
    /// Appends an encoded IXFR journal entry of `zone` and keeps only the zone's
    /// newest `keep` entries, in one transaction. The shared store keeps each
    /// node's journal apart (each node journals what it serves).
    async fn journal(&mut self, zone: &Name, entry: Vec<u8>, keep: usize) -> Result<(), StoreError>;
    /// Every zone's stored journal entries (this node's), oldest first.
    async fn load_journals(&mut self) -> Result<StoredJournals, StoreError>;
    /// Increments `zone`'s serial counter alone: a health change altered what a
    /// zone transfer sends (`transfer_pools = "healthy"`).
    async fn bump(&mut self, zone: &Name) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(format!("zone {zone}: this store does not count serial bumps without a change")))
    }
    /// What another server changed, as the shared store's watch saw it, reduced to
    /// what this server has not applied yet. The embedded store has no others.
    fn observe(&mut self, remote: Remote) -> Observed {
        let _ = remote;
        Observed::Nothing
    }
}

/// Stored IXFR journal entries (encoded), oldest first, by zone.
pub type StoredJournals = Vec<(Name, Vec<Vec<u8>>)>;

/// What a shared store's watch tells the writer (the embedded store has none).
#[derive(Debug)]
pub enum Remote {
    /// Every key under the prefix at `revision`: replaces what the node had.
    Full { entries: Vec<(String, Vec<u8>, i64)>, revision: i64 },
    /// Keys changed after the last update: (relative key, value or `None` when
    /// deleted, revision of the change).
    Changes(Vec<(String, Option<Vec<u8>>, i64)>),
    /// The watch lost etcd: other nodes' health views can no longer be trusted.
    Lost,
}

/// Decoded shared state: the API changes and each other node's health votes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    pub overlay: Overlay,
    pub nodes: BTreeMap<String, Votes>,
}

/// A remote update, ready for the writer.
pub enum Observed {
    Nothing,
    /// The whole state: replaces the overlay and the node views.
    Full(State),
    /// Keys to apply (value `None` = deleted).
    Changes(Vec<(String, Option<Vec<u8>>)>),
    /// etcd is out of reach: other nodes' views are unknown.
    Lost,
}

/// A weighted API pool with one member: the pool the store tests write.
#[cfg(test)]
fn test_pool() -> crate::config::PoolDef {
    use crate::config::{AllDown, MemberConfig, PolicyName, PoolDef};
    PoolDef {
        name: crate::config::parse_fqdn("api.example.test.").unwrap(),
        policy: PolicyName::Weighted,
        ttl: 5,
        max_answers: 1,
        all_down: AllDown::Empty,
        fallback: vec![],
        health: Default::default(),
        members: vec![MemberConfig {
            address: "192.0.2.1".parse().unwrap(),
            weight: 3,
            region: None,
            enabled: true,
            probe: None,
        }],
        line: 0,
    }
}
