//! Answering one query from a [`Snapshot`] into a reused buffer.
//!
//! This is the only answer engine: UDP and TCP both call [`Responder::respond`], so
//! the two transports give the same answers by construction; only the size limit
//! differs. It takes no lock, does no I/O and allocates nothing once its buffers have
//! grown: names in the answer are compression pointers into the question (or into a
//! CNAME target already written), and records are copied pre-encoded.

use std::net::IpAddr;

use super::additional::{Owner, Pending, Signatures, write_additional, write_owner};
use super::cookie::{CookieCheck, Cookies};
use super::dnssec::{DnssecScratch, NxNameQuery, Signer, negative_ttl, rs_ttl, signer_for};
use super::opt::{OptReply, opt_data_len, write_opt};
use super::tsig::{self, Tsig, Verdict};
use super::wire::{self, Parsed, Query};
use crate::dnssec::{TYPE_CDNSKEY, TYPE_CDS, TYPE_DNSKEY};
use crate::net;
use crate::policy::Scratch;
use crate::snapshot::{self, NodeView, Pool, RRsetView, Selection, Snapshot, Zone, address_record_len, write_address};
use std::sync::atomic::Ordering;

mod reply;

/// What happened, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Full (extended) RCODE.
    pub rcode: u16,
    /// The pool that answered, if any.
    pub pool: Option<u32>,
    /// The pool had no eligible member of the queried family.
    pub all_down: bool,
    pub truncated: bool,
    pub cookie: CookieCheck,
}

/// Per-worker answering state: reused query, policy scratch and order buffers.
pub struct Responder {
    query: Box<Query>,
    scratch: Scratch,
    order: Vec<u16>,
    cookies: Option<std::sync::Arc<Cookies>>,
    /// The COOKIE option data of the last reply (client + server cookie).
    cookie_reply: [u8; 24],
    /// Where the last reply's OPT record starts (0 = no OPT).
    opt_start: usize,
    /// The last request's TSIG, for the reply's (see [`Responder::sign`]).
    tsig: Tsig,
    /// DNSSEC buffers, used for DO=1 queries to signed zones.
    dnssec: DnssecScratch,
}

#[derive(Default)]
struct Answer<'s> {
    an: u16,
    ns: u16,
    ar: u16,
    aa: bool,
    rcode: u16,
    /// ECS scope prefix for the reply, when the answer depended on the client.
    scope: u8,
    pool: Option<u32>,
    all_down: bool,
    /// Extended DNS Error info code (RFC 8914), sent when the query had OPT.
    ede: Option<u16>,
    extra: Option<Pending<'s>>,
}

const MAX_CNAME_CHAIN: usize = 8;

impl Responder {
    pub fn new(seed: u64) -> Self {
        Responder {
            query: Box::default(),
            scratch: Scratch::new(seed),
            order: Vec::with_capacity(64),
            cookies: None,
            cookie_reply: [0; 24],
            opt_start: 0,
            tsig: Tsig::default(),
            dnssec: DnssecScratch::default(),
        }
    }

    /// Adds the TSIG record a signed request's reply carries (RFC 8945) to the
    /// reply in `out`, once it is final (after [`Self::slip`] or
    /// [`Self::badcookie`] if any): the reply to a signed request is signed, even
    /// when truncated; nothing happens for an unsigned request.
    pub fn sign(&self, out: &mut Vec<u8>) {
        self.tsig.sign(out, tsig::now());
    }

    /// The last request as parsed, and its TSIG state.
    pub fn request(&self) -> (&Query, &Tsig) {
        (&self.query, &self.tsig)
    }

    /// Answers DNS Cookies (RFC 7873) with server cookies made from `cookies`.
    pub fn with_cookies(mut self, cookies: Option<std::sync::Arc<Cookies>>) -> Self {
        self.cookies = cookies;
        self
    }

    /// Parses `packet` and checks its TSIG. `Err(None)`: send nothing;
    /// `Err(Some(_))`: the error reply is in `out`.
    fn admit(&mut self, snap: &Snapshot, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Option<Outcome>> {
        self.tsig.clear();
        let q = &mut *self.query;
        let parsed = match wire::parse(packet, q) {
            Ok(()) if q.opcode == 0 && self.cookies.is_some() && q.edns.is_some_and(|e| e.cookie_malformed) => {
                Err(Parsed::Error { id: q.id, opcode: q.opcode, rd: q.rd, rcode: wire::RCODE_FORMERR })
            }
            other => other,
        };
        match parsed {
            Ok(()) => {}
            Err(Parsed::Drop) => return Err(None),
            Err(Parsed::Error { id, opcode, rd, rcode }) => {
                self.opt_start = 0;
                return Err(Some(error_reply(out, id, opcode, rd, rcode)));
            }
        }
        let q = &*self.query;
        if q.tsig_start != 0 {
            let verdict = self.tsig.check(&snap.tsig, packet, q.tsig_start, tsig::now());
            if verdict != Verdict::Verified {
                self.opt_start = 0;
                return Err(Some(refused_by_tsig(verdict, packet, q.question_end, out)));
            }
        }
        Ok(())
    }

    /// Answers `packet` from `client` into `out`. `None`: send nothing.
    pub fn respond(
        &mut self,
        snap: &Snapshot,
        packet: &[u8],
        client: IpAddr,
        tcp: bool,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        out.clear();
        if let Err(early) = self.admit(snap, packet, out) {
            return early;
        }
        let cookie = self.check_cookie(client);
        if !tcp && self.query.qtype == wire::TYPE_IXFR && self.transfer(snap, client).is_some() {
            // RFC 1995 section 2: over UDP the current SOA alone, which tells a
            // client behind it to come back over TCP.
            self.query.qtype = wire::TYPE_SOA;
        }
        let q = &*self.query;
        let max_len = self.room(snap, tcp);
        let id = q.id.to_be_bytes();
        let qdcount = u8::from(!q.no_question);
        out.extend_from_slice(&[id[0], id[1], 0, 0, 0, qdcount, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&packet[12..q.question_end]);

        // OPT without EDE: sized now so that pool answers (which carry no EDE) leave
        // room for it.
        let with_cookie = cookie != CookieCheck::None;
        let opt_base = q.edns.map_or(0, |e| 11 + opt_data_len(e, with_cookie, false));
        let mut a = Answer::default();
        if !classify(q, cookie, &mut a) {
            let mut ctx = Ctx {
                snap,
                q,
                scratch: &mut self.scratch,
                order: &mut self.order,
                client,
                room: max_len.saturating_sub(opt_base),
                out,
                chain: [(0, 0); MAX_CNAME_CHAIN],
                dnssec: Some(&mut self.dnssec),
                signer: None,
            };
            ctx.lookup(&mut a);
        }

        // OPT: sized now so that truncation leaves room for it.
        let opt_len = q.edns.map_or(0, |e| 11 + opt_data_len(e, with_cookie, a.ede.is_some()));
        let mut truncated = out.len() + opt_len > max_len;
        if let (false, Some(p)) = (truncated, a.extra) {
            let mut signer =
                signer_for(&snap.dnssec, q, &p.zone.origin_wire, &mut Some(&mut self.dnssec)).ok().flatten();
            let signer = signer.as_mut().map(|s| s as &mut dyn Signatures);
            truncated = !write_additional(out, &p, max_len - opt_len, &mut a.ar, signer);
        }
        if truncated {
            out.truncate(q.question_end);
            a.an = 0;
            a.ns = 0;
            a.ar = 0;
        }
        self.opt_start = 0;
        if let Some(e) = q.edns {
            self.opt_start = out.len();
            let reply = with_cookie.then_some(&self.cookie_reply);
            write_opt(
                out,
                snap.edns_udp_size,
                e,
                OptReply { rcode: a.rcode, scope: a.scope, ede: a.ede, cookie: reply },
            );
            a.ar += 1;
        }
        set_header(out, q, &a, truncated);
        Some(Outcome { rcode: a.rcode, pool: a.pool, all_down: a.all_down, truncated, cookie })
    }
}

/// The reply to a signed request that failed verification: FORMERR (header
/// only), or NOTAUTH echoing the question, to which [`Responder::sign`] adds the
/// TSIG error.
fn refused_by_tsig(verdict: Verdict, packet: &[u8], question_end: usize, out: &mut Vec<u8>) -> Outcome {
    let rcode = if verdict == Verdict::FormErr {
        out.clear();
        out.extend_from_slice(&packet[..12]);
        out[2] = 0x80 | (packet[2] & 0x79);
        out[3] = wire::RCODE_FORMERR;
        out[4..12].fill(0);
        wire::RCODE_FORMERR
    } else {
        tsig::notauth(packet, question_end, out);
        tsig::RCODE_NOTAUTH
    };
    Outcome { rcode: rcode as u16, pool: None, all_down: false, truncated: false, cookie: CookieCheck::None }
}

impl Responder {
    /// Checks the query's DNS cookies (RFC 7873) and makes the server cookie for
    /// the reply.
    fn check_cookie(&mut self, client: IpAddr) -> CookieCheck {
        let (Some(cookies), Some(e)) = (&self.cookies, self.query.edns) else { return CookieCheck::None };
        let Some(cc) = e.client_cookie else { return CookieCheck::None };
        let now = Cookies::now();
        let check = if cookies.check(&cc, e.server_cookie(), client, now) {
            CookieCheck::Valid
        } else {
            CookieCheck::ClientOnly
        };
        self.cookie_reply[..8].copy_from_slice(&cc);
        self.cookie_reply[8..].copy_from_slice(&cookies.make(&cc, client, now));
        check
    }
}

/// The reply to a query that could not be parsed far enough to answer: the
/// header alone, with `rcode`.
fn error_reply(out: &mut Vec<u8>, id: u16, opcode: u8, rd: bool, rcode: u8) -> Outcome {
    let id = id.to_be_bytes();
    out.extend_from_slice(&[id[0], id[1], 0x80 | (opcode << 3) | u8::from(rd), rcode, 0, 0, 0, 0, 0, 0, 0, 0]);
    Outcome { rcode: rcode as u16, pool: None, all_down: false, truncated: false, cookie: CookieCheck::None }
}

/// Sets the RCODE of a query that is not looked up (bad EDNS version, opcode
/// or class, a zone transfer, a cookie-only query); `false` when it is to be
/// looked up.
fn classify(q: &Query, cookie: CookieCheck, a: &mut Answer<'_>) -> bool {
    if q.edns.is_some_and(|e| e.version > 0) {
        a.rcode = wire::RCODE_BADVERS;
    } else if q.opcode != 0 {
        a.rcode = wire::RCODE_NOTIMP as u16;
        a.ede = Some(wire::EDE_NOT_SUPPORTED);
    } else if q.no_question {
        // RFC 7873 section 5.4: a query for a server cookie alone. NOERROR with
        // a fresh one, BADCOOKIE if the server cookie sent is not valid; a
        // server without cookies treats QDCOUNT=0 as malformed.
        let sent_server_cookie = q.edns.is_some_and(|e| !e.server_cookie().is_empty());
        a.rcode = match cookie {
            CookieCheck::None => wire::RCODE_FORMERR as u16,
            CookieCheck::ClientOnly if sent_server_cookie => wire::RCODE_BADCOOKIE,
            _ => wire::RCODE_NOERROR as u16,
        };
    } else if q.qclass != wire::CLASS_IN || q.qtype == wire::TYPE_AXFR || q.qtype == wire::TYPE_IXFR {
        // Only class IN is served; zone transfers are not offered.
        a.rcode = wire::RCODE_REFUSED as u16;
    } else if q.qtype == wire::TYPE_MAILA || q.qtype == wire::TYPE_MAILB {
        a.rcode = wire::RCODE_NOTIMP as u16;
        a.ede = Some(wire::EDE_NOT_SUPPORTED);
    } else {
        return false;
    }
    true
}

/// Sets the header's flags, RCODE and section counts.
fn set_header(out: &mut [u8], q: &Query, a: &Answer<'_>, truncated: bool) {
    if q.opcode != 0 {
        // No flag of a query is echoed to an opcode that is not served (see wire::parse).
        out[2] = 0x80 | (q.opcode << 3);
        out[3] = (a.rcode & 0x0f) as u8;
    } else {
        out[2] = 0x80 | (q.opcode << 3) | (u8::from(a.aa) << 2) | (u8::from(truncated) << 1) | u8::from(q.rd);
        out[3] = (u8::from(q.cd) << 4) | (a.rcode & 0x0f) as u8;
    }
    out[6..8].copy_from_slice(&a.an.to_be_bytes());
    out[8..10].copy_from_slice(&a.ns.to_be_bytes());
    out[10..12].copy_from_slice(&a.ar.to_be_bytes());
}

struct Ctx<'s, 'o> {
    snap: &'s Snapshot,
    q: &'s Query,
    scratch: &'s mut Scratch,
    order: &'s mut Vec<u16>,
    client: IpAddr,
    /// The reply's size limit less its OPT record: pool answers stop within it.
    room: usize,
    out: &'o mut Vec<u8>,
    /// The CNAME targets followed so far, as (offset, length) of the target
    /// written in the reply: a chain that comes back to a name already answered
    /// stops there, each record written once.
    chain: [(usize, usize); MAX_CNAME_CHAIN],
    /// The DNSSEC buffers, until a signer takes them.
    dnssec: Option<&'o mut DnssecScratch>,
    /// Set when the query has DO=1 and the zone is signed.
    signer: Option<Signer<'s, 'o>>,
}

/// Label offsets of a wire name (root excluded); returns the label count.
fn label_offsets(name: &[u8], offs: &mut [u8; 128]) -> usize {
    let mut pos = 0usize;
    let mut n = 0usize;
    while pos < name.len() && name[pos] != 0 && n < 128 {
        offs[n] = pos as u8;
        n += 1;
        pos += 1 + name[pos] as usize;
    }
    n
}

impl<'s> Ctx<'s, '_> {
    fn write_owner(&mut self, owner: Owner<'_>) {
        write_owner(self.out, owner);
    }

    /// Writes every record of `rs`; returns the offset of the first record's RDATA.
    fn write_rrset(&mut self, owner: Owner<'_>, rs: RRsetView<'_>) -> (usize, u16) {
        let mut first = 0usize;
        let mut n = 0u16;
        for rec in rs.records() {
            self.write_owner(owner);
            if n == 0 {
                first = self.out.len() + 10;
            }
            self.out.extend_from_slice(rec);
            n += 1;
        }
        (first, n)
    }

    fn negative(&mut self, zone: &Zone, zone_label: usize, a: &mut Answer) {
        let owner = Owner::Ptr(self.q.suffix_offset(zone_label));
        self.write_owner(owner);
        self.out.extend_from_slice(&zone.negative_soa);
        a.ns += 1;
        if let Some(s) = self.signer.as_mut() {
            a.ns += s.sign_rrset(self.out, owner, &zone.origin_wire, zone.soa(), negative_ttl(zone));
        }
    }

    fn lookup(&mut self, a: &mut Answer<'s>) {
        let q = self.q;
        let snap = self.snap;
        let Some((zl, zone)) = (0..=q.labels).find_map(|i| snap.zones.get(q.suffix(i)).map(|z| (i, &**z))) else {
            a.rcode = wire::RCODE_REFUSED as u16;
            a.ede = Some(wire::EDE_NOT_AUTHORITATIVE);
            return;
        };
        a.aa = true;
        match signer_for(&snap.dnssec, q, &zone.origin_wire, &mut self.dnssec) {
            Ok(signer) => self.signer = signer,
            Err(NxNameQuery) => {
                a.aa = false;
                a.rcode = wire::RCODE_FORMERR as u16;
                return;
            }
        }
        // Owner pointers for the question name: 12 + label offset.
        let name_ptr = 12usize;
        self.resolve(zone, zl, q.qname(), Some(name_ptr), 0, a);
    }

    /// Resolves `name` (lower-cased wire, written at `name_ptr` in the message if
    /// known) in `zone`. `depth` counts CNAMEs followed so far.
    fn resolve(
        &mut self,
        zone: &'s Zone,
        zl: usize,
        name: &[u8],
        name_ptr: Option<usize>,
        depth: usize,
        a: &mut Answer<'s>,
    ) {
        let mut offs = [0u8; 128];
        let labels = label_offsets(name, &mut offs);
        let zone_labels_in_name = zone.labels;
        if labels < zone_labels_in_name {
            return;
        }
        let suffix =
            |i: usize| &name[offs.get(i).map(|&o| o as usize).filter(|_| i < labels).unwrap_or(name.len() - 1)..];
        let owner_at = |i: usize| -> Owner<'_> {
            let off = if i < labels { offs[i] as usize } else { name.len() - 1 };
            match name_ptr {
                Some(p) if p + off < 0x3fff => Owner::Ptr((p + off) as u16),
                _ => Owner::Name(suffix(i)),
            }
        };
        let apex_i = labels - zone_labels_in_name;
        // Walk down from the apex: a zone cut above or at the name is a referral.
        let mut k = apex_i;
        let mut node: Option<NodeView<'s>> = zone.node(&zone.origin_wire);
        while k > 0 {
            match zone.node(suffix(k - 1)) {
                Some(n) => {
                    let at_name = k - 1 == 0;
                    if n.delegation() && !(at_name && self.q.qtype == wire::TYPE_DS && depth == 0) {
                        if depth == 0 {
                            // At depth 0 the name is the question's.
                            self.referral(zone, n, owner_at(k - 1), self.q.suffix(k - 1), a);
                        }
                        return;
                    }
                    node = Some(n);
                    k -= 1;
                }
                None => break,
            }
        }
        if k == 0 {
            if let Some(n) = node {
                self.answer_node(zone, zl, n, (owner_at(0), name), depth, a);
            }
            return;
        }
        // The name does not exist; the closest encloser is suffix(k): RFC 4592.
        let ce = suffix(k);
        let mut wc = [0u8; 257];
        wc[0] = 1;
        wc[1] = b'*';
        wc[2..2 + ce.len()].copy_from_slice(ce);
        if let Some(n) = zone.node(&wc[..2 + ce.len()]) {
            // Signed as the name's own: under compact denial every name exists.
            self.answer_node(zone, zl, n, (owner_at(0), name), depth, a);
            return;
        }
        a.rcode = wire::RCODE_NXDOMAIN as u16;
        self.negative(zone, zl, a);
        if let Some(s) = self.signer.as_mut() {
            a.rcode = s.nxdomain_rcode(self.q);
            a.ns += s.deny(self.out, &self.snap.pools, zone, (owner_at(0), name), None, 0);
        }
    }

    /// Answers from `node` for the name `at` (as written, and lower-cased wire).
    fn answer_node(
        &mut self,
        zone: &'s Zone,
        zl: usize,
        node: NodeView<'s>,
        at: (Owner<'_>, &[u8]),
        depth: usize,
        a: &mut Answer<'s>,
    ) {
        let owner = at.0;
        let qt = self.q.qtype;
        if let Some(pidx) = node.pool() {
            if qt == wire::TYPE_A || qt == wire::TYPE_AAAA || qt == wire::TYPE_ANY {
                match self.pool_answer(pidx, qt, at, a) {
                    PoolResult::Answered => return,
                    PoolResult::ServFail => {
                        a.rcode = wire::RCODE_SERVFAIL as u16;
                        return;
                    }
                    PoolResult::NoData => {
                        if qt != wire::TYPE_ANY {
                            return self.no_data(zone, zl, at, node, a);
                        }
                    }
                }
            }
        }
        if node.apex() && qt == wire::TYPE_SOA {
            return self.answer_rrset(zone, at, zone.soa(), a);
        }
        if node.apex() && matches!(qt, TYPE_DNSKEY | TYPE_CDS | TYPE_CDNSKEY) {
            if let Some((data, n)) = self.snap.dnssec.zone(&zone.origin_wire).and_then(|k| k.rrset(qt)) {
                return self.answer_rrset(zone, at, RRsetView::new(qt, n, data), a);
            }
        }
        if qt == wire::TYPE_ANY {
            // RFC 8482: one RRset is enough.
            match node.first().or(if node.apex() { Some(zone.soa()) } else { None }) {
                Some(rs) => self.answer_rrset(zone, at, rs, a),
                None => self.no_data(zone, zl, at, node, a),
            }
            return;
        }
        if let Some(rs) = node.rrset(qt) {
            return self.answer_rrset(zone, at, rs, a);
        }
        if let Some(rs) = node.rrset(wire::TYPE_CNAME) {
            let rdata_at = self.out.len() + owner.len() + 10;
            self.answer_rrset(zone, at, rs, a);
            return self.follow_cname(zone, zl, rs, rdata_at, depth, a);
        }
        self.no_data(zone, zl, at, node, a);
    }

    /// NODATA for the question's type at `node`: the SOA, and with DO=1 the
    /// NSEC listing the types there.
    fn no_data(&mut self, zone: &Zone, zl: usize, at: (Owner<'_>, &[u8]), node: NodeView<'_>, a: &mut Answer) {
        self.negative(zone, zl, a);
        if let Some(s) = self.signer.as_mut() {
            a.ns += s.deny(self.out, &self.snap.pools, zone, at, Some(node), self.q.qtype);
        }
    }

    /// Follows the CNAME `rs` (its target written at `rdata_at`) inside `zone`
    /// only (not into other zones or below cuts), unless the chain is too long or
    /// comes back to a name already answered.
    fn follow_cname(
        &mut self,
        zone: &'s Zone,
        zl: usize,
        rs: RRsetView<'s>,
        rdata_at: usize,
        depth: usize,
        a: &mut Answer<'s>,
    ) {
        let mut target = [0u8; 256];
        let Some(len) = rs.records().next().and_then(|r| snapshot::lower_name(r.get(10..)?, &mut target)) else {
            return;
        };
        let t = &target[..len];
        let seen = |&(at, n): &(usize, usize)| self.out.get(at..at + n).is_some_and(|w| w.eq_ignore_ascii_case(t));
        if depth + 1 >= MAX_CNAME_CHAIN || t == self.q.qname() || self.chain[..depth].iter().any(seen) {
            return;
        }
        self.chain[depth] = (rdata_at, len);
        if snapshot::is_at_or_below(t, &zone.origin_wire) {
            self.resolve(zone, zl, t, Some(rdata_at), depth + 1, a);
        }
    }

    /// Writes `rs` to the answer section; an NS, MX or SRV RRset's additional data
    /// follows at the end.
    fn answer_rrset(&mut self, zone: &'s Zone, at: (Owner<'_>, &[u8]), rs: RRsetView<'s>, a: &mut Answer<'s>) {
        let (owner, name) = at;
        let start = self.out.len();
        let (_, n) = self.write_rrset(owner, rs);
        a.an += n;
        if let Some(s) = self.signer.as_mut() {
            a.an += s.sign_rrset(self.out, owner, name, rs, rs_ttl(rs));
        }
        if snapshot::target_offset(rs.rtype).is_some() {
            a.extra = Some(Pending { rrset: rs, zone, owner: &[], start, owner_len: owner.len(), referral: false });
        }
    }

    /// The delegation's NS RRset in the authority section; its glue (the addresses
    /// of the name servers that live in this zone) follows at the end.
    fn referral(&mut self, zone: &'s Zone, cut: NodeView<'s>, owner: Owner<'_>, name: &'s [u8], a: &mut Answer<'s>) {
        a.aa = false;
        let Some(ns) = cut.rrset(wire::TYPE_NS) else { return };
        let start = self.out.len();
        let (_, n) = self.write_rrset(owner, ns);
        a.ns += n;
        a.extra = Some(Pending { rrset: ns, zone, owner: name, start, owner_len: owner.len(), referral: true });
        // With DO=1: the signed DS, or the NSEC proving there is none (an
        // insecure delegation). The NS RRset is the child's: not signed here.
        if let Some(s) = self.signer.as_mut() {
            a.ns += s.delegation(self.out, &self.snap.pools, zone, (owner, name), cut);
        }
    }

    fn pool_answer(&mut self, pidx: u32, qt: u16, at: (Owner<'_>, &[u8]), a: &mut Answer) -> PoolResult {
        let owner = at.0;
        let Some(pool) = self.snap.pools.get(pidx as usize) else {
            return PoolResult::NoData;
        };
        let f = if qt == wire::TYPE_AAAA || (qt == wire::TYPE_ANY && pool.family[0].all.is_empty()) { 1 } else { 0 };
        let client = self.client_subnet();
        let fit = self.members_that_fit(pool, f, owner);
        let (selection, all_down, location) =
            pool.select(f, client, self.snap.geoip.as_deref(), fit, self.scratch, self.order);
        if selection != Selection::NoData || all_down {
            a.pool = Some(pidx);
            pool.counters.answers.fetch_add(1, Ordering::Relaxed);
        }
        if all_down {
            a.all_down = true;
            pool.counters.all_down.fetch_add(1, Ordering::Relaxed);
        }
        let start = self.out.len();
        let an = a.an;
        match selection {
            Selection::NoData => return PoolResult::NoData,
            Selection::ServFail => return PoolResult::ServFail,
            Selection::Fallback => {
                for &address in pool.family[f].fallback_addrs.iter() {
                    write_owner(self.out, owner);
                    write_address(self.out, address, pool.ttl);
                    a.an += 1;
                }
            }
            Selection::Members => {
                for &i in self.order.iter() {
                    if let Some(m) = pool.members.get(i as usize) {
                        write_owner(self.out, owner);
                        write_address(self.out, m.address, pool.ttl);
                        a.an += 1;
                    }
                }
            }
        }
        if let Some(s) = self.signer.as_mut() {
            a.an += s.sign_written(self.out, owner, at.1, start, a.an - an);
        }
        if let Some(s) = self.q.edns.and_then(|e| e.ecs) {
            if selection == Selection::Members {
                a.scope = pool.policy.ecs_scope(s.source_prefix, s.family, location.as_ref());
            }
        }
        PoolResult::Answered
    }

    /// How many member records of family `f` fit in what is left of the reply. The
    /// server chooses the subset, so a large pool gets the first members of its
    /// policy's order that fit rather than a truncated reply, and the policy orders
    /// no more than that. 0 means not even one fits: the reply is then truncated.
    fn members_that_fit(&self, pool: &Pool, f: usize, owner: Owner<'_>) -> usize {
        let owner_len = match owner {
            Owner::Ptr(_) => 2,
            Owner::Name(n) => n.len(),
        };
        let record_len = if pool.family[f].all.is_empty() { 0 } else { address_record_len(f) };
        // The RRSIGs go after the members: their room is kept first.
        let signatures = self.signer.as_ref().map_or(0, |s| s.reserve(owner_len));
        self.room.saturating_sub(self.out.len() + signatures) / (owner_len + record_len)
    }

    /// The address that stands for the client: the ECS address if the query has
    /// one, else the source address. For privacy (RFC 7871 section 11) no more
    /// than /24 (IPv4) or /56 (IPv6) of a client subnet is used.
    fn client_subnet(&self) -> IpAddr {
        match self.q.edns.and_then(|e| e.ecs) {
            Some(s) => net::ecs_client(s.addr, s.source_prefix),
            None => net::canonical(self.client),
        }
    }
}

enum PoolResult {
    Answered,
    NoData,
    ServFail,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RecordType};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    fn snapshot() -> Snapshot {
        let origin = Name::from_ascii("e.test.").unwrap();
        let z = crate::zone::parse_str(
            &origin,
            Path::new("/z"),
            "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\nns AAAA 2001:db8::1\n\
             @ MX 1 NS\n@ MX 2 ns\n@ MX 3 x.wild\n@ MX 4 pool\n@ MX 5 mx.other.test.\n*.wild A 192.0.2.9\n\
             sub NS ns.sub\nsub NS ns\nns.sub A 192.0.2.2\n_s._tcp SRV 0 0 1 ns\npool TXT x\n",
        )
        .unwrap();
        let pools = BTreeMap::from([(Name::from_ascii("pool.e.test.").unwrap(), 0u32)]);
        let zone = crate::snapshot::build_zone(&z.zone, 0, &pools).unwrap();
        let mut snap = Snapshot::empty(1232);
        snap.zones = Arc::new([(zone.origin_wire.clone(), Arc::new(zone))].into_iter().collect());
        snap
    }

    fn ask(snap: &Snapshot, name: &str, rtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).unwrap(), rtype));
        let packet = q.to_vec().unwrap();
        let mut out = Vec::new();
        Responder::new(1).respond(snap, &packet, "192.0.2.100".parse().unwrap(), false, &mut out).unwrap();
        Message::from_vec(&out).unwrap()
    }

    fn additional(m: &Message) -> Vec<String> {
        m.additionals.iter().map(|r| format!("{} {}", r.name, r.data)).collect()
    }

    /// NS, MX and SRV answers carry their in-zone targets' addresses, read from
    /// the RDATA at answer time: once per target (whatever its case), a
    /// wildcard's for a name it covers, none for a pool or out of zone.
    #[test]
    fn additional_addresses_of_targets() {
        let snap = snapshot();
        let mx = ask(&snap, "e.test.", RecordType::MX);
        assert_eq!(mx.answers.len(), 5);
        assert_eq!(
            additional(&mx),
            ["NS.e.test. 192.0.2.1", "NS.e.test. 2001:db8::1", "x.wild.e.test. 192.0.2.9"],
            "ns (as first written) once, the wildcard's A for x.wild"
        );
        let srv = ask(&snap, "_s._tcp.e.test.", RecordType::SRV);
        assert_eq!(additional(&srv), ["ns.e.test. 192.0.2.1", "ns.e.test. 2001:db8::1"]);
    }

    /// A referral carries its in-domain glue first, then the other servers'
    /// addresses.
    #[test]
    fn referral_glue_first() {
        let snap = snapshot();
        let r = ask(&snap, "www.sub.e.test.", RecordType::A);
        assert!(!r.metadata.authoritative);
        assert_eq!(r.authorities.len(), 2);
        assert_eq!(additional(&r), ["ns.sub.e.test. 192.0.2.2", "ns.e.test. 192.0.2.1", "ns.e.test. 2001:db8::1"]);
    }
}
