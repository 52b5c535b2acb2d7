//! What a probe stream shares with the writer's entry for it, so that a result
//! that changes nothing the writer keeps need not reach the writer at all (issue
//! 21: the writer's wake-ups per tick were most of what probing cost once the
//! exchange itself was cheap).
//!
//! The stream writes the last probe's time and the last pass's duration here at
//! every probe, and observes the duration histogram, which the API and `/metrics`
//! read as they are. The writer, after applying a result, says whether a pass
//! after it would change nothing (the member is up with no failure counted, and
//! follows no reported weight, ramp or certificate): `settled` names that
//! result's number. The stream skips a pass only when the last result it sent is
//! the one named, so a failure sent (and not applied yet) or a writer behind by
//! several results never loses a pass that would have reset a count.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::histogram::Histogram;

/// One stream's last probe, shared by the stream and the writer.
#[derive(Debug, Default)]
pub struct LastProbe {
    /// Results sent to the writer so far, counted from 1.
    sent: AtomicU64,
    /// The number of the result after which a pass changes nothing (0: none).
    settled: AtomicU64,
    /// The last probe's start, in ns since the Unix epoch (0: none yet).
    at_nanos: AtomicU64,
    /// How long the last passing probe took, in ns (0: none yet).
    rtt_nanos: AtomicU64,
    /// `lbdns_probe_duration_seconds` of the stream's checks, resolved once by
    /// the writer at the stream's first result.
    pub duration: OnceLock<Histogram>,
}

impl LastProbe {
    /// Notes a probe that started `at`, took `took` and passed or not.
    pub fn record(&self, at: SystemTime, took: Duration, passed: bool) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.at_nanos.store(nanos(at.duration_since(UNIX_EPOCH).unwrap_or_default()), Ordering::Relaxed);
        if passed {
            self.rtt_nanos.store(nanos(took).max(1), Ordering::Relaxed);
        }
    }

    /// The last probe's start.
    pub fn at(&self) -> Option<SystemTime> {
        let n = self.at_nanos.load(Ordering::Relaxed);
        (n > 0).then(|| UNIX_EPOCH + Duration::from_nanos(n))
    }

    /// How long the last passing probe took.
    pub fn rtt(&self) -> Option<Duration> {
        let n = self.rtt_nanos.load(Ordering::Relaxed);
        (n > 0).then(|| Duration::from_nanos(n))
    }

    /// The number of the next result sent.
    pub fn next_sent(&self) -> u64 {
        self.sent.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether a pass now would change nothing the writer keeps: the writer
    /// said so after applying the last result sent.
    pub fn settled(&self) -> bool {
        let last = self.sent.load(Ordering::Relaxed);
        last > 0 && self.settled.load(Ordering::Acquire) == last
    }

    /// The writer applied result `seq`; `settled`: a pass after it changes nothing.
    pub fn applied(&self, seq: u64, settled: bool) {
        self.settled.store(if settled { seq } else { 0 }, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_skipped_only_after_the_last_result_sent_was_applied_as_settled() {
        let last = LastProbe::default();
        assert!(!last.settled(), "nothing sent yet");
        let one = last.next_sent();
        assert!(!last.settled(), "sent, not applied");
        last.applied(one, true);
        assert!(last.settled());
        let two = last.next_sent(); // a failure, say, not applied yet
        assert!(!last.settled());
        last.applied(one, true); // a writer behind says so of the older one only
        assert!(!last.settled());
        last.applied(two, false);
        assert!(!last.settled());
    }

    #[test]
    fn time_and_rtt_read_back_and_a_failure_keeps_the_last_pass_rtt() {
        let last = LastProbe::default();
        assert_eq!((last.at(), last.rtt()), (None, None));
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        last.record(t, Duration::from_micros(1500), true);
        last.record(t + Duration::from_secs(1), Duration::from_millis(500), false);
        assert_eq!(last.at(), Some(t + Duration::from_secs(1)));
        assert_eq!(last.rtt(), Some(Duration::from_micros(1500)));
    }
}
