//! The checks a change to a zone in effect must pass, made per name on the
//! compact zone (`snapshot::Zone`: the base from the file, the API's layer over
//! it) rather than over every record: a change at one name can break only what
//! is at that name (CNAME exclusivity) and at the apex (its NS), and a pool only
//! what is at its name and its ancestors. The messages are the whole-zone
//! checks' (`crate::zone`), so a refusal reads the same however it was found.

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};

use crate::problem::Problem;
use crate::snapshot::Zone;
use crate::sources::PlacementError;
use crate::zone::ZoneCheckError;

const CNAME: u16 = 5;

fn refused(message: String) -> ZoneCheckError {
    ZoneCheckError(Problem::new(Path::new(""), 0, message))
}

/// Checks `zone` after a change to the RRsets at `name`: the apex keeps its NS
/// records, a CNAME is alone at its name and not at the apex. `whence` says
/// where an RRset at `name` came from (its zone file line, or the API).
pub fn check_change(zone: &Zone, name: &Name, whence: &dyn Fn(RecordType) -> String) -> Result<(), ZoneCheckError> {
    let origin = &zone.origin;
    if zone.node_at(origin).and_then(|n| n.rrset(u16::from(RecordType::NS))).is_none() {
        return Err(refused(format!("zone {origin} has no NS record at its apex")));
    }
    let Some(node) = zone.node_at(name) else { return Ok(()) };
    let Some(cname) = node.rrset(CNAME) else { return Ok(()) };
    if name == origin {
        return Err(refused(format!("CNAME at the zone apex {origin}")));
    }
    if let Some(other) = node.rrsets().find(|r| r.rtype != CNAME) {
        let other = whence(RecordType::from(other.rtype));
        return Err(refused(format!("CNAME at {name} beside other data ({other})")));
    }
    if cname.count() > 1 {
        return Err(refused(format!("second CNAME at {name}")));
    }
    Ok(())
}

/// A pool must be inside a zone, below no cut, and have no A, AAAA or CNAME
/// RRset in effect at its name (the pool answers those): the rule
/// `sources` applies to the files (`PlacementIndex`), here by lookups.
/// `answers` says where an RRset at the pool's name came from: (file, line).
pub fn check_placement(
    pool: &Name,
    zones: &[std::sync::Arc<Zone>],
    answers: &dyn Fn(&Zone, RecordType) -> (String, usize),
) -> Result<(), PlacementError> {
    let zone = zones.iter().filter(|z| z.origin.zone_of(pool)).max_by_key(|z| z.origin.num_labels());
    let Some(zone) = zone else { return Err(PlacementError::NoZone { pool: pool.to_string() }) };
    if let Some(node) = zone.node_at(pool) {
        let answering = [RecordType::A, RecordType::AAAA, RecordType::CNAME];
        if let Some(rtype) = answering.into_iter().find(|t| node.rrset(u16::from(*t)).is_some()) {
            let (file, line) = answers(zone, rtype);
            return Err(PlacementError::Answers { pool: pool.to_string(), rtype: rtype.to_string(), file, line });
        }
    }
    let mut n = pool.clone();
    while n.num_labels() > zone.origin.num_labels() {
        if zone.node_at(&n).is_some_and(|node| node.delegation()) {
            return Err(PlacementError::Cut { pool: pool.to_string(), cut: n.to_string() });
        }
        n = n.base_name();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::snapshot::{EncodedRRset, build_zone};

    fn zone(text: &str) -> Arc<Zone> {
        let origin = Name::from_ascii("z.").unwrap();
        let data = crate::zone::parse_str(&origin, Path::new("/z"), text).unwrap();
        Arc::new(build_zone(&data.zone, 0, &BTreeMap::new()).unwrap())
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// An RRset of the records `lines` make at `name` (each read alone, so
    /// that what a zone file refuses can be made).
    fn set(lines: &[&str], name: &str, rtype: u16) -> Option<EncodedRRset> {
        let mut records = Vec::new();
        for line in lines {
            let z = zone(&format!("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n{line}\n"));
            records.extend(z.node_at(&n(name))?.rrset(rtype)?.records().map(<[u8]>::to_vec));
        }
        Some(EncodedRRset::new(records.iter().map(|r| &r[..])))
    }

    /// A change is checked at its name and the apex, with the whole-zone
    /// check's messages; elsewhere nothing is looked at.
    #[test]
    fn a_change_is_checked_at_its_name_and_the_apex() {
        let z = zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nc CNAME ns\n");
        let whence = |t: RecordType| format!("{t} set through the API");
        assert!(check_change(&z, &n("c.z."), &whence).is_ok());
        let beside = Arc::new(z.with_rrset_at(&n("c.z."), RecordType::A, set(&["c A 192.0.2.2"], "c.z.", 1)));
        let e = check_change(&beside, &n("c.z."), &whence).unwrap_err().to_string();
        assert_eq!(e, "CNAME at c.z. beside other data (A set through the API)");
        assert!(check_change(&beside, &n("ns.z."), &whence).is_ok(), "not checked where nothing changed");
        let two = Arc::new(z.with_rrset_at(&n("c.z."), RecordType::CNAME, set(&["c CNAME a", "c CNAME b"], "c.z.", 5)));
        assert_eq!(check_change(&two, &n("c.z."), &whence).unwrap_err().to_string(), "second CNAME at c.z.");
        let apex = Arc::new(z.with_rrset_at(&n("z."), RecordType::CNAME, set(&["x CNAME ns"], "x.z.", 5)));
        assert_eq!(check_change(&apex, &n("z."), &whence).unwrap_err().to_string(), "CNAME at the zone apex z.");
        let bare = z.with_rrset_at(&n("z."), RecordType::NS, None);
        let e = check_change(&bare, &n("z."), &whence).unwrap_err().to_string();
        assert_eq!(e, "zone z. has no NS record at its apex");
    }

    /// Pools: not beside A, AAAA or CNAME, not at or below a cut, inside a zone.
    #[test]
    fn placement_by_lookups() {
        let zones = [zone("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nsub NS ns.else.\nt TXT x\n")];
        let answers = |_: &Zone, _: RecordType| ("f".to_string(), 4);
        assert!(check_placement(&n("t.z."), &zones, &answers).is_ok());
        assert!(check_placement(&n("new.z."), &zones, &answers).is_ok());
        let e = check_placement(&n("ns.z."), &zones, &answers).unwrap_err();
        assert_eq!(e.to_string(), "pool ns.z. also has A records in f:4; remove them from the zone file");
        let e = check_placement(&n("a.sub.z."), &zones, &answers).unwrap_err();
        assert_eq!(e.to_string(), "pool a.sub.z. is at or below the zone cut sub.z.");
        let e = check_placement(&n("x.other."), &zones, &answers).unwrap_err();
        assert_eq!(e.to_string(), "pool x.other. is not inside any zone");
    }
}
