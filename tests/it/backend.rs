//! A real HTTP(S) backend for probe tests: status, body, response headers and
//! behaviour switchable at run time, counting requests and connections, keeping
//! the last request's head and checking the Host header; one request per
//! connection unless keep-alive is switched on. Blocking std sockets,
//! one thread per connection; TLS through rustls with a certificate made by rcgen.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    status: AtomicU16,
    body: Mutex<String>,
    requests: AtomicUsize,
    hang: AtomicBool,
    expect_host: Mutex<Option<String>>,
    stop: AtomicBool,
    /// Connections from these addresses are closed at once (an unreachable path).
    refuse: Mutex<Vec<std::net::IpAddr>>,
    /// Serve further requests on a connection (HTTP/1.1 keep-alive).
    keepalive: AtomicBool,
    connections: AtomicUsize,
    /// The head (request line and headers) of the last request.
    last: Mutex<String>,
    /// Extra response headers, `Name: value`.
    headers: Mutex<Vec<String>>,
    /// Connections accepted, by source address.
    sources: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

pub struct Backend {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Backend {
    /// Plain HTTP on `ip:port` (port 0 = any).
    pub fn http(ip: &str, port: u16) -> Backend {
        Self::start(ip, port, None)
    }

    /// HTTPS with a self-signed certificate for `names`.
    pub fn https(ip: &str, port: u16, names: &[&str]) -> Backend {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ck = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let cfg = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).unwrap();
        Self::start(ip, port, Some(Arc::new(cfg)))
    }

    fn start(ip: &str, port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Backend {
        let listener = TcpListener::bind((ip, port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::SeqCst);
        *state.body.lock().unwrap() = "ok".into();
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(p) = conn.peer_addr() {
                    *st.sources.lock().unwrap().entry(p.ip()).or_insert(0) += 1;
                }
                if conn.peer_addr().is_ok_and(|p| st.refuse.lock().unwrap().contains(&p.ip())) {
                    continue;
                }
                st.connections.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let tls = tls.clone();
                std::thread::spawn(move || serve(conn, st, tls));
            }
        });
        Backend { addr, state }
    }

    pub fn set_status(&self, s: u16) {
        self.state.status.store(s, Ordering::SeqCst);
    }
    pub fn set_body(&self, b: &str) {
        *self.state.body.lock().unwrap() = b.into();
    }
    pub fn set_hang(&self, h: bool) {
        self.state.hang.store(h, Ordering::SeqCst);
    }
    pub fn expect_host(&self, h: &str) {
        *self.state.expect_host.lock().unwrap() = Some(h.into());
    }
    /// Closes connections from `ip` without an answer, as if it could not reach us.
    pub fn refuse_from(&self, ip: &str) {
        self.state.refuse.lock().unwrap().push(ip.parse().unwrap());
    }
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
    /// Connections accepted (and not refused) so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
    pub fn set_keepalive(&self, k: bool) {
        self.state.keepalive.store(k, Ordering::SeqCst);
    }
    /// The last request's line and headers, as received.
    pub fn last_request(&self) -> String {
        self.state.last.lock().unwrap().clone()
    }
    /// Sends `line` (`Name: value`) with every response from now on; replaces a
    /// header of the same name.
    pub fn set_header(&self, line: &str) {
        let name = line.split(':').next().unwrap().to_string();
        let mut h = self.state.headers.lock().unwrap();
        h.retain(|l| !l.starts_with(&format!("{name}:")));
        h.push(line.to_string());
    }
    /// Connections accepted since the last call, by source address.
    pub fn take_sources(&self) -> std::collections::HashMap<std::net::IpAddr, usize> {
        std::mem::take(&mut *self.state.sources.lock().unwrap())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, st: Arc<State>, tls: Option<Arc<rustls::ServerConfig>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    match tls {
        None => while handle(&mut conn, &st) {},
        Some(cfg) => {
            let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut s = rustls::StreamOwned::new(sc, conn);
            while handle(&mut s, &st) {}
        }
    }
}

/// Serves one request; returns whether to serve another on the connection.
fn handle<S: Read + Write>(s: &mut S, st: &State) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16384 {
            return false;
        }
    }
    if st.stop.load(Ordering::SeqCst) {
        return false;
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    *st.last.lock().unwrap() = head.clone();
    st.requests.fetch_add(1, Ordering::SeqCst);
    if st.hang.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(5));
        return false;
    }
    let host = head
        .lines()
        .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
        .unwrap_or("")
        .trim()
        .to_string();
    let (status, body) = match &*st.expect_host.lock().unwrap() {
        Some(want) if *want != host => (400, format!("wrong host {host:?}")),
        _ => (st.status.load(Ordering::SeqCst), st.body.lock().unwrap().clone()),
    };
    let mut extra = if status == 301 { "Location: http://elsewhere.test/\r\n".to_string() } else { String::new() };
    for h in st.headers.lock().unwrap().iter() {
        extra.push_str(&format!("{h}\r\n"));
    }
    let keep = st.keepalive.load(Ordering::SeqCst) && !head.to_ascii_lowercase().contains("connection: close");
    let connection = if keep { "keep-alive" } else { "close" };
    let shown = if head.starts_with("HEAD ") { "" } else { body.as_str() };
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: {connection}\r\n{extra}\r\n{shown}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
    let _ = s.flush();
    keep
}
