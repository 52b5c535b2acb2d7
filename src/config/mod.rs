//! The TOML configuration: raw serde input types (`*Config`, in `raw`) and the
//! validated [`Config`] built from them (in `settings`).
//!
//! Parsing never touches the network. Every problem is reported as a [`Problem`]
//! naming the file and line, and all problems found are reported at once so that
//! `lbdns check` shows everything an operator must fix: `recover` reads the file
//! past each bad key, then `parse` checks it one table at a time. Relative paths
//! are resolved against the config file's directory here, so nothing later
//! depends on the working directory.

mod grant;
mod lines;
mod name;
mod parse;
mod raw;
mod recover;
mod reuse;
mod settings;
mod split;
#[cfg(test)]
mod tests;
mod weight_from;

use std::path::{Path, PathBuf};

use crate::problem::{Problem, Problems};

pub use grant::{Grant, GrantError, NamePattern};
pub use lines::line_of;
pub use name::{NameError, parse_fqdn};
pub use parse::parse_all;
pub use raw::{
    AllDown, ApiPoolConfig, CheckKind, ClusterConfig, ClusterHealth, GlobalHealthConfig, HealthChecks, HealthConfig,
    HttpMethod, MemberConfig, PolicyName, RrlConfig, StoreKind, TransferPools, default_pool_ttl,
};
pub use reuse::{HeldConfig, Loaded, load_for_reload};
pub use settings::{
    AdminSettings, Config, DnsSettings, DnssecSpec, EtcdSettings, MAX_TTL, PoolDef, RCODES, RedirectSettings,
    RedirectTarget, Secrets, TransferRule, TransferSettings, ZoneSpec, parse_rcode, unlisted_regions,
};
pub use weight_from::{BadWeightSource, WeightSource};

/// Reads and validates `path`. Zone files are not read here (see `crate::load`).
pub fn load(path: &Path) -> Result<Config, Problems> {
    into_result(load_all(path, Secrets::Read))
}

/// Reads and validates `path` as far as it can: the config (unless it could not
/// be read or deserialized at all) and every problem found, so that callers can
/// go on checking what the config names and report everything in one run.
pub fn load_all(path: &Path, secrets: Secrets) -> (Option<Config>, Vec<Problem>) {
    begin(path).finish(secrets)
}

/// Starts reading the config at `path`: everything but its pools, when they
/// can be read in batches (see [`Reading::zone_files`]).
pub fn begin(path: &Path) -> Reading {
    let path = absolute(path);
    let text = std::fs::read_to_string(&path);
    let cut = text.as_deref().ok().and_then(split::Cut::new);
    Reading { path, text, cut }
}

/// A config file read up to its pools. The zone files it names are known
/// before its pools (100,000 of them take a second) are read, so that start-up
/// reads both at once. [`Reading::finish`] is [`load_all`].
pub struct Reading {
    path: PathBuf,
    text: std::io::Result<String>,
    cut: Option<split::Cut>,
}

/// A zone file a config names: the zone's origin, the file (resolved against
/// the config's directory) and the line of its `[[zone]]` table, as in the
/// config's [`ZoneSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFile {
    pub origin: hickory_proto::rr::Name,
    pub file: PathBuf,
    pub line: usize,
}

impl Reading {
    /// The zone files named by a config whose pools are read in batches (a
    /// valid config of many pools); empty for any other config, whose zones
    /// are known once it is read whole. A zone whose origin is no name is left
    /// out (the config's problems say why).
    pub fn zone_files(&self) -> Vec<ZoneFile> {
        let (Some(cut), Ok(text)) = (&self.cut, &self.text) else { return Vec::new() };
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let file = |f: &Path| if f.is_absolute() { f.to_path_buf() } else { dir.join(f) };
        let zone = |z: &toml::Spanned<raw::ZoneConfig>| {
            let origin = parse_fqdn(&z.get_ref().origin).ok()?;
            Some(ZoneFile { origin, file: file(&z.get_ref().file), line: line_of(text, z.span().start) })
        };
        cut.zones().iter().filter_map(zone).collect()
    }

    /// The config file's path, made absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config and every problem found, as [`load_all`].
    pub fn finish(self, secrets: Secrets) -> (Option<Config>, Vec<Problem>) {
        match self.text {
            Ok(text) => parse::parse_cut(&self.path, &text, secrets, self.cut),
            Err(e) => (None, vec![Problem::new(&self.path, 0, format!("cannot read the config file: {e}"))]),
        }
    }

    /// [`Reading::finish`] with the hash of the config's bytes, so that the
    /// next reload can take its pools when they did not change.
    pub fn finish_loaded(self, secrets: Secrets) -> Loaded {
        let hash = self.text.as_ref().ok().map(|t| reuse::bytes_hash(t.as_bytes()));
        let (config, problems) = self.finish(secrets);
        Loaded { config, problems, pools: None, hash }
    }
}

/// Why the `[zone.dnssec]` of a zone could not be found (`lbdns dnssec`).
#[derive(Debug, thiserror::Error)]
pub enum DnssecZoneError {
    #[error("{0}")]
    Config(Problems),
    #[error("zone {0}: {1}")]
    Name(String, NameError),
    #[error("zone {0}: not in the config")]
    NoZone(hickory_proto::rr::Name),
    #[error("zone {0}: has no [zone.dnssec] table in the config")]
    NotSigned(hickory_proto::rr::Name),
}

/// The origin and `[zone.dnssec]` of `zone` in the config at `path`, read
/// without its keys (which `lbdns dnssec keygen` is about to make) and
/// whatever else in the config is wrong.
pub fn dnssec_zone(path: &Path, zone: &str) -> Result<(hickory_proto::rr::Name, DnssecSpec), DnssecZoneError> {
    let origin = parse_fqdn(zone).map_err(|e| DnssecZoneError::Name(zone.to_string(), e))?;
    let (config, problems) = load_all(path, Secrets::Skip);
    let config = config.ok_or(DnssecZoneError::Config(Problems(problems)))?;
    let z = config.zones.into_iter().find(|z| z.origin == origin).ok_or(DnssecZoneError::NoZone(origin.clone()))?;
    let spec = z.dnssec.ok_or(DnssecZoneError::NotSigned(origin.clone()))?;
    Ok((origin, spec))
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

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}
