//! API state in etcd, shared by several lbdns servers (`[cluster] store = "etcd"`).
//!
//! Keys under the prefix (names percent-encode `%` and `/`):
//! - `pools/NAME` → an API pool (JSON, as the API takes it)
//! - `members/POOL/ADDRESS` → a member override of a config pool: the fields it
//!   sets (JSON, `null` = removed; a whole member, as the previous version stored
//!   it, sets every field)
//! - `rrsets/ZONE/NAME/TYPE` → an RRset override (JSON, `null` = deleted)
//!
//! An override reverted through the API (`DELETE …/override`) is its key deleted.
//! - `serials/ZONE` → how many changes the zone has had (its SOA serial bump)
//! - `nodes/NODE` → that node's probe results, attached to a lease (gone when it dies)
//! - `txn/NODE` → a random mark of that node's last write, so that after a try
//!   whose reply was lost the node can tell whether it was applied
//!
//! A write is one etcd transaction: the change and the zone's serial counter, on
//! condition that the counter is still the one this node last saw (so two nodes
//! cannot both validate a change against the same state). The 2xx goes out only
//! after etcd acknowledged it. Every node watches the prefix from the revision it
//! loaded and applies what it sees, skipping its own writes (already applied) and
//! anything at or below the loaded revision: nothing missed, nothing applied twice.
//! When the watch breaks (etcd down, compaction) the node loads everything again at
//! a new revision and watches on from there.

mod client;
mod lease;
mod store;
mod watch;

pub use client::{Connector, connect, load_all};
pub use lease::health_loop;
pub use store::EtcdStore;
pub use watch::watch_loop;

/// Why etcd could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No connection; with authentication, the login failed.
    #[error("etcd {endpoints}: {reason}")]
    Connect { endpoints: String, reason: String },
    /// A read failed.
    #[error("etcd: {reason}")]
    Read { reason: String },
    #[error("etcd did not answer")]
    Timeout,
    #[error("etcd {endpoints} did not answer")]
    NoAnswer { endpoints: String },
    /// The credentials, or their access to the prefix: the config is wrong.
    #[error(
        "etcd {endpoints} refused the [cluster] credentials (username, password_file, cert_file) \
         or their access to {prefix}: {reason}"
    )]
    Refused { endpoints: String, prefix: String, reason: String },
    #[error("etcd {endpoints} unavailable: {reason}")]
    Unavailable { endpoints: String, reason: String },
}
