//! Parsing a query from wire bytes, without allocation.
//!
//! Only what answering needs is decoded: the header, the one question (its name
//! lower-cased into a fixed buffer, with the offset of every label so that owner
//! names can be written as compression pointers into the question), and the OPT
//! record with the options lbdns acts on (Client Subnet, Cookie). Answer and
//! authority sections of a query are skipped over, but checked for structure.
//!
//! Every malformed input ends in [`Parsed::Drop`] or a FORMERR, never a panic: all
//! indexing goes through `get`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_DS: u16 = 43;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_MAILB: u16 = 253;
pub const TYPE_MAILA: u16 = 254;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const OPT_ECS: u16 = 8;
pub const OPT_COOKIE: u16 = 10;
/// Extended DNS Error (RFC 8914).
pub const OPT_EDE: u16 = 15;
/// EDE info codes lbdns sends: not authoritative for the name, opcode or type not served.
pub const EDE_NOT_AUTHORITATIVE: u16 = 20;
pub const EDE_NOT_SUPPORTED: u16 = 21;

/// A parsed EDNS Client Subnet option (RFC 7871).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    pub family: u16,
    pub source_prefix: u8,
    /// The address as sent (bits beyond the source prefix are zero).
    pub addr: IpAddr,
}

/// The query's OPT record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// The CO flag: the client takes NXDOMAIN with compact denial (RFC 9824).
    pub compact_ok: bool,
    pub ecs: Option<ClientSubnet>,
    /// Client cookie (8 bytes).
    pub client_cookie: Option<[u8; 8]>,
    /// The server cookie sent with it (8 to 32 bytes; `server_cookie_len` 0 = none).
    pub server_cookie: [u8; 32],
    pub server_cookie_len: u8,
    /// A COOKIE option of a wrong length, or a second one: FORMERR from a server
    /// that answers cookies (RFC 7873 section 5.2.2), ignored by one that does not.
    pub cookie_malformed: bool,
}

impl Edns {
    pub fn server_cookie(&self) -> &[u8] {
        &self.server_cookie[..self.server_cookie_len as usize]
    }
}

/// A query, decoded enough to answer it.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    /// End of the question section in the packet: the question is echoed as sent.
    pub question_end: usize,
    pub qtype: u16,
    pub qclass: u16,
    /// The question name in wire format, lower-cased.
    pub qname: [u8; 255],
    pub qname_len: usize,
    /// Offset of every label in `qname` (root excluded).
    pub label_offsets: [u8; 128],
    pub labels: usize,
    pub edns: Option<Edns>,
    /// QDCOUNT was 0: only a query for a server cookie (RFC 7873 section 5.4),
    /// which must carry a COOKIE option; the question fields are empty.
    pub no_question: bool,
    /// Where the TSIG record starts (the last additional record; 0 = none).
    pub tsig_start: usize,
}

impl Query {
    pub fn qname(&self) -> &[u8] {
        &self.qname[..self.qname_len]
    }

    /// The suffix of the question name that starts at label `i`.
    pub fn suffix(&self, i: usize) -> &[u8] {
        let off = if i >= self.labels { self.qname_len - 1 } else { self.label_offsets[i] as usize };
        &self.qname[off..self.qname_len]
    }

    /// Byte offset in the packet of the suffix starting at label `i`, for a
    /// compression pointer (the question starts at offset 12).
    pub fn suffix_offset(&self, i: usize) -> u16 {
        let off = if i >= self.labels { self.qname_len - 1 } else { self.label_offsets[i] as usize };
        12 + off as u16
    }
}

/// The result of parsing a datagram.
#[derive(Debug)]
pub enum Parsed {
    /// Not worth an answer (too short, or a response).
    Drop,
    /// Answer with this RCODE and no question (header id, opcode and `rd` echoed;
    /// `rd` is false for NOTIMP).
    Error { id: u16, opcode: u8, rd: bool, rcode: u8 },
}

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// Extended RCODE 16: only expressible with OPT.
pub const RCODE_BADVERS: u16 = 16;
pub const RCODE_BADCOOKIE: u16 = 23;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parses a query into `q` (reused across queries by the caller).
pub fn parse(packet: &[u8], q: &mut Query) -> Result<(), Parsed> {
    if packet.len() < 12 {
        return Err(Parsed::Drop);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = packet[2];
    if flags & 0x80 != 0 {
        return Err(Parsed::Drop);
    }
    let opcode = (flags >> 3) & 0x0f;
    let rd = flags & 0x01 != 0;
    let parsed = parse_sections(packet, q, id, opcode, rd);
    if opcode != 0 {
        // Only QUERY is served. The NOTIMP reply echoes the question and the OPT
        // record when they parse (as Knot does), else it is the header alone; it
        // echoes no flag, not even RD, which belongs to a query (ISC's EDNS
        // compliance test "opcodeflg", RFC 8906 section 8.1.4).
        return parsed.map_err(|_| Parsed::Error { id, opcode, rd: false, rcode: RCODE_NOTIMP });
    }
    parsed
}

/// Parses everything after the first four header bytes into `q`.
fn parse_sections(packet: &[u8], q: &mut Query, id: u16, opcode: u8, rd: bool) -> Result<(), Parsed> {
    let formerr = Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR };
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let nscount = u16::from_be_bytes([packet[8], packet[9]]);
    let arcount = u16::from_be_bytes([packet[10], packet[11]]);
    if qdcount > 1 {
        return Err(formerr);
    }
    q.id = id;
    q.opcode = opcode;
    q.rd = rd;
    q.cd = packet[3] & 0x10 != 0;
    q.edns = None;
    q.no_question = qdcount == 0;
    q.tsig_start = 0;
    let mut pos = 12;
    let qtype = if q.no_question {
        q.qname[0] = 0;
        q.qname_len = 1;
        q.labels = 0;
        q.qtype = 0;
        q.qclass = 0;
        q.question_end = pos;
        0
    } else {
        pos = parse_question(packet, q).ok_or(formerr)?;
        q.qtype
    };

    // Answer and authority sections: skip, checking structure.
    for _ in 0..(ancount as usize + nscount as usize) {
        pos = skip_rr(packet, pos).ok_or(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR })?;
    }
    for i in 0..arcount {
        let name_end = skip_name(packet, pos).ok_or(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR })?;
        let rtype = u16_at(packet, name_end).ok_or(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR })?;
        let end = skip_rr(packet, pos).ok_or(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR })?;
        if rtype == TYPE_OPT {
            // RFC 6891: one OPT, owned by the root.
            if q.edns.is_some() || name_end != pos + 1 {
                return Err(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR });
            }
            let edns =
                parse_opt(packet, name_end, end).ok_or(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR })?;
            q.edns = Some(edns);
        } else if rtype == super::tsig::TYPE_TSIG {
            // RFC 8945 section 5.1: the last additional record, once, well formed.
            if i + 1 != arcount || !super::tsig::well_formed(packet, pos) {
                return Err(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR });
            }
            q.tsig_start = pos;
        }
        pos = end;
    }
    if qtype == TYPE_OPT {
        return Err(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR });
    }
    if opcode == 0 && q.no_question && q.edns.is_none_or(|e| e.client_cookie.is_none()) {
        return Err(Parsed::Error { id, opcode, rd, rcode: RCODE_FORMERR });
    }
    Ok(())
}

/// Parses the question into `q`; the offset after it, or `None` if malformed.
#[inline]
fn parse_question(packet: &[u8], q: &mut Query) -> Option<usize> {
    // Question name: no compression allowed (nothing precedes it to point at).
    let mut pos = 12;
    let mut len = 0usize;
    let mut labels = 0usize;
    loop {
        let &l = packet.get(pos)?;
        if l & 0xc0 != 0 {
            return None;
        }
        let l = l as usize;
        if len + 1 + l > 255 {
            return None;
        }
        if l == 0 {
            q.qname[len] = 0;
            len += 1;
            pos += 1;
            break;
        }
        let label = packet.get(pos + 1..pos + 1 + l)?;
        q.label_offsets[labels] = len as u8;
        labels += 1;
        q.qname[len] = l as u8;
        for (d, s) in q.qname[len + 1..len + 1 + l].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        len += 1 + l;
        pos += 1 + l;
    }
    q.qname_len = len;
    q.labels = labels;
    q.qtype = u16_at(packet, pos)?;
    q.qclass = u16_at(packet, pos + 2)?;
    pos += 4;
    q.question_end = pos;
    Some(pos)
}

/// Skips a possibly compressed name, returns the offset after it.
fn skip_name(b: &[u8], mut pos: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let l = *b.get(pos)?;
        match l & 0xc0 {
            0x00 => {
                if l == 0 {
                    return Some(pos + 1);
                }
                total += 1 + l as usize;
                if total > 255 {
                    return None;
                }
                pos += 1 + l as usize;
            }
            0xc0 => {
                b.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

fn skip_rr(b: &[u8], pos: usize) -> Option<usize> {
    let p = skip_name(b, pos)?;
    let rdlen = u16_at(b, p + 8)? as usize;
    let end = p + 10 + rdlen;
    if end > b.len() {
        return None;
    }
    Some(end)
}

/// Parses an OPT RR whose type field starts at `p`; `end` is the end of its RDATA.
fn parse_opt(b: &[u8], p: usize, end: usize) -> Option<Edns> {
    let payload = u16_at(b, p + 2)?.max(512);
    let version = *b.get(p + 5)?;
    let dnssec_ok = b.get(p + 6)? & 0x80 != 0;
    let compact_ok = b.get(p + 6)? & 0x40 != 0;
    let mut edns = Edns {
        payload,
        version,
        dnssec_ok,
        compact_ok,
        ecs: None,
        client_cookie: None,
        server_cookie: [0; 32],
        server_cookie_len: 0,
        cookie_malformed: false,
    };
    let mut o = p + 10;
    while o < end {
        let code = u16_at(b, o)?;
        let len = u16_at(b, o + 2)? as usize;
        let data = b.get(o + 4..o + 4 + len)?;
        if o + 4 + len > end {
            return None;
        }
        match code {
            OPT_ECS => {
                if edns.ecs.is_some() {
                    return None;
                }
                edns.ecs = Some(parse_ecs(data)?);
            }
            OPT_COOKIE => {
                // RFC 7873: a client cookie of 8 bytes, optionally a server cookie of 8-32.
                if !(len == 8 || (16..=40).contains(&len)) || edns.client_cookie.is_some() || edns.cookie_malformed {
                    edns.cookie_malformed = true;
                    edns.client_cookie = None;
                    edns.server_cookie_len = 0;
                    o += 4 + len;
                    continue;
                }
                let mut c = [0u8; 8];
                c.copy_from_slice(&data[..8]);
                edns.client_cookie = Some(c);
                edns.server_cookie[..len - 8].copy_from_slice(&data[8..]);
                edns.server_cookie_len = (len - 8) as u8;
            }
            _ => {}
        }
        o += 4 + len;
    }
    Some(edns)
}

/// RFC 7871 section 6: FORMERR for a wrong family, a prefix longer than the
/// family allows, an address longer than the prefix needs, or bits set beyond it.
pub fn parse_ecs(data: &[u8]) -> Option<ClientSubnet> {
    let family = u16_at(data, 0)?;
    let source_prefix = *data.get(2)?;
    let _scope = *data.get(3)?;
    let addr_bytes = data.get(4..)?;
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source_prefix > max {
        return None;
    }
    let need = (source_prefix as usize).div_ceil(8);
    if addr_bytes.len() != need {
        return None;
    }
    if let Some(&last) = addr_bytes.last() {
        let used_bits = source_prefix as usize - (need - 1) * 8;
        let mask = if used_bits == 8 { 0xff } else { !(0xffu8 >> used_bits) };
        if last & !mask != 0 {
            return None;
        }
    }
    let addr = if family == 1 {
        let mut a = [0u8; 4];
        a[..need].copy_from_slice(addr_bytes);
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        a[..need].copy_from_slice(addr_bytes);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    Some(ClientSubnet { family, source_prefix, addr })
}

impl Default for Query {
    fn default() -> Self {
        Query {
            id: 0,
            opcode: 0,
            rd: false,
            cd: false,
            question_end: 0,
            qtype: 0,
            qclass: 0,
            qname: [0; 255],
            qname_len: 1,
            label_offsets: [0; 128],
            labels: 0,
            edns: None,
            no_question: false,
            tsig_start: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, arcount as u8];
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(extra);
        p
    }

    /// QDCOUNT=0 parses only with a COOKIE option (RFC 7873 section 5.4).
    #[test]
    fn no_question_only_with_a_cookie() {
        let mut q = Query::default();
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(parse(&p, &mut q).is_ok());
        assert!(
            q.no_question && q.question_end == 12 && q.edns.unwrap().client_cookie == Some([1, 2, 3, 4, 5, 6, 7, 8])
        );
        // The same without the OPT, or with an OPT but no cookie: FORMERR.
        let bare = &p[..12];
        let mut bare = bare.to_vec();
        bare[11] = 0;
        assert!(matches!(parse(&bare, &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        let mut no_cookie = p[..12 + 11].to_vec();
        no_cookie[12 + 10] = 0;
        assert!(matches!(parse(&no_cookie, &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        // And a question parsed after it is whole again.
        let p = query(b"\x01a\x00", 1, &[], 0);
        assert!(parse(&p, &mut q).is_ok() && !q.no_question && q.qname() == b"\x01a\x00");
    }

    #[test]
    fn lowercases_and_indexes_labels() {
        let mut q = Query::default();
        parse(&query(b"\x03WwW\x07example\x04test\x00", 1, &[], 0), &mut q).unwrap();
        assert_eq!(q.qname(), b"\x03www\x07example\x04test\x00");
        assert_eq!(q.labels, 3);
        assert_eq!(q.suffix(1), b"\x07example\x04test\x00");
        assert_eq!(q.suffix(3), b"\x00");
        assert_eq!(q.suffix_offset(1), 16);
    }

    #[test]
    fn malformed_are_formerr_or_drop() {
        let mut q = Query::default();
        assert!(matches!(parse(&[0; 5], &mut q), Err(Parsed::Drop)));
        // Compression pointer in the question.
        let p = query(b"\xc0\x0c", 1, &[], 0);
        assert!(matches!(parse(&p, &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        // Label of 64.
        let mut name = vec![64u8];
        name.extend_from_slice(&[b'a'; 64]);
        name.push(0);
        assert!(matches!(parse(&query(&name, 1, &[], 0), &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        // Additional count larger than the packet.
        let p = query(b"\x00", 1, &[], 3);
        assert!(matches!(parse(&p, &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        // Two OPT records.
        let opt = [0u8, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
        let mut two = opt.to_vec();
        two.extend_from_slice(&opt);
        let p = query(b"\x00", 1, &two, 2);
        assert!(matches!(parse(&p, &mut q), Err(Parsed::Error { rcode: RCODE_FORMERR, .. })));
        let p = query(b"\x00", 1, &opt, 1);
        parse(&p, &mut q).unwrap();
        assert_eq!(q.edns.unwrap().payload, 1232);
    }

    #[test]
    fn ecs_rules() {
        assert_eq!(parse_ecs(&[0, 1, 24, 0, 198, 51, 100]).unwrap().addr, "198.51.100.0".parse::<IpAddr>().unwrap());
        assert!(parse_ecs(&[0, 1, 24, 0, 198, 51, 100, 7]).is_none(), "address longer than prefix");
        assert!(parse_ecs(&[0, 1, 23, 0, 198, 51, 101]).is_none(), "bits beyond prefix");
        assert!(parse_ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_none(), "prefix too long");
        assert!(parse_ecs(&[0, 3, 0, 0]).is_none(), "unknown family");
        assert!(parse_ecs(&[0, 1, 0, 0]).is_some(), "prefix 0 is valid");
        assert!(parse_ecs(&[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0]).is_some());
    }
}
