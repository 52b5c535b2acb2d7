//! The TOML configuration: raw serde input types (`*Config`) and the validated
//! [`Config`] built from them.
//!
//! Parsing never touches the network. Every problem is reported as a [`Problem`]
//! naming the file and line, and all problems found are reported at once so that
//! `lbdns check` shows everything an operator must fix. Relative paths are resolved
//! against the config file's directory here, so nothing later depends on the
//! working directory.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::problem::{Problem, Problems};
use crate::secrets;

// ---------------------------------------------------------------------------
// Raw input types, exactly the TOML keys of the README's configuration reference.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    dns: DnsConfig,
    #[serde(default)]
    admin: AdminConfig,
    geoip: Option<GeoipConfig>,
    #[serde(default)]
    regions: BTreeMap<String, Vec<String>>,
    redirect: Option<Spanned<RedirectConfig>>,
    cluster: Option<ClusterConfig>,
    #[serde(default)]
    health: GlobalHealthConfig,
    #[serde(default)]
    zone: Vec<Spanned<ZoneConfig>>,
    #[serde(default)]
    pool: Vec<Spanned<PoolConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsConfig {
    #[serde(default = "default_listen")]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    threads: usize,
    #[serde(default = "default_edns_udp_size")]
    edns_udp_size: u16,
    #[serde(default = "default_tcp_idle", deserialize_with = "duration")]
    tcp_idle_timeout: Duration,
    #[serde(default = "default_max_tcp")]
    max_tcp_connections: usize,
    rrl: Option<RrlConfig>,
    /// Answer DNS Cookies (RFC 7873/9018).
    #[serde(default = "default_true")]
    cookies: bool,
    /// A file holding the 16-byte cookie secret as 32 hex digits; servers sharing
    /// it accept each other's cookies. Default: a random secret at each start.
    cookie_secret_file: Option<PathBuf>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    listen: SocketAddr,
    token_file: Option<PathBuf>,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    /// Whether the status page reads its state without a token; unset means
    /// yes on a loopback listener, no otherwise.
    ui_public: Option<bool>,
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
struct RedirectConfig {
    #[serde(default = "default_redirect_listen")]
    listen: Vec<SocketAddr>,
    /// Peers whose `X-Forwarded-For` is believed.
    #[serde(default)]
    trusted_proxies: Vec<ipnet::IpNet>,
    hosts: BTreeMap<String, RedirectHostConfig>,
}

fn default_redirect_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 8080))]
}

/// A `hosts` entry: the pool name, or a table with options.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RedirectHostConfig {
    Pool(String),
    Full(RedirectTargetConfig),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectTargetConfig {
    pool: String,
    #[serde(default = "default_scheme")]
    scheme: String,
    port: Option<u16>,
    #[serde(default = "default_redirect_status")]
    status: u16,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_redirect_status() -> u16 {
    302
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoipConfig {
    database: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneConfig {
    origin: String,
    file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolConfig {
    name: String,
    #[serde(default)]
    policy: PolicyName,
    #[serde(default = "default_pool_ttl")]
    ttl: u32,
    #[serde(default)]
    max_answers: usize,
    #[serde(default)]
    all_down: AllDown,
    #[serde(default)]
    fallback: Vec<IpAddr>,
    health: Option<HealthConfig>,
    #[serde(default)]
    member: Vec<Spanned<MemberConfig>>,
}

/// Default pool TTL: short, so resolvers come back soon after a member leaves.
/// The largest TTL (RFC 2181 section 8), for pools as for records.
pub const MAX_TTL: u32 = i32::MAX as u32;

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
    pub region: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
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
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::None => "none",
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
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
    /// Port to probe; defaults to 80 (http), 443 (https); required for tcp.
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
            interval: default_interval(),
            timeout: default_timeout(),
            rise: default_rise_fall(),
            fall: default_rise_fall(),
            tls_verify: true,
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
    pub health: HealthConfig,
    #[serde(default)]
    pub members: Vec<MemberConfig>,
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

// ---------------------------------------------------------------------------
// Validated configuration.

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
    pub health: HealthConfig,
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

/// Reads and validates `path`. Zone files are not read here (see `crate::load`).
pub fn load(path: &Path) -> Result<Config, Problems> {
    into_result(load_all(path, Secrets::Read))
}

/// Reads and validates `path` as far as it can: the config (unless it could not
/// be read or deserialized at all) and every problem found, so that callers can
/// go on checking what the config names and report everything in one run.
pub fn load_all(path: &Path, secrets: Secrets) -> (Option<Config>, Vec<Problem>) {
    let path = absolute(path);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_all(&path, &text, secrets),
        Err(e) => (None, vec![Problem::new(&path, 0, format!("cannot read the config file: {e}"))]),
    }
}

/// Parses config text as if read from `path` (absolute).
pub fn parse(path: &Path, text: &str) -> Result<Config, Problems> {
    into_result(parse_all(path, text, Secrets::Read))
}

fn into_result((config, problems): (Option<Config>, Vec<Problem>)) -> Result<Config, Problems> {
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(Problems(problems)),
    }
}

/// At most this many keys are set aside by [`deserialize_all`] before it gives up.
const MAX_BAD_KEYS: usize = 200;
/// The most lines one bad value is taken to span when it is set aside.
const MAX_VALUE_LINES: usize = 200;

/// Deserializes `text`, going on past each bad key: its lines are blanked (so line
/// numbers hold) and deserialization is tried again, so one run reports every
/// independent mistake instead of one per run. Stops at a syntax error (nothing
/// after it can be trusted) and at a missing key (the table cannot be built).
fn deserialize_all(path: &Path, text: &str) -> (Option<ConfigFile>, Vec<Problem>) {
    let problem = |e: &toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        Problem::new(path, line, e.message().trim().to_string())
    };
    let mut work = text.to_string();
    let mut problems = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    while problems.len() < MAX_BAD_KEYS {
        let e = match toml::from_str::<ConfigFile>(&work) {
            Ok(raw) => return (Some(raw), problems),
            Err(e) => e,
        };
        // Only now is the syntax checked apart (a valid config is parsed once).
        if problems.is_empty() && text.parse::<toml::Table>().is_err() {
            return (None, vec![problem(&e)]);
        }
        // A key this loop blanked is now missing: that was reported already.
        let missing = e.message().strip_prefix("missing field `").and_then(|m| m.split('`').next());
        if missing.is_some_and(|m| blanked.iter().any(|b| b == m)) {
            break;
        }
        problems.push(problem(&e));
        let Some(span) = e.span().filter(|_| missing.is_none()) else { break };
        match blank_entry(&mut work, span) {
            Some(key) => blanked.push(key),
            None => break,
        }
    }
    problems.sort_by_key(|p| p.line);
    (None, problems)
}

/// Blanks the lines of the entry at `span` (a whole table when `span` is in a
/// table header) and returns its key; `None` when nothing was left to blank.
fn blank_entry(text: &mut String, span: std::ops::Range<usize>) -> Option<String> {
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |n| n + 1);
    // Bytes, not str: `from` may fall inside a multi-byte character (a span's end - 1).
    let line_end =
        |from: usize| text.as_bytes()[from..].iter().position(|&b| b == b'\n').map_or(text.len(), |n| from + n);
    let first_line = text[start..line_end(start)].trim().to_string();
    let mut end = if first_line.starts_with('[') {
        // The table's own keys go with it, up to the next table header.
        let body = line_end(start);
        let mut at = body;
        while at < text.len() && !text[at + 1..].trim_start_matches([' ', '\t']).starts_with('[') {
            at = line_end(at + 1);
        }
        at
    } else {
        line_end(span.end.saturating_sub(1).max(start))
    };
    if text[start..end].trim().is_empty() {
        return None;
    }
    // A value over several lines (an array, a multi-line string) goes whole: take
    // lines until what is left parses again.
    let mut lines = 0;
    while blanked(text, start, end).parse::<toml::Table>().is_err() {
        if end >= text.len() || lines == MAX_VALUE_LINES {
            return None;
        }
        end = line_end(end + 1);
        lines += 1;
    }
    let key = first_line.trim_start_matches('[').split(['=', ']', '.']).next().unwrap_or("").trim().to_string();
    *text = blanked(text, start, end);
    Some(key.trim_matches('"').to_string())
}

/// `text` with `start..end` blanked: one space per byte, so every later offset,
/// and every line number, holds.
fn blanked(text: &str, start: usize, end: usize) -> String {
    let blank: String = text.as_bytes()[start..end].iter().map(|&b| if b == b'\n' { '\n' } else { ' ' }).collect();
    let mut out = text.to_string();
    out.replace_range(start..end, &blank);
    out
}

/// Parses config text, returning the config built from every part that could be
/// read and every problem found (see [`load_all`]).
pub fn parse_all(path: &Path, text: &str, secrets: Secrets) -> (Option<Config>, Vec<Problem>) {
    let (raw, mut problems) = deserialize_all(path, text);
    let Some(raw) = raw else { return (None, problems) };
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let lines = LineIndex::new(text);
    let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { dir.join(p) };

    if raw.dns.listen.is_empty() {
        problems.push(Problem::new(path, find_line(text, "listen"), "[dns] listen is empty"));
    }
    if !raw.admin.listen.ip().is_loopback() && raw.admin.token_file.is_none() {
        problems.push(Problem::new(
            path,
            find_key_line(text, "[admin]", "listen"),
            format!(
                "[admin] listen {} is not a loopback address: set token_file, or listen on 127.0.0.1",
                raw.admin.listen
            ),
        ));
    }
    if raw.dns.rrl.is_some_and(|r| r.responses_per_second == 0) {
        problems.push(Problem::new(
            path,
            find_line(text, "responses_per_second"),
            "[dns.rrl] responses_per_second must be at least 1",
        ));
    }
    let mut cookie_secret = None;
    if let Some(f) = raw.dns.cookie_secret_file.as_ref().filter(|_| secrets == Secrets::Read) {
        let line = find_line(text, "cookie_secret_file");
        match secrets::read_cookie_secret(&resolve(f)) {
            Ok(secret) => cookie_secret = Some(secret),
            Err(e) => problems.push(Problem::new(path, line, e.to_string())),
        }
    }
    if raw.dns.edns_udp_size < 512 {
        problems.push(Problem::new(path, find_line(text, "edns_udp_size"), "[dns] edns_udp_size must be at least 512"));
    }

    let mut zones: Vec<ZoneSpec> = Vec::new();
    for z in &raw.zone {
        let line = lines.line(z.span().start);
        let zc = z.get_ref();
        match parse_fqdn(&zc.origin) {
            Ok(origin) => {
                if zones.iter().any(|o| o.origin == origin) {
                    problems.push(Problem::new(path, line, format!("zone {origin} is defined twice")));
                }
                zones.push(ZoneSpec { origin, file: resolve(&zc.file), line });
            }
            Err(e) => problems.push(Problem::new(path, line, format!("zone origin: {e}"))),
        }
    }

    let mut pools: Vec<PoolDef> = Vec::new();
    let mut pool_names: std::collections::HashSet<Name> = std::collections::HashSet::new();
    for p in &raw.pool {
        let line = lines.line(p.span().start);
        let pc = p.get_ref();
        let name = match parse_fqdn(&pc.name) {
            Ok(n) => n,
            Err(e) => {
                problems.push(Problem::new(path, line, format!("pool name: {e}")));
                continue;
            }
        };
        if !pool_names.insert(name.clone()) {
            problems.push(Problem::new(path, line, format!("pool {name} is defined twice")));
        }
        let def = PoolDef {
            name,
            policy: pc.policy,
            ttl: pc.ttl,
            max_answers: pc.max_answers,
            all_down: pc.all_down,
            fallback: pc.fallback.clone(),
            health: pc.health.clone().unwrap_or_default(),
            members: pc.member.iter().map(|m| m.get_ref().clone()).collect(),
            line,
        };
        let member_lines: Vec<usize> = pc.member.iter().map(|m| lines.line(m.span().start)).collect();
        for (i, msg) in def.validate().into_iter().chain(unlisted_regions(&def, &raw.regions)) {
            let l = i.and_then(|i| member_lines.get(i).copied()).unwrap_or(line);
            problems.push(Problem::new(path, l, msg));
        }
        pools.push(def);
    }

    for (key, list) in &raw.regions {
        let valid_key = key == "default" || (key.len() == 2 && key.bytes().all(|b| b.is_ascii_uppercase()));
        if !valid_key {
            problems.push(Problem::new(
                path,
                find_line(text, key),
                format!("[regions] key {key:?}: use an ISO country code (JP), a continent code (EU) or \"default\""),
            ));
        }
        if list.is_empty() {
            problems.push(Problem::new(path, find_line(text, key), format!("[regions] {key} is an empty list")));
        }
    }
    if pools.iter().any(|p| p.policy == PolicyName::Geo) && !raw.regions.contains_key("default") {
        problems.push(Problem::new(
            path,
            find_line(text, "[regions]"),
            "a geo pool needs [regions] with a `default` list",
        ));
    }

    let mut etcd = None;
    if let Some(c) = &raw.cluster {
        let line = find_line(text, "[cluster]");
        let read = |what: &str, f: &Path, problems: &mut Vec<Problem>| -> Option<Vec<u8>> {
            let file = resolve(f);
            if secrets == Secrets::Skip && matches!(what, "password_file" | "key_file") {
                return Some(Vec::new());
            }
            match std::fs::read(&file) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push(Problem::new(
                        path,
                        find_line(text, what),
                        format!("cannot read {what} {}: {e}", file.display()),
                    ));
                    None
                }
            }
        };
        if c.store == StoreKind::Etcd {
            if c.endpoints.is_empty() {
                problems.push(Problem::new(
                    path,
                    line,
                    "[cluster] store = \"etcd\" needs endpoints, e.g. [\"http://127.0.0.1:2379\"]",
                ));
            }
            for e in &c.endpoints {
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    problems.push(Problem::new(
                        path,
                        find_line(text, "endpoints"),
                        format!("[cluster] endpoint {e:?}: must start with http:// or https://"),
                    ));
                }
            }
            if !c.prefix.starts_with('/') || !c.prefix.ends_with('/') {
                problems.push(Problem::new(
                    path,
                    find_line(text, "prefix"),
                    "[cluster] prefix must start and end with /",
                ));
            }
            let node = c.node.clone().unwrap_or_else(hostname);
            if node.is_empty() || node.contains('/') {
                problems.push(Problem::new(
                    path,
                    find_line(text, "node"),
                    "[cluster] node must be a non-empty name without /",
                ));
            }
            let user = match (&c.username, &c.password_file) {
                (Some(u), Some(f)) => {
                    read("password_file", f, &mut problems).map(|p| (u.clone(), secrets::password(&p)))
                }
                (None, None) => None,
                _ => {
                    problems.push(Problem::new(path, line, "[cluster] username and password_file go together"));
                    None
                }
            };
            let ca_pem = c.ca_file.as_ref().and_then(|f| read("ca_file", f, &mut problems));
            let identity_pem = match (&c.cert_file, &c.key_file) {
                (Some(cf), Some(kf)) => read("cert_file", cf, &mut problems).zip(read("key_file", kf, &mut problems)),
                (None, None) => None,
                _ => {
                    problems.push(Problem::new(path, line, "[cluster] cert_file and key_file go together"));
                    None
                }
            };
            etcd = Some(EtcdSettings {
                endpoints: c.endpoints.clone(),
                prefix: c.prefix.clone(),
                health: c.health,
                node,
                user,
                ca_pem,
                identity_pem,
                timeout: c.timeout,
            });
        }
    }

    let mut redirect = None;
    if let Some(r) = &raw.redirect {
        let line = lines.line(r.span().start);
        let rc = r.get_ref();
        let mut hosts = BTreeMap::new();
        for (host, target) in &rc.hosts {
            let (pool, scheme, port, status) = match target {
                RedirectHostConfig::Pool(p) => (p.as_str(), "http", None, 302),
                RedirectHostConfig::Full(t) => (t.pool.as_str(), t.scheme.as_str(), t.port, t.status),
            };
            let pool = match parse_fqdn(pool) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(Problem::new(path, line, format!("[redirect] host {host}: pool: {e}")));
                    continue;
                }
            };
            // The pool may be a config pool or one created through the API: a Host
            // whose pool does not exist gets 404 naming it.
            if !matches!(scheme, "http" | "https") {
                problems.push(Problem::new(
                    path,
                    line,
                    format!("[redirect] host {host}: scheme must be http or https"),
                ));
            }
            if !matches!(status, 301 | 302 | 307 | 308) {
                problems.push(Problem::new(
                    path,
                    line,
                    format!("[redirect] host {host}: status must be 301, 302, 307 or 308"),
                ));
            }
            let key = host.trim().trim_end_matches('.').to_ascii_lowercase();
            hosts.insert(key, RedirectTarget { pool, scheme: scheme.to_string(), port, status });
        }
        if rc.listen.is_empty() {
            problems.push(Problem::new(path, line, "[redirect] listen is empty"));
        }
        redirect =
            Some(RedirectSettings { listen: rc.listen.clone(), trusted_proxies: rc.trusted_proxies.clone(), hosts });
    }

    let config = Config {
        redirect,
        etcd,
        probe_source: raw.health.source_address,
        path: path.to_path_buf(),
        dns: DnsSettings {
            listen: raw.dns.listen,
            threads: raw.dns.threads,
            edns_udp_size: raw.dns.edns_udp_size,
            tcp_idle_timeout: raw.dns.tcp_idle_timeout,
            max_tcp_connections: raw.dns.max_tcp_connections.max(1),
            rrl: raw.dns.rrl,
            cookies: raw.dns.cookies,
            cookie_secret,
        },
        admin: AdminSettings {
            listen: raw.admin.listen,
            token_file: raw.admin.token_file.as_deref().map(resolve),
            token_file_line: find_key_line(text, "[admin]", "token_file"),
            state_dir: resolve(&raw.admin.state_dir),
            ui_public: raw.admin.ui_public.unwrap_or(raw.admin.listen.ip().is_loopback()),
        },
        geoip: raw.geoip.map(|g| resolve(&g.database)),
        geoip_line: find_line(text, "[geoip]"),
        regions: raw.regions,
        zones,
        pools,
    };
    problems.sort_by_key(|p| p.line);
    (Some(config), problems)
}

/// Members of a geo pool whose region no `[regions]` list names: the policy would
/// never prefer them, silently. Returns (member index, message) as `validate`.
pub fn unlisted_regions(def: &PoolDef, regions: &BTreeMap<String, Vec<String>>) -> Vec<(Option<usize>, String)> {
    if def.policy != PolicyName::Geo {
        return Vec::new();
    }
    let listed = |r: &String| regions.values().flatten().any(|l| l == r);
    let name = &def.name;
    def.members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.region.as_ref().filter(|r| !listed(r)).map(|r| (i, m, r)))
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
        let h = &self.health;
        if h.check == CheckKind::Tcp && h.port.is_none() {
            out.push((None, format!("pool {name}: health check tcp needs a port")));
        }
        if h.rise == 0 || h.fall == 0 {
            out.push((None, format!("pool {name}: health rise and fall must be at least 1")));
        }
        if h.timeout.is_zero() || h.interval.is_zero() {
            out.push((None, format!("pool {name}: health interval and timeout must be above zero")));
        }
        if h.expect_status.is_empty() {
            out.push((None, format!("pool {name}: health expect_status is empty")));
        }
        if !h.path.starts_with('/') {
            out.push((None, format!("pool {name}: health path must start with /")));
        }
        out
    }
}

/// The host name, for a node that does not name itself.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lbdns".to_string())
}

/// A domain name that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("invalid name {name:?}: {source}")]
    Invalid { name: String, source: Box<hickory_proto::ProtoError> },
    /// A relative name that is too long once the zone's origin is appended.
    #[error("{name:?} in {origin}: {source}")]
    InZone { name: String, origin: String, source: Box<hickory_proto::ProtoError> },
}

/// Parses an absolute domain name; a missing final dot is added.
pub fn parse_fqdn(s: &str) -> Result<Name, NameError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let mut n =
        Name::from_ascii(s).map_err(|source| NameError::Invalid { name: s.to_string(), source: Box::new(source) })?;
    n.set_fqdn(true);
    Ok(n.to_lowercase())
}

/// Line numbers of byte offsets, found by binary search over the line starts
/// (a config with 100,000 pools asks for 500,000 of them).
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line of `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Best-effort line of the first occurrence of `needle`, for problems found
/// after deserialization where serde kept no span.
fn find_line(text: &str, needle: &str) -> usize {
    text.find(needle).map(|o| line_of(text, o)).unwrap_or(0)
}

/// The line of `key` inside the table that starts with `table` (e.g. `listen`
/// in `[admin]`), else the table's line.
fn find_key_line(text: &str, table: &str, key: &str) -> usize {
    let Some(start) = text.find(table) else { return 0 };
    let body = &text[start + table.len()..];
    let end = body.find("\n[").unwrap_or(body.len());
    let at = body[..end]
        .match_indices(key)
        .find(|&(i, _)| {
            let line_start = body[..i].rfind('\n').map_or(0, |n| n + 1);
            body[line_start..i].trim().is_empty() && body[i + key.len()..].trim_start().starts_with('=')
        })
        .map(|(i, _)| start + table.len() + i);
    line_of(text, at.unwrap_or(start))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, Problems> {
        parse(Path::new("/etc/lbdns/lbdns.toml"), text)
    }

    #[test]
    fn key_lines_are_found_inside_their_table() {
        let text = "[dns]\nlisten = [\"x\"]\n[admin]\n# listen = \"old\"\nlistener_x = 1\n  listen = \"y\"\n[geoip]\n";
        assert_eq!(find_key_line(text, "[admin]", "listen"), 6);
        assert_eq!(find_key_line(text, "[admin]", "token_file"), 3, "absent: the table's line");
        assert_eq!(find_key_line(text, "[cluster]", "node"), 0);
    }

    #[test]
    fn line_index_agrees_with_counting() {
        let text = "a\nbb\n\nccc\n";
        let idx = LineIndex::new(text);
        for off in 0..text.len() {
            assert_eq!(idx.line(off), line_of(text, off), "offset {off}");
        }
    }

    #[test]
    fn bad_keys_are_all_reported_each_at_its_line() {
        let text = "[dns]\nlisten = [\"127.0.0.1:53\"]\nthreads = \"many\"\n[admin]\nlisten = \"127.0.0.1:8053\"\n\
                    extra = [\n  1,\n  2,\n]\n[[pool]]\nname = \"w.t.\"\npolicy = \"x\"\nttl = -1\n[nope]\na = 1\n";
        let err = p(text).unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 6, 12, 13, 14], "{err}");
    }

    #[test]
    fn a_blanked_required_key_is_not_reported_twice() {
        let err = p("[[pool]]\nname = 5\n[[pool]]\npolicy = \"y\"\n").unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].line, 2, "{err}");
    }

    #[test]
    fn bad_keys_in_other_scripts_are_set_aside_too() {
        let err = p("[dns]\n\"listén\" = 1\n[admin]\n\"ключ\" = \"ü\"\n").unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4], "{err}");
    }

    #[test]
    fn a_syntax_error_is_reported_alone() {
        let err = p("[dns]\nthreads = \"many\"\nlisten = [\n").unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
    }

    #[test]
    fn geo_members_need_a_listed_region() {
        let pool = "[[pool]]\nname = \"g.t.\"\npolicy = \"geo\"\n[[pool.member]]\naddress = \"192.0.2.1\"\n";
        let ok = format!("[regions]\ndefault = [\"eu\"]\n{pool}region = \"eu\"\n");
        assert!(p(&ok).is_ok());
        let err = p(&format!("[regions]\ndefault = [\"eu\"]\n{pool}region = \"us\"\n")).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].line, 6, "{err}");
        assert!(err.0[0].message.contains("region \"us\" is in no [regions] list"), "{err}");
    }

    #[test]
    fn unknown_key_names_line() {
        let err = p("[dns]\nlisten = [\"127.0.0.1:53\"]\nlisten_typo = 1\n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, 3, "{err}");
        assert!(err.0[0].message.contains("listen_typo"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_config_dir() {
        let c = p("[[zone]]\norigin = \"example.test\"\nfile = \"zones/x.zone\"\n").unwrap();
        assert_eq!(c.zones[0].file, PathBuf::from("/etc/lbdns/zones/x.zone"));
        assert_eq!(c.zones[0].origin.to_ascii(), "example.test.");
        assert_eq!(c.admin.state_dir, PathBuf::from("/etc/lbdns/state"));
    }

    #[test]
    fn pool_checks_name_member_lines() {
        let text = "[[pool]]\nname = \"www.example.test.\"\nall_down = \"fallback\"\n\
                    [[pool.member]]\naddress = \"192.0.2.1\"\nweight = 0\n\
                    [[pool.member]]\naddress = \"192.0.2.1\"\n";
        let err = p(text).unwrap_err();
        let s = err.to_string();
        assert!(s.contains(":4: pool www.example.test.: member 192.0.2.1: weight must be at least 1"), "{s}");
        assert!(s.contains(":7: pool www.example.test.: duplicate member 192.0.2.1"), "{s}");
        assert!(s.contains("needs `fallback`"), "{s}");
    }

    #[test]
    fn unknown_policy_is_an_error_with_line() {
        let err = p("[[pool]]\nname = \"a.example.\"\npolicy = \"fastest\"\n").unwrap_err();
        assert_eq!(err.0[0].line, 3, "{err}");
        assert!(err.0[0].message.contains("fastest"), "{err}");
    }

    #[test]
    fn fallback_of_wrong_family() {
        let text = "[[pool]]\nname = \"a.example.\"\nall_down = \"fallback\"\nfallback = [\"2001:db8::1\"]\n\
                    [[pool.member]]\naddress = \"192.0.2.1\"\n";
        let err = p(text).unwrap_err().to_string();
        assert!(err.contains("fallback 2001:db8::1 is IPv6 but the pool has no IPv6 member"), "{err}");
    }

    #[test]
    fn pool_ttl_is_capped_at_2_31_minus_1() {
        let err = p("[[pool]]\nname = \"a.example.\"\nttl = 4294967295\n").unwrap_err();
        assert_eq!(err.0[0].line, 1, "{err}");
        assert!(err.0[0].message.contains("ttl 4294967295 is above 2^31-1"), "{err}");
        assert!(p("[[pool]]\nname = \"a.example.\"\nttl = 2147483647\n").is_ok());
    }

    #[test]
    fn durations_parse() {
        let text = "[[pool]]\nname = \"a.example.\"\n[pool.health]\ncheck = \"http\"\ninterval = \"500ms\"\ntimeout = \"2s\"\n";
        let c = p(text).unwrap();
        assert_eq!(c.pools[0].health.interval, Duration::from_millis(500));
        assert_eq!(c.pools[0].health.timeout, Duration::from_secs(2));
        let err = p("[[pool]]\nname = \"a.example.\"\n[pool.health]\ninterval = \"soon\"\n").unwrap_err();
        assert_eq!(err.0[0].line, 4, "{err}");
    }
}
