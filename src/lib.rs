//! lbdns: a load-balancing authoritative DNS server.
//!
//! ```text
//!  config + zone files ──> Sources ──┐
//!  health probes ────────────────────┼──> control ─> Snapshot (arc-swap) ──> UDP workers
//!  admin API (changes) ──────────────┘                                  └──> TCP tasks
//! ```
//!
//! The query path reads an immutable [`snapshot::Snapshot`] and never locks,
//! allocates per query, or waits. Everything that changes answers goes through the
//! one writer, which builds the next snapshot and publishes it with one atomic swap.

pub mod admin;
pub mod app;
pub mod client;
pub mod config;
pub mod control;
pub mod counters;
pub mod dns;
pub mod dnssec;
pub mod fuzzing;
pub mod geoip;
pub mod health;
pub mod http;
pub mod journal;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod persist;
pub mod policy;
pub mod problem;
pub mod rdata;
pub mod redirect;
pub mod secrets;
pub mod shutdown;
pub mod snapshot;
pub mod sources;
pub mod state;
pub mod tsig;
pub mod xfr;
pub mod zone;

pub use app::App;
pub use sources::Sources;
