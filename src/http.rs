//! Serving an axum router over HTTP/1.1 with the limits a server facing untrusted
//! clients needs (used by the admin API and the redirect listener). `axum::serve`
//! exposes none of hyper's connection settings, so connections are driven here:
//! - request head (request line + headers) at most [`MAX_HEAD`] bytes and
//!   [`MAX_HEADERS`] headers, else 431 Request Header Fields Too Large;
//! - the head must arrive within [`HEAD_TIMEOUT`] (also bounds an idle keep-alive
//!   connection), else the connection is closed;
//! - on shutdown, listening stops and open connections finish their request.
//!
//! Body size and per-request deadlines are axum layers (see `admin`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::debug;

use crate::shutdown::Shutdown;

/// The largest request head accepted (hyper's read buffer; its minimum is 8 KiB).
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until the server stops, then waits up to 2 s for
/// open requests to finish.
pub async fn serve(listener: TcpListener, router: Router, mut shutdown: Shutdown) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).max_buf_size(MAX_HEAD).max_headers(MAX_HEADERS).header_read_timeout(HEAD_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}
