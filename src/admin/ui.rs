//! The status page: `GET /` and its assets under `/ui/` (built into the binary,
//! always public: they hold no data), and `GET /ui/api/state`, the JSON the page
//! polls every second. The state is public when `[admin] ui_public` is true and
//! needs the `/v1` bearer token otherwise; writes never go through here, the page
//! sends them to the `/v1` API with the token the user typed in.
//! `GET /ui/api/events` is `GET /v1/events` under the same rule as the state.
//!
//! The state is read from the writer through the same requests as `GET /v1/pools`
//! and `GET /v1/zones` (so it cannot disagree with the API), reduced to what the
//! page shows, with each pool's answers-per-second samples beside it, and the
//! last reload and API writes as recorded in [`crate::control::Outcomes`].
//! Everything here is sent gzipped to a client that accepts it.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tower_http::compression::CompressionLayer;

use super::{AdminError, AdminState, Shared};
use crate::control::Command;
use crate::state::api::{ApiRequest, Reply};

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE_CSS: &str = include_str!("ui/style.css");

/// The assets allow only themselves: no inline script, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes, to be merged into the admin router.
pub fn router(state: Shared) -> Router<Shared> {
    let mut api = Router::new().route("/ui/api/state", get(ui_state)).route("/ui/api/events", get(super::events));
    if !state.ui_public {
        api = api.route_layer(middleware::from_fn_with_state(state, super::auth));
    }
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/ui/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .merge(api)
        // The state of 500 pools is some 200 KB, polled every second: gzip it
        // (and the assets) for a client that says it takes gzip.
        .layer(CompressionLayer::new().gzip(true))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/api/state`: zones and pools as the page shows them.
async fn ui_state(State(st): State<Shared>) -> Response {
    let (pools, zones) = match (read(&st, ApiRequest::ListPools).await, read(&st, ApiRequest::ListZones).await) {
        (Ok(p), Ok(z)) => (p, z),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let pools: Vec<Value> = match pools {
        Value::Array(all) => all.iter().map(|p| pool_state(&st, p)).collect(),
        _ => Vec::new(),
    };
    let outcomes = st.outcomes.view();
    let body = json!({
        "time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "rate_every_seconds": crate::metrics::RATE_EVERY.as_secs(),
        "zones": zones,
        "pools": pools,
        "started": outcomes.started,
        "reload": outcomes.reload,
        "writes": outcomes.writes,
        "health_file_problems": outcomes.health_files,
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// Sends a read request to the writer and returns its JSON.
async fn read(st: &AdminState, req: ApiRequest) -> Result<Value, AdminError> {
    let (tx, rx) = oneshot::channel();
    if st.writer.send(Command::Api(req, tx)).await.is_err() {
        return Err(AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    match tokio::time::timeout(super::REQUEST_TIMEOUT, rx).await {
        Ok(Ok(Ok(Reply::Ok(body) | Reply::Created(body)))) => Ok(body),
        Ok(Ok(Ok(Reply::NoContent))) => Ok(Value::Null),
        Ok(Ok(Err(e))) => Err(AdminError::from(e)),
        _ => Err(AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "the writer did not answer")),
    }
}

/// One pool of `GET /v1/pools` reduced for the page, with its answer rates.
fn pool_state(st: &AdminState, p: &Value) -> Value {
    let name = p["name"].as_str().unwrap_or_default();
    let members: Vec<Value> = p["members"].as_array().map(|m| m.iter().map(member_state).collect()).unwrap_or_default();
    let mut out = Map::new();
    for key in ["name", "policy", "ttl", "max_answers", "all_down", "all_down_since", "source"] {
        out.insert(key.into(), p[key].clone());
    }
    out.insert("checked".into(), json!(p["health"]["check"].as_str().is_some_and(|c| c != "none")));
    out.insert("answers_per_second".into(), json!(st.metrics.answer_rates.of(name)));
    out.insert("members".into(), Value::Array(members));
    Value::Object(out)
}

/// A member for the page: `state` is the state in effect (`drained` when
/// disabled, else an override's, a health file's or the probes' state; `up`
/// too when its pool has no health check), with `probed` (the probes' state),
/// `override` and `health_file` beside it.
fn member_state(m: &Value) -> Value {
    let state = match (m["enabled"].as_bool(), m["health"].as_str()) {
        _ if m["state"].is_string() => m["state"].as_str().unwrap_or("unknown"),
        (Some(false), _) => "drained",
        (_, Some("none")) => "up",
        (_, Some(h)) => h,
        (_, None) => "unknown",
    };
    json!({
        "address": m["address"],
        "weight": m["weight"],
        "region": m["region"],
        "state": state,
        "since": m["last_change"],
        "last_error": m["last_error"],
        "last_rtt_ms": m["last_rtt_ms"],
        "votes": m["votes"],
        "probed": m["health"],
        "override": m["health_override"],
        "health_file": m["health_file"],
    })
}
