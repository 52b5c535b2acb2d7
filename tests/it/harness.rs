//! Starting servers and talking to them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An in-process server on port 0, stopped on drop.
pub struct Server {
    pub dns: SocketAddr,
    #[allow(dead_code)]
    pub admin: SocketAddr,
    /// The first `[redirect]` listener, when configured.
    pub redirect: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Writes `files` and `config` (as lbdns.toml) into a fresh directory and starts
    /// the server from it. Listen addresses in `config` should use port 0.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Server {
        Self::try_start(config, files).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    pub fn try_start(config: &str, files: &[(&str, &str)]) -> Result<Server, String> {
        // The tests' reqwest clients need a rustls provider, installed once per
        // process: a test run on its own must not depend on another having done it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let path = dir.path().join("lbdns.toml");
        std::fs::write(&path, config).unwrap();
        let sources = lbdns::Sources::load(&path).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = rt.block_on(lbdns::App::bind(sources)).map_err(|e| e.to_string())?;
        let dns = app.dns_addrs()[0];
        let admin = app.admin_addr();
        let redirect = app.redirect_addrs().first().copied();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(async move {
            app.run(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Ok(Server { dns, admin, redirect, dir, stop: Some(tx), done: Some(done), rt: Some(rt) })
    }

    /// The repository's example config and zone, on port 0.
    pub fn example() -> Server {
        let config = example_config();
        Server::start(&config, &[])
    }

    pub fn query(&self, name: &str, t: RecordType) -> Message {
        udp(self.dns, &msg(name, t))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(done)) = (self.rt.take(), self.done.take()) {
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), done).await });
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// The example lbdns.toml with port-0 listeners and absolute zone paths.
pub fn example_config() -> String {
    let text = std::fs::read_to_string(manifest_dir().join("lbdns.toml")).unwrap();
    text.replace("127.0.0.1:5353", "127.0.0.1:0")
        .replace("127.0.0.1:8053", "127.0.0.1:0")
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("file = \"zones/", &format!("file = \"{}/zones/", manifest_dir().display()))
        .replace("database = \"geoip/", &format!("database = \"{}/geoip/", manifest_dir().display()))
}

/// The example zone's text, for configs that want it under another name.
pub fn example_zone() -> String {
    std::fs::read_to_string(manifest_dir().join("zones/example.test.zone")).unwrap()
}

/// A query with EDNS (payload 1232), RD clear.
pub fn msg(name: &str, t: RecordType) -> Message {
    let mut m = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_str(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m
}

/// A query without EDNS.
pub fn msg_plain(name: &str, t: RecordType) -> Message {
    let mut m = msg(name, t);
    m.edns = None;
    m
}

/// A query carrying EDNS Client Subnet.
pub fn msg_ecs(name: &str, t: RecordType, addr: &str, prefix: u8) -> Message {
    let mut m = msg(name, t);
    let subnet = ClientSubnet::new(addr.parse().unwrap(), prefix, 0);
    m.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(subnet));
    m
}

pub fn udp_raw(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn udp(addr: SocketAddr, m: &Message) -> Message {
    let bytes = udp_raw(addr, &m.to_vec().unwrap()).expect("no UDP answer within 2 s");
    let r = Message::from_vec(&bytes).expect("answer does not parse");
    assert_eq!(r.metadata.id, m.metadata.id, "answer id");
    r
}

pub fn tcp_raw(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

pub fn tcp(addr: SocketAddr, m: &Message) -> Message {
    let bytes = tcp_raw(addr, &m.to_vec().unwrap()).expect("no TCP answer");
    Message::from_vec(&bytes).expect("answer does not parse")
}

/// "name TYPE rdata" of each record in a section, for comparisons.
pub fn lines(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect()
}

/// The address of each A/AAAA record in the answer, in order.
pub fn addrs(m: &Message) -> Vec<String> {
    m.answers.iter().filter_map(|r| r.data.ip_addr()).map(|a| a.to_string()).collect()
}

/// The ECS option of a reply: (source prefix, scope prefix, address).
pub fn reply_ecs(m: &Message) -> Option<(u8, u8, std::net::IpAddr)> {
    let e = m.edns.as_ref()?;
    match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some((s.source_prefix(), s.scope_prefix(), s.addr())),
        _ => None,
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A minimal valid zone for `origin` (written without the final dot).
pub fn small_zone(extra: &str) -> String {
    format!("$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n{extra}")
}

/// GET over HTTP, returning the body.
pub fn http_get(url: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::get(url).unwrap().text().unwrap()
}

/// Says that the calling test is skipped and why, on the real stderr: libtest
/// captures `eprintln!` of passing tests, and a skip must be seen.
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Polls `cond` every 20 ms until it holds (true) or `deadline` has passed (false).
pub fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
