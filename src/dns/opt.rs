//! The OPT record of a reply (RFC 6891): the UDP size, the DO bit echoed, and the
//! options lbdns sends back (ECS with its scope, the cookie reply, an Extended DNS
//! Error). Written without allocation into the reply buffer.

use std::net::IpAddr;

use super::wire;

/// What of the answer the OPT record carries.
pub(super) struct OptReply<'a> {
    /// The whole RCODE: its upper 8 bits go in the OPT record.
    pub rcode: u16,
    /// The ECS scope prefix of the answer.
    pub scope: u8,
    /// Extended DNS Error info code (RFC 8914).
    pub ede: Option<u16>,
    /// The COOKIE option data (client + server cookie).
    pub cookie: Option<&'a [u8; 24]>,
}

/// Writes the OPT record: `ecs` echoed with the answer's scope, the cookie
/// reply, the Extended DNS Error.
pub(super) fn write_opt(out: &mut Vec<u8>, udp_size: u16, e: wire::Edns, a: OptReply<'_>) {
    let cookie = a.cookie;
    let ext = (a.rcode >> 4) as u8;
    out.push(0);
    out.extend_from_slice(&wire::TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    // DO echoed; CO with it (RFC 9824: the reply says compact answers may be NXDOMAIN).
    let flags = match (e.dnssec_ok, e.compact_ok) {
        (true, true) => 0xc0,
        (true, false) => 0x80,
        _ => 0,
    };
    out.extend_from_slice(&[ext, 0, flags, 0]);
    out.extend_from_slice(&(opt_data_len(e, cookie.is_some(), a.ede.is_some()) as u16).to_be_bytes());
    if let Some(s) = e.ecs {
        let n = (s.source_prefix as usize).div_ceil(8);
        out.extend_from_slice(&wire::OPT_ECS.to_be_bytes());
        out.extend_from_slice(&((4 + n) as u16).to_be_bytes());
        out.extend_from_slice(&s.family.to_be_bytes());
        out.push(s.source_prefix);
        out.push(a.scope.min(s.source_prefix));
        match s.addr {
            IpAddr::V4(v) => out.extend_from_slice(&v.octets()[..n]),
            IpAddr::V6(v) => out.extend_from_slice(&v.octets()[..n]),
        }
    }
    if let Some(c) = cookie {
        out.extend_from_slice(&wire::OPT_COOKIE.to_be_bytes());
        out.extend_from_slice(&24u16.to_be_bytes());
        out.extend_from_slice(c);
    }
    if let Some(code) = a.ede {
        out.extend_from_slice(&wire::OPT_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
    }
}

/// The length of the OPT record's options: ECS, COOKIE and EDE.
pub(super) fn opt_data_len(e: wire::Edns, cookie: bool, ede: bool) -> usize {
    let ecs = e.ecs.map(|s| 8 + (s.source_prefix as usize).div_ceil(8)).unwrap_or(0);
    ecs + if cookie { 28 } else { 0 } + if ede { 6 } else { 0 }
}
