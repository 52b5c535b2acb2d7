//! The `http` and `https` checks, one connection per member and check.
//!
//! With `keepalive` (the default) the connection is opened once, reused by every
//! probe and dropped after any failure (or when the backend closes it), so that a
//! probe costs one request, not a TCP and TLS handshake. A kept plain
//! connection is read on the tick and timed by the kernel (`stamped.rs`), so
//! that the probe thread does not wake for each answer; https and connections
//! per probe await their answers in the reactor. Without keep-alive every probe
//! opens a connection and sends `Connection: close`. What a probe sends (method,
//! path, Host, User-Agent, headers) is serialised once per check, and the
//! exchange itself (`wire.rs`) runs inside the probing task on a buffer the check
//! keeps: a probe on a kept connection allocates nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::error::{ProbeError, Reported};
use super::grid;
use super::stamped::Stamped;
use super::tcp::tcp_connect;
use super::tls::TlsConfigs;
use super::wire;
use super::{CheckSpec, weight};
use crate::config::{CheckKind, HttpMethod};

/// The User-Agent of every probe: lbdns and its version.
pub const USER_AGENT: &str = concat!("lbdns/", env!("CARGO_PKG_VERSION"), " health-check");

/// The most response buffer a check keeps between probes: room for a whole
/// [`wire::MAX_BODY`] and its head.
const BUF_KEPT: usize = 2 * wire::MAX_BODY;

/// The least time left before a check's timeout for its answer to be read on
/// the next tick rather than awaited: the timers fire to the millisecond.
const TICK_MARGIN: Duration = Duration::from_millis(2);

/// A member's open connection.
enum Conn {
    /// Opened for one probe (no keep-alive).
    Plain(TcpStream),
    /// Kept, plain: read on the tick.
    Stamped(Stamped),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One member's http(s) check: what it sends, built once, and its connection.
pub struct HttpCheck {
    /// The whole request, as written on the wire.
    request: Vec<u8>,
    head_only: bool,
    regex: Option<regex::Regex>,
    /// `Some` for https: how to start TLS and the name the certificate must have.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    keepalive: bool,
    conn: Option<Conn>,
    /// The last response, kept for its capacity.
    buf: Vec<u8>,
    /// When the last probe's answer arrived, if it was read on the tick (the
    /// time it took is then the kernel's, not the tick's).
    answered: Option<Instant>,
}

impl HttpCheck {
    /// The check's fixed parts; `Err` only for a spec that validation refuses.
    pub fn new(spec: &CheckSpec, tls: &TlsConfigs) -> Result<HttpCheck, ProbeError> {
        let regex = match &spec.expect_body_regex {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| ProbeError::Client(e.to_string()))?),
            None => None,
        };
        let tls = match spec.check {
            CheckKind::Https => Some((tls.connector(spec.tls_verify)?, super::tls::server_name(&spec.host)?)),
            _ => None,
        };
        Ok(HttpCheck {
            request: request(spec)?,
            head_only: spec.method == HttpMethod::Head,
            regex,
            tls,
            keepalive: spec.keepalive,
            conn: None,
            buf: Vec::new(),
            answered: None,
        })
    }

    /// Readies a kept connection for the current runtime (the first round's
    /// connections are made on the server's runtime, and the probe thread goes
    /// on with them): a plain one is in no reactor between probes and stays; a
    /// TLS one (whose socket stays with the reactor it was made on, which would
    /// wake for its answers) is closed, to be opened again by the next probe.
    pub fn rehome(&mut self) {
        self.conn = match self.conn.take() {
            Some(Conn::Stamped(s)) => Some(Conn::Stamped(s)),
            _ => None,
        };
    }

    /// When the last probe's answer arrived, if it was read on the tick.
    pub fn answered(&self) -> Option<Instant> {
        self.answered
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
        let header = match &spec.weight_from {
            Some(weight::Source::Header(name)) => Some(name),
            _ => None,
        };
        let deadline = tokio::time::Instant::now() + spec.timeout;
        self.answered = None;
        if self.buf.capacity() > BUF_KEPT {
            self.buf = Vec::new(); // an odd answer's size is not kept for every probe
        }
        let reused = self.conn.take();
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(c) => c,
            None => self.connect(target, source).await?,
        };
        let resp = match self.exchange(&mut conn, header, deadline).await {
            Ok(r) => r,
            // The backend may close an idle connection just as it is reused: that
            // is no failure of the member, so try once on a fresh one.
            Err(_) if was_reused => {
                conn = self.connect(target, source).await?;
                self.exchange(&mut conn, header, deadline).await?
            }
            Err(e) => return Err(e),
        };
        if let Conn::Stamped(s) = &conn {
            self.answered = s.answered();
        }
        let weight = self.check(spec, &resp)?;
        if self.keepalive && resp.reusable {
            self.conn = Some(conn);
        }
        Ok(weight)
    }

    async fn connect(&self, target: SocketAddr, source: Option<IpAddr>) -> Result<Conn, ProbeError> {
        let connect = |e: std::io::Error| ProbeError::Connect { target, reason: e.to_string() };
        let tcp = tcp_connect(target, source).await.map_err(connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None if self.keepalive => Ok(Conn::Stamped(Stamped::new(tcp).map_err(connect)?)),
            None => Ok(Conn::Plain(tcp)),
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| ProbeError::Tls(e.to_string()))?;
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }

    async fn exchange(
        &mut self,
        conn: &mut Conn,
        header: Option<&HeaderName>,
        deadline: tokio::time::Instant,
    ) -> Result<wire::Response, ProbeError> {
        let header = header.map(HeaderName::as_str);
        let (req, buf, head) = (&self.request, &mut self.buf, self.head_only);
        let r = match conn {
            Conn::Plain(io) => wire::exchange(io, req, buf, head, header).await,
            Conn::Stamped(io) => on_tick(io, req, buf, (head, header), deadline).await,
            Conn::Tls(io) => wire::exchange(io.as_mut(), req, buf, head, header).await,
        };
        r.map_err(|e| ProbeError::Request(e.to_string()))
    }

    /// Checks status, body and reported weight (from the response in `buf`).
    fn check(&self, spec: &CheckSpec, resp: &wire::Response) -> Result<Reported, ProbeError> {
        let status = resp.status;
        if !spec.expect_status.contains(&status) {
            return Err(ProbeError::Status { status, expected: spec.expect_status.clone() });
        }
        let body = &self.buf[resp.body.0..resp.body.1];
        if let Some(want) = &spec.expect_body
            && !String::from_utf8_lossy(body).contains(want.as_str())
        {
            return Err(ProbeError::Body(want.clone()));
        }
        if let Some(re) = &self.regex
            && !re.is_match(&String::from_utf8_lossy(body))
        {
            return Err(ProbeError::BodyRegex(re.as_str().to_string()));
        }
        Ok(match &spec.weight_from {
            Some(weight::Source::Json(path)) => Some(weight::from_json(body, path)),
            Some(weight::Source::Header(name)) => {
                Some(weight::from_header(name, resp.header.map(|(a, b)| &self.buf[a..b])))
            }
            None => None,
        })
    }
}

/// An exchange on a kept plain connection: the request is written, and its
/// answer read on the next tick (when that comes before the timeout) with
/// whatever else arrived for the thread's other streams, then awaited if it is
/// not all there. `(head_only, header)`: as for [`wire::exchange`].
async fn on_tick(
    io: &mut Stamped,
    request: &[u8],
    buf: &mut Vec<u8>,
    (head_only, header): (bool, Option<&str>),
    deadline: tokio::time::Instant,
) -> Result<wire::Response, wire::WireError> {
    io.send(request).await.map_err(wire::WireError::Write)?;
    buf.clear();
    let tick = grid::on_grid(tokio::time::Instant::now());
    if tick + TICK_MARGIN < deadline {
        tokio::time::sleep_until(tick).await;
        io.read_arrived(buf, BUF_KEPT).map_err(wire::WireError::Read)?;
    }
    let mut resp = wire::read_response(io, buf, head_only, header).await?;
    // Out of the reactor again for the next probe, or not kept.
    resp.reusable &= io.leave().is_ok();
    Ok(resp)
}

/// The request a check sends, serialised: method, path, then `Host`,
/// `User-Agent`, `Connection: close` without keep-alive, and the configured
/// headers (which replace those of the same name).
fn request(spec: &CheckSpec) -> Result<Vec<u8>, ProbeError> {
    let bad = |what: &str| ProbeError::Client(format!("{what} cannot be sent"));
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_str(&spec.host).map_err(|_| bad("host"))?);
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    if !spec.keepalive {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    for (k, v) in &spec.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k))?;
        headers.insert(name, HeaderValue::from_str(v).map_err(|_| bad(k))?);
    }
    let path: http::Uri = spec.path.parse().map_err(|_| bad("path"))?;
    let method = if spec.method == HttpMethod::Head { "HEAD" } else { "GET" };
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    fn spec() -> CheckSpec {
        CheckSpec {
            check: CheckKind::Http,
            port: 0,
            path: "/health".into(),
            host: "example.test".into(),
            method: HttpMethod::Get,
            headers: Vec::new(),
            expect_status: vec![200],
            expect_body: Some("ok".into()),
            expect_body_regex: None,
            keepalive: true,
            timeout: Duration::from_secs(5),
            tls_verify: true,
            weight_from: None,
            qname: String::new(),
            qtype: String::new(),
            expect_rcode: String::new(),
            expect_answer: None,
            min_cert_days: None,
        }
    }

    /// A backend on loopback that answers each request on one connection 1 ms
    /// after it came, and says when each answer had been written.
    async fn backend() -> (SocketAddr, mpsc::UnboundedReceiver<Instant>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            while s.read(&mut req).await.unwrap() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
                tx.send(Instant::now()).unwrap();
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn a_kept_connection_is_read_on_the_tick_and_timed_by_the_answers_arrival() {
        let (addr, mut written) = backend().await;
        let spec = spec();
        let mut check = HttpCheck::new(&spec, &TlsConfigs::new()).unwrap();
        for probe in 0..4 {
            check.run(&spec, addr, None).await.unwrap();
            let read = Instant::now();
            let wrote = written.recv().await.unwrap();
            assert!(matches!(check.conn, Some(Conn::Stamped(_))), "the connection is kept");
            if probe == 0 {
                continue; // the kernel may start stamping a moment after it is first asked to
            }
            let answered = check.answered().expect("an answer read on the tick has the kernel's time");
            // The kernel's time of a loopback answer falls within the backend's write
            // (give or take the reading of two clocks), before it was read.
            assert!(answered <= wrote + Duration::from_micros(200), "{:?} after", answered - wrote);
            assert!(answered < read, "{:?}", read - answered);
        }
    }
}
