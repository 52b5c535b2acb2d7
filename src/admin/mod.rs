//! The admin HTTP server: liveness and readiness now; the `/v1` API and
//! `/metrics` build on this router.

use axum::Router;
use axum::routing::get;

pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
}
