//! Signing keys on disk: a zone's CSKs (combined signing keys, DNSKEY flags 257)
//! in BIND's file pair, `K<zone>+<alg>+<tag>.key` (the DNSKEY record, public) and
//! `K<zone>+<alg>+<tag>.private` (`Private-key-format: v1.3`, mode 0600), so
//! that keys made by `dnssec-keygen` load too and lbdns's keys can be read by
//! BIND and Knot tools. Every `K<zone>+*.private` file in a zone's key directory
//! is a key of the zone; its `.key` file must sit beside it and agree with it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::Deserialize;

/// The DNSKEY flags of a CSK: a zone key (256) that is also a secure entry point (1).
pub const CSK_FLAGS: u16 = 257;

/// A signing algorithm lbdns signs with (both give 64-byte signatures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (13): what most zones and all validators use.
    #[default]
    #[serde(rename = "ecdsap256sha256")]
    EcdsaP256Sha256,
    /// Ed25519 (15).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl Algorithm {
    /// The DNSSEC algorithm number (RFC 8624).
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    fn from_number(n: u8) -> Option<Algorithm> {
        match n {
            13 => Some(Algorithm::EcdsaP256Sha256),
            15 => Some(Algorithm::Ed25519),
            _ => None,
        }
    }

    /// The mnemonic BIND writes in `.private` files.
    fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::Ed25519 => "ED25519",
        }
    }
}

/// What went wrong with a key file or directory.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key_dir {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("key_dir {0} holds no key (K{1}+*.private): make one with `lbdns dnssec keygen {1}`")]
    NoKey(PathBuf, String),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Bad(PathBuf, String),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("key_dir {0} already holds a key: use --add to add a second one for a rollover")]
    Exists(PathBuf),
    #[error("cannot make a key: the system random generator failed")]
    Random,
}

/// One CSK: the key pair and what is published of it.
pub struct Key {
    pub algorithm: Algorithm,
    /// The key tag (RFC 4034 appendix B).
    pub tag: u16,
    /// The DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub dnskey: Vec<u8>,
    pair: Pair,
    /// The `.private` file, for messages.
    pub file: PathBuf,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "Key {{ algorithm: {:?}, tag: {}, file: {:?} }}", self.algorithm, self.tag, self.file)
    }
}

/// Signing failed (ring reports no detail).
#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

impl Key {
    /// Signs `data`: the 64-byte signature as RRSIG carries it (RFC 6605: r|s; RFC 8080).
    pub fn sign(&self, data: &[u8]) -> Result<[u8; 64], SignError> {
        let mut sig = [0u8; 64];
        match &self.pair {
            Pair::Ecdsa(p) => {
                let s = p.sign(&SystemRandom::new(), data).map_err(|_| SignError)?;
                sig.copy_from_slice(s.as_ref().get(..64).ok_or(SignError)?);
            }
            Pair::Ed25519(p) => sig.copy_from_slice(p.sign(data).as_ref().get(..64).ok_or(SignError)?),
        }
        Ok(sig)
    }

    /// The SHA-256 DS RDATA (RFC 4509) for this key at `owner` (lower-cased wire).
    pub fn ds(&self, owner: &[u8]) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(owner);
        ctx.update(&self.dnskey);
        let mut ds = Vec::with_capacity(36);
        ds.extend_from_slice(&self.tag.to_be_bytes());
        ds.push(self.algorithm.number());
        ds.push(2);
        ds.extend_from_slice(ctx.finish().as_ref());
        ds
    }
}

/// The key tag of DNSKEY RDATA (RFC 4034 appendix B).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        acc += if i & 1 == 1 { b as u32 } else { (b as u32) << 8 };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

fn dnskey_rdata(algorithm: Algorithm, public: &[u8]) -> Vec<u8> {
    let mut rd = Vec::with_capacity(4 + public.len());
    rd.extend_from_slice(&CSK_FLAGS.to_be_bytes());
    rd.push(3);
    rd.push(algorithm.number());
    rd.extend_from_slice(public);
    rd
}

/// Loads every key in `dir` for the zone `origin` (presentation form, with the final dot).
pub fn load_dir(dir: &Path, origin: &str) -> Result<Vec<Key>, KeyError> {
    let entries = fs::read_dir(dir).map_err(|e| KeyError::Dir(dir.to_path_buf(), e))?;
    // Only this zone's files: one directory may hold several zones' keys (and
    // other credentials, under systemd).
    let prefix = format!("k{}+", origin.to_ascii_lowercase());
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "private"))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix)))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(KeyError::NoKey(dir.to_path_buf(), origin.to_string()));
    }
    files.iter().map(|f| load_pair(f, origin)).collect()
}

/// One key from its `.private` file and the `.key` file beside it.
fn load_pair(private: &Path, origin: &str) -> Result<Key, KeyError> {
    let bad = |m: String| KeyError::Bad(private.to_path_buf(), m);
    let text = fs::read_to_string(private).map_err(|e| KeyError::Read(private.to_path_buf(), e))?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
    };
    let alg_num: u8 = field("Algorithm")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .ok_or_else(|| bad("no `Algorithm:` line".into()))?;
    let algorithm = Algorithm::from_number(alg_num)
        .ok_or_else(|| bad(format!("algorithm {alg_num} is not supported (13 ECDSAP256SHA256 or 15 ED25519)")))?;
    let secret = field("PrivateKey")
        .and_then(|v| B64.decode(v.as_bytes()).ok())
        .filter(|s| s.len() == 32)
        .ok_or_else(|| bad("no `PrivateKey:` line of 32 bytes in base64".into()))?;
    let public_file = private.with_extension("key");
    let public = read_public(&public_file, origin, algorithm)?;
    let pair = match algorithm {
        Algorithm::EcdsaP256Sha256 => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&public);
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            EcdsaKeyPair::from_private_key_and_public_key(alg, &secret, &point, &SystemRandom::new()).map(Pair::Ecdsa)
        }
        Algorithm::Ed25519 => Ed25519KeyPair::from_seed_and_public_key(&secret, &public).map(Pair::Ed25519),
    }
    .map_err(|_| bad(format!("the private key does not match the public key in {}", public_file.display())))?;
    let dnskey = dnskey_rdata(algorithm, &public);
    Ok(Key { algorithm, tag: key_tag(&dnskey), dnskey, pair, file: private.to_path_buf() })
}

/// The public key from a `.key` file: its DNSKEY record must be the zone's, a
/// CSK (flags 257), protocol 3 and of `algorithm`.
fn read_public(file: &Path, origin: &str, algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
    let bad = |m: String| KeyError::Bad(file.to_path_buf(), m);
    let text = fs::read_to_string(file).map_err(|e| KeyError::Read(file.to_path_buf(), e))?;
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .find(|l| l.split_whitespace().any(|t| t.eq_ignore_ascii_case("DNSKEY")))
        .ok_or_else(|| bad("no DNSKEY record".into()))?;
    let toks: Vec<&str> = line.split_whitespace().collect();
    if !toks.first().is_some_and(|o| o.trim_end_matches('.').eq_ignore_ascii_case(origin.trim_end_matches('.'))) {
        return Err(bad(format!("the DNSKEY is not for the zone {origin}")));
    }
    let at = toks.iter().position(|t| t.eq_ignore_ascii_case("DNSKEY")).unwrap_or(0);
    let fields = toks.get(at + 1..at + 4).ok_or_else(|| bad("DNSKEY needs flags, protocol, algorithm, key".into()))?;
    if fields != [CSK_FLAGS.to_string(), "3".into(), algorithm.number().to_string()] {
        let want = format!("{CSK_FLAGS} 3 {}", algorithm.number());
        return Err(bad(format!("DNSKEY {} is not a CSK of the .private file's algorithm ({want})", fields.join(" "))));
    }
    let key = B64.decode(toks[at + 4..].concat().as_bytes()).map_err(|e| bad(format!("public key: {e}")))?;
    let want = match algorithm {
        Algorithm::EcdsaP256Sha256 => 64,
        Algorithm::Ed25519 => 32,
    };
    if key.len() != want {
        return Err(bad(format!("public key of {} bytes, {want} expected", key.len())));
    }
    Ok(key)
}

/// Makes a new CSK for `origin` in `dir` (created if missing); refuses when the
/// directory already holds a key, unless `add` (a second key, for a rollover).
/// Returns the `.key` file written.
pub fn generate(dir: &Path, origin: &str, algorithm: Algorithm, add: bool) -> Result<PathBuf, KeyError> {
    fs::create_dir_all(dir).map_err(|e| KeyError::Write(dir.to_path_buf(), e))?;
    let held = match load_dir(dir, origin) {
        Ok(_) => true,
        Err(KeyError::NoKey(..)) => false,
        Err(e) if add => return Err(e),
        Err(_) => true,
    };
    if held && !add {
        return Err(KeyError::Exists(dir.to_path_buf()));
    }
    let (secret, public) = new_pair(algorithm)?;
    let dnskey = dnskey_rdata(algorithm, &public);
    let tag = key_tag(&dnskey);
    let stem = format!("K{}+{:03}+{:05}", origin.to_ascii_lowercase(), algorithm.number(), tag);
    let private = dir.join(format!("{stem}.private"));
    let public_file = dir.join(format!("{stem}.key"));
    let private_text = format!(
        "Private-key-format: v1.3\nAlgorithm: {} ({})\nPrivateKey: {}\n",
        algorithm.number(),
        algorithm.mnemonic(),
        B64.encode(secret)
    );
    let public_text = format!(
        "; This is a combined signing key (CSK), keyid {tag}, for {origin}\n{origin} 3600 IN DNSKEY {CSK_FLAGS} 3 {} {}\n",
        algorithm.number(),
        B64.encode(&public)
    );
    write_new(&private, private_text.as_bytes(), 0o600)?;
    write_new(&public_file, public_text.as_bytes(), 0o644)?;
    Ok(public_file)
}

/// Writes a file that must not exist yet, with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| KeyError::Write(path.to_path_buf(), e))?;
    f.write_all(bytes).map_err(|e| KeyError::Write(path.to_path_buf(), e))
}

/// A new key pair: the 32-byte private key (P-256 scalar or Ed25519 seed) and
/// the public key as DNSKEY carries it.
fn new_pair(algorithm: Algorithm) -> Result<([u8; 32], Vec<u8>), KeyError> {
    let rng = SystemRandom::new();
    match algorithm {
        Algorithm::Ed25519 => {
            let mut seed = [0u8; 32];
            rng.fill(&mut seed).map_err(|_| KeyError::Random)?;
            let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::Random)?;
            Ok((seed, pair.public_key().as_ref().to_vec()))
        }
        Algorithm::EcdsaP256Sha256 => {
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| KeyError::Random)?;
            let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).map_err(|_| KeyError::Random)?;
            let point = pair.public_key().as_ref();
            let scalar = pkcs8_scalar(doc.as_ref()).ok_or(KeyError::Random)?;
            // The scalar read back must make the same key.
            EcdsaKeyPair::from_private_key_and_public_key(alg, &scalar, point, &rng).map_err(|_| KeyError::Random)?;
            Ok((scalar, point.get(1..).unwrap_or_default().to_vec()))
        }
    }
}

/// The private scalar inside ring's PKCS#8 P-256 document: the ECPrivateKey's
/// `INTEGER 1, OCTET STRING (32)` (RFC 5915).
fn pkcs8_scalar(der: &[u8]) -> Option<[u8; 32]> {
    let at = der.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])? + 5;
    der.get(at..at + 32)?.try_into().ok()
}
