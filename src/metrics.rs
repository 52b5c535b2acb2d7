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
use crate::store::snapshot::Snapshot;

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
        registry.register_collector(Box::new(QueryPath { stats, snapshot }));
        Metrics {
            probe_duration,
            admin_requests,
            reloads,
            redirects,
            admin_write_retries,
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
}

impl prometheus_client::collector::Collector for QueryPath {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
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
        let mut e = encoder.encode_descriptor(
            "lbdns_member_up",
            "1 if the member is healthy (or not checked), 0 if its probes fail",
            None,
            MetricType::Gauge,
        )?;
        for p in &snap.pools {
            for m in p.members.iter() {
                let addr = m.address.to_string();
                ConstGauge::new(i64::from(m.healthy))
                    .encode(e.encode_family(&[("pool", p.name_text.as_str()), ("address", addr.as_str())])?)?;
            }
        }
        Ok(())
    }
}
