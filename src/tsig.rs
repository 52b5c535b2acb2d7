//! TSIG keys (RFC 8945): the algorithms lbdns accepts, the key table the query
//! path looks keys up in, and `lbdns tsig-keygen`'s BIND `key` clause.
//!
//! The table is built once per config (start-up and each reload) and held by the
//! snapshot, so a reload changes keys with the one swap that changes everything
//! else. Names are kept in lower-cased wire format, the canonical form the MAC is
//! computed over, so that a lookup compares bytes and allocates nothing. Nothing
//! here shows a secret: `Debug` prints names and algorithms only.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use hickory_proto::rr::Name;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

/// A TSIG algorithm lbdns signs and verifies with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
    /// For old clients only (RFC 8945 section 6: SHA-1 is "MAY" and deprecated).
    #[serde(rename = "hmac-sha1")]
    HmacSha1,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::HmacSha256, Algorithm::HmacSha512, Algorithm::HmacSha1];

    /// The algorithm's name as written in configs and key clauses.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
            Algorithm::HmacSha1 => "hmac-sha1",
        }
    }

    /// The algorithm name as it appears in a TSIG record (lower-cased wire format).
    pub fn wire(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
        }
    }

    /// The length of a full MAC, which is also the length of a generated secret.
    pub fn mac_len(self) -> usize {
        self.ring().digest_algorithm().output_len()
    }

    /// The algorithm named `name` (case-insensitive, a final dot allowed).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let n = name.trim_end_matches('.');
        Algorithm::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(n))
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
            Algorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One key: its name, algorithm and HMAC key.
pub struct Key {
    pub name: Name,
    /// `name` lower-cased in wire format.
    pub wire: Box<[u8]>,
    pub algorithm: Algorithm,
    pub hmac: hmac::Key,
}

impl Key {
    pub fn new(name: Name, algorithm: Algorithm, secret: &[u8]) -> Key {
        let wire = lower_wire(&name);
        Key { name, wire, algorithm, hmac: hmac::Key::new(algorithm.ring(), secret) }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} {})", self.name, self.algorithm)
    }
}

/// The keys of `[[tsig]]`, looked up by name and algorithm.
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<Arc<Key>>,
}

impl Keys {
    pub fn new(keys: Vec<Key>) -> Keys {
        Keys { keys: keys.into_iter().map(Arc::new).collect() }
    }

    /// The key named `name` for `algorithm` (both lower-cased wire format). A few
    /// keys at most: a scan is as fast as a map and needs no hashing.
    pub fn find(&self, name: &[u8], algorithm: &[u8]) -> Option<&Arc<Key>> {
        self.keys.iter().find(|k| &*k.wire == name && k.algorithm.wire() == algorithm)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key named `name` (what a zone's `transfer` names for NOTIFY).
    pub fn named(&self, name: &Name) -> Option<&Arc<Key>> {
        self.keys.iter().find(|k| k.name == *name)
    }
}

/// `name` in wire format, lower-cased.
fn lower_wire(name: &Name) -> Box<[u8]> {
    let mut w = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        w.push(label.len() as u8);
        w.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    w.push(0);
    w.into()
}

/// The system's random source failed: no secret can be made.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A BIND `key` clause for `name` with a fresh random secret as long as the
/// algorithm's output (RFC 8945 section 6 asks for at least that much): what
/// `lbdns tsig-keygen` prints, and what `secret_file`, `nsupdate -k`, `dig -k`
/// and `kdig -k` read.
pub fn keygen(name: &Name, algorithm: Algorithm) -> Result<String, RandomError> {
    let mut secret = vec![0u8; algorithm.mac_len()];
    SystemRandom::new().fill(&mut secret).map_err(|_| RandomError)?;
    let secret = base64::engine::general_purpose::STANDARD.encode(&secret);
    Ok(format!("key \"{}\" {{\n\talgorithm {algorithm};\n\tsecret \"{secret}\";\n}};\n", name.to_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_by_lower_cased_name_and_algorithm() {
        let keys = Keys::new(vec![Key::new(Name::from_ascii("Update-Key.").unwrap(), Algorithm::HmacSha256, b"s")]);
        assert!(keys.find(b"\x0aupdate-key\x00", b"\x0bhmac-sha256\x00").is_some());
        assert!(keys.find(b"\x0aupdate-key\x00", b"\x0bhmac-sha512\x00").is_none());
        assert!(keys.find(b"\x05other\x00", b"\x0bhmac-sha256\x00").is_none());
    }

    #[test]
    fn keygen_makes_a_secret_as_long_as_the_mac() {
        for alg in Algorithm::ALL {
            let clause = keygen(&Name::from_ascii("k.").unwrap(), alg).unwrap();
            let secret = clause.split('"').nth(3).unwrap();
            let bytes = base64::engine::general_purpose::STANDARD.decode(secret).unwrap();
            assert_eq!(bytes.len(), alg.mac_len(), "{clause}");
            assert!(clause.contains(&format!("algorithm {};", alg.name())), "{clause}");
        }
        assert_eq!(Algorithm::from_name("HMAC-SHA1."), Some(Algorithm::HmacSha1));
        assert_eq!(Algorithm::from_name("hmac-md5"), None);
    }
}
