//! The writer's own thread: a single-threaded runtime that runs the writer.
//!
//! Why a thread of its own: a write's commit blocks for the disk (the SQLite
//! store runs on its caller's thread), and nothing else the writer does can go
//! on meanwhile anyway. On a thread of its own that wait blocks no runtime
//! worker serving DNS over TCP or the admin API (which goes on reading and
//! parsing other clients' requests during a commit), and a commit no longer
//! hops to a store thread and back: the writer's thread is woken by the request
//! and wakes the HTTP task with its reply (measured in bench/RESULTS.md, "Issue
//! 17, sequential writes (writes17c)").

use tokio::sync::{mpsc, oneshot};

use super::{Command, Writer};
use crate::health::ProbeResult;
use crate::shutdown::Shutdown;

/// The running writer thread; [`WriterThread::stopped`] resolves once the
/// writer has ended (after shutdown).
pub struct WriterThread {
    done: oneshot::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriterThread {
    /// Starts the thread `lbdns-writer`: `writer` runs on `probes` and
    /// `commands` until `shutdown`.
    pub fn spawn(
        writer: Writer,
        probes: mpsc::Receiver<ProbeResult>,
        commands: mpsc::Receiver<Command>,
        shutdown: Shutdown,
    ) -> std::io::Result<WriterThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (tx, done) = oneshot::channel();
        let thread = std::thread::Builder::new().name("lbdns-writer".into()).spawn(move || {
            runtime.block_on(writer.run(probes, commands, shutdown));
            let _ = tx.send(());
        })?;
        Ok(WriterThread { done, thread })
    }

    /// Waits (without blocking a runtime thread) until the writer has ended,
    /// then for its thread.
    pub async fn stopped(self) {
        let _ = self.done.await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}
