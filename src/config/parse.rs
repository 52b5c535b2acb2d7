//! From the deserialized file to the validated [`Config`]: one function per
//! table, each checking its own values and reporting each problem at the line
//! it is on. Problems are collected, never returned early, so that one run
//! reports them all; they come out sorted by line.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::grant::{Grant, GrantError, NamePattern};
use super::lines::{LineIndex, find_key_line, find_line};
use super::name::parse_fqdn;
use super::raw::{
    AdminConfig, ClusterConfig, ClusterHealth, DnsConfig, GrantConfig, HealthChecks, PolicyName, PoolConfig,
    RedirectConfig, RedirectHostConfig, StoreKind, TransferPools, TsigConfig, ZoneConfig,
};
use super::recover::deserialize_all;
use super::settings::{
    AdminSettings, Config, DnsSettings, DnssecSpec, EtcdSettings, PoolDef, RedirectSettings, RedirectTarget, Secrets,
    TransferRule, TransferSettings, ZoneSpec, unlisted_regions,
};
use super::split::Cut;
use crate::problem::Problem;
use crate::secrets;

/// What every table's check needs: the text (to name lines), the config's
/// directory (to resolve relative paths), and the problems found so far.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    lines: LineIndex,
    secrets: Secrets,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Problem::new(self.path, line, message));
    }

    /// The line of the first occurrence of `needle` (see [`find_line`]).
    fn line_of(&self, needle: &str) -> usize {
        find_line(self.text, needle)
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }

    /// Reads a file that `[cluster]` names as `what`; the secret ones read as
    /// empty under [`Secrets::Skip`]. `None` (and a problem) when unreadable.
    fn read(&mut self, what: &str, f: &Path) -> Option<Vec<u8>> {
        let file = self.resolve(f);
        if self.secrets == Secrets::Skip && matches!(what, "password_file" | "key_file") {
            return Some(Vec::new());
        }
        match std::fs::read(&file) {
            Ok(b) => Some(b),
            Err(e) => {
                self.problem(self.line_of(what), format!("cannot read {what} {}: {e}", file.display()));
                None
            }
        }
    }
}

/// Parses config text, returning the config built from every part that could be
/// read and every problem found (see [`super::load_all`]).
pub fn parse_all(path: &Path, text: &str, secrets: Secrets) -> (Option<Config>, Vec<Problem>) {
    parse_cut(path, text, secrets, Cut::new(text))
}

/// [`parse_all`] of `text` already cut for reading its pools in batches.
pub(super) fn parse_cut(path: &Path, text: &str, secrets: Secrets, cut: Option<Cut>) -> (Option<Config>, Vec<Problem>) {
    let (raw, problems) = deserialize_all(path, text, cut);
    let Some(mut raw) = raw else { return (None, problems) };
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut cx = Ctx { path, text, dir, lines: LineIndex::new(text), secrets, problems };
    let dns = dns(&mut cx, raw.dns);
    let admin = admin(&mut cx, raw.admin);
    let tsig = tsig_keys(&mut cx, &raw.tsig);
    let key_names: Vec<hickory_proto::rr::Name> = tsig.iter().map(|k| k.name.clone()).collect();
    let zones = zones(&mut cx, &raw.zone, &key_names);
    let dnssec = std::sync::Arc::new(crate::dnssec::Signing::new(zone_keys(&mut cx, &zones)));
    let pools = pools(&mut cx, std::mem::take(&mut raw.pool), &raw.regions);
    regions(&mut cx, &raw.regions, &pools);
    let etcd = raw.cluster.as_ref().and_then(|c| cluster(&mut cx, c));
    let redirect = raw.redirect.as_ref().map(|r| redirect(&mut cx, r));
    let tsig = std::sync::Arc::new(crate::tsig::Keys::new(tsig));
    transfer_checks(&mut cx, &zones, &raw.tsig, raw.cluster.as_ref());
    let config = Config {
        redirect,
        etcd,
        probe_source: raw.health.source_address,
        health_file: raw.health.health_file.as_deref().map(|p| cx.resolve(p)),
        path: path.to_path_buf(),
        dns,
        admin,
        geoip: raw.geoip.map(|g| cx.resolve(&g.database)),
        geoip_line: find_line(text, "[geoip]"),
        regions: raw.regions,
        zones,
        pools,
        tsig,
        dnssec,
    };
    let mut problems = cx.problems;
    problems.sort_by_key(|p| p.line);
    (Some(config), problems)
}

/// `[dns]`, with the cookie secret read (unless secrets are skipped).
fn dns(cx: &mut Ctx, d: DnsConfig) -> DnsSettings {
    if d.listen.is_empty() {
        cx.problem(cx.line_of("listen"), "[dns] listen is empty");
    }
    if d.rrl.is_some_and(|r| r.responses_per_second == 0) {
        cx.problem(cx.line_of("responses_per_second"), "[dns.rrl] responses_per_second must be at least 1");
    }
    let mut cookie_secret = None;
    if let Some(f) = d.cookie_secret_file.as_ref().filter(|_| cx.secrets == Secrets::Read) {
        match secrets::read_cookie_secret(&cx.resolve(f)) {
            Ok(secret) => cookie_secret = Some(secret),
            Err(e) => cx.problem(cx.line_of("cookie_secret_file"), e.to_string()),
        }
    }
    if d.edns_udp_size < 512 {
        cx.problem(cx.line_of("edns_udp_size"), "[dns] edns_udp_size must be at least 512");
    }
    DnsSettings {
        listen: d.listen,
        threads: d.threads,
        edns_udp_size: d.edns_udp_size,
        tcp_idle_timeout: d.tcp_idle_timeout,
        max_tcp_connections: d.max_tcp_connections.max(1),
        rrl: d.rrl,
        cookies: d.cookies,
        cookie_secret,
    }
}

/// `[admin]`: a listener off loopback needs a token.
fn admin(cx: &mut Ctx, a: AdminConfig) -> AdminSettings {
    if !a.listen.ip().is_loopback() && a.token_file.is_none() {
        cx.problem(
            find_key_line(cx.text, "[admin]", "listen"),
            format!("[admin] listen {} is not a loopback address: set token_file, or listen on 127.0.0.1", a.listen),
        );
    }
    AdminSettings {
        listen: a.listen,
        token_file: a.token_file.as_deref().map(|p| cx.resolve(p)),
        token_file_line: find_key_line(cx.text, "[admin]", "token_file"),
        state_dir: cx.resolve(&a.state_dir),
        ui_public: a.ui_public.unwrap_or(a.listen.ip().is_loopback()),
    }
}

/// `[[zone]]`: origins are names, each zone defined once.
fn zones(cx: &mut Ctx, raw: &[Spanned<ZoneConfig>], keys: &[hickory_proto::rr::Name]) -> Vec<ZoneSpec> {
    let mut zones: Vec<ZoneSpec> = Vec::new();
    for z in raw {
        let line = cx.lines.line(z.span().start);
        let zc = z.get_ref();
        match parse_fqdn(&zc.origin) {
            Ok(origin) => {
                if zones.iter().any(|o| o.origin == origin) {
                    cx.problem(line, format!("zone {origin} is defined twice"));
                }
                let update = grants(cx, &origin, &zc.update, keys);
                let transfer = transfer(cx, line, &origin, zc);
                let dnssec =
                    zc.dnssec.as_ref().map(|d| DnssecSpec { key_dir: cx.resolve(&d.key_dir), algorithm: d.algorithm });
                zones.push(ZoneSpec { origin, file: cx.resolve(&zc.file), line, update, transfer, dnssec });
            }
            Err(e) => cx.problem(line, format!("zone origin: {e}")),
        }
    }
    zones
}

/// A zone's `update` list: each grant names a `[[tsig]]` key, name patterns
/// inside the zone and types UPDATE can change. A bad grant is left out (with a
/// problem at its line), so nothing it would allow is ever allowed.
fn grants(
    cx: &mut Ctx,
    origin: &hickory_proto::rr::Name,
    raw: &[Spanned<GrantConfig>],
    keys: &[hickory_proto::rr::Name],
) -> Vec<Grant> {
    let mut out = Vec::new();
    for g in raw {
        let line = cx.lines.line(g.span().start);
        let gc = g.get_ref();
        let at = |e: &dyn std::fmt::Display| format!("zone {origin} update: {e}");
        let key = match parse_fqdn(&gc.key) {
            Ok(k) if keys.contains(&k) => k,
            Ok(k) => {
                cx.problem(
                    line,
                    at(&format!("key {k} is not a [[tsig]] key (define it with [[tsig]] name = \"{k}\")")),
                );
                continue;
            }
            Err(e) => {
                cx.problem(line, at(&format!("key: {e}")));
                continue;
            }
        };
        let names: Result<Vec<NamePattern>, GrantError> = if gc.names.is_empty() {
            Err(GrantError::NoNames)
        } else {
            gc.names.iter().map(|n| NamePattern::parse(n, origin)).collect()
        };
        match (names, super::grant::parse_types(&gc.types)) {
            (Ok(names), Ok(types)) => out.push(Grant { key, names, types }),
            (Err(e), _) | (_, Err(e)) => cx.problem(line, at(&e)),
        }
    }
    out
}

/// `[zone.dnssec]`: each signed zone's keys read from its key directory
/// (unless secrets are skipped), a problem naming the file for each that
/// cannot be used.
fn zone_keys(cx: &mut Ctx, zones: &[ZoneSpec]) -> Vec<crate::dnssec::ZoneKeys> {
    let mut out = Vec::new();
    for z in zones {
        let Some(d) = z.dnssec.as_ref().filter(|_| cx.secrets == Secrets::Read) else { continue };
        match crate::dnssec::keys::load_dir(&d.key_dir, &z.origin.to_ascii()) {
            Ok(keys) => out.push(crate::dnssec::ZoneKeys::new(&z.origin, keys)),
            Err(e) => cx.problem(z.line, format!("zone {} [zone.dnssec]: {e}", z.origin)),
        }
    }
    out
}

/// A zone's `transfer`, `notify` and `transfer_pools`: each entry an address,
/// a CIDR or `key:NAME` (the key is checked against `[[tsig]]` by
/// [`transfer_keys`]), each NOTIFY target an address with an optional port.
fn transfer(cx: &mut Ctx, line: usize, origin: &hickory_proto::rr::Name, zc: &ZoneConfig) -> TransferSettings {
    let mut allow = Vec::new();
    for entry in &zc.transfer {
        let at = find_line_from(cx.text, line, &format!("{entry:?}"));
        if let Some(key) = entry.strip_prefix("key:") {
            match parse_fqdn(key) {
                Ok(k) => allow.push(TransferRule::Key(k)),
                Err(e) => cx.problem(at, format!("zone {origin}: transfer {entry:?}: key name: {e}")),
            }
        } else if let Ok(net) = entry.parse::<ipnet::IpNet>() {
            allow.push(TransferRule::Net(net.trunc()));
        } else if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
            allow.push(TransferRule::Net(ipnet::IpNet::from(ip)));
        } else {
            cx.problem(at, format!("zone {origin}: transfer {entry:?}: not an address, a CIDR or key:NAME"));
        }
    }
    let mut notify = Vec::new();
    for target in &zc.notify {
        let parsed = target.parse::<std::net::SocketAddr>().ok();
        match parsed.or_else(|| target.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into())) {
            Some(a) => notify.push(a),
            None => cx.problem(
                find_line_from(cx.text, line, &format!("{target:?}")),
                format!("zone {origin}: notify {target:?}: not ADDRESS or ADDRESS:PORT (use [v6]:port for IPv6)"),
            ),
        }
    }
    if zc.journal_max_bytes == 0 {
        cx.problem(line, format!("zone {origin}: journal_max_bytes must be at least 1"));
    }
    TransferSettings {
        allow,
        notify,
        pools: zc.transfer_pools,
        journal_max_bytes: zc.journal_max_bytes,
        journal_max_age: zc.journal_max_age,
    }
}

/// The line of `needle` at or after line `from` (a zone's entries are below its
/// `[[zone]]`), or `from` when it is not found.
fn find_line_from(text: &str, from: usize, needle: &str) -> usize {
    let skip: usize = text.split_inclusive('\n').take(from.saturating_sub(1)).map(str::len).sum();
    match text.get(skip..).and_then(|rest| rest.find(needle)) {
        Some(at) => from + text[skip..skip + at].matches('\n').count(),
        None => from,
    }
}

/// Checks what transfers need from other tables: every `key:` names a
/// `[[tsig]]` key, and `transfer_pools = "healthy"` is not used where each
/// cluster node has its own view of health (`[cluster] health = "local"`).
fn transfer_checks(cx: &mut Ctx, zones: &[ZoneSpec], raw: &[Spanned<TsigConfig>], cluster: Option<&ClusterConfig>) {
    let keys: Vec<_> = raw.iter().filter_map(|t| parse_fqdn(&t.get_ref().name).ok()).collect();
    let local = cluster.is_some_and(|c| c.store == StoreKind::Etcd && c.health == super::raw::ClusterHealth::Local);
    for z in zones {
        for rule in &z.transfer.allow {
            if let TransferRule::Key(k) = rule
                && !keys.contains(k)
            {
                let at = find_line_from(cx.text, z.line, &format!("key:{}", k.to_ascii().trim_end_matches('.')));
                cx.problem(at, format!("zone {}: transfer key:{k} is not a [[tsig]] key", z.origin));
            }
        }
        if local && z.transfer.active() && z.transfer.pools == TransferPools::Healthy {
            cx.problem(
                z.line,
                format!(
                    "zone {}: transfer_pools = \"healthy\" needs one view of health in the cluster, \
                     and [cluster] health = \"local\" gives each node its own: use transfer_pools = \"enabled\" \
                     (or health = \"quorum\")",
                    z.origin
                ),
            );
        }
    }
}

/// `[[tsig]]`: each key named once, its secret read (unless secrets are
/// skipped) and, when the file is a BIND key clause, agreeing with the entry.
fn tsig_keys(cx: &mut Ctx, raw: &[Spanned<TsigConfig>]) -> Vec<crate::tsig::Key> {
    let mut keys: Vec<crate::tsig::Key> = Vec::new();
    for t in raw {
        let line = cx.lines.line(t.span().start);
        let tc = t.get_ref();
        let name = match parse_fqdn(&tc.name) {
            Ok(n) => n,
            Err(e) => {
                cx.problem(line, format!("[[tsig]] name: {e}"));
                continue;
            }
        };
        if keys.iter().any(|k| k.name == name) {
            cx.problem(line, format!("[[tsig]] key {name} is defined twice"));
            continue;
        }
        let secret = if cx.secrets == Secrets::Read { tsig_secret(cx, line, &name, tc) } else { Some(Vec::new()) };
        if let Some(secret) = secret {
            keys.push(crate::tsig::Key::new(name, tc.algorithm, &secret));
        }
    }
    keys
}

/// The secret of one `[[tsig]]` entry; `None` (and a problem naming the file)
/// when it cannot be used.
fn tsig_secret(cx: &mut Ctx, line: usize, name: &hickory_proto::rr::Name, tc: &TsigConfig) -> Option<Vec<u8>> {
    let file = cx.resolve(&tc.secret_file);
    let read = match secrets::read_tsig_secret(&file) {
        Ok(r) => r,
        Err(e) => {
            cx.problem(line, format!("[[tsig]] key {name}: {e}"));
            return None;
        }
    };
    if let Some((clause_name, clause_alg)) = &read.clause {
        let shown = file.display();
        if parse_fqdn(clause_name).ok().as_ref() != Some(name) {
            cx.problem(line, format!("[[tsig]] key {name}: secret_file {shown} holds the key {clause_name:?}"));
            return None;
        }
        if crate::tsig::Algorithm::from_name(clause_alg) != Some(tc.algorithm) {
            let alg = tc.algorithm;
            cx.problem(
                line,
                format!("[[tsig]] key {name}: secret_file {shown} is for {clause_alg}, the entry says {alg}"),
            );
            return None;
        }
    }
    Some(read.secret)
}

fn pools(cx: &mut Ctx, raw: Vec<Spanned<PoolConfig>>, regions: &BTreeMap<String, Vec<String>>) -> Vec<PoolDef> {
    let mut pools: Vec<PoolDef> = Vec::with_capacity(raw.len());
    let mut names = HashSet::with_capacity(raw.len());
    // Each distinct set of checks is held once, however many pools have it.
    let mut checks: HashSet<HealthChecks> = HashSet::new();
    // Taken by value: each raw pool is freed as its definition is made.
    for p in raw {
        let line = cx.lines.line(p.span().start);
        let pc = p.into_inner();
        let name = match parse_fqdn(&pc.name) {
            Ok(n) => n,
            Err(e) => {
                cx.problem(line, format!("pool name: {e}"));
                continue;
            }
        };
        if !names.insert(name.clone()) {
            cx.problem(line, format!("pool {name} is defined twice"));
        }
        let health = match pc.health {
            Some(h) => intern(&mut checks, health_checks(cx, line, h)),
            None => HealthChecks::default(),
        };
        let member_lines: Vec<usize> = pc.member.iter().map(|m| cx.lines.line(m.span().start)).collect();
        let def = PoolDef {
            name,
            policy: pc.policy,
            ttl: pc.ttl,
            max_answers: pc.max_answers,
            all_down: pc.all_down,
            fallback: pc.fallback,
            health,
            members: exact(pc.member.into_iter().map(Spanned::into_inner).collect()),
            line,
        };
        for (i, msg) in def.validate().into_iter().chain(unlisted_regions(&def, regions)) {
            let l = i.and_then(|i| member_lines.get(i).copied()).unwrap_or(line);
            cx.problem(l, msg);
        }
        pools.push(def);
    }
    pools
}

/// `v` without spare capacity. Collected in place from the wider spanned
/// members, 4 members kept room for 5 (48 bytes more per pool, held for good).
fn exact<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// The held copy of `checks` if an equal one is held, else `checks`, now held.
fn intern(held: &mut HashSet<HealthChecks>, checks: HealthChecks) -> HealthChecks {
    if let Some(h) = held.get(&checks) {
        return h.clone();
    }
    held.insert(checks.clone());
    checks
}

/// A pool's health checks with each `headers_file` read (unless secrets are
/// skipped); a file's problem is reported at the pool's line, naming FILE:LINE.
fn health_checks(cx: &mut Ctx, line: usize, checks: HealthChecks) -> HealthChecks {
    let mut checks = checks.0.to_vec();
    for h in &mut checks {
        h.health_file = h.health_file.take().map(|p| cx.resolve(&p));
        let Some(f) = h.headers_file.as_ref().map(|f| cx.resolve(f)) else { continue };
        if cx.secrets == Secrets::Read {
            match secrets::read_headers(&f) {
                Ok(headers) => h.file_headers = headers,
                Err(e) => cx.problem(line, format!("health: {e}")),
            }
        }
        h.headers_file = Some(f);
    }
    HealthChecks(checks.into())
}

/// `[regions]`: location keys, non-empty lists, and a default for geo pools.
fn regions(cx: &mut Ctx, regions: &BTreeMap<String, Vec<String>>, pools: &[PoolDef]) {
    for (key, list) in regions {
        let valid_key = key == "default" || (key.len() == 2 && key.bytes().all(|b| b.is_ascii_uppercase()));
        if !valid_key {
            cx.problem(
                cx.line_of(key),
                format!("[regions] key {key:?}: use an ISO country code (JP), a continent code (EU) or \"default\""),
            );
        }
        if list.is_empty() {
            cx.problem(cx.line_of(key), format!("[regions] {key} is an empty list"));
        }
    }
    if pools.iter().any(|p| p.policy == PolicyName::Geo) && !regions.contains_key("default") {
        cx.problem(cx.line_of("[regions]"), "a geo pool needs [regions] with a `default` list");
    }
}

/// `[cluster]`: `Some` with store = "etcd", its credential files read.
fn cluster(cx: &mut Ctx, c: &ClusterConfig) -> Option<EtcdSettings> {
    if c.store != StoreKind::Etcd {
        return None;
    }
    let line = cx.line_of("[cluster]");
    if c.endpoints.is_empty() {
        cx.problem(line, "[cluster] store = \"etcd\" needs endpoints, e.g. [\"http://127.0.0.1:2379\"]");
    }
    for e in &c.endpoints {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            cx.problem(
                cx.line_of("endpoints"),
                format!("[cluster] endpoint {e:?}: must start with http:// or https://"),
            );
        }
    }
    if !c.prefix.starts_with('/') || !c.prefix.ends_with('/') {
        cx.problem(cx.line_of("prefix"), "[cluster] prefix must start and end with /");
    }
    let node = c.node.clone().unwrap_or_else(hostname);
    if node.is_empty() || node.contains('/') {
        cx.problem(cx.line_of("node"), "[cluster] node must be a non-empty name without /");
    }
    let (user, ca_pem, identity_pem) = etcd_credentials(cx, c, line);
    if c.probe_share == Some(0) {
        cx.problem(
            cx.line_of("probe_share"),
            "[cluster] probe_share must be at least 1 (leave it out: every node probes)",
        );
    }
    if c.probe_share.is_some() && c.health != ClusterHealth::Quorum {
        cx.problem(
            cx.line_of("probe_share"),
            "[cluster] probe_share needs health = \"quorum\": a node that does not probe a member takes its probers' votes",
        );
    }
    Some(EtcdSettings {
        endpoints: c.endpoints.clone(),
        prefix: c.prefix.clone(),
        health: c.health,
        node,
        user,
        ca_pem,
        identity_pem,
        timeout: c.timeout,
        probe_share: c.probe_share,
    })
}

type Credentials = (Option<(String, String)>, Option<Vec<u8>>, Option<(Vec<u8>, Vec<u8>)>);

/// `[cluster]`'s login and TLS files: (user and password, CA, certificate and key).
fn etcd_credentials(cx: &mut Ctx, c: &ClusterConfig, line: usize) -> Credentials {
    let user = match (&c.username, &c.password_file) {
        (Some(u), Some(f)) => cx.read("password_file", f).map(|p| (u.clone(), secrets::password(&p))),
        (None, None) => None,
        _ => {
            cx.problem(line, "[cluster] username and password_file go together");
            None
        }
    };
    let ca_pem = c.ca_file.as_ref().and_then(|f| cx.read("ca_file", f));
    let identity_pem = match (&c.cert_file, &c.key_file) {
        (Some(cf), Some(kf)) => {
            let cert = cx.read("cert_file", cf);
            cert.zip(cx.read("key_file", kf))
        }
        (None, None) => None,
        _ => {
            cx.problem(line, "[cluster] cert_file and key_file go together");
            None
        }
    };
    (user, ca_pem, identity_pem)
}

/// `[redirect]`: each Host's pool, scheme and status.
fn redirect(cx: &mut Ctx, r: &Spanned<RedirectConfig>) -> RedirectSettings {
    let line = cx.lines.line(r.span().start);
    let rc = r.get_ref();
    let mut hosts = BTreeMap::new();
    for (host, target) in &rc.hosts {
        if let Some(target) = redirect_target(cx, line, host, target) {
            hosts.insert(host.trim().trim_end_matches('.').to_ascii_lowercase(), target);
        }
    }
    if rc.listen.is_empty() {
        cx.problem(line, "[redirect] listen is empty");
    }
    RedirectSettings { listen: rc.listen.clone(), trusted_proxies: rc.trusted_proxies.clone(), hosts }
}

/// One `hosts` entry; `None` when its pool is not a name.
fn redirect_target(cx: &mut Ctx, line: usize, host: &str, target: &RedirectHostConfig) -> Option<RedirectTarget> {
    let (pool, scheme, port, status) = match target {
        RedirectHostConfig::Pool(p) => (p.as_str(), "http", None, 302),
        RedirectHostConfig::Full(t) => (t.pool.as_str(), t.scheme.as_str(), t.port, t.status),
    };
    let pool = match parse_fqdn(pool) {
        Ok(p) => p,
        Err(e) => {
            cx.problem(line, format!("[redirect] host {host}: pool: {e}"));
            return None;
        }
    };
    // The pool may be a config pool or one created through the API: a Host
    // whose pool does not exist gets 404 naming it.
    if !matches!(scheme, "http" | "https") {
        cx.problem(line, format!("[redirect] host {host}: scheme must be http or https"));
    }
    if !matches!(status, 301 | 302 | 307 | 308) {
        cx.problem(line, format!("[redirect] host {host}: status must be 301, 302, 307 or 308"));
    }
    Some(RedirectTarget { pool, scheme: scheme.to_string(), port, status })
}

/// The host name, for a node that does not name itself.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lbdns".to_string())
}
