//! What changed in a zone's transferred content between two snapshots: the
//! records an IXFR removes and adds. Node by node over the newer zone (and the
//! older one's names that are gone); a node whose transferred records are the
//! same bytes costs a comparison.

use std::collections::BTreeSet;

use imbl::ordmap::DiffItem;

use crate::config::TransferPools;
use crate::journal::Rr;
use crate::snapshot::{RRsetView, Snapshot, Zone, transfer::node_records};

/// One version of a zone: the snapshot (for its pools) and the zone in it.
#[derive(Clone, Copy)]
pub struct Version<'s> {
    pub snap: &'s Snapshot,
    pub zone: &'s Zone,
}

/// The records removed from `old` and added in `new`. When both share their
/// base (API changes since the zone was built), only the names their layers
/// differ in and the names of the pools rebuilt are compared: the cost is that
/// of the change. Otherwise (a reload) every node is.
pub fn diff(old: Version<'_>, new: Version<'_>, mode: TransferPools) -> (Vec<Rr>, Vec<Rr>) {
    let same_base = std::sync::Arc::ptr_eq(&old.zone.base, &new.zone.base);
    if !same_base || old.snap.pools.len() != new.snap.pools.len() {
        return diff_all(old, new, mode);
    }
    let mut names: BTreeSet<Box<[u8]>> = old
        .zone
        .layer
        .diff(&new.zone.layer)
        .map(|d| match d {
            DiffItem::Add(k, _) | DiffItem::Remove(k, _) | DiffItem::Update { new: (k, _), .. } => k.clone(),
        })
        .collect();
    let pools = old.snap.pools.iter().zip(new.snap.pools.iter());
    let rebuilt = pools.filter(|(p, q)| !std::sync::Arc::ptr_eq(p, q)).map(|(_, q)| &q.def.name);
    names.extend(rebuilt.filter(|n| new.zone.origin.zone_of(n)).map(crate::snapshot::wire));
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for name in &names {
        a.clear();
        b.clear();
        if let Some(o) = old.zone.node(name) {
            node_records(old.snap, o, mode, &mut a);
        }
        if let Some(n) = new.zone.node(name) {
            node_records(new.snap, n, mode, &mut b);
        }
        if a != b {
            node_diff(name, &a, &b, &mut removed, &mut added);
        }
    }
    (removed, added)
}

/// [`diff`] over every node of both versions.
fn diff_all(old: Version<'_>, new: Version<'_>, mode: TransferPools) -> (Vec<Rr>, Vec<Rr>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for node in new.zone.nodes() {
        b.clear();
        node_records(new.snap, node, mode, &mut b);
        a.clear();
        if let Some(o) = old.zone.node(node.name()) {
            node_records(old.snap, o, mode, &mut a);
        }
        if a != b {
            node_diff(node.name(), &a, &b, &mut removed, &mut added);
        }
    }
    for node in old.zone.nodes().filter(|n| new.zone.node(n.name()).is_none()) {
        a.clear();
        node_records(old.snap, node, mode, &mut a);
        node_diff(node.name(), &a, &[], &mut removed, &mut added);
    }
    (removed, added)
}

/// Whether a transfer of the zone sends other pool records in `new` than in
/// `old` (the same zone, the same serial): only pools rebuilt since are read.
pub fn pools_differ(old: Version<'_>, new: Version<'_>, mode: TransferPools) -> bool {
    if old.snap.pools.len() != new.snap.pools.len() {
        return true;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    old.snap.pools.iter().zip(new.snap.pools.iter()).any(|(p, q)| {
        if std::sync::Arc::ptr_eq(p, q) || !new.zone.origin.zone_of(&q.def.name) {
            return false;
        }
        a.clear();
        b.clear();
        crate::snapshot::transfer::pool_records(p, mode, &mut a);
        crate::snapshot::transfer::pool_records(q, mode, &mut b);
        a != b
    })
}

fn node_diff(owner: &[u8], a: &[u8], b: &[u8], removed: &mut Vec<Rr>, added: &mut Vec<Rr>) {
    let old: Vec<&[u8]> = RRsetView::new(0, 0, a).records().collect();
    let new: Vec<&[u8]> = RRsetView::new(0, 0, b).records().collect();
    removed.extend(old.iter().filter(|r| !new.contains(r)).map(|r| (owner.into(), (*r).into())));
    added.extend(new.iter().filter(|r| !old.contains(r)).map(|r| (owner.into(), (*r).into())));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use hickory_proto::rr::Name;

    use super::*;
    use crate::snapshot::{EncodedRRset, build_zone, wire};

    fn zone(text: &str) -> Zone {
        let origin = Name::from_ascii("e.test.").unwrap();
        let z = crate::zone::parse_str(&origin, Path::new("/z"), text).unwrap();
        build_zone(&z.zone, 0, &BTreeMap::new()).unwrap()
    }

    /// Changed records come out as removed and added; a name gone, removed;
    /// what did not change, nothing.
    #[test]
    fn records_removed_and_added() {
        let head = "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\n";
        let old = zone(&format!("{head}a A 192.0.2.2\na A 192.0.2.3\ngone TXT x\n"));
        let set = EncodedRRset::new([&[0u8, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9][..]]);
        let new = old.with_rrset(&wire(&Name::from_ascii("a.e.test.").unwrap()), 1, Some(set));
        let new = new.with_rrset(&wire(&Name::from_ascii("gone.e.test.").unwrap()), 16, None);
        let snap = Snapshot::empty(1232);
        let (removed, added) =
            diff(Version { snap: &snap, zone: &old }, Version { snap: &snap, zone: &new }, TransferPools::Healthy);
        let last = |v: &[Rr]| v.iter().map(|(o, r)| (o.len(), r[r.len() - 1])).collect::<Vec<_>>();
        assert_eq!(last(&removed), [(10, 2), (10, 3), (13, b'x')]);
        assert_eq!(last(&added), [(10, 9)]);
        let (vo, vn) = (Version { snap: &snap, zone: &old }, Version { snap: &snap, zone: &new });
        assert_eq!(diff_all(vo, vn, TransferPools::Healthy), (removed, added), "the walk of every node agrees");
        let (r, a) = diff(vn, vn, TransferPools::Healthy);
        assert!(r.is_empty() && a.is_empty());
    }
}
