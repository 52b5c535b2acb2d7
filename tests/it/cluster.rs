//! Several lbdns servers sharing one state through a real etcd (Debian's
//! etcd-server, started here on loopback ports): writes through one node are
//! answered by the others, a restarted node catches up, etcd members and etcd
//! itself can go away, and nodes vote on member health.
//!
//! Without the `etcd` binary these tests print why and pass, unless
//! LBDNS_REQUIRE_ETCD=1 (as `.ci/run` sets, after installing it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::backend::Backend;
use crate::harness::*;

pub(crate) const TOKEN: &str = "cluster-test-token-0123456789abcdef";

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// An etcd cluster of one or more members on loopback, killed on drop.
pub struct Etcd {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    initial: String,
    token: String,
    /// Clients must come over TLS with a certificate signed by this CA.
    tls: Option<Pki>,
}

/// A CA, etcd's server certificate for 127.0.0.1 and a client certificate (PEM).
pub struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "lbdns test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
        };
        let server = leaf(vec!["127.0.0.1".into()], "etcd", ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf(vec![], "lbdns-node", ExtendedKeyUsagePurpose::ClientAuth);
        Pki { ca, server, client }
    }
}

impl Etcd {
    pub(crate) fn start(n: usize) -> Option<Etcd> {
        Self::start_with(n, None)
    }

    fn start_with(n: usize, tls: Option<Pki>) -> Option<Etcd> {
        if Command::new("etcd").arg("--version").stdout(Stdio::null()).status().is_err() {
            assert!(
                std::env::var_os("LBDNS_REQUIRE_ETCD").is_none(),
                "LBDNS_REQUIRE_ETCD is set but there is no etcd binary (apt-get install etcd-server)"
            );
            crate::harness::skipped("no etcd binary (apt-get install etcd-server)");
            return None;
        }
        // A port another test takes between our choice and etcd's bind makes etcd
        // exit: then start over on other ports.
        let mut tls = tls;
        for _ in 0..3 {
            let mut e = Etcd::prepare(n, tls.take());
            for i in 0..n {
                e.spawn(i);
            }
            if (0..n).all(|i| e.wait_healthy(i)) {
                return Some(e);
            }
            eprintln!("etcd did not start (a port taken?); trying other ports");
            tls = e.tls.take();
        }
        panic!("etcd did not start three times");
    }

    fn prepare(n: usize, tls: Option<Pki>) -> Etcd {
        let ports = ports(2 * n);
        let members: Vec<Member> = (0..n)
            .map(|i| Member { name: format!("m{i}"), client: ports[2 * i], peer: ports[2 * i + 1], child: None })
            .collect();
        let initial =
            members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect::<Vec<_>>().join(",");
        let e =
            Etcd { members, dir: tempfile::tempdir().unwrap(), initial, token: format!("t{}", fastrand::u64(..)), tls };
        if let Some(pki) = &e.tls {
            for (f, pem) in [("ca.pem", &pki.ca), ("server.pem", &pki.server.0), ("server-key.pem", &pki.server.1)] {
                write(&e.dir.path().join(f), pem);
            }
        }
        e
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let scheme = self.scheme();
        let mut cmd = Command::new("etcd");
        if self.tls.is_some() {
            let d = self.dir.path();
            cmd.arg("--cert-file").arg(d.join("server.pem")).arg("--key-file").arg(d.join("server-key.pem"));
            cmd.arg("--client-cert-auth").arg("--trusted-ca-file").arg(d.join("ca.pem"));
            // Login tokens live one second (default 300): clients must log in again.
            cmd.arg("--auth-token-ttl=1");
        }
        let child = cmd
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &format!("{scheme}://127.0.0.1:{}", m.client)])
            .args(["--advertise-client-urls", &format!("{scheme}://127.0.0.1:{}", m.client)])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{}", m.peer)])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{}", m.peer)])
            .args(["--initial-cluster", &self.initial, "--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--logger=zap", "--log-level=error", "--heartbeat-interval=50", "--election-timeout=500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts");
        self.members[i].child = Some(child);
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Waits until member `i` answers as healthy; false if it exited or did not
    /// within 20 s.
    fn wait_healthy(&mut self, i: usize) -> bool {
        let url = format!("http://127.0.0.1:{}/health", self.members[i].client);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let healthy = if self.tls.is_some() {
                // /health needs a client certificate too: ask through the etcd client.
                self.admin(|mut c| async move { c.status().await.map(|_| ()) }).is_ok()
            } else {
                http.get(&url).send().and_then(|r| r.text()).is_ok_and(|t| t.contains("true"))
            };
            if healthy {
                return true;
            }
            let exited = self.members[i].child.as_mut().is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()));
            if exited {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The client URLs, one per member.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client)).collect()
    }

    fn endpoints(&self) -> String {
        let scheme = self.scheme();
        self.members.iter().map(|m| format!("\"{scheme}://127.0.0.1:{}\"", m.client)).collect::<Vec<_>>().join(", ")
    }

    /// Runs `f` with an etcd client of the tests' own (with the client
    /// certificate when etcd wants one, and no user).
    fn admin<F, Fut>(&self, f: F) -> Result<(), etcd_client::Error>
    where
        F: FnOnce(etcd_client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<(), etcd_client::Error>>,
    {
        use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoints: Vec<String> =
            self.members.iter().map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client)).collect();
        let mut opts = ConnectOptions::new().with_timeout(Duration::from_secs(2));
        if let Some(pki) = &self.tls {
            opts = opts.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(&pki.ca))
                    .identity(Identity::from_pem(&pki.client.0, &pki.client.1)),
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let c = etcd_client::Client::connect(endpoints, Some(opts)).await?;
            f(c).await
        })
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed member again on its data directory.
    fn restart(&mut self, i: usize) {
        self.spawn(i);
        assert!(self.wait_healthy(i), "etcd member {i} did not come back");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// `n` distinct free ports below Linux's ephemeral range (32768 and up), so that
/// servers binding port 0 in other tests cannot take them before etcd binds.
fn ports(n: usize) -> Vec<u16> {
    let mut held: Vec<TcpListener> = Vec::new();
    while held.len() < n {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", fastrand::u16(20000..32000))) {
            held.push(l);
        }
    }
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

pub(crate) const ZONE: &str = "$ORIGIN c.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ IN NS ns1\n\
                    ns1 IN A 192.0.2.53\n";

/// A node: its own DNS and admin ports, the shared etcd, and `extra` config.
pub(crate) fn node(etcd: &Etcd, name: &str, cluster_extra: &str, rest: &str) -> Server {
    Server::start(&node_config(etcd, name, cluster_extra, rest), &[("c.zone", ZONE), ("token", TOKEN)])
}

pub(crate) fn node_config(etcd: &Etcd, name: &str, cluster_extra: &str, rest: &str) -> String {
    format!(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"token\"\n\
         [cluster]\nstore=\"etcd\"\nendpoints=[{}]\nnode=\"{name}\"\n{cluster_extra}\n{rest}\n\
         [[zone]]\norigin=\"c.test.\"\nfile=\"c.zone\"\n\
         [[pool]]\nname=\"www.c.test.\"\npolicy=\"round-robin\"\n\
         [[pool.member]]\naddress=\"192.0.2.10\"\n[[pool.member]]\naddress=\"192.0.2.11\"\n",
        etcd.endpoints()
    )
}

pub(crate) fn api(s: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("http://{}{path}", s.admin)).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn put_a(s: &Server, name: &str, addr: &str) -> (u16, Value) {
    let body = format!("{{\"ttl\":60,\"data\":[\"{addr}\"]}}");
    api(s, "PUT", &format!("/v1/zones/c.test./records/{name}/A"), Some(&body))
}

/// Polls `f` until it holds or `limit` passes; returns how long it took.
pub(crate) fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn answers(s: &Server, name: &str) -> Vec<String> {
    let mut a = addrs(&s.query(name, RecordType::A));
    a.sort();
    a
}

fn serial(s: &Server) -> u32 {
    match &s.query("c.test.", RecordType::SOA).answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn writes_through_one_node_are_answered_by_all_and_a_restarted_node_catches_up() {
    let Some(etcd) = Etcd::start(1) else { return };
    let mut nodes: Vec<Server> = (0..3).map(|i| node(&etcd, &format!("n{i}"), "", "")).collect();

    // An RRset written through A: B and C answer it within a second.
    assert_eq!(put_a(&nodes[0], "new.c.test.", "192.0.2.77").0, 201);
    for n in &nodes {
        let t = within(SECOND, || answers(n, "new.c.test.") == ["192.0.2.77"]);
        assert!(t.is_some(), "a node did not answer the new record within 1 s");
    }
    // GET /v1/zones says what last changed the zone: this server's API, or etcd.
    for (n, source) in nodes.iter().zip(["api", "etcd", "etcd"]) {
        let (st, zones) = api(n, "GET", "/v1/zones", None);
        assert_eq!(st, 200, "{zones}");
        assert_eq!((zones[0]["last_change"]["source"].as_str(), zones[0]["serial"].as_u64()), (Some(source), Some(2)));
    }
    // A member drained through B: A and C stop answering it.
    let (st, body) = api(&nodes[1], "PUT", "/v1/pools/www.c.test./members/192.0.2.11", Some("{\"enabled\":false}"));
    assert_eq!(st, 200, "{body}");
    for n in &nodes {
        assert!(within(SECOND, || answers(n, "www.c.test.") == ["192.0.2.10"]).is_some());
    }
    // Deleted through C: gone everywhere.
    assert_eq!(api(&nodes[2], "DELETE", "/v1/zones/c.test./records/new.c.test./A", None).0, 204);
    for n in &nodes {
        let gone =
            within(SECOND, || n.query("new.c.test.", RecordType::A).metadata.response_code == ResponseCode::NXDomain);
        assert!(gone.is_some());
    }
    // Three changes, one serial: 1 + 3 on every node.
    for n in &nodes {
        assert!(within(SECOND, || serial(n) == 4).is_some(), "serial {}", serial(n));
    }

    // C stops; two writes go through A while it is away; C starts again and
    // answers them at once, with the same serial (nothing missed, nothing twice).
    drop(nodes.pop());
    assert_eq!(put_a(&nodes[0], "while-away.c.test.", "192.0.2.78").0, 201);
    assert_eq!(put_a(&nodes[1], "while-away2.c.test.", "192.0.2.79").0, 201);
    let c = node(&etcd, "n2", "", "");
    assert_eq!(answers(&c, "while-away.c.test."), ["192.0.2.78"]);
    assert_eq!(answers(&c, "while-away2.c.test."), ["192.0.2.79"]);
    assert_eq!(answers(&c, "www.c.test."), ["192.0.2.10"]);
    assert_eq!(serial(&c), 6);
    assert!(within(SECOND, || serial(&nodes[0]) == 6 && serial(&nodes[1]) == 6).is_some());
    // And C's own writes reach the others.
    assert_eq!(put_a(&c, "from-c.c.test.", "192.0.2.80").0, 201);
    for n in &nodes {
        assert!(within(SECOND, || answers(n, "from-c.c.test.") == ["192.0.2.80"]).is_some());
    }
}

#[test]
fn with_etcd_down_dns_answers_writes_get_503_and_nothing_acknowledged_is_lost() {
    let Some(mut etcd) = Etcd::start(1) else { return };
    let a = node(&etcd, "a", "", "");
    let b = node(&etcd, "b", "", "");
    assert_eq!(put_a(&a, "before.c.test.", "192.0.2.1").0, 201);
    assert!(within(SECOND, || answers(&b, "before.c.test.") == ["192.0.2.1"]).is_some());

    etcd.kill(0);
    // DNS goes on from the last known state.
    for _ in 0..20 {
        assert_eq!(answers(&a, "before.c.test."), ["192.0.2.1"]);
        assert_eq!(answers(&b, "www.c.test."), ["192.0.2.10", "192.0.2.11"]);
    }
    // A write is refused, saying why, and changes nothing.
    let (st, body) = put_a(&a, "during.c.test.", "192.0.2.2");
    assert_eq!(st, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("etcd"), "{body}");
    assert_eq!(a.query("during.c.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(api(&a, "GET", "/v1/zones/c.test./records", None).0, 200, "reads still work");

    etcd.restart(0);
    // Writes work again (the client reconnects on its own) and both nodes catch up.
    let ok = within(Duration::from_secs(10), || put_a(&b, "after.c.test.", "192.0.2.3").0 == 201);
    assert!(ok.is_some(), "writes did not resume after etcd came back");
    for n in [&a, &b] {
        assert!(within(SECOND * 3, || answers(n, "after.c.test.") == ["192.0.2.3"]).is_some());
        assert_eq!(answers(n, "before.c.test."), ["192.0.2.1"], "an acknowledged write was lost");
        assert_eq!(n.query("during.c.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    }
    // A node started now loads the same.
    let c = node(&etcd, "c", "", "");
    assert_eq!(answers(&c, "before.c.test."), ["192.0.2.1"]);
    assert_eq!(answers(&c, "after.c.test."), ["192.0.2.3"]);
}

#[test]
fn a_three_member_etcd_loses_one_member_and_writes_go_on() {
    let Some(mut etcd) = Etcd::start(3) else { return };
    let a = node(&etcd, "a", "", "");
    let b = node(&etcd, "b", "", "");
    assert_eq!(put_a(&a, "first.c.test.", "192.0.2.1").0, 201);
    etcd.kill(0);
    for i in 0..10 {
        let name = format!("w{i}.c.test.");
        let addr = format!("192.0.2.{}", 100 + i);
        let (st, body) = put_a(if i % 2 == 0 { &a } else { &b }, &name, &addr);
        assert_eq!(st, 201, "write {i} with one etcd member down: {body}");
        // A node whose watch was on the dead member reconnects first.
        for n in [&a, &b] {
            assert!(within(SECOND * 3, || answers(n, &name) == [addr.clone()]).is_some(), "{name} not answered in 3 s");
        }
    }
    assert_eq!(serial(&a), 1 + 11);
    assert_eq!(serial(&b), 1 + 11);
}

/// Members on 127.0.0.2-4 with one port; nodes probe from 127.0.0.11-14.
#[test]
fn quorum_health_keeps_a_member_one_node_cannot_reach_and_drops_one_none_can() {
    let Some(etcd) = Etcd::start(1) else { return };
    let x = Backend::http("127.0.0.2", 0);
    let port = x.addr.port();
    let y = Backend::http("127.0.0.3", port);
    let z = Backend::http("127.0.0.4", port);
    // Node c (127.0.0.13) cannot reach y; nobody can reach z.
    y.refuse_from("127.0.0.13");
    for n in ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"] {
        z.refuse_from(n);
    }
    let pool = format!(
        "[[pool]]\nname=\"app.c.test.\"\npolicy=\"round-robin\"\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"200ms\"\ntimeout=\"1s\"\nrise=1\nfall=3\n\
         [[pool.member]]\naddress=\"127.0.0.2\"\n[[pool.member]]\naddress=\"127.0.0.3\"\n\
         [[pool.member]]\naddress=\"127.0.0.4\"\n"
    );
    let quorum = "health=\"quorum\"";
    let nodes: Vec<Server> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| node(&etcd, n, quorum, &format!("[health]\nsource_address=\"127.0.0.1{}\"\n{pool}", i + 1)))
        .collect();
    // A fourth node on c's broken path, trusting only itself: it drops y.
    let local = node(&etcd, "d", "health=\"local\"", &format!("[health]\nsource_address=\"127.0.0.13\"\n{pool}"));

    let want = ["127.0.0.2", "127.0.0.3"];
    for (i, n) in nodes.iter().enumerate() {
        let t = within(Duration::from_secs(5), || answers(n, "app.c.test.") == want);
        assert!(t.is_some(), "node {i} answers {:?}", answers(n, "app.c.test."));
    }
    assert!(within(Duration::from_secs(5), || answers(&local, "app.c.test.") == ["127.0.0.2"]).is_some());
    // It holds: c keeps y (two of three see it up) for a while of probing.
    for _ in 0..20 {
        for n in &nodes {
            assert_eq!(answers(n, "app.c.test."), want);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // explain on c: y is eligible by the vote although c's own probe fails, z is
    // down by every vote.
    let (st, v) = api(&nodes[2], "GET", "/v1/explain?name=app.c.test.&type=A&client=192.0.2.1", None);
    assert_eq!(st, 200, "{v}");
    let member = |a: &str| v["pool"]["members"].as_array().unwrap().iter().find(|m| m["address"] == a).unwrap().clone();
    let (y, z) = (member("127.0.0.3"), member("127.0.0.4"));
    assert_eq!(
        (&y["eligible"], &y["votes"]["nodes"]["c"], &y["votes"]["nodes"]["a"]),
        (&serde_json::json!(true), &serde_json::json!(false), &serde_json::json!(true))
    );
    assert_eq!(
        (&z["reason"], &z["votes"]["nodes"]["c"], &z["votes"]["nodes"]["b"]),
        (&serde_json::json!("down"), &serde_json::json!(false), &serde_json::json!(false))
    );
}

/// Moving from the embedded store to etcd: `lbdns export` on the old config,
/// `lbdns import` on the new one, and the new node serves the same.
#[test]
fn export_from_the_embedded_store_and_import_into_etcd() {
    let Some(etcd) = Etcd::start(1) else { return };
    // A single server with the embedded store and three API changes.
    let single = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\ntoken_file=\"token\"\n\
                  [[zone]]\norigin=\"c.test.\"\nfile=\"c.zone\"\n\
                  [[pool]]\nname=\"www.c.test.\"\npolicy=\"round-robin\"\n\
                  [[pool.member]]\naddress=\"192.0.2.10\"\n[[pool.member]]\naddress=\"192.0.2.11\"\n";
    let old = Server::start(single, &[("c.zone", ZONE), ("token", TOKEN)]);
    assert_eq!(put_a(&old, "moved.c.test.", "192.0.2.90").0, 201);
    let (st, _) = api(&old, "PUT", "/v1/pools/www.c.test./members/192.0.2.11", Some("{\"enabled\":false}"));
    assert_eq!(st, 200);
    let pool = r#"{"policy":"weighted","members":[{"address":"192.0.2.91","weight":2}]}"#;
    assert_eq!(api(&old, "PUT", "/v1/pools/api.c.test.", Some(pool)).0, 201);
    let old_serial = serial(&old);
    let state_dir = old.dir.path().to_path_buf();

    let run = |args: &[&str], config: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_lbdns")).args(args).arg("--config").arg(config).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, json, err) = run(&["export"], &state_dir.join("lbdns.toml"));
    assert!(ok, "{err}");
    assert!(json.contains("\"lbdns_state\": 2") && json.contains("moved.c.test."), "{json}");
    let export = state_dir.join("state.json");
    std::fs::write(&export, &json).unwrap();

    // The etcd config: same zone and pools, [cluster] added.
    let dir = tempfile::tempdir().unwrap();
    let etcd_cfg = format!("{single}[cluster]\nstore=\"etcd\"\nendpoints=[{}]\nnode=\"n\"\n", etcd.endpoints());
    write(&dir.path().join("lbdns.toml"), &etcd_cfg);
    let (ok, _, err) = run(&["import", export.to_str().unwrap()], &dir.path().join("lbdns.toml"));
    assert!(ok && err.contains("imported"), "{err}");
    // Importing twice is refused: the target is no longer empty.
    let (ok, _, err) = run(&["import", export.to_str().unwrap()], &dir.path().join("lbdns.toml"));
    assert!(!ok && err.contains("import only into an empty"), "{err}");
    // And exporting from etcd gives the same document.
    let (ok, again, _) = run(&["export"], &dir.path().join("lbdns.toml"));
    assert!(ok);
    assert_eq!(again, json);

    let new = node(&etcd, "n", "", "");
    assert_eq!(answers(&new, "moved.c.test."), ["192.0.2.90"]);
    assert_eq!(answers(&new, "www.c.test."), ["192.0.2.10"]);
    assert_eq!(answers(&new, "api.c.test."), ["192.0.2.91"]);
    assert_eq!(serial(&new), old_serial);
}

/// Two nodes writing the same zone at the same moment: a write that loses the race
/// for the zone's serial is tried again by its server once it has seen the
/// winner's change, so every write is acknowledged, both nodes serve all of them,
/// and one serial counts every write exactly once.
#[test]
fn concurrent_writes_to_one_zone_through_two_nodes_all_succeed_and_are_counted_exactly() {
    let Some(etcd) = Etcd::start(1) else { return };
    let nodes = [node(&etcd, "a", "", ""), node(&etcd, "b", "", "")];
    let names: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                scope.spawn(move || {
                    (0..40)
                        .map(|j| {
                            let name = format!("r{i}-{j}.c.test.");
                            let (st, body) = put_a(n, &name, "192.0.2.5");
                            assert_eq!(st, 201, "{name}: {body}");
                            name
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // A retried write may have re-validated against the winner's change: a name
    // both wrote is one RRset, so count distinct names (all distinct here).
    assert_eq!(names.len(), 80);
    for n in &nodes {
        assert!(within(SECOND * 2, || serial(n) == 1 + 80).is_some(), "serial {} vs {}", serial(n), 1 + 80);
        for name in &names {
            assert_eq!(answers(n, name), ["192.0.2.5"], "{name}");
        }
    }
    // The races were real: some writes were tried again after losing one.
    let retries: u64 = nodes.iter().map(|n| metric(n, "lbdns_admin_write_retries_total")).sum();
    eprintln!("80 concurrent writes through two servers: {retries} tried again after losing a race");
    assert!(retries > 0, "no write lost a race: the test did not test it");
}

fn metric(s: &Server, name: &str) -> u64 {
    let text = http_get(&format!("http://{}/metrics", s.admin));
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// etcd as production runs it: TLS with client certificates, and authentication
/// with a user whose role may only touch the lbdns prefix, and short-lived login
/// tokens. Nodes with the right credentials share writes across token expiry; a
/// wrong password stops the server at start with a clear error; a node without
/// the CA serves its files and refuses writes with a 503 that says why.
#[test]
fn etcd_over_tls_with_client_certificates_and_a_password() {
    let Some(etcd) = Etcd::start_with(1, Some(Pki::new())) else { return };
    etcd.admin(|mut c| async move {
        use etcd_client::Permission;
        c.user_add("root", "root-password", None).await?;
        c.user_grant_role("root", "root").await?;
        c.role_add("lbdns").await?;
        c.role_grant_permission("lbdns", Permission::read_write("/lbdns/").with_prefix()).await?;
        c.user_add("lbdns", "s3cret", None).await?;
        c.user_grant_role("lbdns", "lbdns").await?;
        c.user_add("outsider", "pw", None).await?; // no role: no access to the prefix
        c.auth_enable().await?;
        Ok(())
    })
    .expect("users, role and auth set up");
    let pki = etcd.tls.as_ref().unwrap();
    let start_as = |user: &str, name: &str, password: &str, ca: bool| {
        let creds = format!(
            "username=\"{user}\"\npassword_file=\"etcd.password\"\ncert_file=\"client.pem\"\nkey_file=\"client-key.pem\"\n{}",
            if ca { "ca_file=\"ca.pem\"" } else { "" }
        );
        let config = node_config(&etcd, name, &creds, "");
        let files = [
            ("c.zone", ZONE),
            ("token", TOKEN),
            ("etcd.password", password),
            ("ca.pem", pki.ca.as_str()),
            ("client.pem", pki.client.0.as_str()),
            ("client-key.pem", pki.client.1.as_str()),
        ];
        Server::try_start(&config, &files)
    };
    let start = |name: &str, password: &str, ca: bool| start_as("lbdns", name, password, ca);
    let a = start("a", "s3cret\n", true).unwrap();
    let b = start("b", "s3cret\n", true).unwrap();
    assert_eq!(put_a(&a, "tls.c.test.", "192.0.2.44").0, 201);
    assert!(within(SECOND, || answers(&b, "tls.c.test.") == ["192.0.2.44"]).is_some());
    // The login token expires; the next writes log in again.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(put_a(&b, "later.c.test.", "192.0.2.46").0, 201);
    assert!(within(SECOND, || answers(&a, "later.c.test.") == ["192.0.2.46"]).is_some());
    assert_eq!(serial(&a), 3);

    // Credentials etcd refuses are a configuration error: the server says so and
    // does not start.
    let err = start("wrong", "guess\n", true).err().expect("a wrong password is refused at start");
    assert!(err.contains("refused the [cluster] credentials") && err.contains("authentication failed"), "{err}");

    // A user etcd knows but who may not read the prefix: also refused at start.
    let err =
        start_as("outsider", "outsider", "pw\n", true).err().expect("no access to the prefix is refused at start");
    assert!(err.contains("or their access to /lbdns/") && err.contains("permission denied"), "{err}");

    // Without the CA etcd's certificate cannot be verified: as when etcd is out
    // of reach, the node serves its files and refuses writes saying why.
    let no_ca = start("no-ca", "s3cret\n", false).unwrap();
    assert_eq!(answers(&no_ca, "www.c.test."), ["192.0.2.10", "192.0.2.11"]);
    let (st, body) = put_a(&no_ca, "nope.c.test.", "192.0.2.45");
    assert_eq!(st, 503, "{body}");
    eprintln!("wrong password: {err}\nno CA: {}", body["error"]);
    assert_eq!(answers(&a, "nope.c.test."), Vec::<String>::new());
    assert_eq!(serial(&a), 3);
}

/// etcd down when a server starts: it serves its config and zone files, refuses
/// writes with 503, and loads the shared state as soon as etcd is up, then
/// takes writes again.
#[test]
fn a_server_started_while_etcd_is_down_serves_its_files_and_catches_up() {
    let Some(mut etcd) = Etcd::start(1) else { return };
    let a = node(&etcd, "a", "", "");
    assert_eq!(put_a(&a, "shared.c.test.", "192.0.2.60").0, 201);
    etcd.kill(0);
    let late = node(&etcd, "late", "", "");
    assert_eq!(answers(&late, "www.c.test."), ["192.0.2.10", "192.0.2.11"], "serves its files");
    assert_eq!(late.query("shared.c.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    let (st, body) = put_a(&late, "early.c.test.", "192.0.2.61");
    assert_eq!(st, 503, "{body}");
    etcd.restart(0);
    assert!(
        within(Duration::from_secs(5), || answers(&late, "shared.c.test.") == ["192.0.2.60"]).is_some(),
        "the late server did not load the shared state"
    );
    assert_eq!(serial(&late), 2);
    assert!(within(Duration::from_secs(5), || put_a(&late, "from-late.c.test.", "192.0.2.62").0 == 201).is_some());
    assert!(within(SECOND, || answers(&a, "from-late.c.test.") == ["192.0.2.62"]).is_some());
}

/// Two servers whose zone files differ (a deployment mistake): a change that one
/// accepts and the other's zone file refuses (an A record where that file has a
/// CNAME) is left out on the second, loudly, and every later change still reaches it.
#[test]
fn a_change_one_servers_files_refuse_is_left_out_there_and_later_ones_still_arrive() {
    let Some(etcd) = Etcd::start(1) else { return };
    let a = node(&etcd, "a", "", "");
    let b_zone = format!("{ZONE}clash IN CNAME ns1\n");
    let b = Server::start(&node_config(&etcd, "b", "", ""), &[("c.zone", &b_zone), ("token", TOKEN)]);

    assert_eq!(put_a(&a, "clash.c.test.", "192.0.2.70").0, 201);
    assert_eq!(put_a(&a, "after.c.test.", "192.0.2.71").0, 201);
    assert!(
        within(SECOND * 2, || answers(&b, "after.c.test.") == ["192.0.2.71"]).is_some(),
        "a later change did not reach the server that refused an earlier one"
    );
    // b still serves its own file's CNAME, and a's A record is served by a.
    let r = b.query("clash.c.test.", RecordType::A);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(answers(&a, "clash.c.test."), ["192.0.2.70"]);
    // b's own writes go on.
    assert_eq!(put_a(&b, "from-b.c.test.", "192.0.2.72").0, 201);
    assert!(within(SECOND, || answers(&a, "from-b.c.test.") == ["192.0.2.72"]).is_some());
    // Restarted, b loads everything but the refused change (it used to refuse to
    // start), and follows on.
    drop(b);
    let b = Server::start(&node_config(&etcd, "b", "", ""), &[("c.zone", &b_zone), ("token", TOKEN)]);
    assert_eq!(answers(&b, "after.c.test."), ["192.0.2.71"]);
    assert_eq!(answers(&b, "from-b.c.test."), ["192.0.2.72"]);
    assert_eq!(b.query("clash.c.test.", RecordType::A).answers[0].record_type(), RecordType::CNAME);
    assert_eq!(put_a(&a, "later.c.test.", "192.0.2.73").0, 201);
    assert!(within(SECOND, || answers(&b, "later.c.test.") == ["192.0.2.73"]).is_some());
    // The refused change can be dropped through the server that refuses it.
    assert_eq!(api(&b, "DELETE", "/v1/zones/c.test./records/clash.c.test./A", None).0, 204);
    let gone = || a.query("clash.c.test.", RecordType::A).metadata.response_code == ResponseCode::NXDomain;
    assert!(within(SECOND, gone).is_some(), "a still answers the deleted A record");
    assert_eq!(api(&b, "DELETE", "/v1/zones/c.test./records/clash.c.test./A", None).0, 404, "now gone");
}

/// API pools through the cluster: created through one server, changed through
/// another, answered by all with one serial; and a member override on a config pool.
#[test]
fn pools_created_and_changed_through_different_servers_are_answered_by_all() {
    let Some(etcd) = Etcd::start(1) else { return };
    let nodes: Vec<Server> = (0..3).map(|i| node(&etcd, &format!("p{i}"), "", "")).collect();
    let pool = r#"{"policy":"failover","members":[{"address":"192.0.2.31"},{"address":"192.0.2.32"}]}"#;
    assert_eq!(api(&nodes[0], "PUT", "/v1/pools/api.c.test.", Some(pool)).0, 201);
    for n in &nodes {
        assert!(within(SECOND, || answers(n, "api.c.test.") == ["192.0.2.31", "192.0.2.32"]).is_some());
    }
    // Drained through another server: the first member leaves every answer.
    let (st, body) = api(&nodes[1], "PUT", "/v1/pools/api.c.test./members/192.0.2.31", Some(r#"{"enabled":false}"#));
    assert_eq!(st, 200, "{body}");
    // A member added to the config pool through a third.
    let (st, body) = api(&nodes[2], "PUT", "/v1/pools/www.c.test./members/192.0.2.12", Some("{}"));
    assert_eq!(st, 201, "{body}");
    for n in &nodes {
        assert!(within(SECOND, || answers(n, "api.c.test.") == ["192.0.2.32"]).is_some());
        assert!(within(SECOND, || answers(n, "www.c.test.") == ["192.0.2.10", "192.0.2.11", "192.0.2.12"]).is_some());
        assert!(within(SECOND, || serial(n) == 4).is_some(), "serial {}", serial(n));
    }
    // Each server records the drain in its own history, under its own node name.
    for (i, n) in nodes.iter().enumerate() {
        let (st, events) = api(n, "GET", "/v1/events", None);
        assert_eq!(st, 200, "{events}");
        let drain = &events[0];
        assert_eq!((drain["pool"].as_str(), drain["address"].as_str()), (Some("api.c.test."), Some("192.0.2.31")));
        assert_eq!((drain["from"].as_str(), drain["to"].as_str()), (Some("up"), Some("drained")), "{events}");
        let reason = if i == 1 { "drained through the API" } else { "changed on another server" };
        assert_eq!((drain["reason"].as_str(), drain["node"].as_str()), (Some(reason), Some(&*format!("p{i}"))));
    }
    // Deleted through the first: gone everywhere.
    assert_eq!(api(&nodes[0], "DELETE", "/v1/pools/api.c.test.", None).0, 204);
    for n in &nodes {
        let gone =
            within(SECOND, || n.query("api.c.test.", RecordType::A).metadata.response_code == ResponseCode::NXDomain);
        assert!(gone.is_some());
        assert_eq!(answers(n, "www.c.test."), ["192.0.2.10", "192.0.2.11", "192.0.2.12"]);
    }
}

/// Overrides undone through one server are undone on every server: a drained
/// member's override deleted, a config member's stored deletion repeated (204,
/// nothing stored), and a whole pool's overrides deleted. A restarted server
/// loads the same.
#[test]
fn override_deletions_reach_every_server() {
    let Some(etcd) = Etcd::start(1) else { return };
    let nodes: Vec<Server> = (0..2).map(|i| node(&etcd, &format!("o{i}"), "", "")).collect();
    let both = |want: &[&str]| {
        for n in &nodes {
            assert!(within(SECOND, || answers(n, "www.c.test.") == want).is_some(), "{:?}", answers(n, "www.c.test."));
        }
    };
    let m = |a: &str| format!("/v1/pools/www.c.test./members/{a}");
    assert_eq!(api(&nodes[0], "PUT", &m("192.0.2.11"), Some(r#"{"enabled":false}"#)).0, 200);
    both(&["192.0.2.10"]);
    assert_eq!(api(&nodes[1], "DELETE", &format!("{}/override", m("192.0.2.11")), None).0, 204);
    both(&["192.0.2.10", "192.0.2.11"]);
    assert!(within(SECOND, || api(&nodes[0], "GET", "/v1/pools/www.c.test.", None).1["override"].is_null()).is_some());
    assert_eq!(api(&nodes[0], "DELETE", &format!("{}/override", m("192.0.2.11")), None).0, 404);

    // A stored deletion through one server, repeated through the other.
    assert_eq!(api(&nodes[0], "DELETE", &m("192.0.2.10"), None).0, 204);
    both(&["192.0.2.11"]);
    let serial_after = serial(&nodes[0]);
    assert!(within(SECOND, || serial(&nodes[1]) == serial_after).is_some());
    assert_eq!(api(&nodes[1], "DELETE", &m("192.0.2.10"), None).0, 204);
    assert_eq!(serial(&nodes[1]), serial_after, "a repeated DELETE stores nothing");
    assert_eq!(api(&nodes[1], "PUT", &m("192.0.2.12"), Some("{}")).0, 201);
    both(&["192.0.2.11", "192.0.2.12"]);

    // The pool's overrides deleted through the other server: the config's pool everywhere.
    assert_eq!(api(&nodes[0], "DELETE", "/v1/pools/www.c.test./override", None).0, 204);
    both(&["192.0.2.10", "192.0.2.11"]);
    let fresh = node(&etcd, "o2", "", "");
    assert_eq!(answers(&fresh, "www.c.test."), ["192.0.2.10", "192.0.2.11"]);
    assert!(api(&fresh, "GET", "/v1/pools/www.c.test.", None).1["override"].is_null());
}

/// `/ui/api/state` on a quorum cluster of two: each checked member shows how
/// many nodes see it up of those with a result, and each node's view.
#[test]
fn the_status_page_state_shows_each_members_quorum_votes() {
    let Some(etcd) = Etcd::start(1) else { return };
    let x = Backend::http("127.0.0.5", 0);
    let port = x.addr.port();
    let y = Backend::http("127.0.0.6", port);
    // Node b (127.0.0.22) cannot reach y.
    y.refuse_from("127.0.0.22");
    let pool = format!(
        "[[pool]]\nname=\"app.c.test.\"\n\
         [pool.health]\ncheck=\"http\"\nport={port}\ninterval=\"200ms\"\ntimeout=\"300ms\"\nrise=1\nfall=1\n\
         [[pool.member]]\naddress=\"127.0.0.5\"\n[[pool.member]]\naddress=\"127.0.0.6\"\n"
    );
    let nodes: Vec<Server> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            node(&etcd, n, "health=\"quorum\"", &format!("[health]\nsource_address=\"127.0.0.2{}\"\n{pool}", i + 1))
        })
        .collect();
    let votes = |s: &Server| -> Value {
        let state: Value = serde_json::from_str(&http_get(&format!("http://{}/ui/api/state", s.admin))).unwrap();
        let pools = state["pools"].as_array().unwrap();
        let app = pools.iter().find(|p| p["name"] == "app.c.test.").unwrap();
        let www = pools.iter().find(|p| p["name"] == "www.c.test.").unwrap();
        assert_eq!(www["members"][0]["votes"], Value::Null, "no health check, no votes: {www}");
        app["members"].as_array().unwrap().iter().map(|m| (m["address"].to_string(), m["votes"].clone())).collect()
    };
    let want = serde_json::json!({
        "\"127.0.0.5\"": {"up": 2, "of": 2, "nodes": {"a": true, "b": true}},
        "\"127.0.0.6\"": {"up": 1, "of": 2, "nodes": {"a": true, "b": false}},
    });
    for s in &nodes {
        let got = within(Duration::from_secs(10), || votes(s) == want);
        assert!(got.is_some(), "votes: {}", votes(s));
    }
    // One of two down is no majority: both nodes keep answering y.
    assert_eq!(answers(&nodes[1], "app.c.test."), ["127.0.0.5", "127.0.0.6"]);

    // The page on b: a Votes column, y seen up by one node of two, which on hover.
    if !crate::browser::browser_available() {
        return;
    }
    let driver = crate::browser::start_driver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = crate::browser::browser(&driver).await;
        c.goto(&format!("http://{}/", nodes[1].admin)).await.unwrap();
        let cell = "const d = document.querySelector('tr.member[data-address=\"127.0.0.6\"] td.votes'); \
                    return d ? [d.textContent, d.title, d.classList.contains('up')] : null;";
        let want = serde_json::json!(["1/2 up", "a: up, b: down", true]);
        crate::browser::until_js(&c, Duration::from_secs(10), cell, want).await;
        let th =
            "return [...document.querySelectorAll('.pool[data-pool=\"www.c.test.\"] th')].map(t => t.textContent);";
        let www = c.execute(th, vec![]).await.unwrap();
        assert!(!www.to_string().contains("Votes"), "no checks, no Votes column: {www}");
        c.close().await.unwrap();
    });
}

/// A node with `[[tsig]]` key `up.` granted every TXT and A in c.test.
fn update_node(etcd: &Etcd, name: &str) -> Server {
    update_node_with(etcd, name, "")
}

/// The same with `cluster_extra` in `[cluster]`.
fn update_node_with(etcd: &Etcd, name: &str, cluster_extra: &str) -> Server {
    let config = node_config(etcd, name, cluster_extra, "[[tsig]]\nname=\"up.\"\nsecret_file=\"up.key\"\n").replace(
        "file=\"c.zone\"\n",
        "file=\"c.zone\"\nupdate=[{ key = \"up.\", names = [\"*\"], types = [\"TXT\", \"A\"] }]\n",
    );
    Server::start(
        &config,
        &[("c.zone", ZONE), ("token", TOKEN), ("up.key", "dXBkYXRlLXVwZGF0ZS11cGRhdGUtdXBkYXRlIQ==\n")],
    )
}

/// A signed UPDATE of c.test. adding `rr` (name, A or TXT data), sent over UDP.
fn send_update(s: &Server, name: &str, data: &str) -> ResponseCode {
    use base64::Engine;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{DNSClass, Name, RData, Record, TSigner, rdata::TXT};
    let secret = base64::engine::general_purpose::STANDARD.decode("dXBkYXRlLXVwZGF0ZS11cGRhdGUtdXBkYXRlIQ==").unwrap();
    let key = TSigner::new(secret, TsigAlgorithm::HmacSha256, Name::from_ascii("up.").unwrap(), 300).unwrap();
    let mut m = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Update);
    let mut zone = Query::query(Name::from_ascii("c.test.").unwrap(), RecordType::SOA);
    zone.set_query_class(DNSClass::IN);
    m.add_query(zone);
    let rdata = match data.parse::<std::net::Ipv4Addr>() {
        Ok(a) => RData::A(a.into()),
        Err(_) => RData::TXT(TXT::new(vec![data.to_string()])),
    };
    m.add_authority(Record::from_rdata(Name::from_ascii(name).unwrap(), 60, rdata));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    m.finalize(&key, now).unwrap();
    let reply = tcp_raw(s.dns, &m.to_vec().unwrap()).expect("a reply");
    Message::from_vec(&reply).unwrap().metadata.response_code
}

#[test]
fn an_update_through_one_node_is_answered_by_every_node() {
    let Some(etcd) = Etcd::start(1) else { return };
    let nodes: Vec<Server> = (0..2).map(|i| update_node(&etcd, &format!("u{i}"))).collect();
    assert_eq!(send_update(&nodes[0], "_acme-challenge.c.test.", "token"), ResponseCode::NoError);
    for n in &nodes {
        let seen = within(SECOND, || n.query("_acme-challenge.c.test.", RecordType::TXT).answers.len() == 1);
        assert!(seen.is_some(), "a node did not answer the UPDATE's TXT within 1 s");
    }
    // A member added to the pool through the other node.
    assert_eq!(send_update(&nodes[1], "www.c.test.", "192.0.2.12"), ResponseCode::NoError);
    for n in &nodes {
        let all = ["192.0.2.10", "192.0.2.11", "192.0.2.12"];
        assert!(within(SECOND, || answers(n, "www.c.test.") == all).is_some(), "{:?}", answers(n, "www.c.test."));
    }
    // Two UPDATEs at once through the two nodes: both applied, one serial each.
    let before = serial(&nodes[0]);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| send_update(&nodes[0], "a.c.test.", "192.0.2.21"));
        let b = s.spawn(|| send_update(&nodes[1], "b.c.test.", "192.0.2.22"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (ResponseCode::NoError, ResponseCode::NoError));
    for n in &nodes {
        assert!(within(SECOND, || serial(n) == before + 2).is_some(), "serial {}", serial(n));
        assert!(within(SECOND, || answers(n, "a.c.test.").len() == 1 && answers(n, "b.c.test.").len() == 1).is_some());
    }
    // The API shows the UPDATE's RRset as such on both.
    for n in &nodes {
        let (_, recs) = api(n, "GET", "/v1/zones/c.test./records", None);
        let set = recs["records"].as_array().unwrap().iter().find(|r| r["name"] == "_acme-challenge.c.test.").cloned();
        assert_eq!(set.map(|s| s["source"].clone()), Some(Value::from("update")));
    }
}

/// Zone transfers in a cluster with `transfer_pools = "healthy"`: a member that
/// every node sees go down leaves the pool's transferred RRset, and the serial
/// moves through etcd, so both nodes serve the same serial and the same AXFR.
#[test]
fn a_health_change_moves_the_transferred_pool_and_the_serial_on_every_node() {
    let Some(etcd) = Etcd::start(1) else { return };
    let x = Backend::http("127.0.0.2", 0);
    let y = Backend::http("127.0.0.3", x.addr.port());
    let pool = format!(
        "[[pool]]\nname=\"app.c.test.\"\n[pool.health]\ncheck=\"http\"\nport={}\ninterval=\"200ms\"\n\
         timeout=\"1s\"\nrise=1\nfall=1\n[[pool.member]]\naddress=\"127.0.0.2\"\n[[pool.member]]\naddress=\"127.0.0.3\"\n",
        x.addr.port()
    );
    let nodes: Vec<Server> = ["a", "b"]
        .iter()
        .map(|n| {
            let config = node_config(&etcd, n, "health=\"quorum\"", &pool)
                .replace("file=\"c.zone\"\n", "file=\"c.zone\"\ntransfer=[\"127.0.0.0/8\"]\n");
            Server::start(&config, &[("c.zone", ZONE), ("token", TOKEN)])
        })
        .collect();
    let axfr_pool = |s: &Server| {
        let m = tcp(s.dns, &msg("c.test.", RecordType::AXFR));
        let mut a: Vec<String> = m
            .answers
            .iter()
            .filter(|r| r.name.to_ascii() == "app.c.test.")
            .filter_map(|r| r.data.ip_addr())
            .map(|a| a.to_string())
            .collect();
        a.sort();
        a
    };
    for n in &nodes {
        assert!(within(Duration::from_secs(5), || axfr_pool(n) == ["127.0.0.2", "127.0.0.3"]).is_some());
    }
    let before = serial(&nodes[0]);
    y.set_status(500);
    let settled = || {
        nodes.iter().all(|n| axfr_pool(n) == ["127.0.0.2"] && serial(n) != before)
            && serial(&nodes[0]) == serial(&nodes[1])
    };
    assert!(
        within(Duration::from_secs(15), settled).is_some(),
        "serials {} {}, pools {:?} {:?}",
        serial(&nodes[0]),
        serial(&nodes[1]),
        axfr_pool(&nodes[0]),
        axfr_pool(&nodes[1])
    );
}

/// With etcd down an UPDATE is SERVFAIL and changes nothing; once etcd is back
/// UPDATEs apply again.
#[test]
fn an_update_with_etcd_down_is_servfail_and_changes_nothing() {
    let Some(mut etcd) = Etcd::start(1) else { return };
    let a = update_node_with(&etcd, "a", "timeout = \"300ms\"");
    etcd.kill(0);
    assert_eq!(send_update(&a, "during.c.test.", "192.0.2.2"), ResponseCode::ServFail);
    assert_eq!(a.query("during.c.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
    etcd.restart(0);
    let ok = within(Duration::from_secs(10), || send_update(&a, "after.c.test.", "192.0.2.3") == ResponseCode::NoError);
    assert!(ok.is_some(), "UPDATEs did not resume after etcd came back");
    assert_eq!(answers(&a, "after.c.test."), ["192.0.2.3"]);
    assert_eq!(a.query("during.c.test.", RecordType::A).metadata.response_code, ResponseCode::NXDomain);
}

/// The IXFR journal outlives a restart with etcd too: a node with `transfer`
/// journals an API write under its own name in etcd, and started again (same
/// node name, fresh directory) answers `dig ixfr=SERIAL` incrementally, not
/// with the whole zone. Another node's journal is its own.
#[test]
fn the_ixfr_journal_is_kept_in_etcd_across_a_restart() {
    let Some(etcd) = Etcd::start(1) else { return };
    if Command::new("dig").arg("-v").output().is_err() {
        return skipped("no dig");
    }
    let start = |name: &str| {
        let config = node_config(&etcd, name, "", "")
            .replace("file=\"c.zone\"\n", "file=\"c.zone\"\ntransfer=[\"127.0.0.0/8\"]\n");
        Server::start(&config, &[("c.zone", ZONE), ("token", TOKEN)])
    };
    let (a, b) = (start("a"), start("b"));
    let first = serial(&a);
    assert_eq!(put_a(&a, "new.c.test.", "192.0.2.77").0, 201);
    // Each node journals the change (b from the watch) under its own name.
    let stored = |node: &str| {
        let count = std::cell::Cell::new(0);
        let (cell, key) = (&count, format!("/lbdns/journal/{node}/"));
        let _ = etcd.admin(|mut c| async move {
            cell.set(c.get(key, Some(etcd_client::GetOptions::new().with_prefix())).await?.count());
            Ok(())
        });
        count.get()
    };
    assert!(within(Duration::from_secs(10), || stored("a") == 1 && stored("b") == 1).is_some());
    drop(a);
    let a = start("a");
    let out = Command::new("dig")
        .args([&format!("@{}", a.dns.ip()), &format!("-p{}", a.dns.port()), "c.test.", &format!("IXFR={first}")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let recs: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // New SOA, old SOA, (nothing removed), new SOA, the added record, new SOA.
    assert_eq!(recs.len(), 5, "not an incremental answer: {out}");
    assert!(recs[1].contains(" SOA ") && recs[1].contains(&format!(" {first} ")), "{out}");
    assert_eq!(recs[3], "new.c.test. 60 IN A 192.0.2.77", "{out}");
    drop(b);
}
