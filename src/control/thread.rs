//! The writer's own thread: a single-threaded runtime that runs the writer and
//! a guest beside it (the server gives it the admin HTTP server).
//!
//! Why a thread of its own: a write's commit blocks for the disk (the SQLite
//! store runs on its caller's thread), and nothing else the writer does can go
//! on meanwhile anyway; on a thread of its own that wait blocks no runtime
//! worker serving DNS over TCP. Why the admin server shares it: an API request
//! then goes from its socket through the writer, the commit and the publish to
//! its reply on one thread, woken once by the request, where it used to wake a
//! runtime worker, the store's thread and a worker again (measured in
//! bench/RESULTS.md, "Issue 17, sequential writes (writes17c)"). The guest's
//! sockets must be registered on this runtime (made here, by the guest's
//! closure), or each would wake another runtime's reactor first.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use super::{Command, Writer};
use crate::health::ProbeResult;
use crate::shutdown::Shutdown;

/// A future made on the writer's thread, run beside the writer until it ends.
pub type Guest = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How long the guest may go on after the writer has stopped.
const GUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The running writer thread; [`WriterThread::stopped`] resolves once both the
/// writer and its guest have ended (after shutdown).
pub struct WriterThread {
    done: oneshot::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriterThread {
    /// Starts the thread `lbdns-writer`: `writer` runs on `probes` and
    /// `commands` until `shutdown`, and `guest()` is made and run beside it.
    pub fn spawn(
        writer: Writer,
        probes: mpsc::Receiver<ProbeResult>,
        commands: mpsc::Receiver<Command>,
        shutdown: Shutdown,
        guest: Guest,
    ) -> std::io::Result<WriterThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (tx, done) = oneshot::channel();
        let thread = std::thread::Builder::new().name("lbdns-writer".into()).spawn(move || {
            runtime.block_on(async move {
                let guest = tokio::spawn(guest());
                writer.run(probes, commands, shutdown).await;
                let _ = tokio::time::timeout(GUEST_GRACE, guest).await;
            });
            let _ = tx.send(());
        })?;
        Ok(WriterThread { done, thread })
    }

    /// Waits (without blocking a runtime thread) until the writer and its guest
    /// have ended, then for the thread.
    pub async fn stopped(self) {
        let _ = self.done.await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}
