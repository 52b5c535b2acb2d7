//! Response rate limiting (as in BIND and Knot RRL), so that lbdns cannot be used to
//! amplify a flood at a spoofed victim: at most `responses_per_second` UDP responses
//! per client /24 (IPv4) or /56 (IPv6); of the responses over the limit, every
//! `slip`-th goes out truncated (TC=1, no answer: a real client retries over TCP) and
//! the rest are dropped. TCP is never limited (it cannot be spoofed).
//!
//! The table is a fixed array of atomic buckets indexed by a hash of the client
//! network, each holding (second, count): lock-free and allocation-free. Networks
//! that collide in a bucket share its budget; with 65,536 buckets that is rare.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::RrlConfig;
use crate::net;

const BUCKETS: usize = 1 << 16;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated response instead.
    Slip,
    Drop,
}

#[derive(Debug)]
pub struct Rrl {
    rate: u64,
    slip: u64,
    start: Instant,
    table: Box<[AtomicU64]>,
}

impl Rrl {
    pub fn new(cfg: RrlConfig) -> Rrl {
        Rrl {
            rate: cfg.responses_per_second.max(1) as u64,
            slip: cfg.slip as u64,
            start: Instant::now(),
            table: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts a response to `client` and says whether to send it.
    pub fn check(&self, client: IpAddr) -> Verdict {
        let now = self.start.elapsed().as_secs() & 0xffff_ffff;
        let slot = &self.table[(net::client_key(client) as usize) & (BUCKETS - 1)];
        let mut cur = slot.load(Ordering::Relaxed);
        let count = loop {
            let (second, count) = (cur >> 32, cur & 0xffff_ffff);
            let count = if second == now { (count + 1).min(0xffff_ffff) } else { 1 };
            match slot.compare_exchange_weak(cur, (now << 32) | count, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break count,
                Err(actual) => cur = actual,
            }
        };
        if count <= self.rate {
            Verdict::Send
        } else if self.slip > 0 && (count - self.rate) % self.slip == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_network_with_slip() {
        let r = Rrl::new(RrlConfig { responses_per_second: 5, slip: 2 });
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let same_net: IpAddr = "198.51.100.200".parse().unwrap();
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        let v: Vec<Verdict> = (0..9).map(|i| r.check(if i % 2 == 0 { a } else { same_net })).collect();
        use Verdict::*;
        assert_eq!(v, vec![Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip]);
        assert_eq!(r.check(other), Send, "another /24 has its own budget");
    }
}
