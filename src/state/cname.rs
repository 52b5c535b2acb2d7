//! CNAME chains inside one zone: the check that refuses an API write which would
//! close a loop (a→b→a, a→a, or through a wildcard CNAME). A zone file with a
//! loop is left to the answer engine, which stops at the loop; the API does not
//! let one be made.

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::{Name, RData};

use crate::zone::ZoneData;

/// The loop that a CNAME `owner → target` would close in `zone` (whose own CNAME
/// at `owner`, if any, is replaced), as the chain from `owner` back to a name
/// already on it; `None` when the chain ends (or leaves the zone).
pub fn loop_closed_by(zone: &ZoneData, owner: &Name, target: &Name) -> Option<Vec<Name>> {
    let owner = owner.to_lowercase();
    let next: HashMap<Name, &Name> = zone
        .records
        .iter()
        .filter_map(|r| match &r.rdata {
            RData::CNAME(c) if r.name.to_lowercase() != owner => Some((r.name.to_lowercase(), &c.0)),
            _ => None,
        })
        .collect();
    let names = Existing::of(zone, &owner);
    let mut chain = vec![owner.clone()];
    let mut seen: HashSet<Name> = HashSet::from([owner.clone()]);
    let mut at = target.to_lowercase();
    loop {
        chain.push(at.clone());
        if !seen.insert(at.clone()) {
            return Some(chain);
        }
        let via = if at == owner { Some(&owner) } else { names.source_of(&at, &zone.origin) };
        at = match via {
            Some(name) if *name == owner => target.to_lowercase(),
            Some(name) => next.get(name)?.to_lowercase(),
            None => return None,
        };
    }
}

/// The names that exist in a zone (owners and their ancestors: empty
/// non-terminals exist too), to find which name's records answer a query name.
struct Existing {
    names: HashSet<Name>,
}

impl Existing {
    fn of(zone: &ZoneData, owner: &Name) -> Existing {
        let mut names = HashSet::new();
        for n in zone.records.iter().map(|r| &r.name).chain([owner]) {
            let mut n = n.to_lowercase();
            while n.num_labels() >= zone.origin.num_labels() && names.insert(n.clone()) {
                n = n.base_name();
            }
        }
        Existing { names }
    }

    /// The owner whose records answer `qname`: itself when it exists, else the
    /// wildcard at its closest encloser (RFC 4592), when there is one.
    fn source_of(&self, qname: &Name, origin: &Name) -> Option<&Name> {
        if !origin.zone_of(qname) {
            return None;
        }
        if let Some(n) = self.names.get(qname) {
            return Some(n);
        }
        let mut encloser = qname.base_name();
        while !self.names.contains(&encloser) {
            encloser = encloser.base_name();
        }
        let wildcard = Name::from_ascii("*").ok()?.append_domain(&encloser).ok()?;
        self.names.get(&wildcard)
    }
}

/// `a. -> b. -> a.`
pub fn show(chain: &[Name]) -> String {
    chain.iter().map(|n| n.to_ascii()).collect::<Vec<_>>().join(" -> ")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use hickory_proto::rr::rdata::CNAME;

    use super::*;
    use crate::zone::ZoneRecord;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn zone(cnames: &[(&str, &str)]) -> ZoneData {
        let file: Arc<std::path::Path> = Arc::from(std::path::Path::new("z"));
        let records = cnames
            .iter()
            .map(|(o, t)| ZoneRecord {
                name: n(o),
                ttl: 60,
                rdata: RData::CNAME(CNAME(n(t))),
                file: file.clone(),
                line: 1,
            })
            .collect();
        ZoneData { origin: n("z."), file: "z".into(), records }
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
    }
}
