//! A reload of a config whose bytes did not change. At 100,000 pools most of a
//! config's parse is its `[[pool]]` tables, and their definitions depend only
//! on the config's text and on the files the pools read (`headers_file`): when
//! neither changed, the pools held from the last load are taken as they are and
//! only the rest of the file is read again, with every secret it names (cookie,
//! TSIG, DNSSEC keys, `[cluster]` files) read as at start. Every other case
//! reads the whole file, so that what is found wrong is what `lbdns check` finds.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::parse::parse_cut;
use super::{Config, PoolDef, Secrets, absolute, parse_all, split};
use crate::problem::Problem;

/// The config as last loaded: the hash of its bytes and of each file its pools
/// read, and its pools, for the next reload to take.
#[derive(Debug, Clone)]
pub struct HeldConfig {
    hash: u128,
    /// Each `headers_file` of the pools, with the hash of its bytes (`None`:
    /// unreadable, which the load reported).
    files: Vec<(PathBuf, Option<u128>)>,
    pools: Vec<Arc<PoolDef>>,
}

impl HeldConfig {
    /// What a reload of a config whose bytes hash to `hash` ([`Loaded::hash`])
    /// with the pools `pools` may take again. The pools' files are hashed now,
    /// after the load: one that changed in between is read again at the next
    /// reload at worst, as its hash then differs.
    pub fn new(hash: Option<u128>, pools: &[Arc<PoolDef>]) -> Option<HeldConfig> {
        let hash = hash?;
        let mut files: Vec<PathBuf> =
            pools.iter().flat_map(|p| p.health.0.iter().filter_map(|h| h.headers_file.clone())).collect();
        files.sort();
        files.dedup();
        let files = files.into_iter().map(|f| (f.clone(), file_hash(&f))).collect();
        Some(HeldConfig { hash, files, pools: pools.to_vec() })
    }

    fn files_unchanged(&self) -> bool {
        self.files.iter().all(|(f, h)| h.is_some() && file_hash(f) == *h)
    }
}

/// A config loaded for a reload.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The config, with no pools when `pools` has them.
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
    /// The pools taken from the held config (its bytes did not change).
    pub pools: Option<Vec<Arc<PoolDef>>>,
    /// The hash of the config's bytes (`None`: unreadable).
    pub hash: Option<u128>,
}

/// Reads the config at `path` as [`super::load_all`] does, but takes the pools
/// of `held` when the config's bytes and its pools' files are those it had.
pub fn load_for_reload(path: &Path, secrets: Secrets, held: Option<&HeldConfig>) -> Loaded {
    let path = absolute(path);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let problem = Problem::new(&path, 0, format!("cannot read the config file: {e}"));
            return Loaded { problems: vec![problem], ..Loaded::default() };
        }
    };
    let hash = Some(bytes_hash(text.as_bytes()));
    if let Some(held) = held.filter(|h| Some(h.hash) == hash && h.files_unchanged()) {
        // Cut out rather than blanked (the toml reader would go through a
        // million blank lines: about 100 ms at 100,000 pools), the lines of
        // the rest still those of the whole text.
        if let Some(cut) = split::Cut::new(&text) {
            let (config, problems) = parse_cut(&path, &text, secrets, Some(cut.without_batches()));
            return Loaded { config, problems, pools: Some(held.pools.clone()), hash };
        }
    }
    let (config, problems) = parse_all(&path, &text, secrets);
    Loaded { config, problems, pools: None, hash }
}

pub(super) fn bytes_hash(bytes: &[u8]) -> u128 {
    let mut hasher = siphasher::sip128::SipHasher13::new();
    hasher.write(bytes);
    siphasher::sip128::Hasher128::finish128(&hasher).as_u128()
}

fn file_hash(file: &Path) -> Option<u128> {
    std::fs::read(file).ok().map(|b| bytes_hash(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[dns]\nlisten=[\"127.0.0.1:0\"]\n[[zone]]\norigin=\"z.test.\"\nfile=\"z.zone\"\n\
                          [[pool]]\nname=\"www.z.test.\"\n[[pool.member]]\naddress=\"192.0.2.1\"\n\
                          [pool.health]\ncheck=\"http\"\nport=80\nheaders_file=\"probe.headers\"\n\
                          [[pool]]\nname=\"api.z.test.\"\n[[pool.member]]\naddress=\"192.0.2.2\"\n\
                          [admin]\nlisten=\"127.0.0.1:0\"\n";

    fn held(path: &Path) -> (Loaded, Option<HeldConfig>) {
        let mut loaded = load_for_reload(path, Secrets::Read, None);
        assert_eq!(loaded.problems, vec![]);
        let pools: Vec<Arc<PoolDef>> =
            std::mem::take(&mut loaded.config.as_mut().unwrap().pools).into_iter().map(Arc::new).collect();
        let held = HeldConfig::new(loaded.hash, &pools);
        (loaded, held)
    }

    /// The same bytes (and the same headers file) take the held pools and read
    /// the rest with its lines where they were; a changed headers file or a
    /// changed byte reads the whole file again.
    #[test]
    fn only_unchanged_bytes_and_files_take_the_held_pools() {
        let dir = tempfile::tempdir().unwrap();
        let (path, headers) = (dir.path().join("lbdns.toml"), dir.path().join("probe.headers"));
        std::fs::write(&path, CONFIG).unwrap();
        std::fs::write(&headers, "X-A: 1\n").unwrap();
        let (first, held) = held(&path);
        let held = held.unwrap();

        let again = load_for_reload(&path, Secrets::Read, Some(&held));
        let pools = again.pools.expect("taken");
        assert!(pools.iter().zip(&held.pools).all(|(a, b)| Arc::ptr_eq(a, b)));
        let config = again.config.unwrap();
        assert!(config.pools.is_empty());
        assert_eq!(config.admin.listen.port(), 0, "read past the pools");
        assert_eq!((config.zones[0].line, first.config.unwrap().zones[0].line), (3, 3));

        std::fs::write(&headers, "X-A: 2\n").unwrap();
        let again = load_for_reload(&path, Secrets::Read, Some(&held));
        assert!(again.pools.is_none(), "a headers file changed");
        assert_eq!(again.config.unwrap().pools.len(), 2);
        std::fs::write(&headers, "X-A: 1\n").unwrap();
        std::fs::write(&path, CONFIG.replace("192.0.2.2", "192.0.2.3")).unwrap();
        assert!(load_for_reload(&path, Secrets::Read, Some(&held)).pools.is_none(), "the config changed");
    }
}
