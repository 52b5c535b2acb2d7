//! DNS Cookies, server side (RFC 7873), with the interoperable server cookie of
//! RFC 9018: Version 1 | Reserved | Timestamp | SipHash-2-4(secret; client cookie |
//! version | reserved | timestamp | client address). Servers given the same secret
//! (anycast nodes, a cluster) accept each other's cookies.
//!
//! A reply to a query that carries a client cookie carries a fresh server cookie.
//! A query whose server cookie is valid proves that the client received an earlier
//! reply at its address, so it cannot be spoofed: response rate limiting lets it
//! through, and a rate-limited client that sent only a client cookie (or a stale
//! one) is answered BADCOOKIE with a fresh cookie instead of a truncated reply.

use std::hash::Hasher;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use siphasher::sip::SipHasher24;

/// How a query's cookie checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieCheck {
    /// No COOKIE option (or cookies are off).
    #[default]
    None,
    /// A client cookie alone, or with a server cookie that is not ours or too old.
    ClientOnly,
    /// A server cookie we made for this client cookie and address, in date.
    Valid,
}

/// A server cookie is accepted for an hour after it was made and up to five minutes
/// before (clock differences between servers sharing the secret), as RFC 9018 says.
const MAX_AGE: u32 = 3600;
const MAX_AHEAD: u32 = 300;

#[derive(Clone)]
pub struct Cookies {
    secret: [u8; 16],
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookies { secret: <hidden> }")
    }
}

impl Cookies {
    pub fn new(secret: [u8; 16]) -> Cookies {
        Cookies { secret }
    }

    /// A random secret, for a server that does not share cookies with others.
    pub fn random() -> Cookies {
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&fastrand::u64(..).to_le_bytes());
        secret[8..].copy_from_slice(&fastrand::u64(..).to_le_bytes());
        // fastrand is not a CSPRNG: mix in the OS's randomness that std's hasher keys use.
        let os = std::collections::hash_map::RandomState::new();
        let mut h = std::hash::BuildHasher::build_hasher(&os);
        h.write(&secret);
        let extra = h.finish().to_le_bytes();
        for (s, e) in secret.iter_mut().zip(extra.iter().cycle()) {
            *s ^= e;
        }
        Cookies { secret }
    }

    /// Seconds since the Unix epoch, as the 32-bit timestamp of RFC 9018.
    pub fn now() -> u32 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
    }

    /// The server cookie for `client_cookie` from `client` at time `now`.
    pub fn make(&self, client_cookie: &[u8; 8], client: IpAddr, now: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 1;
        c[4..8].copy_from_slice(&now.to_be_bytes());
        let hash = self.hash(client_cookie, &c[..8], client);
        c[8..].copy_from_slice(&hash);
        c
    }

    /// Whether `server_cookie` is one we made for `client_cookie` and `client`, in date.
    pub fn check(&self, client_cookie: &[u8; 8], server_cookie: &[u8], client: IpAddr, now: u32) -> bool {
        if server_cookie.len() != 16 || server_cookie[0] != 1 {
            return false;
        }
        let made = u32::from_be_bytes([server_cookie[4], server_cookie[5], server_cookie[6], server_cookie[7]]);
        // Serial-number arithmetic (RFC 1982): the timestamp wraps in 2106.
        let age = now.wrapping_sub(made);
        if age > MAX_AGE && made.wrapping_sub(now) > MAX_AHEAD {
            return false;
        }
        let hash = self.hash(client_cookie, &server_cookie[..8], client);
        subtle::ConstantTimeEq::ct_eq(&hash[..], &server_cookie[8..]).into()
    }

    fn hash(&self, client_cookie: &[u8; 8], head: &[u8], client: IpAddr) -> [u8; 8] {
        let mut h = SipHasher24::new_with_key(&self.secret);
        h.write(client_cookie);
        h.write(head);
        match crate::net::canonical(client) {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.finish().to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 9018 Appendix A.1 and A.2: the published server cookies, byte for byte.
    #[test]
    fn rfc9018_test_vectors() {
        let c = Cookies::new(crate::secrets::parse_cookie_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap());
        let cc: [u8; 8] = hex("2464c4abcf10c957").try_into().unwrap();
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let a1 = c.make(&cc, ip, 1559731985);
        assert_eq!(a1.to_vec(), hex("010000005cf79f111f8130c3eee29480"));
        // A.2: forty minutes later the cookie is still valid, and a fresh one is made.
        assert!(c.check(&cc, &a1, ip, 1559734385));
        assert_eq!(c.make(&cc, ip, 1559734385).to_vec(), hex("010000005cf7a871d4a564a1442aca77"));
    }

    #[test]
    fn cookies_are_bound_to_client_cookie_address_secret_and_time() {
        let c = Cookies::new([7; 16]);
        let cc = [1u8; 8];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = 1_800_000_000;
        let sc = c.make(&cc, ip, now);
        assert!(c.check(&cc, &sc, ip, now));
        assert!(c.check(&cc, &sc, ip, now + 3600), "an hour old is still in date");
        assert!(!c.check(&cc, &sc, ip, now + 3601), "too old");
        assert!(c.check(&cc, &sc, ip, now - 300), "made up to 5 min ahead of our clock");
        assert!(!c.check(&cc, &sc, ip, now - 301));
        assert!(!c.check(&[2u8; 8], &sc, ip, now), "another client cookie");
        assert!(!c.check(&cc, &sc, "192.0.2.2".parse().unwrap(), now), "another address");
        assert!(!Cookies::new([8; 16]).check(&cc, &sc, ip, now), "another secret");
        let mut forged = sc;
        forged[15] ^= 1;
        assert!(!c.check(&cc, &forged, ip, now));
        assert!(!c.check(&cc, &sc[..8], ip, now), "wrong length");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(c.check(&cc, &sc, mapped, now), "IPv4-mapped is the same client");
    }
}
