//! The one way the server's tasks and threads learn that it is stopping.
//!
//! [`Shutdown::new`] gives a [`Stopper`] (kept by `App::run`) and a [`Shutdown`]
//! cloned into every task and UDP worker thread. Stopping is one-way: once
//! [`Stopper::stop`] ran, every clone reports it for good. Tasks `await`
//! [`Shutdown::recv`]; threads poll [`Shutdown::is_shutdown`], one relaxed atomic
//! load, so the UDP query loop stays lock-free. If the `Stopper` is dropped without
//! stopping, waiters return too: nothing is left waiting for a stop that cannot come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// A task's or thread's view of whether the server is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    rx: watch::Receiver<bool>,
}

/// Stops everything holding a [`Shutdown`] made with it.
#[derive(Debug)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A new, not yet stopped, pair.
    pub fn new() -> (Stopper, Shutdown) {
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        (Stopper { flag: flag.clone(), tx }, Shutdown { flag, rx })
    }

    /// Whether the server is stopping (for threads that poll).
    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Completes once the server is stopping (at once if it already is). Cancel-safe:
    /// it can sit in a `select!` arm that loses and be polled again later.
    pub async fn recv(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Stopper {
    /// Tells every [`Shutdown`] that the server is stopping.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_stop_and_keeps_seeing_it() {
        let (stopper, shutdown) = Shutdown::new();
        let mut a = shutdown.clone();
        let waiter = tokio::spawn(async move {
            a.recv().await;
            a.is_shutdown()
        });
        assert!(!shutdown.is_shutdown());
        stopper.stop();
        assert!(waiter.await.unwrap());
        let mut late = shutdown.clone();
        late.recv().await;
        late.recv().await;
        assert!(late.is_shutdown());
    }

    #[tokio::test]
    async fn a_dropped_stopper_releases_waiters() {
        let (stopper, mut shutdown) = Shutdown::new();
        drop(stopper);
        shutdown.recv().await;
    }
}
