//! The admin API calls the client makes (blocking, each with a deadline), and
//! the parts of the server's JSON that the tables show. Unknown fields are
//! ignored, so a newer server still works with these.

use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::{Client, RequestBuilder};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ClientError, Target};

/// Connecting gives up after this: the server is then unreachable (exit 3).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request; above the server's own 30 s deadline, so that its answer
/// (an error naming what took long) arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
/// The largest answer read (a big zone's records).
const MAX_ANSWER: usize = 64 << 20;

/// A connection to one server's admin API.
pub struct Api {
    target: Target,
    http: Client,
}

#[derive(Debug, Deserialize)]
pub struct Pool {
    pub name: String,
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub max_answers: usize,
    #[serde(default)]
    pub all_down: String,
    /// Answered when every member is out and `all_down` is `fallback`.
    #[serde(default)]
    pub fallback: Vec<String>,
    #[serde(default)]
    pub health: PoolHealth,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub source: String,
}

/// One item of `GET /v1/events`.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub time: String,
    pub pool: String,
    /// `null` for a pool's own change (all down, or up again).
    #[serde(default)]
    pub address: Option<String>,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PoolHealth {
    #[serde(default)]
    pub check: String,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub address: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `up`, `down`, `unknown` (no probe result yet) or `none` (no check).
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_change: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub source: String,
    /// An override through the API in force (`lbdns health`).
    #[serde(default)]
    pub health_override: Option<Pushed>,
    /// The server's health file line for the member.
    #[serde(default)]
    pub health_file: Option<Pushed>,
}

/// Health pushed over the probes: an override or a health file line.
#[derive(Debug, Deserialize)]
pub struct Pushed {
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct Zone {
    pub origin: String,
    #[serde(default)]
    pub serial: Option<u32>,
    #[serde(default)]
    pub rrsets: usize,
    #[serde(default)]
    pub last_change: Option<LastChange>,
}

#[derive(Debug, Deserialize)]
pub struct LastChange {
    pub time: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
pub struct Records {
    pub zone: String,
    #[serde(default)]
    pub serial: Option<u32>,
    #[serde(default)]
    pub records: Vec<RRset>,
    #[serde(default)]
    pub deleted: Vec<Deleted>,
}

#[derive(Debug, Deserialize)]
pub struct RRset {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub data: Vec<String>,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Deserialize)]
pub struct Deleted {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
}

/// The typed view of an answer `get` or `put` returned.
pub fn decode<T: DeserializeOwned>(api: &Api, v: &Value) -> Result<T, ClientError> {
    T::deserialize(v).map_err(|e| api.unexpected(e.to_string()))
}

impl Api {
    pub fn new(target: Target) -> Result<Api, ClientError> {
        // reqwest is built without a default TLS provider (the server picks ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The token goes to the server named, never to a proxy from the environment.
            .no_proxy()
            .user_agent(concat!("lbdns/", env!("CARGO_PKG_VERSION"), " client"))
            .build()
            .map_err(ClientError::Setup)?;
        Ok(Api { target, http })
    }

    /// The server's base URL, as shown to the user.
    pub fn url(&self) -> &str {
        self.target.base.as_str().trim_end_matches('/')
    }

    /// `GET /readyz`: whether the server says it is ready.
    pub fn ready(&self) -> Result<bool, ClientError> {
        let resp = self.http.get(self.url_of(&["readyz"])).send().map_err(|e| self.unreachable(&e))?;
        Ok(resp.status().is_success())
    }

    /// `GET /v1/{path…}` with the token.
    pub fn get(&self, path: &[&str]) -> Result<Value, ClientError> {
        self.call(self.http.get(self.v1(path)))
    }

    /// `GET /v1/{path…}?{query}` with the token.
    pub fn get_query(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Value, ClientError> {
        let mut url = self.v1(path);
        url.query_pairs_mut().extend_pairs(query);
        self.call(self.http.get(url))
    }

    /// `PUT /v1/{path…}` of `body` with the token.
    pub fn put(&self, path: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.call(self.http.put(self.v1(path)).header("content-type", "application/json").body(body.to_string()))
    }

    fn call(&self, req: RequestBuilder) -> Result<Value, ClientError> {
        let req = match &self.target.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().map_err(|e| self.unreachable(&e))?;
        if bytes.len() > MAX_ANSWER {
            return Err(self.unexpected(format!("an answer over {MAX_ANSWER} bytes")));
        }
        let body: Result<Value, _> = serde_json::from_slice(&bytes);
        if status.is_success() {
            return body.map_err(|e| self.unexpected(format!("HTTP {status}: {e}")));
        }
        let message = body.ok().and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
        let Some(message) = message else {
            return Err(self.unexpected(format!("HTTP {status} without an error message")));
        };
        let hint = match (status.as_u16(), &self.target.token) {
            (401, None) => "; no token was sent: the config names no [admin] token_file, give --token-file",
            _ => "",
        };
        Err(ClientError::Server { status: status.as_u16(), message, hint })
    }

    fn v1(&self, path: &[&str]) -> Url {
        let mut all = vec!["v1"];
        all.extend_from_slice(path);
        self.url_of(&all)
    }

    /// The base URL with `segments` appended, each percent-encoded as one segment.
    fn url_of(&self, segments: &[&str]) -> Url {
        let mut url = self.target.base.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.pop_if_empty().extend(segments);
        }
        url
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable { url: self.url().to_string(), reason: innermost(e) }
    }

    fn unexpected(&self, reason: String) -> ClientError {
        ClientError::Unexpected { url: self.url().to_string(), reason }
    }
}

/// The deepest cause of an error ("Connection refused (os error 111)"), which
/// says more than reqwest's own "error sending request for url (…)".
fn innermost(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
