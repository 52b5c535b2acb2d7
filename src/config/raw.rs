//! The TOML file as serde reads it: one type per table, exactly the keys of the
//! README's configuration reference, with their defaults. The pool types
//! (`MemberConfig`, `HealthConfig`, `ApiPoolConfig`...) are also what the admin
//! API takes as JSON. Nothing here checks values against each other; `parse`
//! does, turning these into the validated types of `settings`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) dns: DnsConfig,
    #[serde(default)]
    pub(super) admin: AdminConfig,
    pub(super) geoip: Option<GeoipConfig>,
    #[serde(default)]
    pub(super) regions: BTreeMap<String, Vec<String>>,
    pub(super) redirect: Option<Spanned<RedirectConfig>>,
    pub(super) cluster: Option<ClusterConfig>,
    #[serde(default)]
    pub(super) health: GlobalHealthConfig,
    #[serde(default)]
    pub(super) zone: Vec<Spanned<ZoneConfig>>,
    #[serde(default)]
    pub(super) pool: Vec<Spanned<PoolConfig>>,
    #[serde(default)]
    pub(super) tsig: Vec<Spanned<TsigConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DnsConfig {
    #[serde(default = "default_listen")]
    pub(super) listen: Vec<SocketAddr>,
    #[serde(default)]
    pub(super) threads: usize,
    #[serde(default = "default_edns_udp_size")]
    pub(super) edns_udp_size: u16,
    #[serde(default = "default_tcp_idle", deserialize_with = "duration")]
    pub(super) tcp_idle_timeout: Duration,
    #[serde(default = "default_max_tcp")]
    pub(super) max_tcp_connections: usize,
    pub(super) rrl: Option<RrlConfig>,
    /// Answer DNS Cookies (RFC 7873/9018).
    #[serde(default = "default_true")]
    pub(super) cookies: bool,
    /// A file holding the 16-byte cookie secret as 32 hex digits; servers sharing
    /// it accept each other's cookies. Default: a random secret at each start.
    pub(super) cookie_secret_file: Option<PathBuf>,
}

/// `[dns.rrl]`: response rate limiting, off unless the table is present.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Responses per second per client /24 (IPv4) or /56 (IPv6).
    #[serde(default = "default_rrl_rate")]
    pub responses_per_second: u32,
    /// Every `slip`-th limited response goes out truncated (TC=1); 0 = drop all.
    #[serde(default = "default_rrl_slip")]
    pub slip: u32,
}

fn default_rrl_rate() -> u32 {
    20
}
fn default_rrl_slip() -> u32 {
    2
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: default_listen(),
            threads: 0,
            edns_udp_size: default_edns_udp_size(),
            tcp_idle_timeout: default_tcp_idle(),
            max_tcp_connections: default_max_tcp(),
            rrl: None,
            cookies: true,
            cookie_secret_file: None,
        }
    }
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5353))]
}
fn default_edns_udp_size() -> u16 {
    1232
}
fn default_tcp_idle() -> Duration {
    Duration::from_secs(10)
}
fn default_max_tcp() -> usize {
    1024
}

/// `[cluster]`: where API state lives and how nodes agree on health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub store: StoreKind,
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub health: ClusterHealth,
    /// This node's name among the others (default: the host name).
    pub node: Option<String>,
    /// etcd authentication: user name, and a file holding the password.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// TLS to etcd (https:// endpoints): CA bundle, and a client certificate and key.
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Deadline of each etcd request (a write waits at most this long).
    #[serde(default = "default_etcd_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// How many of the live nodes probe each member (default: every node).
    #[serde(default)]
    pub probe_share: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Embedded,
    Etcd,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterHealth {
    /// Each node trusts its own probes.
    Local,
    /// A member is down only when more than half of the live nodes see it down.
    #[default]
    Quorum,
}

fn default_prefix() -> String {
    "/lbdns/".to_string()
}
fn default_etcd_timeout() -> Duration {
    Duration::from_secs(2)
}

/// `[health]`: settings for every probe.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalHealthConfig {
    /// Source address of probes (on a host with several addresses).
    pub source_address: Option<IpAddr>,
    /// `ADDRESS up|down [REASON]` lines over the probes of every pool (a pool's
    /// own `health_file` replaces it for that pool).
    pub health_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub(super) listen: SocketAddr,
    pub(super) token_file: Option<PathBuf>,
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    /// Whether the status page reads its state without a token; unset means
    /// yes on a loopback listener, no otherwise.
    pub(super) ui_public: Option<bool>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            token_file: None,
            state_dir: default_state_dir(),
            ui_public: None,
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

/// `[redirect]`: HTTP-redirect balancing over the same pools.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RedirectConfig {
    #[serde(default = "default_redirect_listen")]
    pub(super) listen: Vec<SocketAddr>,
    /// Peers whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
    pub(super) hosts: BTreeMap<String, RedirectHostConfig>,
}

fn default_redirect_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 8080))]
}

/// A `hosts` entry: the pool name, or a table with options.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RedirectHostConfig {
    Pool(String),
    Full(RedirectTargetConfig),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RedirectTargetConfig {
    pub(super) pool: String,
    #[serde(default = "default_scheme")]
    pub(super) scheme: String,
    pub(super) port: Option<u16>,
    #[serde(default = "default_redirect_status")]
    pub(super) status: u16,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_redirect_status() -> u16 {
    302
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GeoipConfig {
    pub(super) database: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ZoneConfig {
    pub(super) origin: String,
    pub(super) file: PathBuf,
    /// Who may change the zone by RFC 2136 UPDATE (none: UPDATE is refused).
    #[serde(default)]
    pub(super) update: Vec<Spanned<GrantConfig>>,
    /// Who may AXFR/IXFR the zone: CIDRs (or addresses) and `key:NAME` entries.
    #[serde(default)]
    pub(super) transfer: Vec<String>,
    /// Secondaries sent a NOTIFY after each change: `ADDRESS:PORT` (or an address, port 53).
    #[serde(default)]
    pub(super) notify: Vec<String>,
    #[serde(default)]
    pub(super) transfer_pools: TransferPools,
    /// The IXFR journal's bounds: bytes of changes kept, and how long a change is kept.
    #[serde(default = "default_journal_max_bytes")]
    pub(super) journal_max_bytes: usize,
    #[serde(default = "default_journal_max_age", deserialize_with = "duration")]
    pub(super) journal_max_age: Duration,
    pub(super) dnssec: Option<DnssecConfig>,
}

/// What a pool looks like in a zone transfer (`transfer_pools`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferPools {
    /// Every enabled, healthy member: a health change is a change of the zone.
    #[default]
    Healthy,
    /// Every enabled member, whatever its health.
    Enabled,
}

fn default_journal_max_bytes() -> usize {
    1 << 20
}
fn default_journal_max_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}

/// One entry of a zone's `update` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantConfig {
    /// A `[[tsig]]` key name.
    pub(super) key: String,
    pub(super) names: Vec<String>,
    pub(super) types: Vec<String>,
}

/// `[zone.dnssec]`: sign the zone's answers with the keys in `key_dir`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DnssecConfig {
    /// The zone's key directory, relative to the config file.
    pub(super) key_dir: PathBuf,
    /// The algorithm `lbdns dnssec keygen` makes keys of.
    #[serde(default)]
    pub(super) algorithm: crate::dnssec::Algorithm,
}

/// `[[tsig]]`: a TSIG key (RFC 8945) clients sign requests with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TsigConfig {
    /// The key name as clients send it.
    pub(super) name: String,
    #[serde(default)]
    pub(super) algorithm: crate::tsig::Algorithm,
    /// One base64 line, or a BIND `key` clause whose name and algorithm match.
    pub(super) secret_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoolConfig {
    pub(super) name: String,
    #[serde(default)]
    pub(super) policy: PolicyName,
    #[serde(default = "default_pool_ttl")]
    pub(super) ttl: u32,
    #[serde(default)]
    pub(super) max_answers: usize,
    #[serde(default)]
    pub(super) all_down: AllDown,
    #[serde(default)]
    pub(super) fallback: Vec<IpAddr>,
    /// `[pool.health]` once, or `[[pool.health]]` repeated.
    pub(super) health: Option<HealthChecks>,
    #[serde(default)]
    pub(super) member: Vec<Spanned<MemberConfig>>,
}

/// Default pool TTL: short, so resolvers come back soon after a member leaves.
pub fn default_pool_ttl() -> u32 {
    30
}

/// A pool member as written in TOML (`[[pool.member]]`) or JSON (the admin API).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub address: IpAddr,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub region: Option<Box<str>>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where every check of this member goes instead of `address` and the
    /// check's port (a service behind NAT or a VIP). Boxed, as the region is
    /// not a `String`: few members have either, and a member is 48 bytes
    /// instead of 80 (100,000 pools of 4 members held 12.8 MB more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Box<SocketAddr>>,
}

fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

/// How a pool orders its eligible members; see `src/policy/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    #[default]
    RoundRobin,
    Random,
    Weighted,
    Failover,
    Affinity,
    Geo,
}

/// What a pool answers when none of the queried family's members is eligible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllDown {
    /// Answer every enabled member (fail open, as gdnsd does).
    #[default]
    ServeAll,
    /// NODATA.
    Empty,
    /// SERVFAIL.
    Servfail,
    /// The pool's `fallback` addresses.
    Fallback,
}

/// Which health check a pool's members get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    #[default]
    None,
    Tcp,
    Http,
    Https,
    /// A DNS query answered with `expect_rcode` (and `expect_answer`).
    Dns,
    /// A TLS handshake and a certificate valid for `host`.
    Tls,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::None => "none",
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
            CheckKind::Dns => "dns",
            CheckKind::Tls => "tls",
        }
    }
}

/// `[pool.health]`: the probe spec shared by every member of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    // (`Default` below matches the serde defaults.)
    #[serde(default)]
    pub check: CheckKind,
    /// Port to probe; defaults to 80 (http), 443 (https, tls), 53 (dns); required for tcp.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_path")]
    pub path: String,
    /// Host header and TLS server name; defaults to the pool name without its dot.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    #[serde(default)]
    pub expect_body: Option<String>,
    /// A regular expression the first 64 KiB of the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body_regex: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub method: HttpMethod,
    /// Request headers (e.g. `Authorization`), besides those of `headers_file`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A file of `Name: value` lines, read with the config (secrets stay out of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_file: Option<PathBuf>,
    /// What `headers_file` held when the config was read (never shown or stored).
    #[serde(skip)]
    pub file_headers: Vec<(String, String)>,
    /// One connection kept open per member and reused; closed after a failure.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub keepalive: bool,
    /// Load feedback: `header:NAME` or `json:$.field`, the weight the backend
    /// reports (http and https; one check per pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_from: Option<String>,
    /// Bounds of a reported weight (default 1 and 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_max: Option<u32>,
    /// A member coming up takes its weight gradually over this long.
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub slow_start: Option<Duration>,
    #[serde(default = "default_interval", deserialize_with = "duration", serialize_with = "ser_duration")]
    pub interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "duration", serialize_with = "ser_duration")]
    pub timeout: Duration,
    #[serde(default = "default_rise_fall")]
    pub rise: u32,
    #[serde(default = "default_rise_fall")]
    pub fall: u32,
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// `dns`: the name asked (required), its type (default A), the response
    /// code expected (default NOERROR) and a value the answer must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_rcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_answer: Option<String>,
    /// `tls`: fewer days than this before the certificate expires fails the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cert_days: Option<u32>,
    /// This pool's health file (config only: the API refuses it), in place of
    /// `[health] health_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_file: Option<std::path::PathBuf>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check: CheckKind::None,
            port: None,
            path: default_path(),
            host: None,
            expect_status: default_expect_status(),
            expect_body: None,
            expect_body_regex: None,
            method: HttpMethod::Get,
            headers: BTreeMap::new(),
            headers_file: None,
            file_headers: Vec::new(),
            keepalive: true,
            weight_from: None,
            weight_min: None,
            weight_max: None,
            slow_start: None,
            interval: default_interval(),
            timeout: default_timeout(),
            rise: default_rise_fall(),
            fall: default_rise_fall(),
            tls_verify: true,
            qname: None,
            qtype: None,
            expect_rcode: None,
            expect_answer: None,
            min_cert_days: None,
            health_file: None,
        }
    }
}

/// The request method of an http(s) check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn is_true(b: &bool) -> bool {
    *b
}

/// A pool's health checks: `[pool.health]` once (one check, as before) or
/// `[[pool.health]]` repeated (all must pass). JSON takes an object or a list,
/// and shows one check as an object, as it always did.
///
/// Shared (`Arc`): most pools of a large config have the same checks, often
/// none, and hold one copy of them (see `config::parse`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthChecks(pub std::sync::Arc<[HealthConfig]>);

/// One `check = "none"`: what every pool without `[pool.health]` shares.
static NO_CHECKS: std::sync::LazyLock<HealthChecks> =
    std::sync::LazyLock::new(|| HealthChecks(std::sync::Arc::new([HealthConfig::default()])));

impl Default for HealthChecks {
    fn default() -> Self {
        NO_CHECKS.clone()
    }
}

impl HealthChecks {
    /// The checks that probe (`check = "none"` does not).
    pub fn active(&self) -> impl Iterator<Item = &HealthConfig> {
        self.0.iter().filter(|h| h.check != CheckKind::None)
    }

    /// Whether any check probes: without one, every member is always up.
    pub fn probes(&self) -> bool {
        self.active().next().is_some()
    }

    /// The pool's own `health_file` (in any of its tables; the first wins).
    pub fn health_file(&self) -> Option<&std::path::PathBuf> {
        self.0.iter().find_map(|h| h.health_file.as_ref())
    }

    /// `none`, one kind, or kinds joined by `+` (`tcp+http`): for logs and tables.
    pub fn label(&self) -> String {
        let kinds: Vec<&str> = self.active().map(|h| h.check.as_str()).collect();
        if kinds.is_empty() { "none".to_string() } else { kinds.join("+") }
    }
}

impl<'de> Deserialize<'de> for HealthChecks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> serde::de::Visitor<'de> for OneOrMany {
            type Value = HealthChecks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a health table or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<HealthChecks, A::Error> {
                let one = HealthConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(HealthChecks(std::sync::Arc::new([one])))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<HealthChecks, A::Error> {
                let many = Vec::<HealthConfig>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                if many.is_empty() { Ok(HealthChecks::default()) } else { Ok(HealthChecks(many.into())) }
            }
        }
        d.deserialize_any(OneOrMany)
    }
}

impl serde::Serialize for HealthChecks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &*self.0 {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

fn default_path() -> String {
    "/".to_string()
}
fn default_expect_status() -> Vec<u16> {
    vec![200]
}
fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_rise_fall() -> u32 {
    2
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// A pool as the admin API takes and shows it: the TOML keys, with `members` for
/// the `[[pool.member]]` list. The name comes from the URL.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPoolConfig {
    #[serde(default)]
    pub policy: PolicyName,
    #[serde(default = "default_pool_ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub max_answers: usize,
    #[serde(default)]
    pub all_down: AllDown,
    #[serde(default)]
    pub fallback: Vec<IpAddr>,
    #[serde(default)]
    pub health: HealthChecks,
    #[serde(default)]
    pub members: Vec<MemberConfig>,
}
