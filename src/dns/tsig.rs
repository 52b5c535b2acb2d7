//! TSIG (RFC 8945) on the query path: verifying a signed request and signing its
//! reply, straight on the wire bytes.
//!
//! The query parser (`wire.rs`) finds the TSIG record (it must be the last additional record)
//! and checks its structure; [`Tsig::check`] verifies it against the snapshot's
//! keys (key and algorithm, MAC over the request as section 4.3.3 lays it out,
//! time within the fudge) and keeps what the reply's TSIG needs; after the reply
//! is final, [`Tsig::sign`] appends that TSIG: signed over the request MAC and the
//! reply (section 5.3), or unsigned with the error for BADKEY/BADSIG/BADTRUNC.
//!
//! ring's HMAC is fed the message in pieces (header with the Original ID and the
//! ARCOUNT the signer saw, the rest of the message, the TSIG variables), so
//! nothing is copied or allocated; the MAC is compared in constant time.
//! hickory's `TSigner` was not used here: it works on parsed `Message`s (an
//! allocation per query on a path that has none), and has no hmac-sha1.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use subtle::ConstantTimeEq;

use crate::tsig::{Key, Keys};

pub const TYPE_TSIG: u16 = 250;
pub const RCODE_NOTAUTH: u8 = 9;
/// TSIG error codes (RFC 8945 section 3).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;
/// The largest clock difference accepted, in seconds (a request may ask for less).
pub const FUDGE: u16 = 300;
const CLASS_ANY: u16 = 255;
/// The longest MAC of a supported algorithm (hmac-sha512).
const MAX_MAC: usize = 64;

/// A lower-cased, uncompressed wire name read from a message.
#[derive(Clone, Copy)]
struct WireName {
    buf: [u8; 255],
    len: usize,
}

impl WireName {
    const EMPTY: WireName = WireName { buf: [0; 255], len: 0 };

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads the name at `pos`, following compression pointers (each must point
/// backwards, so that the walk ends), lower-casing it. Returns it and the offset
/// after the name as written at `pos`.
fn read_name(b: &[u8], mut pos: usize) -> Option<(WireName, usize)> {
    let mut name = WireName::EMPTY;
    let mut end = None;
    loop {
        let l = *b.get(pos)? as usize;
        match l & 0xc0 {
            0x00 if l == 0 => {
                name.buf[name.len] = 0;
                name.len += 1;
                return Some((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = b.get(pos..pos + 1 + l)?;
                if name.len + label.len() + 1 > 255 {
                    return None;
                }
                for (d, s) in name.buf[name.len..name.len + label.len()].iter_mut().zip(label) {
                    *d = s.to_ascii_lowercase();
                }
                name.len += label.len();
                pos += 1 + l;
            }
            0xc0 => {
                let target = ((l & 0x3f) << 8) | *b.get(pos + 1)? as usize;
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u48_at(b: &[u8], i: usize) -> Option<u64> {
    let s = b.get(i..i + 6)?;
    Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
}

/// A TSIG record of a request, as sent.
struct Record<'a> {
    key: WireName,
    algorithm: WireName,
    time: u64,
    fudge: u16,
    mac: &'a [u8],
    original_id: u16,
    error: u16,
    other: &'a [u8],
}

/// Parses the TSIG record starting at `start`; `None` if it is malformed: a
/// class other than ANY, a TTL other than 0, or RDATA that does not hold exactly
/// its fields. (What the query parser answers with FORMERR.)
fn parse_record(b: &[u8], start: usize) -> Option<Record<'_>> {
    let (key, p) = read_name(b, start)?;
    if u16_at(b, p)? != TYPE_TSIG || u16_at(b, p + 2)? != CLASS_ANY || b.get(p + 4..p + 8)? != [0; 4] {
        return None;
    }
    let rdata_end = p + 10 + u16_at(b, p + 8)? as usize;
    let rdata = b.get(..rdata_end)?;
    let (algorithm, q) = read_name(rdata, p + 10)?;
    let mac_len = u16_at(rdata, q + 8)? as usize;
    let m = q + 10;
    let mac = rdata.get(m..m + mac_len)?;
    let other_len = u16_at(rdata, m + mac_len + 4)? as usize;
    let o = m + mac_len + 6;
    let other = rdata.get(o..o + other_len)?;
    if o + other_len != rdata_end {
        return None;
    }
    Some(Record {
        key,
        algorithm,
        time: u48_at(rdata, q)?,
        fudge: u16_at(rdata, q + 6)?,
        mac,
        original_id: u16_at(rdata, m + mac_len)?,
        error: u16_at(rdata, m + mac_len + 2)?,
        other,
    })
}

/// Whether the TSIG record at `start` is well formed (for the query parser).
pub fn well_formed(packet: &[u8], start: usize) -> bool {
    parse_record(packet, start).is_some()
}

/// What became of a signed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Verified: answer it, and sign the answer.
    Verified,
    /// NOTAUTH, with the TSIG error [`Tsig::sign`] will add.
    NotAuth,
    /// FORMERR, unsigned: a MAC size no algorithm output allows.
    FormErr,
}

/// How the reply is to carry a TSIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The request carried none.
    None,
    /// A TSIG with this error and no MAC (section 5.3.2).
    Unsigned,
    /// A signed TSIG (a good request, or BADTIME).
    Signed,
}

/// A worker's TSIG state for the request being answered: reused, never allocated
/// per query (the key is an `Arc` taken from the snapshot, so a reload between
/// answering and signing changes nothing for this reply).
pub struct Tsig {
    reply: Reply,
    key: Option<Arc<Key>>,
    key_name: WireName,
    algorithm: WireName,
    /// The request's Time Signed and Fudge (echoed in a BADTIME reply).
    time: u64,
    fudge: u16,
    original_id: u16,
    error: u16,
    mac: [u8; MAX_MAC],
    mac_len: usize,
}

impl Default for Tsig {
    fn default() -> Self {
        Tsig {
            reply: Reply::None,
            key: None,
            key_name: WireName::EMPTY,
            algorithm: WireName::EMPTY,
            time: 0,
            fudge: 0,
            original_id: 0,
            error: 0,
            mac: [0; MAX_MAC],
            mac_len: 0,
        }
    }
}

/// Seconds since the epoch, as TSIG counts time.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Tsig {
    /// Forgets the last request: its reply gets no TSIG.
    pub fn clear(&mut self) {
        self.reply = Reply::None;
        self.key = None;
    }

    /// Verifies the TSIG record at `start` of `packet` (well formed: see
    /// [`well_formed`]) at time `now`, in the order of section 5.2: key, MAC, time.
    pub fn check(&mut self, keys: &Keys, packet: &[u8], start: usize, now: u64) -> Verdict {
        let Some(r) = parse_record(packet, start) else { return Verdict::FormErr };
        self.key_name = r.key;
        self.algorithm = r.algorithm;
        self.time = r.time;
        self.fudge = r.fudge;
        self.original_id = r.original_id;
        self.mac_len = 0;
        let Some(key) = keys.find(r.key.bytes(), r.algorithm.bytes()) else { return self.unsigned(BADKEY) };
        // Section 5.2.2.1: longer than the output or shorter than half of it (and
        // 10 octets) is malformed; a truncated MAC in between is refused (BADTRUNC).
        let full = key.algorithm.mac_len();
        if r.mac.len() > full || r.mac.len() < (full / 2).max(10) {
            return Verdict::FormErr;
        }
        if r.mac.len() < full {
            return self.unsigned(BADTRUNC);
        }
        let mut ctx = hmac::Context::with_key(&key.hmac);
        request_digest(&mut ctx, packet, start, &r);
        if !bool::from(ctx.sign().as_ref().ct_eq(r.mac)) {
            return self.unsigned(BADSIG);
        }
        self.mac[..r.mac.len()].copy_from_slice(r.mac);
        self.mac_len = r.mac.len();
        self.key = Some(key.clone());
        self.reply = Reply::Signed;
        // A request may ask for a tighter window than the server's, never a wider one.
        let window = r.fudge.min(FUDGE) as u64;
        self.error = if now.abs_diff(r.time) > window { BADTIME } else { 0 };
        if self.error == 0 { Verdict::Verified } else { Verdict::NotAuth }
    }

    fn unsigned(&mut self, error: u16) -> Verdict {
        self.reply = Reply::Unsigned;
        self.error = error;
        Verdict::NotAuth
    }

    /// The key that verified the last request, if one did.
    pub fn key(&self) -> Option<&Arc<Key>> {
        self.key.as_ref().filter(|_| self.reply == Reply::Signed && self.error == 0)
    }

    /// The bytes the reply's TSIG record will take: room a reply must leave.
    pub fn reserve(&self) -> usize {
        let mac = if self.reply == Reply::Signed { self.key.as_ref().map_or(0, |k| k.algorithm.mac_len()) } else { 0 };
        let other = if self.error == BADTIME { 6 } else { 0 };
        match self.reply {
            Reply::None => 0,
            _ => self.key_name.len + 10 + self.algorithm.len + 16 + mac + other,
        }
    }

    /// Appends the reply's TSIG record to the finished reply in `out` (nothing if
    /// the request carried none) and counts it in ARCOUNT.
    pub fn sign(&self, out: &mut Vec<u8>, now: u64) {
        if self.reply == Reply::None || out.len() < 12 {
            return;
        }
        let badtime = self.error == BADTIME;
        // A BADTIME reply carries the request's time and fudge, and the server's
        // time in Other Data, so that the client can verify it (section 5.2.3).
        let (time, fudge) = if badtime { (self.time, self.fudge) } else { (now, FUDGE) };
        let other: &[u8] = if badtime { &now.to_be_bytes()[2..] } else { &[] };
        let fields = Fields { time, fudge, error: self.error, other };
        let mut mac_buf = [0u8; MAX_MAC];
        let mut mac: &[u8] = &[];
        if let (Reply::Signed, Some(key)) = (self.reply, &self.key) {
            let mut ctx = hmac::Context::with_key(&key.hmac);
            ctx.update(&(self.mac_len as u16).to_be_bytes());
            ctx.update(&self.mac[..self.mac_len]);
            ctx.update(&self.original_id.to_be_bytes());
            ctx.update(&out[2..]);
            self.variables(&mut ctx, &fields);
            let tag = ctx.sign();
            mac_buf[..tag.as_ref().len()].copy_from_slice(tag.as_ref());
            mac = &mac_buf[..tag.as_ref().len()];
        }
        self.write_record(out, &fields, mac);
    }

    /// The TSIG variables of section 4.3.3, as the MAC covers them.
    fn variables(&self, ctx: &mut hmac::Context, f: &Fields) {
        ctx.update(self.key_name.bytes());
        ctx.update(&CLASS_ANY.to_be_bytes());
        ctx.update(&[0; 4]);
        ctx.update(self.algorithm.bytes());
        ctx.update(&f.time.to_be_bytes()[2..]);
        ctx.update(&f.fudge.to_be_bytes());
        ctx.update(&f.error.to_be_bytes());
        ctx.update(&(f.other.len() as u16).to_be_bytes());
        ctx.update(f.other);
    }

    fn write_record(&self, out: &mut Vec<u8>, f: &Fields, mac: &[u8]) {
        let rdlen = self.algorithm.len + 16 + mac.len() + f.other.len();
        out.extend_from_slice(self.key_name.bytes());
        out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
        out.extend_from_slice(&CLASS_ANY.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(rdlen as u16).to_be_bytes());
        out.extend_from_slice(self.algorithm.bytes());
        out.extend_from_slice(&f.time.to_be_bytes()[2..]);
        out.extend_from_slice(&f.fudge.to_be_bytes());
        out.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        out.extend_from_slice(mac);
        out.extend_from_slice(&self.original_id.to_be_bytes());
        out.extend_from_slice(&f.error.to_be_bytes());
        out.extend_from_slice(&(f.other.len() as u16).to_be_bytes());
        out.extend_from_slice(f.other);
        let ar = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

impl Tsig {
    /// The key the request was signed with, when it verified (and its time was
    /// good): what a `key:` rule of a zone's `transfer` matches.
    pub fn verified_key(&self) -> Option<&Arc<Key>> {
        self.key.as_ref().filter(|_| self.reply == Reply::Signed && self.error == 0)
    }

    /// A signer for the messages of a zone transfer answering this request.
    pub fn stream(&self) -> StreamSigner<'_> {
        StreamSigner { tsig: self, prior: [0; MAX_MAC], prior_len: 0, first: true }
    }
}

/// Signs each message of a multi-message reply (a zone transfer) to a signed
/// request, RFC 8945 section 5.3.1: the first like any reply (over the request
/// MAC, the message and the TSIG variables), each next one over the MAC before
/// it, the message and the timers only. Every message is signed (the RFC allows
/// gaps of up to 99; none is simpler for every client). Nothing happens for an
/// unsigned request.
pub struct StreamSigner<'t> {
    tsig: &'t Tsig,
    prior: [u8; MAX_MAC],
    prior_len: usize,
    first: bool,
}

impl StreamSigner<'_> {
    /// Appends the TSIG record to the finished message in `out`.
    pub fn sign(&mut self, out: &mut Vec<u8>, now: u64) {
        let t = self.tsig;
        let (Reply::Signed, Some(key), 0) = (t.reply, &t.key, t.error) else { return t.sign(out, now) };
        if out.len() < 12 {
            return;
        }
        let fields = Fields { time: now, fudge: FUDGE, error: 0, other: &[] };
        let mut ctx = hmac::Context::with_key(&key.hmac);
        let prior = if self.first { &t.mac[..t.mac_len] } else { &self.prior[..self.prior_len] };
        ctx.update(&(prior.len() as u16).to_be_bytes());
        ctx.update(prior);
        ctx.update(&t.original_id.to_be_bytes());
        ctx.update(&out[2..]);
        if self.first {
            t.variables(&mut ctx, &fields);
        } else {
            ctx.update(&now.to_be_bytes()[2..]);
            ctx.update(&FUDGE.to_be_bytes());
        }
        let tag = ctx.sign();
        let mac = tag.as_ref();
        self.prior[..mac.len()].copy_from_slice(mac);
        self.prior_len = mac.len();
        self.first = false;
        t.write_record(out, &fields, mac);
    }
}

/// Signs the request in `out` (a NOTIFY lbdns sends) with `key` at time `now`:
/// the MAC covers the message and the TSIG variables (section 4.3.3).
pub fn sign_request(key: &Arc<Key>, out: &mut Vec<u8>, now: u64) {
    if out.len() < 12 || key.wire.len() > 255 {
        return;
    }
    let mut t = Tsig { reply: Reply::Signed, key: Some(key.clone()), ..Tsig::default() };
    t.key_name.buf[..key.wire.len()].copy_from_slice(&key.wire);
    t.key_name.len = key.wire.len();
    let alg = key.algorithm.wire();
    t.algorithm.buf[..alg.len()].copy_from_slice(alg);
    t.algorithm.len = alg.len();
    t.original_id = u16::from_be_bytes([out[0], out[1]]);
    let fields = Fields { time: now, fudge: FUDGE, error: 0, other: &[] };
    let mut ctx = hmac::Context::with_key(&key.hmac);
    ctx.update(out);
    t.variables(&mut ctx, &fields);
    let tag = ctx.sign();
    t.write_record(out, &fields, tag.as_ref());
}

/// The reply's TSIG fields that vary.
struct Fields<'a> {
    time: u64,
    fudge: u16,
    error: u16,
    other: &'a [u8],
}

/// Feeds `ctx` what the request's MAC covers (section 4.3.3): the message as it
/// was before the TSIG was added (Original ID, ARCOUNT one less, no TSIG record),
/// then the TSIG variables as sent.
fn request_digest(ctx: &mut hmac::Context, packet: &[u8], start: usize, r: &Record<'_>) {
    let arcount = u16::from_be_bytes([packet[10], packet[11]]).wrapping_sub(1);
    ctx.update(&r.original_id.to_be_bytes());
    ctx.update(&packet[2..10]);
    ctx.update(&arcount.to_be_bytes());
    ctx.update(&packet[12..start]);
    ctx.update(r.key.bytes());
    ctx.update(&CLASS_ANY.to_be_bytes());
    ctx.update(&[0; 4]);
    ctx.update(r.algorithm.bytes());
    ctx.update(&r.time.to_be_bytes()[2..]);
    ctx.update(&r.fudge.to_be_bytes());
    ctx.update(&r.error.to_be_bytes());
    ctx.update(&(r.other.len() as u16).to_be_bytes());
    ctx.update(r.other);
}

/// Writes the header and question of a NOTAUTH reply to a request that failed
/// verification (the caller's [`Tsig::sign`] adds the TSIG).
pub fn notauth(packet: &[u8], question_end: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&packet[..4]);
    out[2] = 0x80 | (packet[2] & 0x79);
    out[3] = RCODE_NOTAUTH;
    out.extend_from_slice(&packet[4..6]);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&packet[12..question_end]);
}

#[cfg(test)]
mod tests;
