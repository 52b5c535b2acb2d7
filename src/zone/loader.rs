//! Reading zone files entry by entry ($ORIGIN, $TTL, $INCLUDE, owner
//! inheritance, TTL and class) and handing each record to the [`Sink`], which
//! encodes it into the zone's compact form at once: nothing per record is kept
//! in hickory's types.

use std::io::{BufRead, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use super::fast;
use super::lexer::{Entry, Lexer};
use super::sink::{Pushed, Sink};
use super::{MAX_INCLUDE_DEPTH, MAX_LINE, is_meta_type, parse_name, unquote};
use crate::problem::Problem;
use crate::rdata::{self, RecordError, excerpt};
use crate::snapshot::TooLarge;

pub(super) struct Loader {
    /// Where the records go, as they are read.
    pub sink: Sink,
    pub problems: Vec<Problem>,
    /// TTL of the previous record, the RFC 1035 default when there is no $TTL.
    last_ttl: Option<u32>,
    /// The record being read, when [`fast::encode`] took it (reused).
    record: Vec<u8>,
    /// The size of the zone's own file, to size the tables once its first
    /// records show how long a record is ([`Loader::presize`]).
    size_hint: Option<u64>,
}

/// How many records are read before the tables are sized from them.
const SAMPLE: usize = 4096;

/// A record's data: encoded in `Loader::record`, or parsed by hickory.
enum Data {
    Encoded,
    Parsed(RData),
}

/// What one file's entries set for the entries after them.
struct FileState {
    file: Arc<Path>,
    /// The file's position in `Sink::files`.
    index: u32,
    origin: Name,
    /// `origin` as wire, its case kept (relative owners are written before it).
    origin_wire: Vec<u8>,
    /// The origin the file was read with (the zone's, or an `$INCLUDE`'s), and
    /// as lower-cased wire: every owner in the file must be at or below it.
    within: (Name, Box<[u8]>),
    default_ttl: Option<u32>,
    /// The owner of the last entry that named one, as wire with its case kept
    /// (empty before the first): a blank owner takes it. Wire rather than a
    /// hickory `Name`: building, cloning and comparing a `Name` per record was
    /// about 15% of a reload's parse at 1,000,000 records.
    owner: Vec<u8>,
}

/// Opens a zone file, refusing anything but a regular file: `$INCLUDE /dev/zero`
/// or a FIFO would otherwise hang the loader.
fn open_regular(file: &Path) -> std::io::Result<std::io::BufReader<std::fs::File>> {
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(std::io::BufReader::new(std::fs::File::open(file)?))
}

/// What is wrong with one line or entry of a zone file; reported as a
/// [`Problem`] at the entry's file and line.
#[derive(Debug, thiserror::Error)]
enum EntryError {
    /// The record does not encode (e.g. too long for its RDLENGTH).
    #[error("{0}")]
    Encode(RecordError),
    #[error("{0}")]
    TooLarge(TooLarge),
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("line is longer than {} KiB", MAX_LINE / 1024)]
    LongLine,
    #[error("$ORIGIN: {0}")]
    Origin(RecordError),
    #[error("$ORIGIN takes one domain name")]
    OriginArgs,
    #[error("$TTL takes one TTL value")]
    TtlArgs,
    #[error("$INCLUDE takes a file name and an optional origin")]
    IncludeArgs,
    #[error("$INCLUDE nested too deeply")]
    IncludeDepth,
    #[error("$INCLUDE origin: {0}")]
    IncludeOrigin(RecordError),
    /// The directive, quoted and shortened.
    #[error("unknown directive {0}")]
    Directive(String),
    #[error("owner name: {0}")]
    Owner(RecordError),
    #[error("record without an owner name")]
    NoOwner,
    #[error("missing record type")]
    NoType,
    /// The TTL text, quoted and shortened.
    #[error("invalid TTL {0}")]
    Ttl(String),
    #[error("class {0} is not supported (only IN)")]
    Class(String),
    /// The type text, quoted and shortened.
    #[error("unknown record type {0}")]
    Type(String),
    #[error("record type {0} cannot appear in a zone file")]
    MetaType(RecordType),
    #[error("invalid {rtype} data: {source}")]
    Data { rtype: RecordType, source: RecordError },
    #[error("record has no TTL and there is no $TTL before it")]
    NoTtl,
    #[error("TTL {0} is above 2^31-1")]
    TtlRange(u32),
    #[error("{name} is outside the zone {zone}")]
    Outside { name: String, zone: String },
}

/// Reads one line (newline included) into `buf`, at most `MAX_LINE` octets of
/// it: `Ok(false)` at the end of the input, an error for a longer line.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<bool, EntryError> {
    buf.clear();
    let n = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', buf).map_err(EntryError::Read)?;
    let content = buf.len() - usize::from(buf.last() == Some(&b'\n'));
    if content > MAX_LINE {
        return Err(EntryError::LongLine);
    }
    Ok(n > 0)
}

impl Loader {
    pub fn new(origin: &Name) -> Loader {
        Loader {
            sink: Sink::new(origin),
            problems: Vec::new(),
            last_ttl: None,
            record: Vec::with_capacity(64),
            size_hint: None,
        }
    }

    pub fn file(&mut self, origin: &Name, file: &Path, depth: usize, from: Option<(&Path, usize)>, ttl: Option<u32>) {
        match open_regular(file) {
            Ok(reader) => {
                if depth == 0 {
                    self.size_hint = std::fs::metadata(file).map(|m| m.len()).ok();
                }
                self.read(origin, file, reader, depth, ttl)
            }
            Err(e) => {
                let (f, l) = from.unwrap_or((file, 0));
                self.problems.push(Problem::new(f, l, format!("cannot read zone file {}: {e}", file.display())));
            }
        }
    }

    /// Reads a file line by line, handling each entry as it completes, so memory
    /// is bounded by one entry. `default_ttl`: the $TTL in force where this file
    /// is included. The first lexical problem stops this file.
    pub fn read(
        &mut self,
        origin: &Name,
        file: &Path,
        mut reader: impl BufRead,
        depth: usize,
        default_ttl: Option<u32>,
    ) {
        let index = self.sink.open(Arc::from(file));
        let mut st = FileState {
            file: Arc::from(file),
            index,
            origin: origin.clone(),
            origin_wire: fast::wire_of(origin),
            within: (origin.clone(), crate::snapshot::wire(origin)),
            default_ttl,
            owner: Vec::with_capacity(256),
        };
        let mut lexer = Lexer::default();
        let mut buf = Vec::new();
        let mut read_bytes = 0u64;
        loop {
            let line = lexer.line;
            let text = match read_line(&mut reader, &mut buf) {
                Ok(false) => break,
                Ok(true) => std::str::from_utf8(&buf).map_err(|_| "line is not valid UTF-8".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let fed = text.map_err(|m| (line, m)).and_then(|t| lexer.feed(t));
            if let Err((line, msg)) = fed {
                self.problems.push(Problem::new(file, line, msg));
                return;
            }
            let done = std::mem::take(&mut lexer.done);
            for entry in &done {
                self.entry(&mut st, entry, depth);
            }
            lexer.recycle(done);
            read_bytes += buf.len() as u64;
            self.presize(read_bytes);
        }
        match lexer.finish() {
            Ok(Some(entry)) => self.entry(&mut st, &entry, depth),
            Ok(None) => {}
            Err((line, msg)) => self.problems.push(Problem::new(file, line, msg)),
        }
    }

    /// Once the first [`SAMPLE`] records of the zone's file are read, sizes
    /// the tables for the records the rest of the file will hold at the same
    /// length per record, instead of growing them by doubling (each doubling
    /// rehashes the node table). Sized from records actually read, never from
    /// the file's size alone: a file that is not records reserves nothing.
    fn presize(&mut self, read_bytes: u64) {
        let records = self.sink.facts.len();
        if records != SAMPLE || read_bytes == 0 {
            return;
        }
        let Some(size) = self.size_hint.take() else { return };
        let more = size.saturating_sub(read_bytes).saturating_mul(records as u64) / read_bytes;
        self.sink.reserve(usize::try_from(more).unwrap_or(0));
    }

    fn entry(&mut self, st: &mut FileState, entry: &Entry, depth: usize) {
        let Some(first) = entry.tokens.first() else { return };
        if !entry.blank_owner && first.starts_with('$') {
            if let Err(e) = self.directive(st, entry, depth) {
                self.problems.push(Problem::new(&*st.file, entry.line, e.to_string()));
            }
            return;
        }
        let line = entry.line;
        let pushed = self.record(st, entry).and_then(|(ttl, data)| {
            let pushed = match data {
                Data::Encoded => self.sink.push_encoded(&st.owner, &self.record, st.index, line),
                Data::Parsed(rdata) => self.sink.push(&st.owner, ttl, rdata, st.index, line),
            };
            pushed.map_err(|e| match e {
                Pushed::Encode(e) => EntryError::Encode(e),
                Pushed::TooLarge(e) => EntryError::TooLarge(e),
            })
        });
        if let Err(e) = pushed {
            self.problems.push(Problem::new(&*st.file, line, e.to_string()));
        }
    }

    fn directive(&mut self, st: &mut FileState, entry: &Entry, depth: usize) -> Result<(), EntryError> {
        let toks = &entry.tokens;
        match toks[0].to_ascii_uppercase().as_str() {
            "$ORIGIN" => match toks.get(1).map(|t| parse_name(t, &st.origin)) {
                Some(Ok(n)) if toks.len() == 2 => {
                    st.origin_wire = fast::wire_of(&n);
                    st.origin = n;
                }
                Some(Err(e)) => return Err(EntryError::Origin(e)),
                _ => return Err(EntryError::OriginArgs),
            },
            "$TTL" => match toks.get(1).map(|t| parse_ttl(t)) {
                Some(Ok(t)) if toks.len() == 2 => st.default_ttl = Some(t),
                _ => return Err(EntryError::TtlArgs),
            },
            "$INCLUDE" => {
                if toks.len() < 2 || toks.len() > 3 {
                    return Err(EntryError::IncludeArgs);
                }
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(EntryError::IncludeDepth);
                }
                let inc_origin = match toks.get(2) {
                    Some(t) => parse_name(t, &st.origin).map_err(EntryError::IncludeOrigin)?,
                    None => st.origin.clone(),
                };
                let rel = Path::new(unquote(&toks[1]));
                let path = if rel.is_absolute() {
                    rel.to_path_buf()
                } else {
                    st.file.parent().unwrap_or(Path::new("/")).join(rel)
                };
                let file = st.file.clone();
                self.file(&inc_origin, &path, depth + 1, Some((&file, entry.line)), st.default_ttl);
            }
            _ => return Err(EntryError::Directive(excerpt(&toks[0]))),
        }
        Ok(())
    }

    /// One record entry: its owner, TTL and data (the common types encoded
    /// at once into `self.record`, see [`super::fast`]).
    /// The owner is left in `st.owner`.
    fn record(&mut self, st: &mut FileState, entry: &Entry) -> Result<(u32, Data), EntryError> {
        let toks = &entry.tokens;
        let mut i = 0;
        if !entry.blank_owner {
            st.owner.clear();
            let owner = fast::owner_wire(&toks[0], &st.origin, &st.origin_wire, &mut st.owner);
            if let Err(e) = owner {
                st.owner.clear();
                return Err(EntryError::Owner(e));
            }
            i = 1;
        }
        if st.owner.is_empty() {
            return Err(EntryError::NoOwner);
        }
        let (ttl, rtype) = ttl_and_type(toks, &mut i)?;
        if is_meta_type(rtype) {
            return Err(EntryError::MetaType(rtype));
        }
        let data = if fast::encode(rtype, &toks[i..], &st.origin, &mut self.record) {
            Data::Encoded
        } else {
            let data: Vec<&str> = toks[i..].iter().map(String::as_str).collect();
            let rdata = rdata::parse(rtype, &data, &st.origin).map_err(|source| EntryError::Data { rtype, source })?;
            Data::Parsed(rdata)
        };
        let explicit_ttl = ttl;
        let ttl = match ttl.or(st.default_ttl).or(self.last_ttl) {
            Some(t) => t,
            None => match &data {
                Data::Parsed(RData::SOA(soa)) => soa.minimum,
                _ => return Err(EntryError::NoTtl),
            },
        };
        if ttl > i32::MAX as u32 {
            return Err(EntryError::TtlRange(ttl));
        }
        if explicit_ttl.is_some() {
            self.last_ttl = explicit_ttl;
        }
        if !fast::at_or_below(&st.owner, &st.within.1) {
            let name = super::sink::name_of_wire(&st.owner);
            return Err(EntryError::Outside { name, zone: st.within.0.to_string() });
        }
        if let Data::Encoded = data {
            fast::set_ttl(&mut self.record, ttl);
        }
        Ok((ttl, data))
    }
}

/// The types most records have, matched without upper-casing a copy.
const COMMON: [(&str, RecordType); 7] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("TXT", RecordType::TXT),
    ("CNAME", RecordType::CNAME),
    ("NS", RecordType::NS),
    ("MX", RecordType::MX),
    ("SOA", RecordType::SOA),
];

/// `[TTL] [class]` in either order, then the type, from `toks[*i..]`; `*i` is
/// left after the type.
fn ttl_and_type(toks: &[String], i: &mut usize) -> Result<(Option<u32>, RecordType), EntryError> {
    let mut ttl: Option<u32> = None;
    loop {
        let Some(t) = toks.get(*i) else { return Err(EntryError::NoType) };
        *i += 1;
        if ttl.is_none() && t.as_bytes()[0].is_ascii_digit() {
            ttl = Some(parse_ttl(t).map_err(|_| EntryError::Ttl(excerpt(t)))?);
            continue;
        }
        // The common spellings without an allocation.
        if t.eq_ignore_ascii_case("IN") {
            continue;
        }
        if let Some(&(_, rt)) = COMMON.iter().find(|(text, _)| t.eq_ignore_ascii_case(text)) {
            return Ok((ttl, rt));
        }
        let up = t.to_ascii_uppercase();
        match up.as_str() {
            "IN" => continue,
            "CH" | "HS" | "CS" | "NONE" | "ANY" => return Err(EntryError::Class(up)),
            _ => {}
        }
        return match RecordType::from_str(&up) {
            Ok(rt) if !matches!(rt, RecordType::Unknown(_)) || up.starts_with("TYPE") => Ok((ttl, rt)),
            _ => Err(EntryError::Type(excerpt(t))),
        };
    }
}
