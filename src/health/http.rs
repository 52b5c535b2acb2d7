//! The `http` and `https` checks over hyper, one connection per member and check.
//!
//! With `keepalive` (the default) the connection is opened once, reused by every
//! probe and dropped after any failure (or when the backend closes it), so that a
//! probe costs one request, not a TCP and TLS handshake. Without it every probe
//! opens a connection and sends `Connection: close`. What a probe sends (method,
//! path, Host, User-Agent, headers) is built once per stream, not per probe.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::error::{ProbeError, Reported};
use super::tcp::tcp_connect;
use super::tls::TlsConfigs;
use super::{CheckSpec, weight};
use crate::config::{CheckKind, HttpMethod};

/// Largest body read when looking at it (`expect_body`, `expect_body_regex`,
/// `weight_from = "json:…"`); a longer body is read this far and the connection
/// is not reused.
const MAX_BODY: usize = 64 * 1024;

/// The User-Agent of every probe: lbdns and its version.
pub const USER_AGENT: &str = concat!("lbdns/", env!("CARGO_PKG_VERSION"), " health-check");

/// One member's http(s) check: what it sends, built once, and its connection.
pub struct HttpCheck {
    method: Method,
    path: http::Uri,
    headers: HeaderMap,
    regex: Option<regex::Regex>,
    /// `Some` for https: how to start TLS and the name the certificate must have.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    keepalive: bool,
    conn: Option<SendRequest<Empty<Bytes>>>,
}

impl HttpCheck {
    /// The check's fixed parts; `Err` only for a spec that validation refuses.
    pub fn new(spec: &CheckSpec, tls: &TlsConfigs) -> Result<HttpCheck, ProbeError> {
        let bad = |what: &str| ProbeError::Client(format!("{what} cannot be sent"));
        let mut headers = HeaderMap::new();
        let host = HeaderValue::from_str(&spec.host).map_err(|_| bad("host"))?;
        headers.insert(http::header::HOST, host);
        headers.insert(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        if !spec.keepalive {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k))?;
            headers.insert(name, HeaderValue::from_str(v).map_err(|_| bad(k))?);
        }
        let regex = match &spec.expect_body_regex {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| ProbeError::Client(e.to_string()))?),
            None => None,
        };
        let tls = match spec.check {
            CheckKind::Https => Some((tls.connector(spec.tls_verify)?, super::tls::server_name(&spec.host)?)),
            _ => None,
        };
        Ok(HttpCheck {
            method: if spec.method == HttpMethod::Head { Method::HEAD } else { Method::GET },
            path: spec.path.parse().map_err(|_| bad("path"))?,
            headers,
            regex,
            tls,
            keepalive: spec.keepalive,
            conn: None,
        })
    }

    /// One probe. The connection is taken out while it runs and put back only
    /// after a clean pass, so a failure or a timeout (which drops this future)
    /// closes it. Returns the weight the backend reported, if asked for.
    pub async fn run(
        &mut self,
        spec: &CheckSpec,
        target: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<Reported, ProbeError> {
        let reused = self.conn.take().filter(|c| !c.is_closed());
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(c) => c,
            None => self.connect(target, source).await?,
        };
        let resp = match self.send(&mut conn).await {
            Ok(r) => r,
            // The backend may close an idle connection just as it is reused: that
            // is no failure of the member, so try once on a fresh one.
            Err(_) if was_reused => {
                conn = self.connect(target, source).await?;
                self.send(&mut conn).await?
            }
            Err(e) => return Err(e),
        };
        let (reusable, weight) = self.check(spec, resp).await?;
        if self.keepalive && reusable {
            self.conn = Some(conn);
        }
        Ok(weight)
    }

    async fn connect(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<SendRequest<Empty<Bytes>>, ProbeError> {
        let connect = |e: std::io::Error| ProbeError::Connect { target, reason: e.to_string() };
        let tcp = tcp_connect(target, source).await.map_err(connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| ProbeError::Tls(e.to_string()))?;
                handshake(tls).await
            }
        }
    }

    async fn send(
        &self,
        conn: &mut SendRequest<Empty<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ProbeError> {
        conn.ready().await.map_err(|e| describe(&e))?;
        let mut req = Request::new(Empty::new());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        conn.send_request(req).await.map_err(|e| describe(&e))
    }

    /// Checks status, body and reported weight; returns whether the connection
    /// may be reused (the whole body was read) and the weight.
    async fn check(
        &self,
        spec: &CheckSpec,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(bool, Reported), ProbeError> {
        let status = resp.status().as_u16();
        if !spec.expect_status.contains(&status) {
            return Err(ProbeError::Status { status, expected: spec.expect_status.clone() });
        }
        let header_weight = match &spec.weight_from {
            Some(weight::Source::Header(name)) => Some(weight::from_header(resp.headers(), name)),
            _ => None,
        };
        let (body, complete) = read_body(resp.into_body()).await?;
        if let Some(want) = &spec.expect_body
            && !String::from_utf8_lossy(&body).contains(want.as_str())
        {
            return Err(ProbeError::Body(want.clone()));
        }
        if let Some(re) = &self.regex
            && !re.is_match(&String::from_utf8_lossy(&body))
        {
            return Err(ProbeError::BodyRegex(re.as_str().to_string()));
        }
        let weight = match &spec.weight_from {
            Some(weight::Source::Json(path)) => Some(weight::from_json(&body, path)),
            _ => header_weight,
        };
        Ok((complete, weight))
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Empty<Bytes>>, ProbeError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| describe(&e))?;
    // The connection's driver: it ends when the sender is dropped or the backend
    // closes the connection.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Reads the body up to [`MAX_BODY`]; returns it and whether it was read whole.
async fn read_body(mut body: hyper::body::Incoming) -> Result<(Vec<u8>, bool), ProbeError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| describe(&e))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY.saturating_sub(out.len());
            out.extend_from_slice(&data[..data.len().min(room)]);
            if out.len() >= MAX_BODY {
                return Ok((out, false));
            }
        }
    }
    Ok((out, true))
}

/// hyper's errors keep their cause apart from their text; show both.
fn describe(e: &(dyn std::error::Error + 'static)) -> ProbeError {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    ProbeError::Request(s)
}
