//! The answer engine's DNSSEC part, used only for a query with DO=1 to a signed
//! zone: RRSIGs after the RRsets just written (read back from the reply, so a
//! pool's answer is signed as written, in any order), and the NSEC records of
//! compact denial (RFC 9824): a name that exists gets an NSEC listing its types,
//! one that does not gets an NSEC whose types are {RRSIG, NSEC, NXNAME}; both
//! name `\000.name` as the next name, so no other name is covered or revealed.
//! Nothing here allocates once the buffers have grown.

use super::additional::{Owner, Signatures, write_owner};
use super::wire::{self, Query};
use crate::dnssec::{
    self, Scratch, Signing, TYPE_CDNSKEY, TYPE_CDS, TYPE_DNSKEY, TYPE_NSEC, TYPE_NXNAME, TYPE_RRSIG, ZoneKeys,
};
use crate::snapshot::{NodeView, Pools, RRsetView, Zone};

/// The TTL of an RRset's records.
pub(super) fn rs_ttl(rs: RRsetView<'_>) -> u32 {
    rs.records().next().and_then(|r| r.get(4..8)).map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

/// The TTL of negative answers: the negative SOA's (RFC 2308, RFC 9077).
pub(super) fn negative_ttl(zone: &Zone) -> u32 {
    zone.negative_soa.get(4..8).map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

/// A query for the NXNAME meta-type to a signed zone: FORMERR (RFC 9824
/// section 3.5).
pub(super) struct NxNameQuery;

/// The signer for a query to the zone `origin`: one when the query has DO=1
/// and the zone is signed (taking the buffers), none otherwise.
pub(super) fn signer_for<'s, 'x>(
    signing: &'s Signing,
    q: &Query,
    origin: &[u8],
    scratch: &mut Option<&'x mut DnssecScratch>,
) -> Result<Option<Signer<'s, 'x>>, NxNameQuery> {
    let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
    if !dnssec_ok && q.qtype != TYPE_NXNAME {
        return Ok(None);
    }
    let Some(keys) = signing.zone(origin) else { return Ok(None) };
    if q.qtype == TYPE_NXNAME {
        return Err(NxNameQuery);
    }
    Ok(scratch.take().map(|s| Signer::new(signing, keys, s)))
}

/// Buffers reused from query to query.
#[derive(Default)]
pub(super) struct DnssecScratch {
    sig: Scratch,
    /// The types of an NSEC bitmap.
    pub(super) types: Vec<u16>,
    /// An NSEC record being made (TYPE to the end of RDATA).
    nsec: Vec<u8>,
}

/// Signs for one query: the zone's keys, the cache, the time.
pub(super) struct Signer<'s, 'x> {
    pub(super) signing: &'s Signing,
    pub(super) keys: &'s ZoneKeys,
    pub(super) scratch: &'x mut DnssecScratch,
    now: u32,
}

impl<'s, 'x> Signer<'s, 'x> {
    pub(super) fn new(signing: &'s Signing, keys: &'s ZoneKeys, scratch: &'x mut DnssecScratch) -> Self {
        Signer { signing, keys, scratch, now: 0 }
    }

    fn now(&mut self) -> u32 {
        if self.now == 0 {
            self.now = dnssec::now();
        }
        self.now
    }

    /// The RCODE of an answer for a name that does not exist: NOERROR under
    /// compact denial, unless the query's CO flag says it understands NXDOMAIN
    /// with it.
    pub(super) fn nxdomain_rcode(&self, q: &Query) -> u16 {
        if q.edns.is_some_and(|e| e.compact_ok) { wire::RCODE_NXDOMAIN as u16 } else { wire::RCODE_NOERROR as u16 }
    }

    /// The bytes the RRSIGs of one RRset take, its owner written in `owner_len`.
    pub(super) fn reserve(&self, owner_len: usize) -> usize {
        self.keys.rrsigs_len(owner_len)
    }

    /// Appends the RRSIGs of the `n` records written from `start` in `out`
    /// under `owner` (whose name is `name`, lower-cased wire); returns how many.
    pub(super) fn sign_written(
        &mut self,
        out: &mut Vec<u8>,
        owner: Owner<'_>,
        name: &[u8],
        start: usize,
        n: u16,
    ) -> u16 {
        let olen = owner.len();
        let mut rest = out.get(start..).unwrap_or_default();
        let records = std::iter::from_fn(|| {
            let rec = rest.get(olen..)?;
            let len = 10 + u16::from_be_bytes([*rec.get(8)?, *rec.get(9)?]) as usize;
            let r = rec.get(..len)?;
            rest = &rec[len..];
            Some(r)
        })
        .take(n as usize);
        if !self.scratch.sig.canon.read(records) {
            return 0;
        }
        let ttl = self.scratch.sig.canon.ttl;
        self.emit(out, owner, name, ttl)
    }

    /// Appends the RRSIGs of `rs` under `owner`, with `ttl` as the RRSIGs'
    /// TTL (the negative TTL for an SOA in a negative answer).
    pub(super) fn sign_rrset(
        &mut self,
        out: &mut Vec<u8>,
        owner: Owner<'_>,
        name: &[u8],
        rs: RRsetView<'_>,
        ttl: u32,
    ) -> u16 {
        if !self.scratch.sig.canon.read(rs.records()) {
            return 0;
        }
        self.emit(out, owner, name, ttl)
    }

    fn emit(&mut self, out: &mut Vec<u8>, owner: Owner<'_>, name: &[u8], ttl: u32) -> u16 {
        let now = self.now();
        let mut n = 0u16;
        self.signing.sign(self.keys, &mut self.scratch.sig, name, now, |rdata| {
            write_owner(out, owner);
            out.extend_from_slice(&dnssec::TYPE_RRSIG.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
            n += 1;
        });
        n
    }

    /// The NSEC of compact denial (RFC 9824) at the name `at` (as written, and
    /// lower-cased wire) and its RRSIGs: the types at `node` (all but `absent`,
    /// the type denied), or {RRSIG, NSEC, NXNAME} when the name does not exist.
    /// Returns how many records.
    pub(super) fn deny(
        &mut self,
        out: &mut Vec<u8>,
        pools: &Pools,
        zone: &Zone,
        at: (Owner<'_>, &[u8]),
        node: Option<NodeView<'_>>,
        absent: u16,
    ) -> u16 {
        let types = &mut self.scratch.types;
        types.clear();
        types.extend_from_slice(&[TYPE_RRSIG, TYPE_NSEC]);
        match node {
            None => types.push(TYPE_NXNAME),
            Some(n) => {
                types.extend(n.rrsets().map(|r| r.rtype));
                if let Some(pool) = n.pool().and_then(|p| pools.get(p as usize)) {
                    for (f, t) in [(0, wire::TYPE_A), (1, wire::TYPE_AAAA)] {
                        if !pool.family[f].all.is_empty() {
                            types.push(t);
                        }
                    }
                }
                if n.apex() {
                    types.extend_from_slice(&[wire::TYPE_SOA, TYPE_DNSKEY, TYPE_CDS, TYPE_CDNSKEY]);
                }
                types.retain(|&t| t != absent);
            }
        }
        self.nsec(out, at.0, at.1, negative_ttl(zone))
    }

    /// What a referral at `cut` (the name `at`) proves: its DS RRset and
    /// RRSIGs, or the NSEC that denies a DS (an insecure delegation). The NS
    /// RRset is the child's, not signed here. Returns how many records.
    pub(super) fn delegation(
        &mut self,
        out: &mut Vec<u8>,
        pools: &Pools,
        zone: &Zone,
        at: (Owner<'_>, &[u8]),
        cut: NodeView<'_>,
    ) -> u16 {
        let Some(ds) = cut.rrset(wire::TYPE_DS) else {
            return self.deny(out, pools, zone, at, Some(cut), wire::TYPE_DS);
        };
        for rec in ds.records() {
            write_owner(out, at.0);
            out.extend_from_slice(rec);
        }
        ds.count() + self.sign_rrset(out, at.0, at.1, ds, rs_ttl(ds))
    }

    /// Writes the NSEC at `name` (written as `owner`) whose bitmap lists
    /// `self.scratch.types`, and its RRSIGs; returns how many records.
    fn nsec(&mut self, out: &mut Vec<u8>, owner: Owner<'_>, name: &[u8], ttl: u32) -> u16 {
        let DnssecScratch { types, nsec, .. } = &mut *self.scratch;
        types.sort_unstable();
        types.dedup();
        nsec.clear();
        nsec.extend_from_slice(&dnssec::TYPE_NSEC.to_be_bytes());
        nsec.extend_from_slice(&1u16.to_be_bytes());
        nsec.extend_from_slice(&ttl.to_be_bytes());
        nsec.extend_from_slice(&[0, 0]);
        // The next name: `\000.name`, the name's immediate successor (RFC 4470),
        // or the name itself where that would be too long.
        if name.len() + 2 <= 255 {
            nsec.extend_from_slice(&[1, 0]);
        }
        nsec.extend_from_slice(name);
        write_bitmap(nsec, types);
        let rdlen = (nsec.len() - 10) as u16;
        nsec[8..10].copy_from_slice(&rdlen.to_be_bytes());
        write_owner(out, owner);
        out.extend_from_slice(nsec);
        if !self.scratch.sig.canon.read(std::iter::once(&self.scratch.nsec[..])) {
            return 1;
        }
        1 + self.emit(out, owner, name, ttl)
    }
}

impl Signatures for Signer<'_, '_> {
    fn reserve(&self, owner_len: usize) -> usize {
        Signer::reserve(self, owner_len)
    }

    fn sign(&mut self, out: &mut Vec<u8>, owner: Owner<'_>, name: &[u8], rs: RRsetView<'_>) -> u16 {
        self.sign_rrset(out, owner, name, rs, rs_ttl(rs))
    }
}

/// The NSEC type bitmap (RFC 4034 section 4.1.2) of `types` (sorted, distinct).
fn write_bitmap(out: &mut Vec<u8>, types: &[u16]) {
    let mut i = 0usize;
    while let Some(&first) = types.get(i) {
        let window = (first >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0usize;
        while let Some(&t) = types.get(i).filter(|&&t| (t >> 8) as u8 == window) {
            let low = (t & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4034 section 4.3's example: A MX RRSIG NSEC TYPE1234.
    #[test]
    fn bitmap_of_the_rfc_example() {
        let mut out = Vec::new();
        write_bitmap(&mut out, &[1, 15, 46, 47, 1234]);
        let mut want = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        want.extend_from_slice(&[0; 26]);
        want.push(0x20);
        assert_eq!(out, want);
    }
}
