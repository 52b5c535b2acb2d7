//! CNAME chains inside one zone: the check that refuses an API write which would
//! close a loop (a→b→a, a→a). A zone file with a loop is left to the answer
//! engine, which stops at the loop; the API does not let one be made.
//!
//! Only exact owner names are followed: a chain through a wildcard is not seen.

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::{Name, RData};

use crate::zone::ZoneData;

/// The loop that a CNAME `owner → target` would close in `zone` (whose own CNAME
/// at `owner`, if any, is replaced), as the chain from `owner` back to a name
/// already on it; `None` when the chain ends.
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
    let mut chain = vec![owner.clone()];
    let mut seen: HashSet<Name> = HashSet::from([owner]);
    let mut at = target.to_lowercase();
    loop {
        chain.push(at.clone());
        if !seen.insert(at.clone()) {
            return Some(chain);
        }
        at = next.get(&at)?.to_lowercase();
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
    }
}
