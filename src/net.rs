//! Client addresses and the keys derived from them, shared by the query path (ECS,
//! rate limiting, cookies), the policies and the redirector.
//!
//! A leaf: imports nothing from the crate. Everything here is pure, allocation-free
//! and stable across runs and machines (the keys are not randomly seeded), so that
//! affinity answers stay the same after a restart.

use std::net::IpAddr;

/// The address that stands for a client that sent ECS `addr`/`source_prefix`: for
/// privacy (RFC 7871 section 11) no more than /24 (IPv4) or /56 (IPv6) is used.
pub fn ecs_client(addr: IpAddr, source_prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = source_prefix.min(24) as u32;
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = source_prefix.min(56) as u32;
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// IPv4-mapped IPv6 addresses stand for their IPv4 address.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

/// The client network key: /24 for IPv4, /56 for IPv6, hashed.
pub fn client_key(addr: IpAddr) -> u64 {
    let addr = canonical(addr);
    let (tag, bits) = match addr {
        IpAddr::V4(a) => (4u64, (u32::from(a) & 0xffff_ff00) as u64),
        IpAddr::V6(a) => (6u64, (u128::from(a) >> 72) as u64),
    };
    mix(bits ^ tag.rotate_left(60))
}

/// A stable 64-bit hash of an address, used as the affinity seed of a member.
pub fn addr_seed(addr: IpAddr) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let bytes: [u8; 16] = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64 finalizer: a fast, well-distributed 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_their_ipv4_client() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(canonical(mapped), v4);
        assert_eq!(client_key(mapped), client_key(v4));
    }

    #[test]
    fn client_keys_cover_a_v4_24_and_a_v6_56() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.1"), key("192.0.2.254"));
        assert_ne!(key("192.0.2.1"), key("192.0.3.1"));
        assert_eq!(key("2001:db8:0:1::1"), key("2001:db8:0:ff::1"));
        assert_ne!(key("2001:db8:0:100::1"), key("2001:db8:0:1::1"));
    }
}
