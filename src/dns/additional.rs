//! The additional section of an answer (RFC 1035 section 4.3.2 step 6): the
//! in-zone addresses of the targets of the NS, MX or SRV RRset just written,
//! looked up in the zone from the target names in its RDATA while answering
//! (nothing is precomputed or held twice), a referral's in-domain glue first
//! (RFC 9471). No allocation: target names are lower-cased into a stack buffer.
//! With DO=1 in a signed zone each authoritative RRset here comes with its RRSIGs,
//! written or dropped together; a referral's glue is the child's and is not signed.

use super::wire;
use crate::snapshot::{self, NodeView, RRsetView, Zone};

/// An owner name to write: a compression pointer or the name itself.
#[derive(Clone, Copy)]
pub(super) enum Owner<'a> {
    Ptr(u16),
    Name(&'a [u8]),
}

impl Owner<'_> {
    pub(super) fn len(self) -> usize {
        match self {
            Owner::Ptr(_) => 2,
            Owner::Name(n) => n.len(),
        }
    }
}

/// An NS, MX or SRV RRset just written, whose targets' addresses go in the
/// additional section once the rest of the reply is known to fit. They are looked
/// up then, in the zone, from the target names in the RDATA written.
#[derive(Clone, Copy)]
pub(super) struct Pending<'s> {
    pub(super) rrset: RRsetView<'s>,
    pub(super) zone: &'s Zone,
    /// The RRset's owner (lower-cased wire) for a referral, whose glue is what
    /// lies at or below it; empty otherwise.
    pub(super) owner: &'s [u8],
    /// Where the RRset's first owner name starts in the message.
    pub(super) start: usize,
    /// The length of each record's owner name as written.
    pub(super) owner_len: usize,
    /// A referral: its in-domain glue is required (RFC 9471).
    pub(super) referral: bool,
}

/// What signs the additional section's authoritative RRsets (the DNSSEC
/// signer, with DO=1 in a signed zone).
pub(super) trait Signatures {
    /// The bytes the RRSIGs of one RRset take, its owner written in `owner_len`.
    fn reserve(&self, owner_len: usize) -> usize;
    /// Appends the RRSIGs of `rs`, owned by `name` written as `owner`; how many.
    fn sign(&mut self, out: &mut Vec<u8>, owner: Owner<'_>, name: &[u8], rs: RRsetView<'_>) -> u16;
}

/// The signer of additional data, if any.
pub(super) type Signer<'a, 'b> = Option<&'a mut (dyn Signatures + 'b)>;

/// Writes `owner` as a compression pointer or the name itself.
pub(super) fn write_owner(out: &mut Vec<u8>, owner: Owner<'_>) {
    match owner {
        Owner::Ptr(p) => out.extend_from_slice(&(0xc000 | p).to_be_bytes()),
        Owner::Name(n) => out.extend_from_slice(n),
    }
}

/// Writes the additional section for `p` while the message stays within `limit`
/// bytes: a referral's in-domain glue first, which must fit whole (`false`: it
/// does not, and the reply is to be truncated), then the rest, each RRset whole
/// or not at all, dropped without TC when it does not fit.
pub(super) fn write_additional(
    out: &mut Vec<u8>,
    p: &Pending<'_>,
    limit: usize,
    ar: &mut u16,
    signer: Signer<'_, '_>,
) -> bool {
    let mut signer = signer;
    // A referral's glue first, unsigned: it is the child's.
    if p.referral
        && !each_target(p, |owner, (_, in_domain), node| {
            !in_domain || put_addresses(out, (owner, &[]), node, limit, ar, None)
        })
    {
        return false;
    }
    each_target(p, |owner, (target, in_domain), node| {
        if !(p.referral && in_domain) {
            put_addresses(out, (owner, target), node, limit, ar, signer.as_deref_mut());
        }
        true
    });
    true
}

/// Calls `f` for each distinct target of `p`'s records (RFC 1035 section 4.3.2
/// step 6) that is in the zone and has a node there (its own or a wildcard's)
/// that is not a pool: pools are left out, their answer depends on the client
/// and on health, and resolvers ask for them anyway. `f` gets the owner to write
/// the target's addresses under (a pointer to the target name written in the
/// RDATA, or the name where no pointer reaches), the target (lower-cased wire)
/// and whether it is at or below the RRset's owner (a referral's required glue,
/// RFC 9471), and the node. Stops, returning `false`, when `f` does.
fn each_target<'s>(p: &Pending<'s>, mut f: impl FnMut(Owner<'_>, (&[u8], bool), NodeView<'s>) -> bool) -> bool {
    let Some(name_at) = snapshot::target_offset(p.rrset.rtype) else { return true };
    let mut before = 0usize;
    for (j, rec) in p.rrset.records().enumerate() {
        let at = p.start + (j + 1) * p.owner_len + before + 10 + name_at;
        before += rec.len();
        let mut buf = [0u8; 256];
        let Some(len) = rec.get(10 + name_at..).and_then(|r| snapshot::lower_name(r, &mut buf)) else { continue };
        let target = &buf[..len];
        let same = |r: &[u8]| r.get(10 + name_at..).is_some_and(|n| n.eq_ignore_ascii_case(target));
        if p.rrset.records().take(j).any(same) || !snapshot::is_at_or_below(target, &p.zone.origin_wire) {
            continue;
        }
        let Some(node) = p.zone.target_node(target).filter(|n| n.pool().is_none()) else { continue };
        let owner = if at < 0x3fff { Owner::Ptr(at as u16) } else { Owner::Name(target) };
        if !f(owner, (target, snapshot::is_at_or_below(target, p.owner)), node) {
            return false;
        }
    }
    true
}

/// Writes a node's A and AAAA RRsets under the name `at` (as written, and
/// lower-cased wire), each whole (with its RRSIGs when signed) if it fits;
/// `false` when one does not.
fn put_addresses(
    out: &mut Vec<u8>,
    at: (Owner<'_>, &[u8]),
    node: NodeView<'_>,
    limit: usize,
    ar: &mut u16,
    mut signer: Signer<'_, '_>,
) -> bool {
    for rtype in [wire::TYPE_A, wire::TYPE_AAAA] {
        if let Some(rs) = node.rrset(rtype) {
            if !put_rrset(out, at, rs, limit, ar, signer.as_deref_mut()) {
                return false;
            }
        }
    }
    true
}

/// Writes all of `rs` and its RRSIGs under `at` if the message stays within `limit`.
fn put_rrset(
    out: &mut Vec<u8>,
    at: (Owner<'_>, &[u8]),
    rs: RRsetView<'_>,
    limit: usize,
    ar: &mut u16,
    signer: Signer<'_, '_>,
) -> bool {
    let (owner, name) = at;
    let signatures = signer.as_ref().map_or(0, |s| s.reserve(owner.len()));
    if out.len() + rs.count() as usize * owner.len() + rs.bytes().len() + signatures > limit {
        return false;
    }
    for rec in rs.records() {
        write_owner(out, owner);
        out.extend_from_slice(rec);
        *ar += 1;
    }
    if let Some(s) = signer {
        *ar += s.sign(out, owner, name, rs);
    }
    true
}
