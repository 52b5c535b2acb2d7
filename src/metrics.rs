//! Counters. The query path writes only to its own worker's [`WorkerStats`]
//! (relaxed atomics on memory no other thread writes); a scrape sums the workers.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dns::Outcome;

/// RCODEs counted individually; anything else is counted as "other".
pub const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
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
}

impl WorkerStats {
    #[inline]
    pub fn query(&self, tcp: bool) {
        self.queries[usize::from(tcp)].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn response(&self, o: &Outcome) {
        let i = RCODES
            .iter()
            .position(|&(c, _)| c == o.rcode)
            .unwrap_or(RCODES.len() - 1);
        self.responses[i].fetch_add(1, Ordering::Relaxed);
        if o.truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
    }
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
