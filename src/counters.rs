//! The query path's counters: relaxed atomics only. Each worker writes its own
//! [`WorkerStats`], and each pool its [`PoolCounters`] (kept across snapshots by
//! pool name); nothing on the query path locks. `metrics` sums and renders them
//! when scraped.
//!
//! A leaf: imports nothing from the crate, so that the DNS workers and the snapshot
//! can count without importing the Prometheus rendering (which reads them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// RCODEs counted individually; anything else is counted as "other".
pub const RCODES: [(u16, &str); 13] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    // 6-8 and 10: UPDATE's (RFC 2136).
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];

/// One worker's counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// [udp, tcp]
    pub queries: [AtomicU64; 2],
    pub responses: [AtomicU64; RCODES.len()],
    pub dropped: AtomicU64,
    pub truncated: AtomicU64,
    /// Rate-limited responses: [slipped, dropped].
    pub rrl: [AtomicU64; 2],
}

impl WorkerStats {
    #[inline]
    pub fn query(&self, tcp: bool) {
        self.queries[usize::from(tcp)].fetch_add(1, Ordering::Relaxed);
    }

    /// A response held back by rate limiting: dropped, or slipped (sent truncated).
    #[inline]
    pub fn rrl(&self, dropped: bool) {
        self.rrl[usize::from(dropped)].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A response sent with `rcode`, truncated (TC=1) or not.
    #[inline]
    pub fn response(&self, rcode: u16, truncated: bool) {
        let i = RCODES.iter().position(|&(c, _)| c == rcode).unwrap_or(RCODES.len() - 1);
        self.responses[i].fetch_add(1, Ordering::Relaxed);
        if truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Answers given by one pool.
#[derive(Debug, Default)]
pub struct PoolCounters {
    pub answers: AtomicU64,
    pub all_down: AtomicU64,
}

/// Every worker's stats, for scraping.
#[derive(Debug, Default)]
pub struct Stats {
    workers: Mutex<Vec<Arc<WorkerStats>>>,
}

impl Stats {
    /// A new worker's counters (taking the lock once, at start-up).
    pub fn worker(&self) -> Arc<WorkerStats> {
        let w = Arc::new(WorkerStats::default());
        if let Ok(mut v) = self.workers.lock() {
            v.push(w.clone());
        }
        w
    }

    pub fn sum(&self, f: impl Fn(&WorkerStats) -> u64) -> u64 {
        self.workers.lock().map(|v| v.iter().map(|w| f(w)).sum()).unwrap_or(0)
    }
}
