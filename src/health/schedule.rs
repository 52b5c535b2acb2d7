//! When probes run, and where: the probe streams live on a few threads of their
//! own (one per core, each a single-threaded runtime), and every stream's next
//! probe falls on a shared grid of [`TICK`]s. Both are for cost (issue 21): the
//! profile of 1,000 members each probed every second showed the time going to
//! thread wake-ups, one per probe as each timer fired on its own millisecond and
//! woke a worker of the server's runtime. On the grid the probes due in one tick
//! start together, and their answers come back together, so a probe thread
//! wakes about once per tick whatever the number of members; and on its own
//! thread a probe wakes no other thread but the writer's, with its result.
//!
//! A stream probes every interval jittered ±10%, measured start to start; its
//! first probe comes at once (a new member) or at a random point of its first
//! interval (the streams started together after the first round), so that the
//! members spread over the interval instead of probing in step.

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

/// The threads the probe streams run on. Dropping this stops them, and with
/// them every stream they run.
pub struct ProbeThreads {
    handles: Vec<Handle>,
    /// Dropped to stop the threads.
    _stop: Vec<oneshot::Sender<()>>,
    next: usize,
}

impl ProbeThreads {
    /// One thread per core (at most [`MAX_THREADS`]). Threads that cannot be
    /// started leave their streams to the caller's runtime (as before there
    /// were probe threads), with a warning.
    pub fn new() -> ProbeThreads {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let mut threads = ProbeThreads { handles: Vec::new(), _stop: Vec::new(), next: 0 };
        for i in 0..n {
            match start_thread(i) {
                Ok((handle, stop)) => {
                    threads.handles.push(handle);
                    threads._stop.push(stop);
                }
                Err(e) => tracing::warn!(error = %e, "cannot start a probe thread; probes run on the server's threads"),
            }
        }
        threads
    }

    /// Runs `task` on the next probe thread in turn.
    pub fn spawn<F>(&mut self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            return tokio::spawn(task);
        }
        self.next = (self.next + 1) % self.handles.len();
        self.handles[self.next].spawn(task)
    }
}

/// A thread with a single-threaded runtime that runs until `stop` is dropped.
fn start_thread(i: usize) -> std::io::Result<(Handle, oneshot::Sender<()>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new().name(format!("lbdns-probe-{i}")).spawn(move || {
        let _ = rt.block_on(stopped);
    })?;
    Ok((handle, stop))
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
}
