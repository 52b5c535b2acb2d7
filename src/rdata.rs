//! Record data in RFC 1035 §5.1 presentation form: text into records, records
//! back into text, and the one check that a record can be served.
//!
//! The same text means the same octets everywhere: the zone loader, the admin API
//! (PUT bodies, GET and PUT replies), `lbdns export` and `lbdns import` all use
//! [`parse`] and [`render`], and what `render` writes parses back to the same wire
//! form. `\DDD` is one octet, in decimal, and `\X` is X itself. hickory's lexer
//! reads `\DDD` wrongly (as three digits of a code point), so character-strings
//! and domain names are decoded here; hickory parses only the types that have
//! neither.
//!
//! Invariant: [`parse`] returns only records that [`encode`] accepts, and
//! `encode` is what the snapshot serves, so a record that was admitted anywhere can
//! be served.

use std::fmt::Write as _;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::{ANAME, CAA, CNAME, HINFO, MX, NAPTR, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict};
use hickory_proto::serialize::txt::parse_ttl;

/// The longest character-string (RFC 1035 §3.3).
pub const MAX_STRING: usize = 255;
/// The longest RDATA that can always be answered: the largest DNS message
/// (65,535 octets) less the header (12), the longest question (255 + 4), the
/// answer's compressed owner, TYPE, CLASS, TTL and RDLENGTH (12), and 512 octets
/// kept for the OPT record. 64,740.
pub const MAX_RDATA: usize = u16::MAX as usize - 12 - 259 - 12 - 512;
/// How much of a bad token an error quotes: enough to find it, too little to
/// disclose a file that is not a zone (`$INCLUDE /etc/shadow`).
const EXCERPT_CHARS: usize = 12;

/// Why some record data is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("no data")]
    Empty,
    #[error("{rtype} takes {want}, not {found} fields")]
    Fields { rtype: RecordType, want: &'static str, found: usize },
    #[error("{what} is {len} octets; the limit is {MAX_STRING}")]
    StringTooLong { what: String, len: usize },
    #[error("record data is {len} octets; the limit is {MAX_RDATA}")]
    TooLong { len: usize },
    #[error("record data is over 65535 octets; the limit is {MAX_RDATA}")]
    FarTooLong,
    #[error("invalid escape in {0}: \\DDD is a decimal octet, 000 to 255")]
    Escape(String),
    #[error("invalid name {token}: {reason}")]
    Name { token: String, reason: String },
    #[error("invalid {what} {token}")]
    Field { what: &'static str, token: String },
    #[error("{reason}")]
    Invalid { rtype: RecordType, reason: String },
    #[error("cannot encode {rtype}: {reason}")]
    Encode { rtype: RecordType, reason: String },
}

/// A problem with one item of an RRset's `data` list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data[{index}]: {source}")]
pub struct DataError {
    pub index: usize,
    pub source: RecordError,
}

/// A short, escaped prefix of `token`, quoted, for error messages.
pub fn excerpt(token: &str) -> String {
    let mut out = String::from("\"");
    for c in token.chars().take(EXCERPT_CHARS) {
        out.extend(c.escape_default());
    }
    if token.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

/// Parses one record's data from the API (one line of presentation form; names
/// relative to `origin`).
pub fn parse_text(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, RecordError> {
    let toks = tokens(text)?;
    let toks: Vec<&str> = toks.iter().map(String::as_str).collect();
    parse(rtype, &toks, origin)
}

/// The RRset `data` list in canonical presentation form, each item checked.
pub fn canonical(rtype: RecordType, data: &[String], origin: &Name) -> Result<Vec<String>, DataError> {
    data.iter()
        .enumerate()
        .map(|(index, d)| {
            parse_text(rtype, d, origin).map(|r| render(&r)).map_err(|source| DataError { index, source })
        })
        .collect()
}

/// Splits one line of record data into tokens as written (quotes and escapes
/// kept): whitespace separates tokens except inside double quotes.
fn tokens(text: &str) -> Result<Vec<String>, RecordError> {
    let mut out = Vec::new();
    let mut tok = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            tok.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                tok.push(c);
                escaped = true;
            }
            '"' => {
                tok.push(c);
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !tok.is_empty() {
                    out.push(std::mem::take(&mut tok));
                }
            }
            c => tok.push(c),
        }
    }
    if quoted {
        return Err(RecordError::Field { what: "quoted string (no closing quote)", token: excerpt(&tok) });
    }
    if !tok.is_empty() {
        out.push(tok);
    }
    Ok(out)
}

/// Parses one record's data from its tokens as written (quotes and escapes kept),
/// names relative to `origin`, and checks that it encodes.
pub fn parse(rtype: RecordType, toks: &[&str], origin: &Name) -> Result<RData, RecordError> {
    if toks.is_empty() {
        return Err(RecordError::Empty);
    }
    let rdata = match rtype {
        RecordType::TXT => {
            let strings = toks
                .iter()
                .enumerate()
                .map(|(i, t)| string(t, &format!("TXT string {}", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        RecordType::HINFO => {
            let [cpu, os] = fields(rtype, toks, "2 (CPU and OS)")?;
            RData::HINFO(HINFO::from_bytes(string(cpu, "HINFO CPU")?.into(), string(os, "HINFO OS")?.into()))
        }
        RecordType::NAPTR => naptr(toks, origin)?,
        RecordType::CAA => caa(toks)?,
        RecordType::CNAME => RData::CNAME(CNAME(name(one(rtype, toks)?, origin)?)),
        RecordType::NS => RData::NS(NS(name(one(rtype, toks)?, origin)?)),
        RecordType::PTR => RData::PTR(PTR(name(one(rtype, toks)?, origin)?)),
        RecordType::ANAME => RData::ANAME(ANAME(name(one(rtype, toks)?, origin)?)),
        RecordType::MX => {
            let [pref, exchange] = fields(rtype, toks, "2 (preference and exchange)")?;
            RData::MX(MX::new(number(pref, "MX preference")?, name(exchange, origin)?))
        }
        RecordType::SRV => {
            let [prio, weight, port, target] = fields(rtype, toks, "4 (priority, weight, port and target)")?;
            let (prio, weight) = (number(prio, "SRV priority")?, number(weight, "SRV weight")?);
            RData::SRV(SRV::new(prio, weight, number(port, "SRV port")?, name(target, origin)?))
        }
        RecordType::SOA => soa(toks, origin)?,
        _ if toks[0] == "\\#" => generic(rtype, toks)?,
        _ => hickory(rtype, toks, origin)?,
    };
    encode(&rdata)?;
    Ok(rdata)
}

fn fields<'a, const N: usize>(
    rtype: RecordType,
    toks: &[&'a str],
    want: &'static str,
) -> Result<[&'a str; N], RecordError> {
    <[&str; N]>::try_from(toks).map_err(|_| RecordError::Fields { rtype, want, found: toks.len() })
}

fn one<'a>(rtype: RecordType, toks: &[&'a str]) -> Result<&'a str, RecordError> {
    fields::<1>(rtype, toks, "1 (a domain name)").map(|[t]| t)
}

fn number<T: std::str::FromStr>(tok: &str, what: &'static str) -> Result<T, RecordError> {
    tok.parse().map_err(|_| RecordError::Field { what, token: excerpt(tok) })
}

/// The remaining types (no character-strings; a name only in SVCB and HTTPS,
/// where `@` is the origin): hickory parses them.
fn hickory(rtype: RecordType, toks: &[&str], origin: &Name) -> Result<RData, RecordError> {
    let origin = origin.to_ascii();
    let toks: Vec<&str> = toks.iter().map(|t| if *t == "@" { origin.as_str() } else { t }).collect();
    let text = toks.join(" ");
    RData::try_from_str(rtype, &text).map_err(|e| {
        // hickory's messages may quote the input: keep them short, and quote
        // only a short prefix of the data so the operator sees which value.
        let reason: String = e.to_string().chars().take(80).collect();
        RecordError::Invalid { rtype, reason: format!("{}: {reason}", excerpt(&text)) }
    })
}

fn naptr(toks: &[&str], origin: &Name) -> Result<RData, RecordError> {
    let [order, pref, flags, services, regexp, replacement] =
        fields(RecordType::NAPTR, toks, "6 (order, preference, flags, services, regexp and replacement)")?;
    Ok(RData::NAPTR(NAPTR::new(
        number(order, "NAPTR order")?,
        number(pref, "NAPTR preference")?,
        string(flags, "NAPTR flags")?.into(),
        string(services, "NAPTR services")?.into(),
        string(regexp, "NAPTR regexp")?.into(),
        name(replacement, origin)?,
    )))
}

/// RFC 8659: `flags tag value`; the value is the rest of the RDATA (no 255 limit).
fn caa(toks: &[&str]) -> Result<RData, RecordError> {
    let [flags, tag, value] = fields(RecordType::CAA, toks, "3 (flags, tag and value)")?;
    let flags: u8 = number(flags, "CAA flags")?;
    if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RecordError::Field { what: "CAA tag (1 to 15 letters and digits)", token: excerpt(tag) });
    }
    let mut caa = CAA::new_issue(false, None, Vec::new());
    caa.issuer_critical = flags & 0x80 != 0;
    caa.reserved_flags = flags & 0x7f;
    caa.tag = tag.to_string();
    caa.value = unescape(value)?;
    Ok(RData::CAA(caa))
}

fn soa(toks: &[&str], origin: &Name) -> Result<RData, RecordError> {
    let [mname, rname, serial, refresh, retry, expire, minimum] =
        fields(RecordType::SOA, toks, "7 (mname, rname, serial, refresh, retry, expire and minimum)")?;
    let interval = |tok: &str, what: &'static str| -> Result<i32, RecordError> {
        parse_ttl(tok)
            .ok()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| RecordError::Field { what, token: excerpt(tok) })
    };
    Ok(RData::SOA(SOA::new(
        name(mname, origin)?,
        name(rname, origin)?,
        number(serial, "SOA serial")?,
        interval(refresh, "SOA refresh")?,
        interval(retry, "SOA retry")?,
        interval(expire, "SOA expire")?,
        parse_ttl(minimum).map_err(|_| RecordError::Field { what: "SOA minimum", token: excerpt(minimum) })?,
    )))
}

/// RFC 3597 `\# LENGTH HEX...`: any type as its RDATA octets (the form
/// [`render`] falls back to where a type has no text form that reads back).
fn generic(rtype: RecordType, toks: &[&str]) -> Result<RData, RecordError> {
    let bad = |what: &'static str, t: &str| RecordError::Field { what, token: excerpt(t) };
    let len: usize = toks.get(1).ok_or(RecordError::Empty)?.parse().map_err(|_| bad("RFC 3597 length", toks[1]))?;
    let hex: String = toks[2..].concat();
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("RFC 3597 hex data", &hex));
    }
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    if bytes.len() != len || len > MAX_RDATA {
        return Err(RecordError::Invalid {
            rtype,
            reason: format!("\\# says {len} octets, the data has {}", bytes.len()),
        });
    }
    let mut decoder = BinDecoder::new(&bytes);
    let rdata = RData::read(&mut decoder, rtype, Restrict::new(len as u16))
        .map_err(|e| RecordError::Invalid { rtype, reason: e.to_string().chars().take(80).collect() })?;
    if !decoder.is_empty() {
        return Err(RecordError::Invalid { rtype, reason: format!("{} octets left over", decoder.len()) });
    }
    Ok(rdata)
}

/// One character-string: quotes removed, escapes decoded, at most 255 octets.
fn string(tok: &str, what: &str) -> Result<Vec<u8>, RecordError> {
    let bytes = unescape(tok)?;
    if bytes.len() > MAX_STRING {
        return Err(RecordError::StringTooLong { what: what.to_string(), len: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes a token as written: double quotes delimit and are dropped, `\DDD` is
/// one octet in decimal, `\X` is X.
fn unescape(tok: &str) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(tok.len());
    let mut chars = tok.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let rest: String = chars.by_ref().take(2).collect();
                    let digits = format!("{d}{rest}");
                    match digits.parse::<u8>() {
                        Ok(v) if digits.len() == 3 && rest.bytes().all(|b| b.is_ascii_digit()) => out.push(v),
                        _ => return Err(RecordError::Escape(excerpt(tok))),
                    }
                }
                Some(x) => out.extend_from_slice(x.encode_utf8(&mut [0; 4]).as_bytes()),
                None => return Err(RecordError::Escape(excerpt(tok))),
            },
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Ok(out)
}

/// A domain name as written: `@` is the origin, a name without a final dot is
/// relative to it, `\DDD` and `\X` as in character-strings (`\.` is a dot inside
/// a label).
pub fn name(tok: &str, origin: &Name) -> Result<Name, RecordError> {
    let err = |reason: &str| RecordError::Name { token: excerpt(tok), reason: reason.to_string() };
    match tok {
        "@" => return Ok(origin.clone()),
        "." => return Ok(Name::root()),
        _ => {}
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut chars = tok.chars().peekable();
    let mut absolute = false;
    while let Some(c) = chars.next() {
        match c {
            '.' if label.is_empty() => return Err(err("empty label")),
            '.' => {
                labels.push(std::mem::take(&mut label));
                absolute = chars.peek().is_none();
            }
            '\\' => {
                // One escape: `\X` or `\DDD`.
                let mut esc = String::from('\\');
                if let Some(d) = chars.next() {
                    esc.push(d);
                    if d.is_ascii_digit() {
                        esc.extend(chars.by_ref().take(2));
                    }
                }
                label.extend(unescape(&esc).map_err(|_| err("invalid escape (\\DDD is a decimal octet)"))?);
            }
            '"' | '(' | ')' | ';' => return Err(err("a special character must be escaped")),
            c if c.is_whitespace() || c.is_control() => return Err(err("a special character must be escaped")),
            c => label.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut n = Name::from_labels(labels).map_err(|e| err(&short(&e)))?;
    if absolute {
        n.set_fqdn(true);
        Ok(n)
    } else {
        n.append_domain(origin).map_err(|e| err(&short(&e)))
    }
}

fn short(e: &ProtoError) -> String {
    e.to_string().chars().take(80).collect()
}

/// RDATA on the wire (names uncompressed, case kept), as the snapshot serves it.
pub fn encode(rdata: &RData) -> Result<Vec<u8>, RecordError> {
    let rtype = rdata.record_type();
    let mut rd = Vec::with_capacity(64);
    let mut enc = BinEncoder::new(&mut rd);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut enc).map_err(|e| match e {
        ProtoError::CharacterDataTooLong { len, .. } => {
            RecordError::StringTooLong { what: format!("a {rtype} character-string"), len }
        }
        ProtoError::MaxBufferSizeExceeded(_) => RecordError::FarTooLong,
        e => RecordError::Encode { rtype, reason: short(&e) },
    })?;
    if rd.len() > MAX_RDATA {
        return Err(RecordError::TooLong { len: rd.len() });
    }
    Ok(rd)
}

/// A record's data in presentation form; [`parse`] reads it back to the same
/// wire form.
pub fn render(rdata: &RData) -> String {
    let mut out = String::new();
    match rdata {
        RData::TXT(t) => {
            for (i, s) in t.txt_data.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_string(&mut out, s);
            }
        }
        RData::HINFO(h) => {
            push_string(&mut out, &h.cpu);
            out.push(' ');
            push_string(&mut out, &h.os);
        }
        RData::NAPTR(n) => {
            let _ = write!(out, "{} {} ", n.order, n.preference);
            for s in [&n.flags, &n.services, &n.regexp] {
                push_string(&mut out, s);
                out.push(' ');
            }
            push_name(&mut out, &n.replacement);
        }
        RData::CAA(c) => {
            let _ = write!(out, "{} {} ", c.flags(), c.tag);
            push_string(&mut out, &c.value);
        }
        RData::CNAME(CNAME(n)) | RData::NS(NS(n)) | RData::PTR(PTR(n)) | RData::ANAME(ANAME(n)) => {
            push_name(&mut out, n)
        }
        RData::MX(m) => {
            let _ = write!(out, "{} ", m.preference);
            push_name(&mut out, &m.exchange);
        }
        RData::SRV(s) => {
            let _ = write!(out, "{} {} {} ", s.priority, s.weight, s.port);
            push_name(&mut out, &s.target);
        }
        RData::SOA(s) => {
            push_name(&mut out, &s.mname);
            out.push(' ');
            push_name(&mut out, &s.rname);
            let _ = write!(out, " {} {} {} {} {}", s.serial, s.refresh, s.retry, s.expire, s.minimum);
        }
        other => {
            // hickory's text for the remaining types; where it does not read back
            // to the same octets (CERT, unknown types), RFC 3597 form.
            let text = other.to_string();
            let same = |r: &RData| encode(r).ok() == encode(other).ok();
            match parse_text(other.record_type(), &text, &Name::root()) {
                Ok(r) if same(&r) => out = text,
                _ => out = generic_text(other),
            }
        }
    }
    out
}

/// `\# LENGTH HEX`.
fn generic_text(rdata: &RData) -> String {
    let bytes = encode(rdata).unwrap_or_default();
    let mut out = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        out.push(' ');
        bytes.iter().for_each(|b| {
            let _ = write!(out, "{b:02x}");
        });
    }
    out
}

/// A character-string, quoted: `"` and `\` escaped, other octets outside
/// printable ASCII as `\DDD`.
fn push_string(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        push_octet(out, b, b"\"\\", 0x20);
    }
    out.push('"');
}

/// One octet of presentation form: `\X` for the `special` ones, itself when
/// printable (from `first` to `~`), else `\DDD`.
fn push_octet(out: &mut String, b: u8, special: &[u8], first: u8) {
    if special.contains(&b) {
        out.push('\\');
        out.push(b as char);
    } else if (first..=0x7e).contains(&b) {
        out.push(b as char);
    } else {
        let _ = write!(out, "\\{b:03}");
    }
}

/// A domain name, absolute, with the characters special in zone files escaped.
fn push_name(out: &mut String, n: &Name) {
    if n.is_root() {
        out.push('.');
        return;
    }
    for label in n.iter() {
        for &b in label {
            push_octet(out, b, b".\\\";()@$", 0x21);
        }
        out.push('.');
    }
}

#[cfg(test)]
mod tests;
