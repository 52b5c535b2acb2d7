//! One probe of a member: every check of its [`ProbeSpec`], run together, each
//! bounded by its own timeout; the probe passes when all of them pass, and a
//! failure names the check that failed. `tcp` connects; `http`/`https` are in
//! `http.rs`. A [`Runner`] holds what a stream reuses from probe to probe (its
//! connections, its compiled request), built once when the stream starts.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::dns::DnsCheck;
use super::error::{Passed, ProbeError};
use super::http::HttpCheck;
use super::tcp::tcp_connect;
use super::tls::{TlsCheck, TlsConfigs};
use super::{CheckSpec, ProbeKey};
use crate::config::CheckKind;

/// One check's state kept between probes.
enum CheckState {
    Tcp,
    Http(Box<HttpCheck>),
    Dns(DnsCheck),
    Tls(TlsCheck),
    /// A check that cannot run (it fails every probe with this error).
    Broken(ProbeError),
}

/// A stream's checks with what they keep between probes.
pub struct Runner {
    checks: Vec<CheckState>,
    source: Option<IpAddr>,
}

impl Runner {
    /// Moves the connections kept from the first round (opened on the server's
    /// runtime) onto the runtime this runs on, the probe thread's: a tokio socket
    /// stays with the reactor it was made on, and would wake the server's
    /// runtime for every answer the probe thread reads.
    pub fn rehome(&mut self) {
        for check in &mut self.checks {
            if let CheckState::Http(h) = check {
                h.rehome();
            }
        }
    }

    pub fn new(key: &ProbeKey, tls: &TlsConfigs, source: Option<IpAddr>) -> Runner {
        let checks = key
            .spec
            .checks
            .iter()
            .map(|c| match c.check {
                CheckKind::Http | CheckKind::Https => match HttpCheck::new(c, tls) {
                    Ok(h) => CheckState::Http(Box::new(h)),
                    Err(e) => CheckState::Broken(e),
                },
                CheckKind::Tls => match TlsCheck::new(c, tls) {
                    Ok(t) => CheckState::Tls(t),
                    Err(e) => CheckState::Broken(e),
                },
                CheckKind::Dns => match DnsCheck::new(c) {
                    Ok(d) => CheckState::Dns(d),
                    Err(e) => CheckState::Broken(e),
                },
                _ => CheckState::Tcp,
            })
            .collect();
        Runner { checks, source }
    }

    /// Runs every check of `key` at once; the first failure (in check order)
    /// fails the probe. Also returns when the probe ended: when its last
    /// check's answer arrived (a kept http connection's answer, read on the
    /// tick, arrived before it was read), so that its duration is the answer's.
    pub async fn run(&mut self, key: &ProbeKey) -> (Result<Passed, ProbeError>, Instant) {
        let source = self.source;
        if let ([state], [spec]) = (self.checks.as_mut_slice(), key.spec.checks.as_slice()) {
            // The common case, one check: nothing to join, nothing allocated.
            return timed(state, spec, key.target(spec), source).await;
        }
        let runs = self
            .checks
            .iter_mut()
            .zip(&key.spec.checks)
            .map(|(state, spec)| timed(state, spec, key.target(spec), source));
        let results = futures_join(runs).await;
        let ended = results.iter().map(|(_, end)| *end).max().unwrap_or_else(Instant::now);
        let mut passed = Passed::default();
        for (i, ((r, _), spec)) in results.into_iter().zip(&key.spec.checks).enumerate() {
            match r {
                Ok(p) => {
                    passed.weight = passed.weight.or(p.weight);
                    passed.cert_days = passed.cert_days.or(p.cert_days);
                }
                Err(e) => {
                    let error = ProbeError::Check { n: i + 1, kind: spec.check.as_str(), error: Box::new(e) };
                    return (Err(error), ended);
                }
            }
        }
        (Ok(passed), ended)
    }
}

/// One check, bounded by its timeout, and when it ended.
async fn timed(
    state: &mut CheckState,
    spec: &CheckSpec,
    target: SocketAddr,
    source: Option<IpAddr>,
) -> (Result<Passed, ProbeError>, Instant) {
    let r = match tokio::time::timeout(spec.timeout, run_one(state, spec, target, source)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(spec.timeout)),
    };
    let answered = match state {
        CheckState::Http(h) => h.answered(),
        _ => None,
    };
    (r, answered.unwrap_or_else(Instant::now))
}

async fn run_one(
    state: &mut CheckState,
    spec: &CheckSpec,
    target: SocketAddr,
    source: Option<IpAddr>,
) -> Result<Passed, ProbeError> {
    match state {
        CheckState::Tcp => tcp_connect(target, source)
            .await
            .map(|_| Passed::default())
            .map_err(|e| ProbeError::Connect { target, reason: e.to_string() }),
        CheckState::Http(h) => h.run(spec, target, source).await.map(|weight| Passed { weight, cert_days: None }),
        CheckState::Dns(d) => d.run(target, source).await.map(|_| Passed::default()),
        CheckState::Tls(t) => t.run(target, source).await.map(|days| Passed { weight: None, cert_days: Some(days) }),
        CheckState::Broken(e) => Err(e.clone()),
    }
}

/// Awaits every future, concurrently, in one task (no task per check).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Interval jittered by ±10%.
pub fn jitter(interval: Duration) -> Duration {
    let f = 0.9 + fastrand::f64() * 0.2;
    interval.mul_f64(f)
}
