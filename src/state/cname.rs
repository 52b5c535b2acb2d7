//! CNAME chains inside one zone: the check that refuses an API write which would
//! close a loop (a→b→a, a→a, or through a wildcard CNAME). A zone file with a
//! loop is left to the answer engine, which stops at the loop; the API does not
//! let one be made. The chain is walked by lookups in the zone in effect, so the
//! check costs the chain's length, not the zone's size.

use std::collections::HashSet;

use hickory_proto::rr::{Name, RData, RecordType};

use crate::snapshot::{NodeView, Zone, decode_rrset};

/// The loop that a CNAME `owner → target` would close in `zone` (whose own CNAME
/// at `owner`, if any, is replaced), as the chain from `owner` back to a name
/// already on it; `None` when the chain ends (or leaves the zone).
pub fn loop_closed_by(zone: &Zone, owner: &Name, target: &Name) -> Option<Vec<Name>> {
    let owner = owner.to_lowercase();
    let mut chain = vec![owner.clone()];
    let mut seen: HashSet<Name> = HashSet::from([owner.clone()]);
    let mut at = target.to_lowercase();
    loop {
        chain.push(at.clone());
        if !seen.insert(at.clone()) {
            return Some(chain);
        }
        at = match source_of(zone, &owner, &at)? {
            Source::Owner => target.to_lowercase(),
            Source::Node(node) => cname_of(&node)?.to_lowercase(),
        };
    }
}

/// Whose records answer a query name.
enum Source<'z> {
    /// The owner of the CNAME being written.
    Owner,
    Node(NodeView<'z>),
}

/// Whether `name` exists once the owner's CNAME is written: it is a node of the
/// zone, or the owner or one of its ancestors (empty non-terminals exist too).
fn exists(zone: &Zone, owner: &Name, name: &Name) -> bool {
    name.zone_of(owner) || zone.node_at(name).is_some()
}

/// The owner whose records answer `qname`: itself when it exists, else the
/// wildcard at its closest encloser (RFC 4592), when there is one.
fn source_of<'z>(zone: &'z Zone, owner: &Name, qname: &Name) -> Option<Source<'z>> {
    if !zone.origin.zone_of(qname) {
        return None;
    }
    if qname == owner {
        return Some(Source::Owner);
    }
    if let Some(node) = zone.node_at(qname) {
        return Some(Source::Node(node));
    }
    if exists(zone, owner, qname) {
        return None; // an empty non-terminal above the owner: no CNAME
    }
    let mut encloser = qname.base_name();
    while !exists(zone, owner, &encloser) {
        if encloser.num_labels() <= zone.origin.num_labels() {
            return None;
        }
        encloser = encloser.base_name();
    }
    let wildcard = Name::from_ascii("*").ok()?.append_domain(&encloser).ok()?;
    if wildcard == *owner {
        return Some(Source::Owner);
    }
    zone.node_at(&wildcard).map(Source::Node)
}

/// The target of the CNAME at `node`, if it has one.
fn cname_of(node: &NodeView<'_>) -> Option<Name> {
    let (_, records) = decode_rrset(node.rrset(u16::from(RecordType::CNAME))?);
    match records.into_iter().next()? {
        RData::CNAME(c) => Some(c.0),
        _ => None,
    }
}

/// `a. -> b. -> a.`
pub fn show(chain: &[Name]) -> String {
    chain.iter().map(|n| n.to_ascii()).collect::<Vec<_>>().join(" -> ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::str::FromStr;

    use super::*;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn zone(cnames: &[(&str, &str)]) -> Zone {
        let mut text = String::from("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n");
        for (o, t) in cnames {
            text.push_str(&format!("{o} CNAME {t}\n"));
        }
        let data = crate::zone::parse_str(&n("z."), Path::new("z"), &text).unwrap();
        crate::snapshot::build_zone(&data.zone, 0, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn loops_are_found_and_chains_that_end_are_not() {
        let z = zone(&[("b.z.", "c.z."), ("c.z.", "A.z.")]);
        assert_eq!(show(&loop_closed_by(&z, &n("a.z."), &n("b.z.")).unwrap()), "a.z. -> b.z. -> c.z. -> a.z.");
        assert_eq!(show(&loop_closed_by(&z, &n("a.z."), &n("a.z.")).unwrap()), "a.z. -> a.z.");
        assert_eq!(loop_closed_by(&z, &n("a.z."), &n("d.z.")), None);
        // Replacing c's CNAME breaks the old way round.
        assert_eq!(loop_closed_by(&z, &n("c.z."), &n("d.z.")), None);
        // Out of the zone: the chain ends.
        assert_eq!(loop_closed_by(&z, &n("a.z."), &n("elsewhere.")), None);
    }

    #[test]
    fn wildcards_are_followed() {
        // x.w.z. does not exist: *.w.z. answers it, and points back at a.
        let z = zone(&[("*.w.z.", "a.z.")]);
        assert_eq!(show(&loop_closed_by(&z, &n("a.z."), &n("x.w.z.")).unwrap()), "a.z. -> x.w.z. -> a.z.");
        // A wildcard CNAME to a name it answers itself.
        assert_eq!(show(&loop_closed_by(&z, &n("*.w.z."), &n("y.w.z.")).unwrap()), "*.w.z. -> y.w.z. -> y.w.z.");
        // A name that exists is not answered by the wildcard.
        let z = zone(&[("*.w.z.", "a.z."), ("x.w.z.", "end.z.")]);
        assert_eq!(loop_closed_by(&z, &n("a.z."), &n("x.w.z.")), None);
        // The owner's own ancestors exist once it is written: q.b.z. is answered
        // by *.b.z. (b.z. is the closest encloser), not by *.z.
        let z = zone(&[("*.z.", "a.b.z.")]);
        assert_eq!(loop_closed_by(&z, &n("a.b.z."), &n("q.b.z.")), None);
        assert!(loop_closed_by(&z, &n("a.b.z."), &n("q.c.z.")).is_some());
    }
}
