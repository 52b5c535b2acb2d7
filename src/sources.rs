//! Sources: the configuration and the zone files it names, loaded and checked
//! together. This is what `lbdns check` validates and what a reload replaces.
//!
//! Cross-checks that need both live here: a pool must be inside a zone, not at a
//! name that the zone file already gives addresses or a CNAME, and not below a cut.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use crate::config::{self, Config, PoolDef, Secrets};
use crate::geoip::GeoDb;
use crate::problem::{Problem, Problems};
use crate::secrets;
use crate::zone::{self, ZoneData};

/// A validated config and its loaded zones.
#[derive(Debug, Clone)]
pub struct Sources {
    pub config: Config,
    pub zones: Vec<Arc<ZoneData>>,
    pub pools: Vec<Arc<PoolDef>>,
    /// The GeoIP database named by `[geoip]`, read whole.
    pub geoip: Option<Arc<GeoDb>>,
    /// The admin token read from `[admin] token_file` (read once, so its
    /// warnings are logged once); `None` without a token file or with
    /// `Secrets::Skip`.
    pub admin_token: Option<String>,
}

impl Sources {
    /// Loads the config at `path` and every zone file it names. Returns every
    /// problem found, each with file and line.
    pub fn load(path: &Path) -> Result<Sources, Problems> {
        Sources::load_with(path, Secrets::Read)
    }

    /// [`Sources::load`], optionally without reading secret files. Every
    /// independent problem is found in one run: a broken config key does not hide
    /// a broken zone file, and a zone that fails to load hides only the placement
    /// checks of its own pools.
    pub fn load_with(path: &Path, secrets: Secrets) -> Result<Sources, Problems> {
        let (config, mut problems) = config::load_all(path, secrets);
        let Some(config) = config else { return Err(Problems(problems)) };
        let mut zones = Vec::new();
        let mut broken = Vec::new();
        for spec in &config.zones {
            match zone::load_named_at(&spec.origin, &spec.file, Some((&config.path, spec.line))) {
                Ok(z) => zones.push(Arc::new(z)),
                Err(p) => {
                    problems.extend(p);
                    broken.push(&spec.origin);
                }
            }
        }
        let index = PlacementIndex::new(&zones);
        // A pool in a zone that did not load cannot be placed: its zone's problems say why.
        for pool in config.pools.iter().filter(|p| !broken.iter().any(|o| o.zone_of(&p.name))) {
            if let Err(e) = index.check(pool) {
                problems.push(Problem::new(&config.path, pool.line, e.to_string()));
            }
        }
        let mut admin_token = None;
        if let Some(t) = config.admin.token_file.as_ref().filter(|_| secrets == Secrets::Read) {
            match secrets::read_token(t) {
                Ok(token) => admin_token = Some(token),
                Err(e) => {
                    problems.push(Problem::new(&config.path, config.admin.token_file_line, format!("[admin] {e}")))
                }
            }
        }
        let mut geoip = None;
        if let Some(db) = &config.geoip {
            match GeoDb::open(db) {
                Ok(g) => geoip = Some(Arc::new(g)),
                Err(e) => problems.push(Problem::new(&config.path, config.geoip_line, e.to_string())),
            }
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        let pools = config.pools.iter().cloned().map(Arc::new).collect();
        Ok(Sources { config, zones, pools, geoip, admin_token })
    }
}

/// The names that matter for placing pools, indexed once: checking 100,000 pools
/// against a zone of 1,000,000 records must not scan the zone per pool.
struct PlacementIndex<'a> {
    zones: &'a [Arc<ZoneData>],
    /// Owner -> its first A, AAAA or CNAME record.
    addresses: std::collections::HashMap<&'a hickory_proto::rr::Name, &'a crate::zone::ZoneRecord>,
    /// Names with NS records below their zone's apex.
    cuts: std::collections::HashSet<&'a hickory_proto::rr::Name>,
}

impl<'a> PlacementIndex<'a> {
    fn new(zones: &'a [Arc<ZoneData>]) -> Self {
        let mut addresses = std::collections::HashMap::new();
        let mut cuts = std::collections::HashSet::new();
        for z in zones {
            for r in &z.records {
                match r.rtype() {
                    RecordType::A | RecordType::AAAA | RecordType::CNAME => {
                        addresses.entry(&r.name).or_insert(r);
                    }
                    RecordType::NS if r.name != z.origin => {
                        cuts.insert(&r.name);
                    }
                    _ => {}
                }
            }
        }
        PlacementIndex { zones, addresses, cuts }
    }

    fn check(&self, pool: &PoolDef) -> Result<(), PlacementError> {
        let name = &pool.name;
        let Some(zone) = self.zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels())
        else {
            return Err(PlacementError::NoZone { pool: name.to_string() });
        };
        if let Some(r) = self.addresses.get(name) {
            return Err(PlacementError::answers(name, r));
        }
        let mut n = name.clone();
        while n.num_labels() > zone.origin.num_labels() {
            if self.cuts.contains(&n) {
                return Err(PlacementError::Cut { pool: name.to_string(), cut: n.to_string() });
            }
            n = n.base_name();
        }
        Ok(())
    }
}

/// Why a pool cannot be where its name puts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("pool {pool} is not inside any zone")]
    NoZone { pool: String },
    /// The zone file has A, AAAA or CNAME records at the pool's name.
    #[error("pool {pool} also has {rtype} records in {file}:{line}; remove them from the zone file")]
    Answers { pool: String, rtype: String, file: String, line: usize },
    #[error("pool {pool} is at or below the zone cut {cut}")]
    Cut { pool: String, cut: String },
}

impl PlacementError {
    fn answers(pool: &hickory_proto::rr::Name, r: &crate::zone::ZoneRecord) -> Self {
        PlacementError::Answers {
            pool: pool.to_string(),
            rtype: r.rtype().to_string(),
            file: r.file.display().to_string(),
            line: r.line,
        }
    }
}

/// A pool name must be inside a zone, below no cut, and have no A, AAAA or CNAME
/// in the zone file (the pool answers those).
pub fn check_pool_placement(pool: &PoolDef, zones: &[Arc<ZoneData>]) -> Result<(), PlacementError> {
    let name = &pool.name;
    let Some(zone) = zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels()) else {
        return Err(PlacementError::NoZone { pool: name.to_string() });
    };
    for r in &zone.records {
        match clash(name, &r.name, r.rtype(), &zone.origin) {
            Some(Clash::Answers) => return Err(PlacementError::answers(name, r)),
            Some(Clash::Cut) => return Err(PlacementError::Cut { pool: name.to_string(), cut: r.name.to_string() }),
            None => {}
        }
    }
    Ok(())
}

/// How an RRset and a pool cannot live in one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// A, AAAA or CNAME at the pool's name: the pool answers those.
    Answers,
    /// NS below the apex at or above the pool's name: the pool would be behind a
    /// delegation, answered with a referral instead.
    Cut,
}

/// The one placement rule, for zone files, config pools and API writes alike:
/// whether an RRset of `rtype` at `owner` in the zone `origin` clashes with a pool
/// named `pool`. (`PlacementIndex` applies the same rule to a whole config at
/// once through its indexes; keep the two in step.)
pub fn clash(pool: &Name, owner: &Name, rtype: RecordType, origin: &Name) -> Option<Clash> {
    match rtype {
        RecordType::A | RecordType::AAAA | RecordType::CNAME if owner == pool => Some(Clash::Answers),
        RecordType::NS if owner != origin && owner.zone_of(pool) => Some(Clash::Cut),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn the_placement_rule() {
        let n = |s: &str| Name::from_str(s).unwrap();
        let (pool, origin) = (n("www.z."), n("z."));
        assert_eq!(clash(&pool, &n("www.z."), RecordType::A, &origin), Some(Clash::Answers));
        assert_eq!(clash(&pool, &n("www.z."), RecordType::CNAME, &origin), Some(Clash::Answers));
        assert_eq!(clash(&pool, &n("www.z."), RecordType::TXT, &origin), None);
        assert_eq!(clash(&pool, &n("www.z."), RecordType::NS, &origin), Some(Clash::Cut));
        assert_eq!(clash(&n("a.www.z."), &n("www.z."), RecordType::NS, &origin), Some(Clash::Cut));
        assert_eq!(clash(&pool, &n("z."), RecordType::NS, &origin), None, "the apex NS is no cut");
        assert_eq!(clash(&pool, &n("other.z."), RecordType::NS, &origin), None);
    }
}
