//! Sources: the configuration and the zone files it names, loaded and checked
//! together. This is what `lbdns check` validates and what a reload replaces.
//! A reload parses again only the zone files whose bytes changed ([`ZoneFiles`]).
//!
//! Cross-checks that need both live here: a pool must be inside a zone, not at a
//! name that the zone file already gives addresses or a CNAME, and not below a cut.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::{Name, RecordType};
use tracing::debug;

use crate::config::{self, Config, HeldConfig, PoolDef, Secrets, ZoneSpec};
use crate::geoip::GeoDb;
use crate::problem::{Problem, Problems};
use crate::secrets;
use crate::zone::{self, ZoneData};

/// A validated config and its loaded zones.
#[derive(Debug, Clone)]
pub struct Sources {
    pub config: Config,
    pub zones: Vec<Arc<ZoneData>>,
    /// The config's pools, taken out of `config.pools` (left empty) so that each
    /// definition is held once, shared by the state in effect and the snapshot.
    pub pools: Vec<Arc<PoolDef>>,
    /// The GeoIP database named by `[geoip]`, read whole.
    pub geoip: Option<Arc<GeoDb>>,
    /// The admin token read from `[admin] token_file` (read once, so its
    /// warnings are logged once); `None` without a token file or with
    /// `Secrets::Skip`.
    pub admin_token: Option<String>,
    /// What the next reload may take as it is (zone files, the config's pools).
    pub reusable: Reusable,
    /// How many zone files were taken from the previous load (their bytes had
    /// not changed) instead of being parsed again.
    pub unchanged_zone_files: usize,
    /// The config's bytes (and its pools' files) had not changed: its pools
    /// were taken from the previous load, the rest of it read again.
    pub config_unchanged: bool,
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
        Sources::load_reusing(path, secrets, &Reusable::default())
    }

    /// [`Sources::load`] for a reload: a zone file whose bytes are those it had
    /// in `before` (the sources in effect) is not parsed again, its zone is
    /// shared; a config whose bytes are those it had keeps its pools.
    pub fn reload(path: &Path, before: &Reusable) -> Result<Sources, Problems> {
        Sources::load_reusing(path, Secrets::Read, before)
    }

    fn load_reusing(path: &Path, secrets: Secrets, before: &Reusable) -> Result<Sources, Problems> {
        let started = Instant::now();
        // At start-up the zone files are read while the config's pools are; a
        // reload compares changed files with the zones held, once the pools are known.
        let (loaded, mut early) = if before.is_empty() {
            read_both(config::begin(path), secrets)
        } else {
            (config::load_for_reload(path, secrets, before.config.as_ref()), Vec::new())
        };
        let (mut problems, hash, config_unchanged) = (loaded.problems, loaded.hash, loaded.pools.is_some());
        let Some(mut config) = loaded.config else { return Err(Problems(problems)) };
        let pools = loaded.pools.unwrap_or_else(|| take_pools(&mut config));
        let config_took = started.elapsed();
        let (zones, zone_files, unchanged_zone_files) = load_zones(&config, &pools, before, &mut problems, &mut early);
        let zones_took = started.elapsed() - config_took;
        // The same pools as before, placed then: only those at names whose
        // RRsets changed can clash now.
        let changed = if config_unchanged { changed_names(&zones, &before.zone_files) } else { None };
        problems.extend(placement(&config, &pools, &zones, changed.as_ref()));
        let (admin_token, geoip) = (read_token(&config, secrets, &mut problems), open_geoip(&config, &mut problems));
        debug!(?config_took, config_unchanged, ?zones_took, took = ?started.elapsed(), "sources read");
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        let reusable = Reusable { zone_files, config: HeldConfig::new(hash, &pools) };
        Ok(Sources { config, zones, pools, geoip, admin_token, reusable, unchanged_zone_files, config_unchanged })
    }
}

/// The config's pools, taken out of it, not copied: 100,000 pool definitions
/// are held once. Collected into a new vector: collected in place, the 8-byte
/// `Arc`s would keep the definitions' whole buffer (17 MB at 100,000 pools).
fn take_pools(config: &mut Config) -> Vec<Arc<PoolDef>> {
    let defs = std::mem::take(&mut config.pools);
    let mut pools = Vec::with_capacity(defs.len());
    pools.extend(defs.into_iter().map(Arc::new));
    pools
}

/// Each zone of `config` that loaded, the zone files as loaded, and how many
/// were taken unchanged from `before`. A zone that fails to load adds its
/// problems and is left out.
fn load_zones(
    config: &Config,
    pools: &[Arc<PoolDef>],
    before: &Reusable,
    problems: &mut Vec<Problem>,
    early: &mut Vec<ReadEarly>,
) -> (Vec<Arc<ZoneData>>, ZoneFiles, usize) {
    let (mut zones, mut zone_files, mut unchanged) = (Vec::new(), ZoneFiles::default(), 0);
    // The config's pools are marked in their zones' records at their positions.
    let pool_index = pools.iter().enumerate().map(|(i, p)| (p.name.clone(), i as u32)).collect();
    for spec in &config.zones {
        let read = early.iter().position(|e| e.is(spec)).map(|i| early.swap_remove(i));
        match load_zone(spec, &config.path, &before.zone_files, &pool_index, read) {
            Ok((loaded, reused)) => {
                if spec.dnssec.is_some() {
                    problems.extend(signer_records(&loaded.zone));
                }
                unchanged += usize::from(reused);
                zones.push(loaded.zone.clone());
                zone_files.0.insert((spec.origin.clone(), spec.file.clone()), loaded);
            }
            Err(p) => problems.extend(p),
        }
    }
    (zones, zone_files, unchanged)
}

/// Each pool placed where it can be in the zones that loaded (only those named
/// in `only`, when given). A pool in a zone that did not load is not checked:
/// its zone's problems say why.
fn placement(
    config: &Config,
    pools: &[Arc<PoolDef>],
    zones: &[Arc<ZoneData>],
    only: Option<&BTreeSet<Name>>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let broken: Vec<&Name> =
        config.zones.iter().map(|s| &s.origin).filter(|o| !zones.iter().any(|z| &z.origin == *o)).collect();
    let index = PlacementIndex::new(zones);
    let checked = |p: &&Arc<PoolDef>| only.is_none_or(|names| names.contains(&p.name));
    for pool in pools.iter().filter(checked).filter(|p| !broken.iter().any(|o| o.zone_of(&p.name))) {
        if let Err(e) = index.check(pool) {
            problems.push(Problem::new(&config.path, pool.line, e.to_string()));
        }
    }
    problems
}

/// The names whose RRsets changed from the zones held in `before`, when each
/// zone is either held as it was or the held one with changes laid over it
/// (a reload's diff); `None` when a zone was loaded in full or is new, or when
/// a delegation changed (a cut moves every pool below it): every pool is then
/// placed again.
fn changed_names(zones: &[Arc<ZoneData>], before: &ZoneFiles) -> Option<BTreeSet<Name>> {
    use hickory_proto::serialize::binary::BinDecodable;
    use imbl::ordmap::DiffItem;
    let mut names = BTreeSet::new();
    for z in zones {
        let held = before.held(&z.origin, &z.file)?;
        if Arc::ptr_eq(held, z) {
            continue;
        }
        if !Arc::ptr_eq(&held.zone.base, &z.zone.base) {
            return None;
        }
        for item in held.zone.layer.diff(&z.zone.layer) {
            let (DiffItem::Add(name, _) | DiffItem::Remove(name, _) | DiffItem::Update { new: (name, _), .. }) = item;
            let cut = |zone: &ZoneData| zone.zone.node(name).is_some_and(|n| n.delegation());
            if cut(held) || cut(z) {
                return None;
            }
            names.insert(Name::from_bytes(name).ok()?);
        }
    }
    Some(names)
}

/// The admin token of `[admin] token_file`, read on every load (unless secrets
/// are skipped) so that a new token is taken by a reload.
fn read_token(config: &Config, secrets: Secrets, problems: &mut Vec<Problem>) -> Option<String> {
    let t = config.admin.token_file.as_ref().filter(|_| secrets == Secrets::Read)?;
    match secrets::read_token(t) {
        Ok(token) => Some(token),
        Err(e) => {
            problems.push(Problem::new(&config.path, config.admin.token_file_line, format!("[admin] {e}")));
            None
        }
    }
}

/// The GeoIP database of `[geoip]`, read whole on every load.
fn open_geoip(config: &Config, problems: &mut Vec<Problem>) -> Option<Arc<GeoDb>> {
    let db = config.geoip.as_ref()?;
    match GeoDb::open(db) {
        Ok(g) => Some(Arc::new(g)),
        Err(e) => {
            problems.push(Problem::new(&config.path, config.geoip_line, e.to_string()));
            None
        }
    }
}

/// What a reload may take from the sources in effect instead of reading it
/// again: the zone files as loaded, and the config's pools.
#[derive(Debug, Clone, Default)]
pub struct Reusable {
    zone_files: ZoneFiles,
    config: Option<HeldConfig>,
}

impl Reusable {
    /// Nothing held: a start, or `lbdns check`.
    fn is_empty(&self) -> bool {
        self.zone_files.0.is_empty() && self.config.is_none()
    }
}

/// The zone files as loaded, by origin and path, each with a hash of its bytes:
/// a reload parses again only the files whose bytes changed, and shares the
/// loaded zone of every other file with the state before it.
#[derive(Debug, Clone, Default)]
pub struct ZoneFiles(HashMap<(Name, PathBuf), LoadedFile>);

#[derive(Debug, Clone)]
struct LoadedFile {
    /// SipHash-1-3 (128 bits) of the file's bytes; `None` when the file cannot
    /// be reused (it has `$INCLUDE`, or it changed while it was parsed).
    hash: Option<u128>,
    zone: Arc<ZoneData>,
}

impl ZoneFiles {
    /// The zone `origin` from `file` as loaded before, if the file's bytes are
    /// the same (`hash` is what they hash to now).
    fn unchanged(&self, origin: &Name, file: &Path, hash: Option<u128>) -> Option<Arc<ZoneData>> {
        let loaded = self.0.get(&(origin.clone(), file.to_path_buf()))?;
        (hash.is_some() && loaded.hash == hash).then(|| loaded.zone.clone())
    }

    /// The zone `origin` as loaded before from `file`, whatever its bytes now.
    fn held(&self, origin: &Name, file: &Path) -> Option<&Arc<ZoneData>> {
        self.0.get(&(origin.clone(), file.to_path_buf())).map(|l| &l.zone)
    }
}

/// The records of a signed zone's file that lbdns makes itself (DNSKEY, RRSIG,
/// NSEC, ...), each an error at its line. An error rather than a warning and
/// the record left out: such a file was most often signed by another signer,
/// and serving it would mix that signer's keys and denials with lbdns's; the
/// operator removes them (or the `[zone.dnssec]` table) knowingly. Checked on
/// every load, also of a file taken unchanged, as `[zone.dnssec]` may be new.
fn signer_records(zone: &ZoneData) -> Vec<Problem> {
    let mut problems = Vec::new();
    for node in zone.zone.nodes() {
        for set in node.rrsets() {
            let t = RecordType::from(set.rtype);
            if !crate::dnssec::is_signer_type(t) {
                continue;
            }
            let Some(name) = crate::snapshot::node_name(&node) else { continue };
            let Some((file, line, _)) = zone.whence(&name, t) else { continue };
            problems.push(Problem::new(
                file,
                line,
                format!(
                    "{t} record at {name}: zone {} is signed ([zone.dnssec]), and lbdns makes its {t} \
                     records itself; remove this record from the zone file",
                    zone.origin
                ),
            ));
        }
    }
    problems
}

/// The config read and, meanwhile on another thread, the zone files it names
/// read and checked: start-up at 100,000 pools and 1,000,000 records is mostly
/// these two, and neither needs the other until the pools are marked.
fn read_both(reading: config::Reading, secrets: Secrets) -> (config::Loaded, Vec<ReadEarly>) {
    let early = reading.zone_files();
    if early.is_empty() {
        return (reading.finish_loaded(secrets), Vec::new());
    }
    let config_path = reading.path().to_path_buf();
    std::thread::scope(|s| {
        let zones = s.spawn(|| early.into_iter().map(|z| ReadEarly::read(z, &config_path)).collect());
        let loaded = reading.finish_loaded(secrets);
        let zones = zones.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (loaded, zones)
    })
}

/// A zone file read and checked before the config's pools were known.
struct ReadEarly {
    /// The zone's origin, file and `[[zone]]` line: the config's zone it is.
    named: (Name, PathBuf, usize),
    /// As [`LoadedFile::hash`].
    hash: Option<u128>,
    read: Result<zone::ReadZone, Vec<Problem>>,
}

impl ReadEarly {
    fn read(z: config::ZoneFile, config: &Path) -> ReadEarly {
        let hash = reusable_hash(&z.file);
        let read = zone::read_named_at(&z.origin, &z.file, Some((config, z.line)));
        // Bytes that changed while being parsed may not be what was parsed.
        let hash = hash.filter(|h| reusable_hash(&z.file) == Some(*h));
        ReadEarly { named: (z.origin, z.file, z.line), hash, read }
    }

    /// Whether this is the zone file of `spec`.
    fn is(&self, spec: &ZoneSpec) -> bool {
        (&self.named.0, &self.named.1, self.named.2) == (&spec.origin, &spec.file, spec.line)
    }
}

/// Loads the zone of `spec` (its pools marked in `early` when it was read
/// early), or takes it from `before` when the file's bytes did not change.
/// Returns the zone, its hash, and whether it was taken.
fn load_zone(
    spec: &ZoneSpec,
    config: &Path,
    before: &ZoneFiles,
    pools: &BTreeMap<Name, u32>,
    early: Option<ReadEarly>,
) -> Result<(LoadedFile, bool), Vec<Problem>> {
    if let Some(early) = early {
        let zone = Arc::new(early.read?.build(pools)?);
        return Ok((LoadedFile { hash: early.hash, zone }, false));
    }
    let hash = reusable_hash(&spec.file);
    if let Some(zone) = before.unchanged(&spec.origin, &spec.file, hash) {
        debug!(zone = %spec.origin, file = %spec.file.display(), "zone file unchanged");
        return Ok((LoadedFile { hash, zone }, true));
    }
    let named_at = Some((config, spec.line));
    // A held zone of the same file is compared with, not built again.
    let zone = match before.held(&spec.origin, &spec.file) {
        Some(held) => zone::reload_named_at(&spec.origin, &spec.file, named_at, pools, held)?,
        None => zone::load_named_at(&spec.origin, &spec.file, named_at, pools)?,
    };
    let zone = Arc::new(zone);
    // Bytes that changed while being parsed may not be what was parsed.
    let hash = hash.filter(|h| reusable_hash(&spec.file) == Some(*h));
    Ok((LoadedFile { hash, zone }, false))
}

/// A hash of the bytes of `file`, or `None` when what it loads is not all in
/// it (it has a `$INCLUDE`: the included files may change on their own), or
/// when it is not a regular file or cannot be read (loading it says why).
fn reusable_hash(file: &Path) -> Option<u128> {
    use std::hash::Hasher;
    use std::io::BufRead;
    // Checked before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(file).ok()?.is_file() {
        return None;
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(file).ok()?);
    let mut hasher = siphasher::sip128::SipHasher13::new();
    // The end of the previous buffer, so that a directive split between two
    // buffers is still seen.
    let mut carry: Vec<u8> = Vec::with_capacity(2 * INCLUDE.len());
    loop {
        let buf = reader.fill_buf().ok()?;
        if buf.is_empty() {
            break;
        }
        carry.extend_from_slice(&buf[..buf.len().min(INCLUDE.len() - 1)]);
        if has_include(&carry) || has_include(buf) {
            return None;
        }
        carry.clear();
        carry.extend_from_slice(&buf[buf.len().saturating_sub(INCLUDE.len() - 1)..]);
        hasher.write(buf);
        let n = buf.len();
        reader.consume(n);
    }
    Some(siphasher::sip128::Hasher128::finish128(&hasher).as_u128())
}

const INCLUDE: &[u8] = b"$include";

/// Whether `bytes` holds `$INCLUDE` in any case (anywhere: a false alarm only
/// costs a parse).
fn has_include(bytes: &[u8]) -> bool {
    // `$` is rare in a zone file (directives only): found with memchr's vector
    // search, a reload's hash of a 30 MB file no longer looks at each byte
    // (about 40 ms of a 1 s reload at 1,000,000 records).
    memchr::memchr_iter(b'$', bytes)
        .any(|i| bytes.get(i..i + INCLUDE.len()).is_some_and(|w| w.eq_ignore_ascii_case(INCLUDE)))
}

/// Pool placement against the zone files as loaded: each check is a few lookups
/// in the zones' compact records (checking 100,000 pools against a zone of
/// 1,000,000 records must not scan the zone per pool).
struct PlacementIndex<'a> {
    zones: &'a [Arc<ZoneData>],
}

impl<'a> PlacementIndex<'a> {
    fn new(zones: &'a [Arc<ZoneData>]) -> Self {
        PlacementIndex { zones }
    }

    fn check(&self, pool: &PoolDef) -> Result<(), PlacementError> {
        let name = &pool.name;
        let Some(zone) = self.zones.iter().filter(|z| z.origin.zone_of(name)).max_by_key(|z| z.origin.num_labels())
        else {
            return Err(PlacementError::NoZone { pool: name.to_string() });
        };
        if let Some(e) = self.zones.iter().find_map(|z| answers(z, name)) {
            return Err(e);
        }
        let mut n = name.clone();
        while n.num_labels() > zone.origin.num_labels() {
            let w = crate::snapshot::wire(&n);
            if self.zones.iter().any(|z| z.zone.node(&w).is_some_and(|v| v.delegation())) {
                return Err(PlacementError::Cut { pool: name.to_string(), cut: n.to_string() });
            }
            n = n.base_name();
        }
        Ok(())
    }
}

/// The zone file's first A, AAAA or CNAME record at `pool` (in file order), as
/// the placement error it makes.
fn answers(zone: &ZoneData, pool: &Name) -> Option<PlacementError> {
    let first = [RecordType::A, RecordType::AAAA, RecordType::CNAME]
        .into_iter()
        .filter_map(|t| zone.whence(pool, t).map(|(file, line, position)| (position, t, file, line)))
        .min_by_key(|&(position, ..)| position)?;
    let (_, rtype, file, line) = first;
    Some(PlacementError::Answers {
        pool: pool.to_string(),
        rtype: rtype.to_string(),
        file: file.display().to_string(),
        line,
    })
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

    /// The same bytes hash the same; `$INCLUDE` in any case, even split between
    /// two reads, makes a file never taken as unchanged.
    #[test]
    fn a_file_is_reusable_unless_it_includes_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        let padding = format!(";{}\n", "x".repeat((1 << 16) - 5));
        std::fs::write(&path, format!("{padding}$InClUdE other\n")).unwrap();
        assert_eq!(reusable_hash(&path), None, "split between two reads");
        std::fs::write(&path, format!("{padding}$TTL 60\n")).unwrap();
        let h = reusable_hash(&path);
        assert!(h.is_some());
        std::fs::write(&path, format!("{padding}$TTL 60\n")).unwrap();
        assert_eq!(reusable_hash(&path), h);
        std::fs::write(&path, format!("{padding}$TTL 61\n")).unwrap();
        assert_ne!(reusable_hash(&path), h);
        assert_eq!(reusable_hash(dir.path()), None, "not a regular file");
    }

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
