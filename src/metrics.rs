//! Metrics, exposed as Prometheus text at `GET /metrics` (prometheus-client): the
//! rendering only. The query path's counters live in [`crate::counters`]; a scrape
//! sums the workers and reads pools and member health from the current snapshot.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::counters::{RCODES, Stats};
use crate::snapshot::Snapshot;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// The metrics that are not read from the query path's counters.
#[derive(Clone)]
pub struct Metrics {
    pub probe_duration: Family<CheckLabel, Histogram>,
    pub admin_requests: Family<StatusLabel, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub redirects: Family<RedirectLabels, Counter>,
    /// API writes that lost a race with another server's write to the same zone
    /// (etcd) and were tried again after catching up.
    pub admin_write_retries: Counter,
    /// Answers per second of each pool, for the status page.
    pub answer_rates: Arc<AnswerRates>,
    /// Health overrides in force, by pool and member: 1 down, 2 up (the writer
    /// replaces the map when they change; members without one are 0).
    pub overrides: Overrides,
    /// Days to the certificate's expiry of members with a `tls` check, by pool
    /// and member (the writer replaces the map when a value changes).
    pub cert_days: Overrides,
    registry: Arc<Registry>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedirectLabels {
    pub pool: String,
    pub status: String,
}

impl Metrics {
    pub fn new(stats: Arc<Stats>, snapshot: Arc<ArcSwap<Snapshot>>) -> Metrics {
        let mut registry = Registry::default();
        let probe_duration = Family::<CheckLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let admin_requests = Family::<StatusLabel, Counter>::default();
        let reloads = Family::<ResultLabel, Counter>::default();
        let redirects = Family::<RedirectLabels, Counter>::default();
        registry.register("lbdns_redirects", "HTTP redirect responses by pool and status", redirects.clone());
        registry.register("lbdns_probe_duration_seconds", "Health probe duration by check", probe_duration.clone());
        registry.register("lbdns_admin_requests", "Admin API requests by HTTP status", admin_requests.clone());
        registry.register("lbdns_reloads", "Reloads (SIGHUP) by result", reloads.clone());
        let admin_write_retries = Counter::default();
        registry.register(
            "lbdns_admin_write_retries",
            "API writes tried again after losing a race with another server's write to the same zone",
            admin_write_retries.clone(),
        );
        // Both results are shown from the start, so an alert on errors has a series.
        let _ = reloads.get_or_create(&ResultLabel { result: "ok".into() });
        let _ = reloads.get_or_create(&ResultLabel { result: "error".into() });
        let overrides: Overrides = Arc::default();
        let cert_days: Overrides = Arc::default();
        let collector = QueryPath { stats, snapshot, overrides: overrides.clone(), cert_days: cert_days.clone() };
        registry.register_collector(Box::new(collector));
        Metrics {
            probe_duration,
            admin_requests,
            reloads,
            redirects,
            admin_write_retries,
            answer_rates: Arc::default(),
            overrides,
            cert_days,
            registry: Arc::new(registry),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "error" }.into() }).inc();
    }
}

/// Reads the query path's counters and the snapshot at scrape time.
#[derive(Debug)]
struct QueryPath {
    stats: Arc<Stats>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    overrides: Overrides,
    cert_days: Overrides,
}

/// `lbdns_member_override` values by pool and member (see [`Metrics::overrides`]).
pub type Overrides = Arc<ArcSwap<std::collections::HashMap<(String, std::net::IpAddr), i64>>>;

impl prometheus_client::collector::Collector for QueryPath {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_dns(&mut encoder)?;
        self.encode_dnssec(&mut encoder)?;
        self.encode_pools(&mut encoder)
    }
}

impl QueryPath {
    /// The DNS workers' counters, summed over the workers.
    fn encode_dns(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut e =
            encoder.encode_descriptor("lbdns_dns_queries", "DNS queries received", None, MetricType::Counter)?;
        for (i, proto) in ["udp", "tcp"].iter().enumerate() {
            let v = self.stats.sum(|w| w.queries[i].load(Ordering::Relaxed));
            ConstCounter::new(v).encode(e.encode_family(&[("proto", *proto)])?)?;
        }
        let mut e = encoder.encode_descriptor(
            "lbdns_dns_responses",
            "DNS responses sent by RCODE",
            None,
            MetricType::Counter,
        )?;
        for (i, (_, name)) in RCODES.iter().enumerate() {
            let v = self.stats.sum(|w| w.responses[i].load(Ordering::Relaxed));
            ConstCounter::new(v).encode(e.encode_family(&[("rcode", *name)])?)?;
        }
        let mut e = encoder.encode_descriptor(
            "lbdns_dns_truncated",
            "UDP responses sent with TC=1",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.stats.sum(|w| w.truncated.load(Ordering::Relaxed)))
            .encode(e.encode_family(&[("proto", "udp")])?)?;
        let mut e = encoder.encode_descriptor(
            "lbdns_dns_dropped",
            "Datagrams dropped without an answer (not a query)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.stats.sum(|w| w.dropped.load(Ordering::Relaxed)))
            .encode(e.encode_family(&[("proto", "any")])?)?;

        let mut e = encoder.encode_descriptor(
            "lbdns_rrl_limited",
            "UDP responses held back by response rate limiting: slipped (sent truncated) or dropped",
            None,
            MetricType::Counter,
        )?;
        for (i, action) in ["slipped", "dropped"].iter().enumerate() {
            let v = self.stats.sum(|w| w.rrl[i].load(Ordering::Relaxed));
            ConstCounter::new(v).encode(e.encode_family(&[("action", *action)])?)?;
        }
        Ok(())
    }

    /// DNSSEC signatures made (cache misses) and the signature cache's size.
    fn encode_dnssec(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot.load();
        let e = encoder.encode_descriptor(
            "lbdns_dnssec_signatures",
            "RRSIGs computed (not taken from the signature cache) since the keys were loaded",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(snap.dnssec.signatures()).encode(e)?;
        let e = encoder.encode_descriptor(
            "lbdns_dnssec_cache_bytes",
            "Memory of the DNSSEC signature cache",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(snap.dnssec.cache_bytes() as i64).encode(e)?;
        let e = encoder.encode_descriptor(
            "lbdns_dnssec_presigned",
            "RRSIGs of static RRsets made ahead, off the query path, and held",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(snap.dnssec.presigned() as i64).encode(e)?;
        let e = encoder.encode_descriptor(
            "lbdns_dnssec_presigned_bytes",
            "Memory of the RRSIGs made ahead",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(snap.dnssec.presigned_bytes() as i64).encode(e)
    }

    /// Each pool's counters and each member's health, from the current snapshot.
    fn encode_pools(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot.load();
        let mut e = encoder.encode_descriptor(
            "lbdns_pool_answers",
            "Answers given from each pool",
            None,
            MetricType::Counter,
        )?;
        for p in &snap.pools {
            ConstCounter::new(p.counters.answers.load(Ordering::Relaxed))
                .encode(e.encode_family(&[("pool", p.name_text.as_str())])?)?;
        }
        let mut e = encoder.encode_descriptor(
            "lbdns_pool_all_down",
            "Answers given while no member of the queried family was eligible",
            None,
            MetricType::Counter,
        )?;
        for p in &snap.pools {
            ConstCounter::new(p.counters.all_down.load(Ordering::Relaxed))
                .encode(e.encode_family(&[("pool", p.name_text.as_str())])?)?;
        }
        let up = ("lbdns_member_up", "1 if the member is healthy (or not checked), 0 if its probes fail");
        member_gauge(encoder, &snap, up, |_, m| Some(i64::from(m.healthy)))?;
        let overrides = self.overrides.load();
        let pushed =
            ("lbdns_member_override", "Health override through the API in force: 0 none, 1 pushed down, 2 pushed up");
        member_gauge(encoder, &snap, pushed, |p, m| match overrides.is_empty() {
            true => Some(0),
            false => Some(overrides.get(&(p.name_text.clone(), m.address)).copied().unwrap_or(0)),
        })?;
        let weight = (
            "lbdns_member_weight",
            "The weight the weighted, geo and affinity policies give the member (load feedback and slow start included)",
        );
        member_gauge(encoder, &snap, weight, |_, m| Some(m.weight))?;
        // Only members with a `tls` check have one.
        let days = self.cert_days.load();
        let cert = ("lbdns_member_cert_days", "Days until the certificate of the member's tls check expires");
        member_gauge(encoder, &snap, cert, |p, m| days.get(&(p.name_text.clone(), m.address)).copied())
    }
}

/// One gauge family, `name` with `help`, with a gauge for each pool member that
/// `value` gives a value, labelled by pool and address.
fn member_gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    snap: &Snapshot,
    (name, help): (&str, &str),
    value: impl Fn(&crate::snapshot::Pool, &crate::snapshot::PoolMember) -> Option<V>,
) -> Result<(), std::fmt::Error> {
    let mut e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for p in &snap.pools {
        for m in p.members.iter() {
            if let Some(v) = value(p, m) {
                let addr = m.address.to_string();
                ConstGauge::new(v)
                    .encode(e.encode_family(&[("pool", p.name_text.as_str()), ("address", addr.as_str())])?)?;
            }
        }
    }
    Ok(())
}

/// How often [`AnswerRates`] samples the pools' answer counters.
pub const RATE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Samples kept per pool: five minutes' worth.
pub const RATE_SAMPLES: usize = 60;

/// Answers per second of each pool over the last five minutes, for the status
/// page's sparklines: a small ring per pool, filled from [`crate::counters::PoolCounters`] every
/// [`RATE_EVERY`] off the query path (which only ever bumps its atomics).
///
/// A pool that answered nothing in the last five minutes holds no buffer, only
/// a count of its zeros: 100,000 idle pools held 60 rates each (51 MB).
#[derive(Debug, Default)]
pub struct AnswerRates {
    rings: std::sync::Mutex<Rings>,
}

#[derive(Debug, Default)]
struct Rings {
    by_pool: std::collections::HashMap<Box<str>, Ring>,
    /// Flipped at each sample: a ring whose mark is not the current one was not
    /// seen by it (its pool is gone).
    mark: bool,
}

#[derive(Debug)]
struct Ring {
    /// The counter at the last sample, to take the difference from.
    last: u64,
    /// Answers per second, oldest first, at most [`RATE_SAMPLES`]: `rates`, or,
    /// while it is empty, `zeros` rates of 0.
    rates: std::collections::VecDeque<f64>,
    zeros: u8,
    mark: bool,
}

impl Ring {
    fn push(&mut self, rate: f64) {
        if self.rates.is_empty() && rate == 0.0 {
            self.zeros = (self.zeros + 1).min(RATE_SAMPLES as u8);
            return;
        }
        if self.rates.is_empty() {
            self.rates.extend(std::iter::repeat_n(0.0, usize::from(self.zeros)));
            self.zeros = 0;
        }
        if self.rates.len() == RATE_SAMPLES {
            self.rates.pop_front();
        }
        self.rates.push_back(rate);
        if rate == 0.0 && self.rates.iter().all(|&r| r == 0.0) {
            self.zeros = self.rates.len() as u8;
            self.rates = Default::default();
        }
    }

    fn rates(&self) -> Vec<f64> {
        match self.rates.is_empty() {
            true => vec![0.0; usize::from(self.zeros)],
            false => self.rates.iter().copied().collect(),
        }
    }
}

impl AnswerRates {
    /// Takes one sample of every pool in `snap`, `secs` seconds after the last;
    /// forgets pools no longer there.
    pub fn sample(&self, snap: &Snapshot, secs: f64) {
        let counts = snap.pools.iter().map(|p| (p.name_text.as_str(), p.counters.answers.load(Ordering::Relaxed)));
        self.sample_counts(counts, secs);
    }

    /// [`AnswerRates::sample`] given each pool's answer counter.
    fn sample_counts<'a>(&self, counts: impl Iterator<Item = (&'a str, u64)>, secs: f64) {
        let Ok(mut rings) = self.rings.lock() else { return };
        rings.mark = !rings.mark;
        let mark = rings.mark;
        for (name, now) in counts {
            // A pool already sampled is found without allocating its name.
            match rings.by_pool.get_mut(name) {
                Some(ring) => {
                    ring.push(now.saturating_sub(ring.last) as f64 / secs.max(0.001));
                    ring.last = now;
                    ring.mark = mark;
                }
                None => {
                    let ring = Ring { last: now, rates: Default::default(), zeros: 0, mark };
                    rings.by_pool.insert(name.into(), ring);
                }
            }
        }
        rings.by_pool.retain(|_, ring| ring.mark == mark);
    }

    /// The samples of `pool`, oldest first (empty before the second sample).
    pub fn of(&self, pool: &str) -> Vec<f64> {
        self.rings.lock().ok().and_then(|r| r.by_pool.get(pool).map(Ring::rates)).unwrap_or_default()
    }

    /// How many pools hold a buffer of rates (those that answered in the last
    /// five minutes); the others hold a count.
    #[cfg(test)]
    fn buffers(&self) -> usize {
        self.rings.lock().map(|r| r.by_pool.values().filter(|ring| !ring.rates.is_empty()).count()).unwrap_or(0)
    }

    /// Samples every [`RATE_EVERY`] until the server stops.
    pub async fn run(self: Arc<Self>, snapshot: Arc<ArcSwap<Snapshot>>, mut shutdown: crate::shutdown::Shutdown) {
        let mut tick = tokio::time::interval(RATE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let now = tokio::time::Instant::now();
            self.sample(&snapshot.load(), now.duration_since(last).as_secs_f64());
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_rates_keep_five_minutes_per_pool_and_forget_removed_pools() {
        let r = AnswerRates::default();
        r.sample_counts([("a.", 100), ("b.", 0)].into_iter(), 5.0);
        assert!(r.of("a.").is_empty(), "one sample is no rate yet");
        r.sample_counts([("a.", 150), ("b.", 0)].into_iter(), 5.0);
        assert_eq!(r.of("a."), [10.0]);
        assert_eq!(r.of("b."), [0.0]);
        for i in 0..100u64 {
            r.sample_counts([("a.", 150 + 5 * (i + 1))].into_iter(), 5.0);
        }
        assert_eq!(r.of("a.").len(), RATE_SAMPLES);
        assert_eq!(r.of("a.").last(), Some(&1.0));
        assert!(r.of("b.").is_empty(), "a pool no longer there is forgotten");
    }

    /// Pools that answer nothing hold no buffer, yet show the same rates: as
    /// many zeros as samples (up to five minutes' worth); a pool that answers
    /// gets a buffer with the zeros before, and gives it up once five minutes
    /// of zeros have pushed its answers out.
    #[test]
    fn idle_pools_hold_no_buffer_of_rates() {
        let r = AnswerRates::default();
        let names: Vec<String> = (0..1000).map(|i| format!("p{i}.")).collect();
        let busy = |round: u64| names.iter().map(move |n| (n.as_str(), if n == "p7." { round * 10 } else { 0 }));
        for round in 0..=70 {
            r.sample_counts(busy(round.min(65)), 5.0);
        }
        assert_eq!(r.of("p1."), vec![0.0; RATE_SAMPLES]);
        let p7 = r.of("p7.");
        assert_eq!(p7.len(), RATE_SAMPLES);
        assert_eq!(p7[RATE_SAMPLES - 6..], [2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(r.buffers(), 1, "only the pool that answered");
        for _ in 0..RATE_SAMPLES {
            r.sample_counts(busy(65), 5.0);
        }
        assert_eq!(r.of("p7."), vec![0.0; RATE_SAMPLES]);
        assert_eq!(r.buffers(), 0, "five minutes idle: the buffer is given up");
        r.sample_counts(busy(66), 5.0);
        assert_eq!(r.of("p7.")[RATE_SAMPLES - 2..], [0.0, 2.0]);
        assert_eq!(r.of("p7.").len(), RATE_SAMPLES);
    }
}
