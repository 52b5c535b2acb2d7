//! RFC 1035 zone files -> a zone held compactly, each RRset with the file and
//! line of its first record.
//!
//! The entry structure ($ORIGIN, $TTL, $INCLUDE, owner inheritance, parentheses,
//! comments, quoted strings) is lexed here so that every problem can name its line;
//! the record data of each entry is parsed by hickory-proto (`RData::try_from_str`),
//! which knows every record type's presentation format, and encoded at once into
//! the zone's compact form ([`crate::snapshot::Base`]): no record is held in
//! hickory's types after it is read. Relative names inside the record data are
//! completed with the current origin.
//!
//! Invariants of a loaded [`ZoneData`]: every record is at or below the origin, the
//! apex has exactly one SOA and at least one NS, and a name with a CNAME has nothing
//! else.

mod check;
mod diff;
mod fast;
mod lexer;
mod loader;
mod sink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};

use crate::problem::Problem;
use crate::rdata::{self, RecordError};
use crate::snapshot::{Zone, file_zone, wire};

use loader::Loader;
use sink::Sink;

/// A loaded zone file: the zone as the file has it, and where each RRset was
/// written.
#[derive(Debug, Clone)]
pub struct ZoneData {
    pub origin: Name,
    pub file: PathBuf,
    /// The records as the query path reads them, no serial advanced, the pools
    /// given to the load marked ([`Zone::with_pools`] adapts it to other pools).
    pub zone: Arc<Zone>,
    /// How many records the file has (the SOA included).
    pub records: usize,
    /// Where each RRset's first record was read, by the RRset's position in the
    /// base: the record's position in the file (high 32 bits) and line (low).
    tags: Arc<[u64]>,
    /// Where the RRsets a reload laid over the base were read (they shadow
    /// `tags`); empty for a file loaded in full.
    laid: Arc<diff::Laid>,
    /// The SOA's tag.
    soa_tag: u64,
    /// (first position, file index) runs: see `Sink::runs`.
    runs: Arc<[(u32, u32)]>,
    files: Arc<[Arc<Path>]>,
}

impl ZoneData {
    /// The file and line of the first record of the RRset `rtype` at `name`
    /// (for messages), and that record's position in the file.
    pub fn whence(&self, name: &Name, rtype: RecordType) -> Option<(&Path, usize, u32)> {
        let tag = if rtype == RecordType::SOA {
            (*name == self.origin).then_some(self.soa_tag)?
        } else {
            let (owner, rtype) = (wire(name), u16::from(rtype));
            // A reload's layer may have removed what the base still has.
            if !self.zone.layer.is_empty() && self.zone.node(&owner)?.rrset(rtype).is_none() {
                return None;
            }
            match self.laid.get(&(owner.clone(), rtype)) {
                Some(&tag) => tag,
                None => *self.tags.get(self.zone.base.rrset_index(&owner, rtype)?)?,
            }
        };
        let position = (tag >> 32) as u32;
        let file = sink::file_at(&self.runs, &self.files, position);
        Some((&**file, (tag & 0xffff_ffff) as usize, position))
    }

    /// Bytes held for the zone file, all included: its records ([`Base`]) and
    /// the line table.
    ///
    /// [`Base`]: crate::snapshot::Base
    pub fn heap_bytes(&self) -> usize {
        self.zone.base.heap_bytes() + self.tags.len() * 8 + self.runs.len() * 8 + self.files.len() * 16
    }

    /// The file and line of the first record of the RRset `rtype` at `name`.
    pub fn file_line(&self, name: &Name, rtype: RecordType) -> Option<(&Path, usize)> {
        self.whence(name, rtype).map(|(f, l, _)| (f, l))
    }
}

const MAX_INCLUDE_DEPTH: usize = 16;
/// The longest line read (without its newline), and the most text one entry
/// (lines joined by parentheses) may hold: enough for the largest RDATA written
/// in hex, and what bounds the memory of reading a file that is not a zone.
pub const MAX_LINE: usize = 256 * 1024;

/// Loads and checks a zone file. Every problem found is returned.
pub fn load(origin: &Name, file: &Path) -> Result<ZoneData, Vec<Problem>> {
    load_named_at(origin, file, None, &BTreeMap::new())
}

/// As [`load`]; a file that cannot be read is reported at `named_at` (the config
/// file and line that name it). The names of `pools` (name -> position in the
/// snapshot's pools) in the zone are marked as pools.
pub fn load_named_at(
    origin: &Name,
    file: &Path,
    named_at: Option<(&Path, usize)>,
    pools: &BTreeMap<Name, u32>,
) -> Result<ZoneData, Vec<Problem>> {
    read_named_at(origin, file, named_at)?.build(pools)
}

/// The first half of [`load_named_at`]: the file read and checked, everything
/// but the pools, which are marked by [`ReadZone::build`]. Start-up reads the
/// zone files while the config's pools are still being read.
pub fn read_named_at(origin: &Name, file: &Path, named_at: Option<(&Path, usize)>) -> Result<ReadZone, Vec<Problem>> {
    let mut loader = Loader::new(origin);
    loader.file(origin, file, 0, named_at, None);
    // A file that could not be read has no records to check.
    let read = !loader.sink.facts.is_empty() || loader.problems.is_empty();
    checked(origin, file, loader, read)
}

/// A zone file read and checked (no problem found), its pools not marked yet.
pub struct ReadZone {
    origin: Name,
    file: PathBuf,
    sink: Sink,
}

impl std::fmt::Debug for ReadZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadZone").field("origin", &self.origin).field("file", &self.file).finish_non_exhaustive()
    }
}

impl ReadZone {
    /// The zone, the names of `pools` (name -> position in the snapshot's
    /// pools) in it marked as pools.
    pub fn build(self, pools: &BTreeMap<Name, u32>) -> Result<ZoneData, Vec<Problem>> {
        build(&self.origin, &self.file, self.sink, pools)
    }
}

/// As [`load_named_at`], for a file whose zone `held` is held (a reload): when
/// little changed, the result shares `held`'s base and lays only the changed
/// RRsets over it; the checks and their messages are those of a full load.
pub fn reload_named_at(
    origin: &Name,
    file: &Path,
    named_at: Option<(&Path, usize)>,
    pools: &BTreeMap<Name, u32>,
    held: &Arc<ZoneData>,
) -> Result<ZoneData, Vec<Problem>> {
    let mut loader = Loader::new(origin);
    loader.sink.diff = Some(diff::Diff::new(held.clone()));
    loader.file(origin, file, 0, named_at, None);
    let read = !loader.sink.facts.is_empty() || loader.problems.is_empty();
    if read {
        check::check(origin, file, &mut loader.sink, &mut loader.problems);
    }
    if !loader.problems.is_empty() {
        return Err(loader.problems);
    }
    match finish_diff(origin, file, loader.sink, pools)? {
        Some(zone) => Ok(zone),
        None => load_named_at(origin, file, named_at, pools),
    }
}

/// The zone of a checked diff: `None` when too much changed.
fn finish_diff(
    origin: &Name,
    file: &Path,
    sink: Sink,
    pools: &BTreeMap<Name, u32>,
) -> Result<Option<ZoneData>, Vec<Problem>> {
    let problem = |e: &dyn std::fmt::Display| vec![Problem::new(file, 0, e.to_string())];
    let Sink { facts, runs, files, soa, diff, .. } = sink;
    let (Some(diff), Some((soa, soa_ttl, soa_tag))) = (diff, soa) else { return Err(problem(&"no SOA at the apex")) };
    let start = diff.held.zone.with_file_soa(soa, soa_ttl).map_err(|e| problem(&e))?;
    let Some(relaid) = diff.finish(start, pools) else { return Ok(None) };
    Ok(Some(ZoneData {
        origin: origin.clone(),
        file: file.to_path_buf(),
        zone: relaid.zone,
        records: facts.len(),
        tags: relaid.tags.into(),
        laid: Arc::new(relaid.laid),
        soa_tag,
        runs: runs.into(),
        files: files.into(),
    }))
}

/// Parses zone text as if read from `file` (used by tests and the fuzzer).
pub fn parse_str(origin: &Name, file: &Path, text: &str) -> Result<ZoneData, Vec<Problem>> {
    parse_str_with(origin, file, text, &BTreeMap::new())
}

/// [`parse_str`], the names of `pools` in the zone marked as pools.
pub fn parse_str_with(
    origin: &Name,
    file: &Path,
    text: &str,
    pools: &BTreeMap<Name, u32>,
) -> Result<ZoneData, Vec<Problem>> {
    let mut loader = Loader::new(origin);
    loader.read(origin, file, text.as_bytes(), 0, None);
    checked(origin, file, loader, true)?.build(pools)
}

/// Checks what `loader` read (when `check`): what is left to do is marking
/// the pools and building the zone.
fn checked(origin: &Name, file: &Path, mut loader: Loader, check: bool) -> Result<ReadZone, Vec<Problem>> {
    if check {
        check::check(origin, file, &mut loader.sink, &mut loader.problems);
    }
    if !loader.problems.is_empty() {
        return Err(loader.problems);
    }
    Ok(ReadZone { origin: origin.clone(), file: file.to_path_buf(), sink: loader.sink })
}

/// The zone of a checked `sink`, the names of `pools` in it marked.
fn build(origin: &Name, file: &Path, sink: Sink, pools: &BTreeMap<Name, u32>) -> Result<ZoneData, Vec<Problem>> {
    let too_large = |e: &dyn std::fmt::Display| vec![Problem::new(file, 0, e.to_string())];
    let Sink { mut builder, facts, runs, files, apex, soa, .. } = sink;
    let records = facts.len();
    drop(facts);
    for (name, &i) in pools.range(origin.clone()..).filter(|(n, _)| origin.zone_of(n)) {
        builder.pool(&wire(name), i).map_err(|e| too_large(&e))?;
    }
    let (base, tags) = builder.finish_tagged(&apex).map_err(|e| too_large(&e))?;
    // The checks found exactly one SOA at the apex.
    let Some((soa, soa_ttl, soa_tag)) = soa else { return Err(too_large(&"no SOA at the apex")) };
    let zone = file_zone(origin, Arc::new(base), soa, soa_ttl).map_err(|e| too_large(&e))?;
    Ok(ZoneData {
        origin: origin.clone(),
        file: file.to_path_buf(),
        zone: Arc::new(zone),
        records,
        tags: tags.into(),
        laid: Arc::default(),
        soa_tag,
        runs: runs.into(),
        files: files.into(),
    })
}

/// Parses one record's data in presentation format, names relative to `origin`
/// (used for RRsets written through the admin API); the record encodes.
pub fn parse_rdata(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, RecordError> {
    rdata::parse_text(rtype, text, origin)
}

/// Record types that cannot be stored in a zone.
pub fn is_meta_type(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::OPT | RecordType::AXFR | RecordType::IXFR | RecordType::ANY)
}

/// The first whole-zone check a zone changed through the API fails. It shows the
/// message only: the file and line of a record the API made say nothing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.message)]
pub struct ZoneCheckError(pub Problem);

fn parse_name(text: &str, origin: &Name) -> Result<Name, RecordError> {
    rdata::name(text, origin)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    fn parse(text: &str) -> Result<ZoneData, Vec<Problem>> {
        parse_str(&origin(), Path::new("/z/example.test.zone"), text)
    }

    const HEAD: &str =
        "$TTL 300\n@ IN SOA ns1 hostmaster ( 1 7200 3600\n  1209600 60 ) ; comment\n  IN NS ns1\nns1 A 192.0.2.53\n";

    #[test]
    fn parses_directives_relative_names_and_parentheses() {
        let z = parse(&format!(
            "{HEAD}www 60 IN A 192.0.2.1\n     IN AAAA 2001:db8::1\nalias CNAME www\nmail MX 10 mx.other.test.\n\
             txt TXT \"hello; not a comment\" \"two\"\n$ORIGIN sub.example.test.\nhost A 192.0.2.9\n"
        ))
        .unwrap();
        let find = |n: &str, t: RecordType| z.zone.rrset_at(&Name::from_ascii(n).unwrap(), t).unwrap();
        assert_eq!(find("www.example.test.", RecordType::AAAA).0, 300);
        assert_eq!(find("www.example.test.", RecordType::A).0, 60);
        match &find("alias.example.test.", RecordType::CNAME).1[0] {
            RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "www.example.test."),
            _ => unreachable!(),
        }
        match &find("example.test.", RecordType::SOA).1[0] {
            RData::SOA(s) => {
                assert_eq!(s.mname.to_ascii(), "ns1.example.test.");
                assert_eq!(s.minimum, 60);
            }
            _ => unreachable!(),
        }
        match &find("txt.example.test.", RecordType::TXT).1[0] {
            RData::TXT(t) => assert_eq!(t.to_string(), "hello; not a commenttwo"),
            other => panic!("{other:?}"),
        }
        let host = Name::from_ascii("host.sub.example.test.").unwrap();
        assert_eq!(z.file_line(&host, RecordType::A).unwrap().1, 12);
        assert_eq!(z.file_line(&origin(), RecordType::SOA).unwrap().1, 2);
        assert_eq!(z.file_line(&origin(), RecordType::NS).unwrap().1, 4);
        assert_eq!(z.records, 9);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(&format!("{HEAD}www A 192.0.2.300\n")).unwrap_err();
        assert_eq!(e[0].line, 6, "{e:?}");
        assert!(e[0].message.contains("invalid A data"), "{e:?}");
        assert_eq!(e[0].to_string().split(':').next().unwrap(), "/z/example.test.zone");

        let e = parse(&format!("{HEAD}www A 192.0.2.1\nwww CNAME other\n")).unwrap_err();
        assert_eq!(e[0].line, 7, "{e:?}");
        assert!(e[0].message.contains("beside other data"), "{e:?}");

        let e = parse(&format!("{HEAD}www.example.org. A 192.0.2.1\n")).unwrap_err();
        assert_eq!(e[0].line, 6, "{e:?}");
        assert!(e[0].message.contains("outside the zone"), "{e:?}");

        let e = parse(&format!("{HEAD}www BOGUS 1\n")).unwrap_err();
        assert!(e[0].message.contains("unknown record type"), "{e:?}");
        assert_eq!(e[0].line, 6);
    }

    #[test]
    fn missing_soa_or_ns_is_an_error() {
        let e = parse("$TTL 60\n@ NS ns1\nns1 A 192.0.2.1\n").unwrap_err();
        assert!(e.iter().any(|p| p.message.contains("no SOA")), "{e:?}");
        let e = parse("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n").unwrap_err();
        assert!(e.iter().any(|p| p.message.contains("no NS")), "{e:?}");
    }

    #[test]
    fn unbalanced_parenthesis() {
        let e = parse("$TTL 60\n@ SOA ns1 h ( 1 2 3 4 5\n@ NS ns1\n").unwrap_err();
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("unbalanced"));
    }

    #[test]
    fn quoted_strings_may_continue_after_an_escaped_newline() {
        let z = parse(&format!("{HEAD}t TXT \"a\\\nb\" ( \"c\"\n \"d\" )\nafter A 192.0.2.1\n")).unwrap();
        let t = z.zone.rrset_at(&Name::from_ascii("t.example.test.").unwrap(), RecordType::TXT).unwrap();
        assert_eq!(crate::rdata::render(&t.1[0]), "\"a\\010b\" \"c\" \"d\"");
        let after = Name::from_ascii("after.example.test.").unwrap();
        assert_eq!(z.file_line(&after, RecordType::A).unwrap().1, 9);
    }

    #[test]
    fn entries_and_lines_are_bounded() {
        let chunk = format!("\"{}\"\n", "x".repeat(200));
        let e = parse(&format!("{HEAD}big TXT (\n{}) \n", chunk.repeat(MAX_LINE / 200 + 1))).unwrap_err();
        assert_eq!((e[0].line, e[0].message.as_str()), (6, "entry is longer than 256 KiB"), "{e:?}");
        let e = parse(&format!("{HEAD}big TXT {}\n", "y".repeat(MAX_LINE))).unwrap_err();
        assert_eq!((e[0].line, e[0].message.as_str()), (6, "line is longer than 256 KiB"), "{e:?}");
        let e = parse(&format!("{HEAD}big TXT \"{}\"\n", "y".repeat(256))).unwrap_err();
        assert_eq!(e[0].message, "invalid TXT data: TXT string 1 is 256 octets; the limit is 255", "{e:?}");
    }

    #[test]
    fn include_resolves_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("lbdns-zone-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("inc.zone"), "www A 192.0.2.7\nbad A nope\n").unwrap();
        std::fs::write(dir.join("main.zone"), format!("{HEAD}$INCLUDE inc.zone\n")).unwrap();
        let e = load(&origin(), &dir.join("main.zone")).unwrap_err();
        assert_eq!(e[0].file, dir.join("inc.zone"));
        assert_eq!(e[0].line, 2);
        std::fs::write(dir.join("inc.zone"), "www A 192.0.2.7\n").unwrap();
        let z = load(&origin(), &dir.join("main.zone")).unwrap();
        let www = Name::from_ascii("www.example.test.").unwrap();
        assert!(z.zone.rrset_at(&www, RecordType::A).is_some());
        assert_eq!(z.file_line(&www, RecordType::A).unwrap(), (&*dir.join("inc.zone"), 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
