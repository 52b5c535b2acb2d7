//! A real HTTP(S) backend for probe tests: status, body and behaviour switchable at
//! run time, counting requests and checking the Host header. Blocking std sockets,
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
        None => handle(&mut conn, &st),
        Some(cfg) => {
            let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut s = rustls::StreamOwned::new(sc, conn);
            handle(&mut s, &st);
        }
    }
}

fn handle<S: Read + Write>(s: &mut S, st: &State) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16384 {
            return;
        }
    }
    if st.stop.load(Ordering::SeqCst) {
        return;
    }
    st.requests.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&buf).to_string();
    if st.hang.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(5));
        return;
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
    let extra = if status == 301 { "Location: http://elsewhere.test/\r\n" } else { "" };
    let resp =
        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}", body.len());
    let _ = s.write_all(resp.as_bytes());
    let _ = s.flush();
}
