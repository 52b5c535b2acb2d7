//! Whole-zone checks of a zone file as read: exactly one SOA, at the apex; NS at
//! the apex; CNAME exclusivity. They read the records' compact facts (node, type,
//! line), so that their messages name the file and line as before the records
//! were held compactly.

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use rustc_hash::{FxHashMap, FxHashSet};

use super::sink::{Fact, Sink};
use crate::problem::Problem;

/// Every whole-zone problem of the records in `sink`, in the order they were
/// always reported: SOA, NS, then CNAME problems in record order.
pub(super) fn check(origin: &Name, file: &Path, sink: &mut Sink, problems: &mut Vec<Problem>) {
    let apex_name = sink.apex.clone();
    let apex = sink.node_id(&apex_name).ok();
    let at = |sink: &Sink, position: usize, message: String| {
        Problem::new(&**sink.file_at(position as u32), sink.facts[position].line as usize, message)
    };
    let soas: Vec<usize> = positions(sink, |f| f.rtype == u16::from(RecordType::SOA)).collect();
    let apex_soas: Vec<usize> = soas.iter().copied().filter(|&i| Some(sink.facts[i].node) == apex).collect();
    if apex_soas.is_empty() {
        problems.push(Problem::new(file, 0, format!("zone {origin} has no SOA record at its apex")));
    }
    for &i in soas.iter().filter(|&&i| Some(sink.facts[i].node) != apex) {
        let name = sink.name(sink.facts[i].node);
        problems.push(at(sink, i, format!("SOA record at {name} is not at the apex {origin}")));
    }
    if let Some(&i) = apex_soas.get(1) {
        problems.push(at(sink, i, "second SOA record at the apex".into()));
    }
    let ns = u16::from(RecordType::NS);
    if !sink.facts.iter().any(|f| f.rtype == ns && Some(f.node) == apex) {
        problems.push(Problem::new(file, 0, format!("zone {origin} has no NS record at its apex")));
    }
    check_cnames(origin, sink, apex, problems);
}

/// The positions of the facts `keep` keeps, in order.
fn positions<'a>(sink: &'a Sink, keep: impl Fn(&Fact) -> bool + 'a) -> impl Iterator<Item = usize> + 'a {
    sink.facts.iter().enumerate().filter(move |(_, f)| keep(f)).map(|(i, _)| i)
}

/// CNAME exclusivity: a CNAME is not at the apex, has no other data beside it,
/// and is the only one at its name. Only the names with a CNAME are grouped.
fn check_cnames(origin: &Name, sink: &Sink, apex: Option<u32>, problems: &mut Vec<Problem>) {
    let cname = u16::from(RecordType::CNAME);
    let with_cname: FxHashSet<u32> = sink.facts.iter().filter(|f| f.rtype == cname).map(|f| f.node).collect();
    if with_cname.is_empty() {
        return;
    }
    // Per such name: its first other record and its first CNAME.
    let mut firsts: FxHashMap<u32, (Option<usize>, Option<usize>)> = FxHashMap::default();
    for i in positions(sink, |f| with_cname.contains(&f.node)) {
        let f = sink.facts[i];
        let e = firsts.entry(f.node).or_default();
        let slot = if f.rtype == cname { &mut e.1 } else { &mut e.0 };
        slot.get_or_insert(i);
    }
    for i in positions(sink, |f| f.rtype == cname) {
        let f = sink.facts[i];
        let file = sink.file_at(i as u32);
        let line = f.line as usize;
        if Some(f.node) == apex {
            problems.push(Problem::new(&**file, line, format!("CNAME at the zone apex {origin}")));
            continue;
        }
        let (other, first) = firsts.get(&f.node).copied().unwrap_or_default();
        let name = sink.name(f.node);
        if let Some(o) = other {
            let o = sink.facts[o];
            let whence = format!("{} at line {}", Sink::rtype(&o), o.line);
            problems.push(Problem::new(&**file, line, format!("CNAME at {name} beside other data ({whence})")));
        } else if first != Some(i) {
            problems.push(Problem::new(&**file, line, format!("second CNAME at {name}")));
        }
    }
}
