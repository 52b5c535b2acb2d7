//! The admin HTTP server (axum): `/healthz`, `/readyz`, `/metrics` without auth, the
//! status page (`/`, `/ui/`, see [`ui`]), and the `/v1` API behind a bearer token.
//!
//! Handlers do no validation of their own beyond reading the body: every request is
//! passed to the writer, which validates it against the state in effect, stores it,
//! publishes the next snapshot, and only then answers.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::control::Command;
use crate::state::api::{ApiError, ApiRequest, Reply};

mod ui;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// An API error: rendered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AdminError { status, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
}

/// The writer's refusals as HTTP.
impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        let status = match &e {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::LostRace(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AdminError::new(status, e.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// Every admin request must complete within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A wrong token from one source is logged at most once per this long.
const AUTH_LOG_EVERY: Duration = Duration::from_secs(10);
/// Sources remembered for that: when full, expired entries are dropped, and a
/// new source is not logged until there is room (the 401 and its count stay).
const AUTH_LOG_SOURCES: usize = 10_000;

/// When each source last had a wrong token logged. There is deliberately no
/// lockout: refusing the valid token after guesses from the same address would
/// let anyone there deny the API to everyone. A token of at least 128 bits
/// makes guessing hopeless; this only keeps a guesser from flooding the log.
#[derive(Default)]
pub struct AuthLog {
    logged: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, std::time::Instant>>,
}

impl AuthLog {
    /// Whether a wrong token from `ip` should be logged now (and notes that it was).
    fn should_log(&self, ip: std::net::IpAddr) -> bool {
        let Ok(mut map) = self.logged.lock() else { return false };
        let now = std::time::Instant::now();
        if map.get(&ip).is_some_and(|t| now.duration_since(*t) < AUTH_LOG_EVERY) {
            return false;
        }
        if map.len() >= AUTH_LOG_SOURCES {
            map.retain(|_, t| now.duration_since(*t) < AUTH_LOG_EVERY);
            if map.len() >= AUTH_LOG_SOURCES {
                return false;
            }
        }
        map.insert(ip, now);
        true
    }
}

/// Shared by the handlers.
#[derive(Clone)]
pub struct AdminState {
    pub auth_log: Arc<AuthLog>,
    /// The bearer token; `None` when no token file is configured (the API is off).
    pub token: Arc<ArcSwap<Option<String>>>,
    pub writer: mpsc::Sender<Command>,
    pub metrics: crate::metrics::Metrics,
    /// Member state transitions (`GET /v1/events`, `/ui/api/events`).
    pub events: crate::control::Events,
    /// The last reload's and API writes' results (`/ui/api/state`).
    pub outcomes: crate::control::Outcomes,
    /// `/ui/api/state` answers without a token (`[admin] ui_public`).
    pub ui_public: bool,
}

/// The handlers' state: one allocation shared by every request. Cloning the
/// `AdminState` itself for each request (axum clones the state per request and
/// per middleware) copied its metrics handles and channels two or three times
/// per API write (bench/RESULTS.md, "writes17d").
type Shared = Arc<AdminState>;

pub fn router(state: AdminState) -> Router {
    let state: Shared = Arc::new(state);
    let v1 = Router::new()
        .route("/pools", get(list_pools))
        .route("/pools/{name}", get(get_pool).put(put_pool).delete(delete_pool))
        .route("/pools/{name}/override", axum::routing::delete(delete_pool_override))
        .route("/pools/{name}/members/{address}", axum::routing::put(put_member).delete(delete_member))
        .route("/pools/{name}/members/{address}/override", axum::routing::delete(delete_member_override))
        .route("/pools/{name}/members/{address}/health", axum::routing::put(put_member_health))
        .route("/events", get(events))
        .route("/explain", get(explain))
        .route("/zones", get(list_zones))
        .route("/zones/{origin}/records", get(get_records))
        .route("/zones/{origin}/records/{name}/{rtype}", axum::routing::put(put_rrset).delete(delete_rrset))
        .route("/zones/{origin}/records/{name}/{rtype}/override", axum::routing::delete(delete_rrset_override))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), count));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .nest("/v1", v1)
        .merge(ui::router(state.clone()))
        .fallback(|| async { AdminError::not_found("no such endpoint") })
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

/// Every error is `{"error": "..."}`, including those axum makes itself (405 for
/// a method a route does not have, 400 for a path that does not decode), which
/// come with an empty or plain-text body.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match (&allow, status) {
        (Some(a), StatusCode::METHOD_NOT_ALLOWED) => {
            format!("method {method} is not allowed here; allowed: {}", a.to_str().unwrap_or(""))
        }
        (None, StatusCode::METHOD_NOT_ALLOWED) => format!("method {method} is not allowed here"),
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
    };
    let mut r = AdminError::new(status, message).into_response();
    if let Some(a) = allow {
        r.headers_mut().insert(header::ALLOW, a);
    }
    r
}

async fn metrics(State(st): State<Shared>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], st.metrics.render())
        .into_response()
}

/// Bounds every request (body reading included) by [`REQUEST_TIMEOUT`].
async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => AdminError::new(StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
    }
}

/// Counts every `/v1` request by response status.
async fn count(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    st.metrics
        .admin_requests
        .get_or_create(&crate::metrics::StatusLabel { status: resp.status().as_u16().to_string() })
        .inc();
    resp
}

async fn auth(
    State(st): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let token = st.token.load();
    let Some(expected) = token.as_deref() else {
        return AdminError::new(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: no [admin] token_file is configured",
        )
        .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if !ok {
        if st.auth_log.should_log(peer.ip()) {
            tracing::warn!(source = %peer.ip(), "admin API: missing or wrong bearer token (logged once per source per 10 s)");
        }
        let mut r = AdminError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

/// Sends a request to the writer and renders its answer.
async fn ask(st: &AdminState, req: ApiRequest) -> Response {
    let (tx, rx) = oneshot::channel();
    if st.writer.send(Command::Api(req, tx)).await.is_err() {
        return AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(Ok(Reply::NoContent))) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(Ok(Reply::Ok(body)))) => with_body(StatusCode::OK, body),
        Ok(Ok(Ok(Reply::Created(body)))) => with_body(StatusCode::CREATED, body),
        Ok(Ok(Err(e))) => AdminError::from(e).into_response(),
        _ => AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "the writer did not answer").into_response(),
    }
}

/// A JSON body, or none when there is nothing to show.
fn with_body(status: StatusCode, body: serde_json::Value) -> Response {
    if body.is_null() { status.into_response() } else { (status, axum::Json(body)).into_response() }
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        AdminError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {MAX_BODY} bytes")).into_response()
    })
}

async fn list_pools(State(st): State<Shared>) -> Response {
    ask(&st, ApiRequest::ListPools).await
}

async fn get_pool(State(st): State<Shared>, Path(name): Path<String>) -> Response {
    ask(&st, ApiRequest::GetPool(name)).await
}

async fn put_pool(State(st): State<Shared>, Path(name): Path<String>, body: Body) -> Response {
    match read_body(body).await {
        Ok(b) => ask(&st, ApiRequest::PutPool(name, b)).await,
        Err(r) => r,
    }
}

async fn delete_pool(State(st): State<Shared>, Path(name): Path<String>) -> Response {
    ask(&st, ApiRequest::DeletePool(name)).await
}

async fn delete_pool_override(State(st): State<Shared>, Path(name): Path<String>) -> Response {
    ask(&st, ApiRequest::DeletePoolOverride(name)).await
}

async fn put_member(State(st): State<Shared>, Path((name, addr)): Path<(String, String)>, body: Body) -> Response {
    match read_body(body).await {
        Ok(b) => ask(&st, ApiRequest::PutMember(name, addr, b)).await,
        Err(r) => r,
    }
}

async fn delete_member(State(st): State<Shared>, Path((name, addr)): Path<(String, String)>) -> Response {
    ask(&st, ApiRequest::DeleteMember(name, addr)).await
}

async fn put_member_health(
    State(st): State<Shared>,
    Path((name, addr)): Path<(String, String)>,
    body: Body,
) -> Response {
    match read_body(body).await {
        Ok(b) => ask(&st, ApiRequest::PutMemberHealth(name, addr, b, std::time::SystemTime::now())).await,
        Err(r) => r,
    }
}

async fn delete_member_override(State(st): State<Shared>, Path((name, addr)): Path<(String, String)>) -> Response {
    ask(&st, ApiRequest::DeleteMemberOverride(name, addr)).await
}

/// `?limit=N` on `GET /v1/events` and `/ui/api/events`; any other parameter
/// (a misspelt `limt`) is refused rather than ignored.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    limit: Option<usize>,
}

/// `GET /v1/events`: member state transitions, newest first.
pub async fn events(
    State(st): State<Shared>,
    q: Result<axum::extract::Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match q {
        Ok(q) => axum::Json(st.events.newest(q.limit)).into_response(),
        Err(e) => AdminError::bad_request(format!(
            "query: {}; the one parameter is limit=N, N a non-negative integer",
            e.body_text()
        ))
        .into_response(),
    }
}

async fn list_zones(State(st): State<Shared>) -> Response {
    ask(&st, ApiRequest::ListZones).await
}

async fn get_records(State(st): State<Shared>, Path(origin): Path<String>) -> Response {
    ask(&st, ApiRequest::GetRecords(origin)).await
}

async fn put_rrset(
    State(st): State<Shared>,
    Path((origin, name, rtype)): Path<(String, String, String)>,
    body: Body,
) -> Response {
    match read_body(body).await {
        Ok(b) => ask(&st, ApiRequest::PutRRset(origin, name, rtype, b)).await,
        Err(r) => r,
    }
}

async fn delete_rrset(
    State(st): State<Shared>,
    Path((origin, name, rtype)): Path<(String, String, String)>,
) -> Response {
    ask(&st, ApiRequest::DeleteRRset(origin, name, rtype)).await
}

async fn delete_rrset_override(
    State(st): State<Shared>,
    Path((origin, name, rtype)): Path<(String, String, String)>,
) -> Response {
    ask(&st, ApiRequest::DeleteRRsetOverride(origin, name, rtype)).await
}

async fn explain(
    State(st): State<Shared>,
    query: Result<axum::extract::Query<crate::state::api::ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query {
        Ok(q) => ask(&st, ApiRequest::Explain(q.0)).await,
        Err(e) => AdminError::bad_request(format!(
            "explain: {}; expected ?name=NAME&type=TYPE&client=IP[&ecs=CIDR]",
            e.body_text()
        ))
        .into_response(),
    }
}
