//! When probes run, and where: the probe streams live on threads of their own
//! (each a single-threaded runtime; one per 2,000 streams, at most one per core),
//! and every stream's probes start, and their results leave, on a shared grid
//! of [`TICK`]s. Both are for cost (issue 21): the profile of 1,000 members each
//! probed every second showed the time going to thread wake-ups, as each timer
//! fired on its own millisecond and woke a worker of the server's runtime, and
//! each result woke the writer. On the grid the probes due in one tick start at
//! one wake-up of their thread (which then wakes for their answers only), and
//! the writer takes a tick's results at one wake-up.
//!
//! A stream probes every interval jittered ±10%, measured start to start; its
//! first probe comes at once (a new member) or at a random point of its first
//! interval (the streams started together after the first round), so that the
//! members spread over the interval instead of probing in step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{ProbeKey, ProbeResult, probe};

/// The grid probes are started on: a tenth of the jitter of a 100 ms interval,
/// and a hundredth of the default 2 s one.
pub const TICK: Duration = Duration::from_millis(10);

/// Most probe threads, however many cores.
const MAX_THREADS: usize = 8;

/// Streams a probe thread takes before another is started: one thread keeps
/// 1,000 members probed every second at a few percent of a core, and every
/// thread more is woken on every tick too.
const STREAMS_PER_THREAD: usize = 2_000;

/// The threads the probe streams run on, started as the streams need them (one
/// per [`STREAMS_PER_THREAD`], at most one per core). Dropping this stops them,
/// and with them every stream they run.
pub struct ProbeThreads {
    threads: Vec<ProbeThread>,
    max: usize,
}

struct ProbeThread {
    handle: Handle,
    /// Streams running on it.
    streams: Arc<AtomicUsize>,
    /// Dropped to stop the thread.
    _stop: oneshot::Sender<()>,
}

/// Counts a stream on its thread while it lives (an aborted stream drops it).
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ProbeThreads {
    pub fn new() -> ProbeThreads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ProbeThreads { threads: Vec::new(), max: cores.min(MAX_THREADS) }
    }

    /// Runs `task` on the probe thread with the fewest streams, starting a new
    /// one when all have their share. A thread that cannot be started leaves
    /// the stream to the others, or to the caller's runtime, with a warning.
    pub fn spawn<F>(&mut self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let load = |t: &ProbeThread| t.streams.load(Ordering::Relaxed);
        let least = self.threads.iter().map(load).min();
        if least.is_none_or(|n| n >= STREAMS_PER_THREAD) && self.threads.len() < self.max {
            match start_thread(self.threads.len()) {
                Ok(t) => self.threads.push(t),
                Err(e) => tracing::warn!(error = %e, "cannot start a probe thread"),
            }
        }
        let Some(thread) = self.threads.iter().min_by_key(|t| load(t)) else { return tokio::spawn(task) };
        thread.streams.fetch_add(1, Ordering::Relaxed);
        let live = Live(thread.streams.clone());
        thread.handle.spawn(async move {
            let _live = live;
            task.await
        })
    }
}

/// A thread with a single-threaded runtime that runs until it is dropped.
fn start_thread(i: usize) -> std::io::Result<ProbeThread> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new().name(format!("lbdns-probe-{i}")).spawn(move || {
        let _ = rt.block_on(stopped);
    })?;
    Ok(ProbeThread { handle, streams: Arc::new(AtomicUsize::new(0)), _stop: stop })
}

/// The first tick at or after `t`. The grid starts at one instant shared by
/// every thread, so that all streams due in a tick wake at the same moment.
fn on_grid(t: tokio::time::Instant) -> tokio::time::Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = tokio::time::Instant::from_std(*ORIGIN.get_or_init(Instant::now));
    let since = t.saturating_duration_since(origin).as_nanos();
    let tick = TICK.as_nanos();
    let nanos = since.div_ceil(tick) * tick;
    origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// One probe of `key`, timed.
pub async fn probe_once(key: &ProbeKey, runner: &mut probe::Runner) -> ProbeResult {
    let start = Instant::now();
    let at = SystemTime::now();
    let outcome = runner.run(key).await;
    ProbeResult { key: key.clone(), outcome, took: start.elapsed(), at }
}

/// One stream: probe every (jittered) interval, measured start to start, each
/// probe started on the tick grid.
pub async fn stream(
    key: ProbeKey,
    results: mpsc::Sender<ProbeResult>,
    limit: Arc<Semaphore>,
    mut runner: probe::Runner,
    immediate: bool,
) {
    let now = tokio::time::Instant::now();
    let mut next = if immediate { now } else { now + key.spec.interval.mul_f64(fastrand::f64()) };
    loop {
        tokio::time::sleep_until(on_grid(next)).await;
        next += probe::jitter(key.spec.interval);
        let result = {
            let Ok(_permit) = limit.acquire().await else { return };
            probe_once(&key, &mut runner).await
        };
        // Results go to the writer on the grid too, so that those of one tick
        // wake it once rather than each on its own.
        tokio::time::sleep_until(on_grid(tokio::time::Instant::now())).await;
        if results.send(result).await.is_err() {
            return;
        }
        // A probe that took longer than the interval does not cause a burst.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fall_on_the_shared_grid_never_before_they_are_due() {
        let now = tokio::time::Instant::now();
        let mut ticks = std::collections::HashSet::new();
        for ms in 0..100 {
            let t = now + Duration::from_micros(ms * 997);
            let g = on_grid(t);
            assert!(g >= t && g - t < TICK, "{ms}");
            ticks.insert(g);
        }
        // 100 deadlines spread over ~100 ms wake on about ten ticks.
        assert!(ticks.len() <= 11, "{}", ticks.len());
    }

    #[tokio::test]
    async fn streams_share_a_thread_and_leave_its_count_when_stopped() {
        let mut threads = ProbeThreads::new();
        let tasks: Vec<_> = (0..3).map(|_| threads.spawn(std::future::pending())).collect();
        assert_eq!(threads.threads.len(), 1);
        assert_eq!(threads.threads[0].streams.load(Ordering::Relaxed), 3);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        assert_eq!(threads.threads[0].streams.load(Ordering::Relaxed), 0);
    }
}
