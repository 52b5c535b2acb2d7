//! When probes run, and where: the probe streams live on threads of their own
//! (each a single-threaded runtime; one per 2,000 streams, at most one per core),
//! and every stream's probes start, and their results leave, on a shared grid
//! of ticks (`grid.rs`). Both are for cost (issue 21): the profile of 1,000
//! members each probed every second showed the time going to thread wake-ups,
//! as each timer fired on its own millisecond and woke a worker of the server's
//! runtime, and each result woke the writer. On the grid the probes due in one
//! tick start at one wake-up of their thread (whose answers on kept plain HTTP
//! connections are read at the next one: `stamped.rs`), and the writer takes a
//! tick's results at one wake-up. A thread's results wait in
//! its [`Outbox`], which one task sends on at the next tick: one timer per tick
//! for the whole thread rather than one per result.
//!
//! A stream probes every interval jittered ±10%, measured start to start; its
//! first probe comes at once (a new member) or at a random point of its first
//! interval (the streams started together after the first round), so that the
//! members spread over the interval instead of probing in step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::grid::on_grid;
use super::{LastProbe, ProbeKey, ProbeResult, probe};

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
    /// Where every thread's results go (the writer).
    results: mpsc::Sender<ProbeResult>,
    /// The outbox of streams run on the caller's runtime (no thread could start).
    fallback: Option<Arc<Outbox>>,
}

struct ProbeThread {
    handle: Handle,
    outbox: Arc<Outbox>,
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
    /// Threads whose streams' results go to `results`.
    pub fn new(results: mpsc::Sender<ProbeResult>) -> ProbeThreads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ProbeThreads { threads: Vec::new(), max: cores.min(MAX_THREADS), results, fallback: None }
    }

    /// Runs the stream `make` returns (given the outbox of its thread) on the
    /// probe thread with the fewest streams, starting a new one when all have
    /// their share. A thread that cannot be started leaves the stream to the
    /// others, or to the caller's runtime, with a warning.
    pub fn spawn<F>(&mut self, make: impl FnOnce(Arc<Outbox>) -> F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let load = |t: &ProbeThread| t.streams.load(Ordering::Relaxed);
        let least = self.threads.iter().map(load).min();
        if least.is_none_or(|n| n >= STREAMS_PER_THREAD) && self.threads.len() < self.max {
            match start_thread(self.threads.len(), &self.results) {
                Ok(t) => self.threads.push(t),
                Err(e) => tracing::warn!(error = %e, "cannot start a probe thread"),
            }
        }
        let Some(thread) = self.threads.iter().min_by_key(|t| load(t)) else {
            let results = &self.results;
            let outbox = self.fallback.get_or_insert_with(|| Outbox::start(&Handle::current(), results.clone()));
            return tokio::spawn(make(outbox.clone()));
        };
        thread.streams.fetch_add(1, Ordering::Relaxed);
        let live = Live(thread.streams.clone());
        let task = make(thread.outbox.clone());
        thread.handle.spawn(async move {
            let _live = live;
            task.await
        })
    }
}

/// A thread with a single-threaded runtime that runs until it is dropped.
fn start_thread(i: usize, results: &mpsc::Sender<ProbeResult>) -> std::io::Result<ProbeThread> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let outbox = Outbox::start(&handle, results.clone());
    std::thread::Builder::new().name(format!("lbdns-probe-{i}")).spawn(move || {
        let _ = rt.block_on(stopped);
    })?;
    Ok(ProbeThread { handle, outbox, streams: Arc::new(AtomicUsize::new(0)), _stop: stop })
}

/// Most results an outbox holds (the writer has fallen behind); a stream with
/// a result waits for room, as it waited for room in the channel before.
const MAX_QUEUED: usize = 4 * STREAMS_PER_THREAD;

/// The results of one thread's streams, waiting for the next tick: one task per
/// thread sends them to the writer then, so a result costs no timer of its own.
pub struct Outbox {
    queued: Mutex<Vec<ProbeResult>>,
    /// Told when the first result is queued (the sender then waits for the tick).
    queued_one: Notify,
    /// Told when the queue was taken (for streams waiting for room).
    taken: Notify,
    results: mpsc::Sender<ProbeResult>,
}

impl Outbox {
    /// An outbox whose sending task runs on `handle`.
    pub fn start(handle: &Handle, results: mpsc::Sender<ProbeResult>) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox {
            queued: Mutex::new(Vec::new()),
            queued_one: Notify::new(),
            taken: Notify::new(),
            results,
        });
        handle.spawn(outbox.clone().send_on_ticks());
        outbox
    }

    /// Queues `r` for the next tick; `false` once the writer is gone.
    async fn put(&self, r: ProbeResult) -> bool {
        loop {
            let taken = self.taken.notified();
            {
                let mut q = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
                if q.len() < MAX_QUEUED {
                    q.push(r);
                    if q.len() == 1 {
                        self.queued_one.notify_one();
                    }
                    return !self.results.is_closed();
                }
            }
            taken.await;
        }
    }

    /// Sends what was queued at each tick after a result came, until the writer
    /// is gone. The queue is swapped with a spare, so neither allocates anew.
    async fn send_on_ticks(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.queued_one.notified().await;
            tokio::time::sleep_until(on_grid(tokio::time::Instant::now())).await;
            std::mem::swap(&mut batch, &mut *self.queued.lock().unwrap_or_else(PoisonError::into_inner));
            self.taken.notify_waiters();
            for r in batch.drain(..) {
                if self.results.send(r).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One probe of `key`, timed and noted in `last` (the result is numbered 0:
/// it is numbered when it is sent).
pub async fn probe_once(key: &ProbeKey, runner: &mut probe::Runner, last: &Arc<LastProbe>) -> ProbeResult {
    let start = Instant::now();
    let at = SystemTime::now();
    let (outcome, ended) = runner.run(key).await;
    let took = ended.saturating_duration_since(start);
    last.record(at, took, outcome.is_ok());
    ProbeResult { key: key.clone(), outcome, took, at, seq: 0, last: last.clone() }
}

/// Whether `r` would change nothing the writer keeps: a plain pass (no weight
/// or certificate reported) after the writer said its member is settled. Its
/// time and duration are in the stream's [`LastProbe`] already; its duration
/// is observed here.
fn changes_nothing(r: &ProbeResult) -> bool {
    let plain = matches!(&r.outcome, Ok(p) if p.weight.is_none() && p.cert_days.is_none());
    if !plain || !r.last.settled() {
        return false;
    }
    if let Some(h) = r.last.duration.get() {
        h.observe(r.took.as_secs_f64());
    }
    true
}

/// One stream: probe every (jittered) interval, measured start to start, each
/// probe started on the tick grid.
pub async fn stream(
    key: ProbeKey,
    outbox: Arc<Outbox>,
    limit: Arc<Semaphore>,
    (mut runner, last): (probe::Runner, Arc<LastProbe>),
    immediate: bool,
) {
    runner.rehome();
    let now = tokio::time::Instant::now();
    let mut next = if immediate { now } else { now + key.spec.interval.mul_f64(fastrand::f64()) };
    loop {
        tokio::time::sleep_until(on_grid(next)).await;
        next += probe::jitter(key.spec.interval);
        let mut result = {
            let Ok(_permit) = limit.acquire().await else { return };
            probe_once(&key, &mut runner, &last).await
        };
        if changes_nothing(&result) {
            continue_after(&mut next);
            continue;
        }
        result.seq = last.next_sent();
        // Results go to the writer on the grid too (from the outbox), so that
        // those of one tick wake it once rather than each on its own.
        if !outbox.put(result).await {
            return;
        }
        continue_after(&mut next);
    }
}

/// A probe that took longer than the interval does not cause a burst.
fn continue_after(next: &mut tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    if *next < now {
        *next = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_share_a_thread_and_leave_its_count_when_stopped() {
        let (tx, _rx) = mpsc::channel(1);
        let mut threads = ProbeThreads::new(tx);
        let tasks: Vec<_> = (0..3).map(|_| threads.spawn(|_| std::future::pending())).collect();
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
