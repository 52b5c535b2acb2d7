//! The record types most zone files are made of (A, AAAA, TXT, and CNAME, NS and
//! MX) encoded straight into a reused buffer, without building hickory's `RData`:
//! at a million records the per-record allocations of the general path
//! ([`crate::rdata::parse`] then [`crate::snapshot::encode_record`]) were a fifth
//! of start-up. The fast path takes only what it reads exactly as the general
//! path would, and gives up (returns `false`) on anything else, which the
//! general path then reads, so every error message is the general path's. Its
//! bytes are the general path's bytes (the tests compare them).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};

use crate::rdata::{MAX_RDATA, MAX_STRING, RecordError};

/// Encodes TYPE, CLASS IN, TTL 0 (see [`set_ttl`]), RDLENGTH and RDATA of a
/// record written as `toks` into `out` (cleared first). `false`: not taken,
/// `out` holds nothing of use.
pub(super) fn encode(rtype: RecordType, toks: &[String], origin: &Name, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    let taken = match (rtype, toks) {
        (RecordType::A, [t]) => Ipv4Addr::from_str(t).map(|a| out.extend_from_slice(&a.octets())).is_ok(),
        (RecordType::AAAA, [t]) => Ipv6Addr::from_str(t).map(|a| out.extend_from_slice(&a.octets())).is_ok(),
        (RecordType::TXT, [_, ..]) => toks.iter().all(|t| string(t, out)),
        (RecordType::CNAME | RecordType::NS, [t]) => name(t, origin, out),
        (RecordType::MX, [pref, exchange]) => match pref.parse::<u16>() {
            Ok(p) => {
                out.extend_from_slice(&p.to_be_bytes());
                name(exchange, origin, out)
            }
            Err(_) => false,
        },
        _ => false,
    };
    let rdlength = out.len() - 10;
    if !taken || rdlength > MAX_RDATA {
        return false;
    }
    out[8..10].copy_from_slice(&(rdlength as u16).to_be_bytes());
    true
}

/// Writes `ttl` into a record [`encode`] made.
pub(super) fn set_ttl(record: &mut [u8], ttl: u32) {
    record[4..8].copy_from_slice(&ttl.to_be_bytes());
}

/// One character-string as `crate::rdata`'s `string` reads it (quotes dropped,
/// `\DDD` one octet, `\X` X), its length first; `false` on a bad escape or more
/// than 255 octets.
fn string(tok: &str, out: &mut Vec<u8>) -> bool {
    let at = out.len();
    out.push(0);
    let mut bytes = tok.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {}
            b'\\' => match bytes.next() {
                Some(d) if d.is_ascii_digit() => {
                    // Exactly three decimal digits, at most 255.
                    let (Some(e), Some(f)) = (bytes.next(), bytes.next()) else { return false };
                    if !e.is_ascii_digit() || !f.is_ascii_digit() {
                        return false;
                    }
                    let v = u32::from(d - b'0') * 100 + u32::from(e - b'0') * 10 + u32::from(f - b'0');
                    let Ok(v) = u8::try_from(v) else { return false };
                    out.push(v);
                }
                // `\X` is X: a multi-octet character is copied whole by the
                // loop, as its continuation octets are never special.
                Some(x) => out.push(x),
                None => return false,
            },
            b => out.push(b),
        }
    }
    let len = out.len() - at - 1;
    if len > MAX_STRING {
        return false;
    }
    out[at] = len as u8;
    true
}

/// A domain name, read by [`crate::rdata::name`], uncompressed, case kept.
fn name(tok: &str, origin: &Name, out: &mut Vec<u8>) -> bool {
    let Ok(name) = crate::rdata::name(tok, origin) else { return false };
    if !name.is_fqdn() {
        return false;
    }
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    true
}

/// An owner name as [`crate::rdata::name`] reads it, written onto `out` as
/// wire with its case kept, without a hickory `Name` for the plain names most
/// owners are (labels of letters, digits, `-`, `_` and `*`, relative or
/// absolute, well inside 255 octets); anything else goes to `rdata::name`, so
/// every error message is its. `origin_wire` is [`wire_of`] `origin`.
pub(super) fn owner_wire(tok: &str, origin: &Name, origin_wire: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
    let plain = |l: &str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*'))
    };
    let (body, absolute) = match tok.strip_suffix('.') {
        Some(body) => (body, true),
        None => (tok, false),
    };
    let origin_len = if absolute { 1 } else { origin_wire.len() };
    if tok == "@" || body.len() + 1 + origin_len > 255 || !body.split('.').all(plain) {
        let name = crate::rdata::name(tok, origin)?;
        write_wire(&name, out);
        return Ok(());
    }
    for label in body.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    match absolute {
        true => out.push(0),
        false => out.extend_from_slice(origin_wire),
    }
    Ok(())
}

/// `name` as wire, its case kept, ended by the root label (as the zone's
/// nodes are keyed, whether or not `name` is absolute).
pub(super) fn wire_of(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    write_wire(name, &mut out);
    out
}

fn write_wire(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// Whether the wire name `owner` is `apex` (lower-cased wire) or below it,
/// compared without case at label boundaries.
pub(super) fn at_or_below(owner: &[u8], apex: &[u8]) -> bool {
    let mut at = 0;
    while at < owner.len() {
        if owner[at..].eq_ignore_ascii_case(apex) {
            return true;
        }
        if owner[at] == 0 {
            return false;
        }
        at += 1 + usize::from(owner[at]);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::encode_record;

    /// Plain owners are read as the general reader reads them (labels, case,
    /// absolute or not); every other owner, read or refused, is its.
    #[test]
    fn owners_are_read_as_the_general_reader_reads_them() {
        let origins = [Name::from_ascii("Example.COM.").unwrap(), Name::from_ascii("rel.ative").unwrap()];
        let l63 = "a".repeat(63);
        let long = [l63.as_str(); 4].join(".");
        let toks = [
            "www",
            "WwW",
            "h12345",
            "a.b.c",
            "a.b.c.",
            "x.",
            "*",
            "*.wild",
            "_srv._tcp",
            "a-b",
            "@",
            ".",
            "",
            "a..b",
            ".a",
            "a b",
            "a\\.b",
            "\\065bc",
            "\"q\"",
            "é",
            "a/b",
            &l63,
            &format!("{l63}a"),
            &long,
            &format!("{long}."),
        ];
        for origin in &origins {
            for tok in toks {
                let mut fast = Vec::new();
                let fast = owner_wire(tok, origin, &wire_of(origin), &mut fast).map(|()| fast);
                let general = crate::rdata::name(tok, origin).map(|n| wire_of(&n));
                let show = |r: &Result<Vec<u8>, RecordError>| match r {
                    Ok(w) => format!("{w:?}"),
                    Err(e) => format!("error {e}"),
                };
                assert_eq!(show(&fast), show(&general), "{tok:?} in {origin}");
            }
        }
    }

    /// An owner is in the zone at or below its apex, compared without case and
    /// at label boundaries only.
    #[test]
    fn owners_at_or_below_the_apex() {
        let apex = crate::snapshot::wire(&Name::from_ascii("example.com.").unwrap());
        let w = |n: &str| wire_of(&Name::from_ascii(n).unwrap());
        for inside in ["example.com.", "EXAMPLE.Com.", "www.example.com.", "a.b.Example.com."] {
            assert!(at_or_below(&w(inside), &apex), "{inside}");
        }
        for outside in ["com.", ".", "xexample.com.", "example.com.x.", "example.org.", "wwwexample.com."] {
            assert!(!at_or_below(&w(outside), &apex), "{outside}");
        }
    }

    fn toks(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    /// What the general path makes of the record, if it takes it.
    fn general(rtype: RecordType, toks: &[String], origin: &Name, ttl: u32) -> Option<Vec<u8>> {
        let data: Vec<&str> = toks.iter().map(String::as_str).collect();
        let rdata = crate::rdata::parse(rtype, &data, origin).ok()?;
        encode_record(ttl, &rdata).ok()
    }

    fn fast(rtype: RecordType, toks: &[String], origin: &Name, ttl: u32) -> Option<Vec<u8>> {
        let mut out = vec![9; 3];
        encode(rtype, toks, origin, &mut out).then(|| {
            set_ttl(&mut out, ttl);
            out
        })
    }

    #[test]
    fn the_fast_path_encodes_as_the_general_path_does() {
        let origin = Name::from_ascii("Example.COM.").unwrap();
        let long = format!("\"{}\"", "x".repeat(255));
        let cases: &[(RecordType, &str)] = &[
            (RecordType::A, "192.0.2.1"),
            (RecordType::A, "0.0.0.0"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::AAAA, "::ffff:192.0.2.1"),
            (RecordType::AAAA, "2001:DB8:0:0:0:0:0:1"),
            (RecordType::TXT, "\"hello world\""),
            (RecordType::TXT, "plain"),
            (RecordType::TXT, "\"one\" \"two\" three"),
            (RecordType::TXT, "\"\""),
            (RecordType::TXT, "\"a\\\"b\\\\c\""),
            (RecordType::TXT, "\"\\065\\255\\000x\""),
            (RecordType::TXT, "\"caf\u{e9} \\\u{e9}\""),
            (RecordType::TXT, "a\\;b"),
            (RecordType::TXT, &long),
            (RecordType::CNAME, "www"),
            (RecordType::CNAME, "Www.Other.ORG."),
            (RecordType::CNAME, "@"),
            (RecordType::CNAME, "."),
            (RecordType::CNAME, "a\\.b.c"),
            (RecordType::CNAME, "\\065bc"),
            (RecordType::NS, "NS1"),
            (RecordType::NS, "ns1.example.net."),
            (RecordType::MX, "10 mail"),
            (RecordType::MX, "0 ."),
            (RecordType::MX, "65535 Mail.Example.NET."),
            (RecordType::MX, "+5 @"),
        ];
        for &(rtype, text) in cases {
            let t = toks(text);
            let want = general(rtype, &t, &origin, 3600).unwrap_or_else(|| panic!("{rtype} {text}"));
            assert_eq!(fast(rtype, &t, &origin, 3600), Some(want), "{rtype} {text}");
        }
    }

    #[test]
    fn what_the_fast_path_declines_the_general_path_reads_or_refuses() {
        let origin = Name::from_ascii("example.com.").unwrap();
        let long = format!("\"{}\"", "x".repeat(256));
        let refused: &[(RecordType, &str)] = &[
            (RecordType::A, "192.0.2.256"),
            (RecordType::A, "@"),
            (RecordType::AAAA, "2001:db8::g"),
            (RecordType::TXT, "\"bad \\25\""),
            (RecordType::TXT, "\"bad \\256\""),
            (RecordType::TXT, "\"bad \\2x5\""),
            (RecordType::TXT, "bad\\"),
            (RecordType::TXT, &long),
            (RecordType::CNAME, "a..b"),
            (RecordType::CNAME, "two names"),
            (RecordType::MX, "65536 mail"),
            (RecordType::MX, "mail"),
        ];
        for &(rtype, text) in refused {
            let t = toks(text);
            assert_eq!(fast(rtype, &t, &origin, 1), None, "{rtype} {text}");
            assert_eq!(general(rtype, &t, &origin, 1), None, "{rtype} {text}");
        }
        // Taken by the general path (hickory's A reader), declined here.
        for text in ["192.0.2.1 extra", "\"192.0.2.1\""] {
            let t = toks(text);
            assert_eq!(fast(RecordType::A, &t, &origin, 1), None, "{text}");
            assert!(general(RecordType::A, &t, &origin, 1).is_some(), "{text}");
        }
    }
}
