//! DNSSEC online signing: each zone's keys ([`keys`]), the canonical form of an
//! RRset ([`canon`]) and a bounded signature cache shared by the query threads
//! ([`cache`]). The table of signed zones ([`Signing`]) is built with the config
//! and held by the snapshot, as the TSIG keys are: a reload that brings a new key
//! changes signing with the one swap that changes everything else.
//!
//! The static RRsets of a zone's base are signed ahead, in the background, each
//! time a snapshot is published ([`presign`]). The rest is signed while answering
//! (a pool's answer depends on the client and on health, so it cannot be signed
//! ahead; API changes; NSEC and the SOA), and then cached by what was signed: the
//! owner, type, TTL and the canonical records, hashed with a per-process key. An
//! RRset costs one signature per key per validity period, whatever order its
//! records were written in and however many queries ask for it. Signatures are
//! valid from an hour back (clock skew) for [`VALIDITY`] less a random jitter (so
//! that they do not all expire at once), and are made again when less than
//! [`REFRESH`] of that is left.

pub mod cache;
pub mod canon;
pub mod keys;
pub mod presign;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

pub use cache::{Entry, SigCache};
pub use canon::Canonical;
pub use keys::{Algorithm, Key, KeyError};
pub use presign::{Presigned, RRsetSource};

pub const TYPE_RRSIG: u16 = 46;
pub const TYPE_NSEC: u16 = 47;
pub const TYPE_DNSKEY: u16 = 48;
pub const TYPE_NSEC3: u16 = 50;
pub const TYPE_NSEC3PARAM: u16 = 51;
pub const TYPE_CDS: u16 = 59;
pub const TYPE_CDNSKEY: u16 = 60;
/// The NXNAME meta-type of compact denial (RFC 9824).
pub const TYPE_NXNAME: u16 = 128;
/// Both algorithms make 64-byte signatures.
pub const SIG_LEN: usize = 64;
/// How long a signature is valid (less up to [`JITTER`]).
pub const VALIDITY: u32 = 7 * 86_400;
/// A signature with less than this left is made again.
pub const REFRESH: u32 = 3 * 86_400;
pub const JITTER: u32 = 86_400;
/// Inception this far back, for validators whose clocks are behind.
pub const INCEPTION_BACK: u32 = 3_600;
/// The TTL of DNSKEY, CDS and CDNSKEY.
pub const KEY_TTL: u32 = 3_600;
/// Signature cache slots (about 100 bytes each), when any zone is signed.
pub const CACHE_SLOTS: usize = 1 << 15;

/// Whether records of type `rtype` are the signer's to make in a signed zone:
/// DNSKEY, CDS and CDNSKEY (from the key files), RRSIG and NSEC (made while
/// answering), and NSEC3 and NSEC3PARAM (which compact denial does not use, and
/// which would contradict it). A zone file, an API write or an UPDATE that
/// holds one is refused: served beside what lbdns makes, it would publish a key
/// or a denial the zone does not sign with. DS is not among them: at a
/// delegation it is the child's, and the zone signs it like any other RRset.
pub fn is_signer_type(rtype: hickory_proto::rr::RecordType) -> bool {
    matches!(
        u16::from(rtype),
        TYPE_RRSIG | TYPE_NSEC | TYPE_DNSKEY | TYPE_NSEC3 | TYPE_NSEC3PARAM | TYPE_CDS | TYPE_CDNSKEY
    )
}

/// The signed zones, by lower-cased wire origin, and the signature cache.
pub struct Signing {
    zones: FxHashMap<Box<[u8]>, Arc<ZoneKeys>>,
    cache: SigCache,
    hash_key: (u64, u64),
    signatures: AtomicU64,
    /// The pre-signing thread, started by the first publish of a signed zone.
    presigner: std::sync::OnceLock<Option<presign::Inbox>>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing").field("zones", &self.zones.values().collect::<Vec<_>>()).finish()
    }
}

impl Default for Signing {
    fn default() -> Self {
        Signing::new(Vec::new())
    }
}

/// One signed zone: its keys and the apex RRsets made of them.
#[derive(Debug)]
pub struct ZoneKeys {
    /// The origin, lower-cased wire: the signer name.
    pub origin: Box<[u8]>,
    pub keys: Vec<Key>,
    /// DNSKEY, CDS and CDNSKEY records (TYPE to the end of RDATA), back to back.
    dnskey: Box<[u8]>,
    cds: Box<[u8]>,
    cdnskey: Box<[u8]>,
    /// The static RRsets' signatures made ahead ([`presign`]), once made.
    pub presigned: arc_swap::ArcSwapOption<Presigned>,
}

impl ZoneKeys {
    /// The keys of the zone `origin`.
    pub fn new(origin: &hickory_proto::rr::Name, keys: Vec<Key>) -> ZoneKeys {
        let origin = lower_wire(origin);
        let enc = |rtype: u16, rdata: &dyn Fn(&Key) -> Vec<u8>| -> Box<[u8]> {
            let mut out = Vec::new();
            for k in &keys {
                let rd = rdata(k);
                out.extend_from_slice(&rtype.to_be_bytes());
                out.extend_from_slice(&1u16.to_be_bytes());
                out.extend_from_slice(&KEY_TTL.to_be_bytes());
                out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                out.extend_from_slice(&rd);
            }
            out.into()
        };
        let dnskey = enc(TYPE_DNSKEY, &|k| k.dnskey.clone());
        let cdnskey = enc(TYPE_CDNSKEY, &|k| k.dnskey.clone());
        let cds = enc(TYPE_CDS, &|k| k.ds(&origin));
        ZoneKeys { origin, keys, dnskey, cds, cdnskey, presigned: Default::default() }
    }

    /// The apex's DNSKEY, CDS or CDNSKEY RRset: its records (TYPE to the end
    /// of RDATA, back to back) and how many.
    pub fn rrset(&self, rtype: u16) -> Option<(&[u8], u16)> {
        let data = match rtype {
            TYPE_DNSKEY => &self.dnskey,
            TYPE_CDS => &self.cds,
            TYPE_CDNSKEY => &self.cdnskey,
            _ => return None,
        };
        Some((data, self.keys.len() as u16))
    }

    /// One SHA-256 DS record per key, in presentation format (`lbdns dnssec ds`).
    pub fn ds_lines(&self, origin: &str) -> Vec<String> {
        let line = |k: &Key| {
            let hex: String = k.ds(&self.origin)[4..].iter().map(|b| format!("{b:02X}")).collect();
            format!("{origin} IN DS {} {} 2 {hex}", k.tag, k.algorithm.number())
        };
        self.keys.iter().map(line).collect()
    }

    /// The bytes of the RRSIG records (one per key) of an RRset whose owner is
    /// written in `owner_len` bytes.
    pub fn rrsigs_len(&self, owner_len: usize) -> usize {
        self.keys.len() * (owner_len + 10 + 18 + self.origin.len() + SIG_LEN)
    }
}

/// The lower-cased wire form of a name: the form RRSIG signer names and the
/// snapshot's zone keys take.
fn lower_wire(name: &hickory_proto::rr::Name) -> Box<[u8]> {
    let mut v = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        v.push(label.len() as u8);
        v.extend(label.iter().map(|b| b.to_ascii_lowercase()));
    }
    v.push(0);
    v.into()
}

/// Buffers reused from query to query.
#[derive(Default)]
pub struct Scratch {
    pub canon: Canonical,
    signed: Vec<u8>,
    rdata: Vec<u8>,
}

/// Seconds since the epoch, as RRSIG times count them.
pub fn now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

impl Signing {
    pub fn new(zones: Vec<ZoneKeys>) -> Signing {
        let mut seed = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).is_err() {
            seed = fastrand::u128(..).to_le_bytes();
        }
        let (k0, k1) = seed.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let cache = SigCache::new(if zones.is_empty() { 0 } else { CACHE_SLOTS });
        Signing {
            zones: zones.into_iter().map(|z| (z.origin.clone(), Arc::new(z))).collect(),
            cache,
            hash_key: (word(k0), word(k1)),
            signatures: AtomicU64::new(0),
            presigner: std::sync::OnceLock::new(),
        }
    }

    /// Has the static RRsets of the signed zones among `zones` (origin,
    /// lower-cased wire, and base) signed ahead, in the background: called
    /// with each snapshot published. Never blocks; only the latest call counts.
    pub fn presign<'z>(&self, zones: impl Iterator<Item = (&'z [u8], Arc<dyn RRsetSource>)>) {
        if self.zones.is_empty() {
            return;
        }
        let jobs: Vec<presign::Job> = zones
            .filter_map(|(origin, source)| Some(presign::Job { keys: self.zones.get(origin)?.clone(), source }))
            .collect();
        if let Some(inbox) = self.presigner.get_or_init(|| presign::Inbox::start(self.hash_key)) {
            inbox.send(jobs);
        }
    }

    /// Signatures made ahead and held, over all zones.
    pub fn presigned(&self) -> usize {
        self.zones.values().map(|z| z.presigned.load().as_ref().map_or(0, |t| t.len())).sum()
    }

    /// Bytes held by the signatures made ahead.
    pub fn presigned_bytes(&self) -> usize {
        self.zones.values().map(|z| z.presigned.load().as_ref().map_or(0, |t| t.bytes())).sum()
    }

    /// The keys of the zone `origin` (lower-cased wire), if it is signed.
    #[inline]
    pub fn zone(&self, origin: &[u8]) -> Option<&ZoneKeys> {
        if self.zones.is_empty() {
            return None;
        }
        self.zones.get(origin).map(|z| &**z)
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Signatures made so far (cache misses).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// Bytes held by the signature cache.
    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Signs the RRset read into `scratch.canon`, owned by `owner` (lower-cased
    /// wire), with each of `zk`'s keys, from the cache when it holds a fresh
    /// signature: `emit` gets each RRSIG's RDATA. A key that fails to sign is
    /// left out (and logged): the answer then does not validate, but is given.
    pub fn sign(&self, zk: &ZoneKeys, scratch: &mut Scratch, owner: &[u8], now: u32, mut emit: impl FnMut(&[u8])) {
        let Scratch { canon, signed, rdata } = scratch;
        let labels = canon::labels(owner);
        let ahead = zk.presigned.load();
        let fresh = |e: &Entry| e.inception <= now && e.expiration > now + REFRESH;
        for (i, key) in zk.keys.iter().enumerate() {
            let id = cache_key(self.hash_key, zk, i, labels, owner, canon);
            let made = ahead.as_ref().and_then(|t| t.get(id)).filter(fresh);
            let entry = match made.or_else(|| self.cache.get(id).filter(fresh)) {
                Some(e) => e,
                None => {
                    let inception = now.saturating_sub(INCEPTION_BACK);
                    let expiration = now.saturating_add(VALIDITY - fastrand::u32(0..JITTER));
                    signed.clear();
                    rrsig_prefix(signed, canon, key, labels, (inception, expiration), &zk.origin);
                    canon.write_signed(owner, signed);
                    let Ok(signature) = key.sign(signed) else {
                        tracing::debug!(key = key.tag, "DNSSEC signing failed");
                        continue;
                    };
                    self.signatures.fetch_add(1, Ordering::Relaxed);
                    let e = Entry { inception, expiration, signature };
                    self.cache.put(id, &e);
                    e
                }
            };
            rdata.clear();
            rrsig_prefix(rdata, canon, key, labels, (entry.inception, entry.expiration), &zk.origin);
            rdata.extend_from_slice(&entry.signature);
            emit(rdata);
        }
    }
}

/// The cache key of a signature: everything signed but the validity window,
/// hashed with the per-process `hash_key`.
fn cache_key(
    hash_key: (u64, u64),
    zk: &ZoneKeys,
    key_index: usize,
    labels: u8,
    owner: &[u8],
    canon: &Canonical,
) -> u128 {
    let mut h = SipHasher13::new_with_keys(hash_key.0, hash_key.1);
    h.write(&zk.origin);
    h.write_usize(key_index);
    h.write_u8(labels);
    h.write_u16(canon.rtype);
    h.write_u32(canon.ttl);
    h.write(owner);
    for rd in canon.records() {
        h.write_usize(rd.len());
        h.write(rd);
    }
    h.finish128().as_u128()
}

/// The records encoded back to back in `data`, each TYPE to the end of RDATA.
fn walk(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = 10 + u16::from_be_bytes([*data.get(8)?, *data.get(9)?]) as usize;
        let rec = data.get(..len)?;
        data = &data[len..];
        Some(rec)
    })
}

/// The RRSIG RDATA up to the signature (RFC 4034 section 3.1).
fn rrsig_prefix(out: &mut Vec<u8>, canon: &Canonical, key: &Key, labels: u8, window: (u32, u32), signer: &[u8]) {
    out.extend_from_slice(&canon.rtype.to_be_bytes());
    out.push(key.algorithm.number());
    out.push(labels);
    out.extend_from_slice(&canon.ttl.to_be_bytes());
    out.extend_from_slice(&window.1.to_be_bytes());
    out.extend_from_slice(&window.0.to_be_bytes());
    out.extend_from_slice(&key.tag.to_be_bytes());
    out.extend_from_slice(signer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    /// RFC 6605 section 6.1: the key, its DS, and the RRSIG of www.example.net. A.
    const PRIVATE: &str = "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n\
                           PrivateKey: GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=\n";
    const PUBLIC: &str = "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
    const DS: &str = "b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17";
    const SIG: &str = "qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==";
    const EXAMPLE_NET: &[u8] = b"\x07example\x03net\x00";
    const WWW: &[u8] = b"\x03www\x07example\x03net\x00";
    /// www.example.net. 3600 IN A 192.0.2.1, TYPE to the end of RDATA.
    const A: [u8; 14] = [0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1];

    fn rfc_key() -> (tempfile::TempDir, Vec<Key>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Kexample.net.+013+55648.private"), PRIVATE).unwrap();
        let key = format!("example.net. 3600 IN DNSKEY 257 3 13 {PUBLIC}\n");
        std::fs::write(dir.path().join("Kexample.net.+013+55648.key"), key).unwrap();
        let keys = keys::load_dir(dir.path(), "example.net.").unwrap();
        (dir, keys)
    }

    fn verify(signed: &[u8], signature: &[u8]) -> bool {
        let mut point = vec![4u8];
        point.extend_from_slice(&B64.decode(PUBLIC).unwrap());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).verify(signed, signature).is_ok()
    }

    /// The key loads from BIND's files with the RFC's key tag and DS, and the
    /// data signed, built from the canonical form, is what the RFC's signature
    /// verifies over.
    #[test]
    fn rfc6605_vector() {
        let (_dir, keys) = rfc_key();
        assert_eq!(keys[0].tag, 55648);
        let ds: String = keys[0].ds(EXAMPLE_NET)[4..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ds, DS);
        let mut canon = Canonical::default();
        assert!(canon.read(std::iter::once(&A[..])));
        let mut signed = Vec::new();
        // 20100812100439 and 20100909100439.
        rrsig_prefix(&mut signed, &canon, &keys[0], 3, (1_281_607_479, 1_284_026_679), EXAMPLE_NET);
        canon.write_signed(WWW, &mut signed);
        assert!(verify(&signed, &B64.decode(SIG).unwrap()));
    }

    /// Signing at an injected time: the RRSIG verifies, comes from the cache
    /// while fresh (the same bytes), and is made again, with a later window,
    /// once less than REFRESH of it is left.
    #[test]
    fn signatures_are_cached_then_rolled_over() {
        let (_dir, keys) = rfc_key();
        let origin = hickory_proto::rr::Name::from_ascii("Example.NET.").unwrap();
        let signing = Signing::new(vec![ZoneKeys::new(&origin, keys)]);
        let zk = signing.zone(EXAMPLE_NET).unwrap();
        let mut scratch = Scratch::default();
        let mut sign_at = |now: u32| {
            assert!(scratch.canon.read(std::iter::once(&A[..])));
            let mut rdatas = Vec::new();
            signing.sign(zk, &mut scratch, WWW, now, |rd| rdatas.push(rd.to_vec()));
            assert_eq!(rdatas.len(), 1);
            rdatas.remove(0)
        };
        let t0 = 1_800_000_000;
        let first = sign_at(t0);
        let (window, signature) = (&first[8..16], &first[first.len() - 64..]);
        let expiration = u32::from_be_bytes(window[..4].try_into().unwrap());
        let inception = u32::from_be_bytes(window[4..].try_into().unwrap());
        assert_eq!(inception, t0 - INCEPTION_BACK);
        assert!(expiration > t0 + VALIDITY - JITTER && expiration <= t0 + VALIDITY);
        let mut signed = first[..first.len() - 64].to_vec();
        let mut canon = Canonical::default();
        canon.read(std::iter::once(&A[..]));
        canon.write_signed(WWW, &mut signed);
        assert!(verify(&signed, signature));
        assert_eq!(signing.signatures(), 1);
        assert_eq!(sign_at(t0 + VALIDITY - JITTER - REFRESH - 1), first, "fresh: from the cache");
        assert_eq!(signing.signatures(), 1);
        let later = sign_at(t0 + VALIDITY - REFRESH);
        assert_eq!(signing.signatures(), 2, "too close to expiry: signed again");
        assert!(u32::from_be_bytes(later[8..12].try_into().unwrap()) > expiration);
    }
}
