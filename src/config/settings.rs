//! The validated configuration the server runs from, and the checks a pool must
//! pass wherever it comes from (the config file or the admin API). Every value
//! here has passed `parse`: paths are absolute, names are absolute domain names,
//! secrets are read.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::raw::{
    AllDown, ApiPoolConfig, CheckKind, ClusterHealth, HealthChecks, HealthConfig, MemberConfig, PolicyName, RrlConfig,
    TransferPools,
};

/// The largest TTL (RFC 2181 section 8), for pools as for records.
pub const MAX_TTL: u32 = i32::MAX as u32;

/// The validated configuration the server runs from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, absolute.
    pub path: PathBuf,
    pub dns: DnsSettings,
    pub admin: AdminSettings,
    pub geoip: Option<PathBuf>,
    /// Line of `[geoip]`, for messages about the database.
    pub geoip_line: usize,
    /// Location key (country code, continent code or `default`) -> regions.
    pub regions: BTreeMap<String, Vec<String>>,
    pub zones: Vec<ZoneSpec>,
    pub pools: Vec<PoolDef>,
    pub redirect: Option<RedirectSettings>,
    /// `Some` when API state lives in etcd.
    pub etcd: Option<EtcdSettings>,
    pub probe_source: Option<IpAddr>,
    /// `[health] health_file`, resolved against the config's directory.
    pub health_file: Option<PathBuf>,
    /// `[[tsig]]` keys (secrets empty under [`Secrets::Skip`]).
    pub tsig: std::sync::Arc<crate::tsig::Keys>,
    /// The signed zones' keys (none read under [`Secrets::Skip`]).
    pub dnssec: std::sync::Arc<crate::dnssec::Signing>,
}

impl Config {
    /// Whether the zone `origin` has `[zone.dnssec]` (read from the config, so
    /// `lbdns check`, which reads no keys, says the same as start-up).
    pub fn is_signed(&self, origin: &Name) -> bool {
        self.zones.iter().any(|z| z.origin == *origin && z.dnssec.is_some())
    }
}

/// Validated `[redirect]`.
#[derive(Debug, Clone)]
pub struct RedirectSettings {
    pub listen: Vec<SocketAddr>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Lower-cased Host (no port, no final dot) -> target.
    pub hosts: BTreeMap<String, RedirectTarget>,
}

#[derive(Debug, Clone)]
pub struct RedirectTarget {
    pub pool: Name,
    pub scheme: String,
    pub port: Option<u16>,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub listen: Vec<SocketAddr>,
    /// UDP worker threads; 0 = one per CPU.
    pub threads: usize,
    pub edns_udp_size: u16,
    pub tcp_idle_timeout: Duration,
    pub max_tcp_connections: usize,
    pub rrl: Option<RrlConfig>,
    pub cookies: bool,
    /// The shared cookie secret read from `cookie_secret_file`.
    pub cookie_secret: Option<[u8; 16]>,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token_file: Option<PathBuf>,
    /// Line of `token_file` in the config file, for messages about the token.
    pub token_file_line: usize,
    pub state_dir: PathBuf,
    /// Whether `/ui/api/state` is read without a token (`[admin] ui_public`).
    pub ui_public: bool,
}

#[derive(Debug, Clone)]
pub struct ZoneSpec {
    pub origin: Name,
    pub file: PathBuf,
    /// Line of the `[[zone]]` entry in the config file.
    pub line: usize,
    /// `update`: who may change the zone by UPDATE (empty: nobody).
    pub update: Vec<super::Grant>,
    /// Zone transfers out and NOTIFY.
    pub transfer: TransferSettings,
    /// `[zone.dnssec]`.
    pub dnssec: Option<DnssecSpec>,
}

/// A zone's `transfer`, `notify`, `transfer_pools` and journal bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferSettings {
    /// Who may transfer the zone; a request passes if any rule matches.
    pub allow: Vec<TransferRule>,
    pub notify: Vec<SocketAddr>,
    pub pools: TransferPools,
    pub journal_max_bytes: usize,
    pub journal_max_age: Duration,
}

impl TransferSettings {
    /// Whether a request from `client`, signed with `key` (verified) if any, may
    /// transfer the zone. Allocation-free: the UDP path asks it.
    pub fn allows(&self, client: IpAddr, key: Option<&Name>) -> bool {
        let client = crate::net::canonical(client);
        self.allow.iter().any(|r| match r {
            TransferRule::Net(net) => net.contains(&client),
            TransferRule::Key(k) => key.is_some_and(|key| key == k),
        })
    }

    /// The key NOTIFY messages are signed with: the first `key:` entry.
    pub fn notify_key(&self) -> Option<&Name> {
        self.allow.iter().find_map(|r| match r {
            TransferRule::Key(k) => Some(k),
            TransferRule::Net(_) => None,
        })
    }

    /// Whether the zone is transferred or notified at all (else no journal is kept).
    pub fn active(&self) -> bool {
        !self.allow.is_empty() || !self.notify.is_empty()
    }
}

/// One `transfer` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferRule {
    Net(ipnet::IpNet),
    /// A `[[tsig]]` key by name.
    Key(Name),
}

/// Validated `[zone.dnssec]`.
#[derive(Debug, Clone)]
pub struct DnssecSpec {
    /// Absolute.
    pub key_dir: PathBuf,
    pub algorithm: crate::dnssec::Algorithm,
}

/// A pool after validation, from the config file or the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolDef {
    pub name: Name,
    pub policy: PolicyName,
    pub ttl: u32,
    pub max_answers: usize,
    pub all_down: AllDown,
    pub fallback: Vec<IpAddr>,
    pub health: HealthChecks,
    pub members: Vec<MemberConfig>,
    /// Where it was defined, for messages: config line, or 0 for the API.
    pub line: usize,
}

/// Whether loading reads the secret files a config names (admin token, cookie
/// secret, etcd password and client key). `Skip` is `lbdns check --no-secrets`:
/// an operator can check a config whose secrets only the service may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Secrets {
    #[default]
    Read,
    Skip,
}

/// Validated `[cluster]` with store = "etcd".
#[derive(Debug, Clone)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub health: ClusterHealth,
    pub node: String,
    pub user: Option<(String, String)>,
    pub ca_pem: Option<Vec<u8>>,
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    pub timeout: Duration,
    /// `probe_share`: each member is probed by this many of the live nodes
    /// (`None`: by every node).
    pub probe_share: Option<u32>,
}

impl ApiPoolConfig {
    pub fn into_def(self, name: Name) -> PoolDef {
        PoolDef {
            name,
            policy: self.policy,
            ttl: self.ttl,
            max_answers: self.max_answers,
            all_down: self.all_down,
            fallback: self.fallback,
            health: self.health,
            members: self.members,
            line: 0,
        }
    }

    pub fn from_def(def: &PoolDef) -> Self {
        ApiPoolConfig {
            policy: def.policy,
            ttl: def.ttl,
            max_answers: def.max_answers,
            all_down: def.all_down,
            fallback: def.fallback.clone(),
            health: def.health.clone(),
            members: def.members.clone(),
        }
    }
}

/// Members of a geo pool whose region no `[regions]` list names: the policy would
/// never prefer them, silently. Returns (member index, message) as `validate`.
pub fn unlisted_regions(def: &PoolDef, regions: &BTreeMap<String, Vec<String>>) -> Vec<(Option<usize>, String)> {
    if def.policy != PolicyName::Geo {
        return Vec::new();
    }
    let listed = |r: &str| regions.values().flatten().any(|l| l == r);
    let name = &def.name;
    def.members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.region.as_deref().filter(|r| !listed(r)).map(|r| (i, m, r)))
        .map(|(i, m, r)| {
            let msg = format!(
                "pool {name}: member {}: region {r:?} is in no [regions] list, so it is never chosen",
                m.address
            );
            (Some(i), msg)
        })
        .collect()
}

impl PoolDef {
    /// Checks that need only the pool itself. Returns (member index, message).
    pub fn validate(&self) -> Vec<(Option<usize>, String)> {
        let mut out = Vec::new();
        let name = &self.name;
        if self.ttl > MAX_TTL {
            out.push((None, format!("pool {name}: ttl {} is above 2^31-1 (RFC 2181 section 8)", self.ttl)));
        }
        for (i, m) in self.members.iter().enumerate() {
            if m.weight == 0 {
                out.push((Some(i), format!("pool {name}: member {}: weight must be at least 1", m.address)));
            }
            if self.members[..i].iter().any(|o| o.address == m.address) {
                out.push((Some(i), format!("pool {name}: duplicate member {}", m.address)));
            }
            if m.probe.as_deref().is_some_and(|p| p.port() == 0 || p.ip().is_unspecified()) {
                out.push((Some(i), format!("pool {name}: member {}: probe needs an address and a port", m.address)));
            }
            if self.policy == PolicyName::Geo && m.region.is_none() {
                out.push((Some(i), format!("pool {name}: member {} needs a region (policy geo)", m.address)));
            }
        }
        if self.all_down == AllDown::Fallback {
            if self.fallback.is_empty() {
                out.push((None, format!("pool {name}: all_down = \"fallback\" needs `fallback` addresses")));
            }
            for f in &self.fallback {
                let family_has_member = self.members.iter().any(|m| m.address.is_ipv4() == f.is_ipv4());
                if !family_has_member {
                    let fam = if f.is_ipv4() { "IPv4" } else { "IPv6" };
                    out.push((None, format!("pool {name}: fallback {f} is {fam} but the pool has no {fam} member")));
                }
            }
        } else if !self.fallback.is_empty() {
            out.push((None, format!("pool {name}: `fallback` is set but all_down is not \"fallback\"")));
        }
        if self.health.0.iter().filter(|h| h.weight_from.is_some()).count() > 1 {
            out.push((None, format!("pool {name}: weight_from may be set on one health check only")));
        }
        if self.health.0.iter().skip(1).any(|h| h.slow_start.is_some()) {
            out.push((None, format!("pool {name}: slow_start belongs in the first health check")));
        }
        for (i, h) in self.health.0.iter().enumerate() {
            let which = if self.health.0.len() > 1 { format!("health check {}", i + 1) } else { "health".to_string() };
            out.extend(validate_check(h, &format!("pool {name}: {which}")).into_iter().map(|m| (None, m)));
        }
        out
    }
}

/// The problems of one health check, each message starting with `at`.
fn validate_check(h: &HealthConfig, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let http = matches!(h.check, CheckKind::Http | CheckKind::Https);
    if h.check == CheckKind::Tcp && h.port.is_none() {
        out.push(format!("{at}: check tcp needs a port"));
    }
    if h.rise == 0 || h.fall == 0 {
        out.push(format!("{at}: rise and fall must be at least 1"));
    }
    if h.timeout.is_zero() || h.interval.is_zero() {
        out.push(format!("{at}: interval and timeout must be above zero"));
    }
    if h.expect_status.is_empty() {
        out.push(format!("{at}: expect_status is empty"));
    }
    if !h.path.starts_with('/') {
        out.push(format!("{at}: path must start with /"));
    }
    if let Some(re) = &h.expect_body_regex
        && let Err(e) = regex::Regex::new(re)
    {
        out.push(format!("{at}: expect_body_regex: {e}"));
    }
    for (k, v) in &h.headers {
        if let Err(e) = crate::secrets::check_header(k, v) {
            out.push(format!("{at}: headers: {e}"));
        }
    }
    out.extend(validate_weight(h, at));
    out.extend(validate_dns(h, at));
    let http_only = [
        ("weight_from", h.weight_from.is_some()),
        ("method", h.method != super::raw::HttpMethod::Get),
        ("headers", !h.headers.is_empty() || h.headers_file.is_some()),
        ("expect_body", h.expect_body.is_some() || h.expect_body_regex.is_some()),
    ];
    for (key, set) in http_only {
        if set && !http {
            out.push(format!("{at}: {key} applies to http and https checks only"));
        }
    }
    out
}

/// The response codes `expect_rcode` names, by value (RFC 1035, RFC 2136).
pub const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
    "NOTZONE",
];

/// The value of a response code's name (any case).
pub fn parse_rcode(name: &str) -> Option<u16> {
    RCODES.iter().position(|r| r.eq_ignore_ascii_case(name)).map(|i| i as u16)
}

/// The keys of `check = "dns"` (and that only it, or only tls, takes them).
fn validate_dns(h: &HealthConfig, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dns = h.check == CheckKind::Dns;
    if dns && h.qname.is_none() {
        out.push(format!("{at}: check dns needs a qname"));
    }
    if let Some(q) = &h.qname
        && let Err(e) = hickory_proto::rr::Name::from_str_relaxed(q)
    {
        out.push(format!("{at}: qname {q:?}: {e}"));
    }
    if let Some(t) = &h.qtype
        && t.parse::<hickory_proto::rr::RecordType>().is_err()
    {
        out.push(format!("{at}: qtype {t:?} is not a record type"));
    }
    if let Some(r) = &h.expect_rcode
        && parse_rcode(r).is_none()
    {
        out.push(format!("{at}: expect_rcode {r:?} is not a response code (NOERROR, NXDOMAIN, REFUSED, ...)"));
    }
    let dns_only = [("qname", h.qname.is_some()), ("qtype", h.qtype.is_some())];
    let dns_only = dns_only
        .into_iter()
        .chain([("expect_rcode", h.expect_rcode.is_some()), ("expect_answer", h.expect_answer.is_some())]);
    for (key, set) in dns_only {
        if set && !dns {
            out.push(format!("{at}: {key} applies to dns checks only"));
        }
    }
    if h.min_cert_days.is_some() && h.check != CheckKind::Tls {
        out.push(format!("{at}: min_cert_days applies to tls checks only"));
    }
    out
}

/// The load-feedback keys of one health check.
fn validate_weight(h: &HealthConfig, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(from) = &h.weight_from
        && let Err(e) = from.parse::<super::WeightSource>()
    {
        out.push(format!("{at}: {e}"));
    }
    if (h.weight_min.is_some() || h.weight_max.is_some()) && h.weight_from.is_none() {
        out.push(format!("{at}: weight_min and weight_max bound weight_from, which is not set"));
    }
    let (min, max) = (h.weight_min.unwrap_or(1), h.weight_max.unwrap_or(1000));
    if min == 0 || min > max {
        out.push(format!("{at}: weight_min ({min}) must be at least 1 and at most weight_max ({max})"));
    }
    if h.slow_start.is_some_and(|d| d.is_zero()) {
        out.push(format!("{at}: slow_start must be above zero"));
    }
    out
}
