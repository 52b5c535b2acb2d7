//! Pre-signing: the static RRsets of a signed zone's base are signed off the
//! query path, by one background thread per [`Signing`](super::Signing), each
//! time a snapshot with a new base (start, reload, zone file change) or new keys
//! is published, and again before the signatures run low. A zone's table
//! ([`Presigned`]) is keyed as the signature cache is, by what is signed (owner,
//! type, TTL, canonical records, key), so the query path finds a signature by the
//! key it computes anyway, and a record changed through the API simply misses and
//! goes to the cache. The tables are swapped in whole (`ArcSwapOption` per zone):
//! readers never lock. Entries sit back to back in one vector (88 bytes each),
//! found through a table of 4-byte indices. A zone of more than [`MAX_RRSETS`]
//! RRsets is not pre-signed (its signatures would hold more than 200 MB); it is
//! signed while answering, as pool answers are.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashbrown::HashTable;

use super::canon::{self, Canonical};
use super::{Entry, INCEPTION_BACK, JITTER, REFRESH, VALIDITY, ZoneKeys};

/// Zones with more RRsets than this are signed while answering instead.
pub const MAX_RRSETS: usize = 2_000_000;
/// How often the thread looks at the validity left, less a random jitter.
const CHECK_EVERY: u32 = 600;

/// What a zone has to sign ahead: its static RRsets. Implemented by the
/// snapshot's zone base (this module does not know its layout).
pub trait RRsetSource: Send + Sync {
    /// Calls `f` with each RRset's owner (lower-cased wire) and its records
    /// (TYPE to the end of RDATA, back to back).
    fn each_rrset(&self, f: &mut dyn FnMut(&[u8], &[u8]));
    /// How many RRsets `each_rrset` gives.
    fn rrset_count(&self) -> usize;
}

/// One pre-signed signature: the cache key it answers and the entry.
#[derive(Clone, Copy)]
struct Slot {
    key: [u64; 2],
    inception: u32,
    expiration: u32,
    signature: [u8; super::SIG_LEN],
}

/// A zone's pre-made signatures, read-only once built.
#[derive(Default)]
pub struct Presigned {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    /// The earliest expiration: the table is made again before it runs low.
    earliest: u32,
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigned").field("signatures", &self.slots.len()).finish()
    }
}

fn split(key: u128) -> [u64; 2] {
    [key as u64, (key >> 64) as u64]
}

impl Presigned {
    /// The signature made ahead for the cache key `key`, if any.
    #[inline]
    pub fn get(&self, key: u128) -> Option<Entry> {
        let k = split(key);
        let i = self.index.find(k[0], |&i| self.slots.get(i as usize).is_some_and(|s| s.key == k))?;
        let s = self.slots.get(*i as usize)?;
        Some(Entry { inception: s.inception, expiration: s.expiration, signature: s.signature })
    }

    /// How many signatures it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held: the entries and the index at capacity.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// Whether the table should be made again at `now`: some signature would
    /// be refused (less than REFRESH left) before the next two checks.
    pub fn runs_low(&self, now: u32) -> bool {
        !self.slots.is_empty() && self.earliest <= now.saturating_add(REFRESH + 2 * CHECK_EVERY)
    }

    fn push(&mut self, key: u128, e: &Entry) {
        let k = split(key);
        let at = self.slots.len() as u32;
        let slots = &self.slots;
        if self.index.find(k[0], |&i| slots.get(i as usize).is_some_and(|s| s.key == k)).is_some() {
            return;
        }
        self.index.insert_unique(k[0], at, |&i| slots.get(i as usize).map_or(0, |s| s.key[0]));
        self.slots.push(Slot { key: k, inception: e.inception, expiration: e.expiration, signature: e.signature });
        self.earliest = if at == 0 { e.expiration } else { self.earliest.min(e.expiration) };
    }
}

/// Signs every RRset of `source` with each of `zk`'s keys at `now`, windows
/// jittered per signature as on the query path; `None` for a zone too large.
/// A record that cannot be read or a key that fails is left out (the query
/// path signs it then).
pub fn sign_all(hash_key: (u64, u64), zk: &ZoneKeys, source: &dyn RRsetSource, now: u32) -> Option<Presigned> {
    let n = source.rrset_count();
    if n > MAX_RRSETS {
        return None;
    }
    let mut table = Presigned {
        index: HashTable::with_capacity(n * zk.keys.len()),
        slots: Vec::with_capacity(n * zk.keys.len()),
        earliest: 0,
    };
    let (mut canon, mut signed) = (Canonical::default(), Vec::new());
    source.each_rrset(&mut |owner, records| {
        if !canon.read(super::walk(records)) {
            return;
        }
        let labels = canon::labels(owner);
        for (i, key) in zk.keys.iter().enumerate() {
            let id = super::cache_key(hash_key, zk, i, labels, owner, &canon);
            let inception = now.saturating_sub(INCEPTION_BACK);
            let expiration = now.saturating_add(VALIDITY - fastrand::u32(0..JITTER));
            signed.clear();
            super::rrsig_prefix(&mut signed, &canon, key, labels, (inception, expiration), &zk.origin);
            canon.write_signed(owner, &mut signed);
            match key.sign(&signed) {
                Ok(signature) => table.push(id, &Entry { inception, expiration, signature }),
                Err(_) => tracing::debug!(key = key.tag, "DNSSEC pre-signing failed"),
            }
        }
    });
    table.slots.shrink_to_fit();
    Some(table)
}

/// A zone to keep pre-signed: its keys (where the table is published) and its
/// base.
#[derive(Clone)]
pub struct Job {
    pub keys: Arc<ZoneKeys>,
    pub source: Arc<dyn RRsetSource>,
}

/// The background thread's inbox: the latest zones published (only the latest
/// counts) and a bell that wakes it.
pub(super) struct Inbox {
    latest: Arc<Mutex<Option<Vec<Job>>>>,
    bell: SyncSender<()>,
}

impl Inbox {
    /// Starts the thread; `None` if it cannot be started (answers are then
    /// signed while answering, as before).
    pub(super) fn start(hash_key: (u64, u64)) -> Option<Inbox> {
        let latest = Arc::new(Mutex::new(None));
        let (bell, rung) = std::sync::mpsc::sync_channel(1);
        let shared = latest.clone();
        let spawned =
            std::thread::Builder::new().name("lbdns-presign".into()).spawn(move || run(hash_key, &shared, &rung));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the DNSSEC pre-signing thread: signing while answering");
            return None;
        }
        Some(Inbox { latest, bell })
    }

    /// Hands the thread the zones of a snapshot just published; never blocks.
    pub(super) fn send(&self, jobs: Vec<Job>) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(jobs);
        let _ = self.bell.try_send(());
    }
}

/// The thread: waits for zones or for the next check, and signs what has no
/// table, has a new base, or runs low. It ends when its `Signing` is dropped.
fn run(hash_key: (u64, u64), latest: &Mutex<Option<Vec<Job>>>, rung: &Receiver<()>) {
    let mut current: Vec<(Job, bool)> = Vec::new();
    loop {
        let wait = Duration::from_secs(u64::from(CHECK_EVERY - fastrand::u32(0..CHECK_EVERY / 4)));
        match rung.recv_timeout(wait) {
            Ok(()) => {
                let jobs = latest.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
                current = jobs.into_iter().map(|j| (j.clone(), done_before(&current, &j))).collect();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for (job, done) in &mut current {
            let now = super::now();
            if *done && !job.keys.presigned.load().as_ref().is_some_and(|t| t.runs_low(now)) {
                continue;
            }
            *done = true;
            let table = sign_all(hash_key, &job.keys, &*job.source, now);
            job.keys.presigned.store(table.map(Arc::new));
        }
    }
}

/// Whether `job`'s zone (same keys, same base) was signed already.
fn done_before(current: &[(Job, bool)], job: &Job) -> bool {
    current.iter().any(|(j, done)| {
        *done && Arc::ptr_eq(&j.keys, &job.keys) && std::ptr::addr_eq(Arc::as_ptr(&j.source), Arc::as_ptr(&job.source))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    /// RFC 6605 section 6.1's key.
    const PRIVATE: &str = "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n\
                           PrivateKey: GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=\n";
    const PUBLIC: &str = "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
    const HASH_KEY: (u64, u64) = (7, 9);

    fn zone_keys() -> (tempfile::TempDir, ZoneKeys) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Kexample.net.+013+55648.private"), PRIVATE).unwrap();
        let key = format!("example.net. 3600 IN DNSKEY 257 3 13 {PUBLIC}\n");
        std::fs::write(dir.path().join("Kexample.net.+013+55648.key"), key).unwrap();
        let keys = keys::load_dir(dir.path(), "example.net.").unwrap();
        let origin = hickory_proto::rr::Name::from_ascii("example.net.").unwrap();
        (dir, ZoneKeys::new(&origin, keys))
    }

    /// A zone of `n` names with an A RRset each, and one with two TXT records.
    struct Names(Vec<(Vec<u8>, Vec<u8>)>);

    impl RRsetSource for Names {
        fn each_rrset(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
            self.0.iter().for_each(|(owner, records)| f(owner, records));
        }
        fn rrset_count(&self) -> usize {
            self.0.len()
        }
    }

    fn names(n: u8) -> Names {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| {
                let owner = [&[2, b'h', b'0' + i % 10][..], b"\x07example\x03net\x00"].concat();
                (owner, vec![0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, i])
            })
            .collect();
        let txt = [&[0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'b'][..], &[0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'a']].concat();
        v.push((b"\x03txt\x07example\x03net\x00".to_vec(), txt));
        Names(v)
    }

    fn verify(signed: &[u8], signature: &[u8]) -> bool {
        let point = [&[4u8][..], &B64.decode(PUBLIC).unwrap()].concat();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).verify(signed, signature).is_ok()
    }

    /// Every RRset of the source gets a signature, found by the key the query
    /// path computes, that verifies against the DNSKEY over the canonical form
    /// (the TXT records were given out of order).
    #[test]
    fn every_rrset_is_signed_and_verifies() {
        let (_dir, zk) = zone_keys();
        let source = names(10);
        let t0 = 1_800_000_000;
        let table = sign_all(HASH_KEY, &zk, &source, t0).unwrap();
        assert_eq!(table.len(), 11);
        let mut canon = Canonical::default();
        for (owner, records) in &source.0 {
            assert!(canon.read(crate::dnssec::walk(records)));
            let labels = canon::labels(owner);
            let e = table.get(crate::dnssec::cache_key(HASH_KEY, &zk, 0, labels, owner, &canon)).expect("signed");
            assert_eq!(e.inception, t0 - INCEPTION_BACK);
            assert!(e.expiration > t0 + VALIDITY - JITTER && e.expiration <= t0 + VALIDITY);
            let mut signed = Vec::new();
            crate::dnssec::rrsig_prefix(
                &mut signed,
                &canon,
                &zk.keys[0],
                labels,
                (e.inception, e.expiration),
                &zk.origin,
            );
            canon.write_signed(owner, &mut signed);
            assert!(verify(&signed, &e.signature), "{owner:?}");
        }
        assert!(table.get(12345).is_none());
        assert!(table.bytes() >= 11 * 88);
    }

    /// With an injected clock: a table is fresh until less than REFRESH (and
    /// two checks) is left of its earliest signature; made again then, its
    /// windows are later and its signatures still verify.
    #[test]
    fn a_table_running_low_is_made_again() {
        let (_dir, zk) = zone_keys();
        let source = names(3);
        let t0 = 1_800_000_000;
        let table = sign_all(HASH_KEY, &zk, &source, t0).unwrap();
        assert!(!table.runs_low(t0));
        assert!(!table.runs_low(t0 + VALIDITY - JITTER - REFRESH - 2 * CHECK_EVERY - 1));
        let later = t0 + VALIDITY - REFRESH;
        assert!(table.runs_low(later));
        let again = sign_all(HASH_KEY, &zk, &source, later).unwrap();
        assert!(!again.runs_low(later));
        assert!(again.slots.iter().all(|s| s.inception == later - INCEPTION_BACK));
        assert!(again.earliest > table.earliest);
    }

    /// The thread signs a published zone into the keys' table, and a new base
    /// for the same keys replaces it.
    #[test]
    fn the_thread_publishes_tables() {
        let (_dir, zk) = zone_keys();
        let keys = Arc::new(zk);
        let inbox = Inbox::start(HASH_KEY).unwrap();
        let wait = |n: usize| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while keys.presigned.load().as_ref().map_or(0, |t| t.len()) != n {
                assert!(std::time::Instant::now() < deadline, "no table of {n}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        inbox.send(vec![Job { keys: keys.clone(), source: Arc::new(names(4)) }]);
        wait(5);
        inbox.send(vec![Job { keys: keys.clone(), source: Arc::new(names(7)) }]);
        wait(8);
    }
}
