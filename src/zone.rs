//! RFC 1035 zone files -> a list of records, each with the file and line it came from.
//!
//! The entry structure ($ORIGIN, $TTL, $INCLUDE, owner inheritance, parentheses,
//! comments, quoted strings) is lexed here so that every problem can name its line;
//! the record data of each entry is parsed by hickory-proto (`RData::try_from_str`),
//! which knows every record type's presentation format. Relative names inside the
//! record data are completed with the current origin afterwards.
//!
//! Invariants of a loaded [`ZoneData`]: every record is at or below the origin, the
//! apex has exactly one SOA and at least one NS, and a name with a CNAME has nothing
//! else.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use std::io::{BufRead, Read};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use crate::problem::Problem;
use crate::rdata::{self, RecordError, excerpt};

/// One resource record from a zone file.
#[derive(Debug, Clone)]
pub struct ZoneRecord {
    /// Owner name, lower-cased.
    pub name: Name,
    pub ttl: u32,
    pub rdata: RData,
    pub file: Arc<Path>,
    pub line: usize,
}

impl ZoneRecord {
    pub fn rtype(&self) -> RecordType {
        self.rdata.record_type()
    }
}

/// A loaded zone file.
#[derive(Debug, Clone)]
pub struct ZoneData {
    pub origin: Name,
    pub file: PathBuf,
    pub records: Vec<ZoneRecord>,
}

const MAX_INCLUDE_DEPTH: usize = 16;
/// The longest line read (without its newline), and the most text one entry
/// (lines joined by parentheses) may hold: enough for the largest RDATA written
/// in hex, and what bounds the memory of reading a file that is not a zone.
pub const MAX_LINE: usize = 256 * 1024;

/// Loads and checks a zone file. Every problem found is returned.
pub fn load(origin: &Name, file: &Path) -> Result<ZoneData, Vec<Problem>> {
    load_named_at(origin, file, None)
}

/// As [`load`]; a file that cannot be read is reported at `named_at` (the config
/// file and line that name it).
pub fn load_named_at(origin: &Name, file: &Path, named_at: Option<(&Path, usize)>) -> Result<ZoneData, Vec<Problem>> {
    let mut loader = Loader { records: Vec::new(), problems: Vec::new(), last_ttl: None };
    loader.file(origin, file, 0, named_at, None);
    // A file that could not be read has no records to check.
    if !loader.records.is_empty() || loader.problems.is_empty() {
        check(origin, file, &loader.records, &mut loader.problems);
    }
    if loader.problems.is_empty() {
        Ok(ZoneData { origin: origin.clone(), file: file.to_path_buf(), records: loader.records })
    } else {
        Err(loader.problems)
    }
}

/// Parses zone text as if read from `file` (used by tests and the fuzzer).
pub fn parse_str(origin: &Name, file: &Path, text: &str) -> Result<ZoneData, Vec<Problem>> {
    let mut loader = Loader { records: Vec::new(), problems: Vec::new(), last_ttl: None };
    loader.read(origin, file, text.as_bytes(), 0, None);
    check(origin, file, &loader.records, &mut loader.problems);
    if loader.problems.is_empty() {
        Ok(ZoneData { origin: origin.clone(), file: file.to_path_buf(), records: loader.records })
    } else {
        Err(loader.problems)
    }
}

struct Loader {
    records: Vec<ZoneRecord>,
    problems: Vec<Problem>,
    /// TTL of the previous record, the RFC 1035 default when there is no $TTL.
    last_ttl: Option<u32>,
}

/// What one file's entries set for the entries after them.
struct FileState {
    file: Arc<Path>,
    origin: Name,
    default_ttl: Option<u32>,
    owner: Option<Name>,
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
    fn file(&mut self, origin: &Name, file: &Path, depth: usize, from: Option<(&Path, usize)>, ttl: Option<u32>) {
        match open_regular(file) {
            Ok(reader) => self.read(origin, file, reader, depth, ttl),
            Err(e) => {
                let (f, l) = from.unwrap_or((file, 0));
                self.problems.push(Problem::new(f, l, format!("cannot read zone file {}: {e}", file.display())));
            }
        }
    }

    /// Reads a file line by line, handling each entry as it completes, so memory
    /// is bounded by one entry. `default_ttl`: the $TTL in force where this file
    /// is included. The first lexical problem stops this file.
    fn read(&mut self, origin: &Name, file: &Path, mut reader: impl BufRead, depth: usize, default_ttl: Option<u32>) {
        let mut st = FileState { file: Arc::from(file), origin: origin.clone(), default_ttl, owner: None };
        let mut lexer = Lexer::default();
        let mut buf = Vec::new();
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
            for entry in std::mem::take(&mut lexer.done) {
                self.entry(origin, &mut st, entry, depth);
            }
        }
        match lexer.finish() {
            Ok(Some(entry)) => self.entry(origin, &mut st, entry, depth),
            Ok(None) => {}
            Err((line, msg)) => self.problems.push(Problem::new(file, line, msg)),
        }
    }

    fn entry(&mut self, zone_origin: &Name, st: &mut FileState, entry: Entry, depth: usize) {
        let Some(first) = entry.tokens.first() else { return };
        if !entry.blank_owner && first.starts_with('$') {
            if let Err(e) = self.directive(st, &entry, depth) {
                self.problems.push(Problem::new(&*st.file, entry.line, e.to_string()));
            }
            return;
        }
        let line = entry.line;
        match self.record(zone_origin, st, entry) {
            Ok(Some(r)) => self.records.push(r),
            Ok(None) => {}
            Err(e) => self.problems.push(Problem::new(&*st.file, line, e.to_string())),
        }
    }

    fn directive(&mut self, st: &mut FileState, entry: &Entry, depth: usize) -> Result<(), EntryError> {
        let toks = &entry.tokens;
        match toks[0].to_ascii_uppercase().as_str() {
            "$ORIGIN" => match toks.get(1).map(|t| parse_name(t, &st.origin)) {
                Some(Ok(n)) if toks.len() == 2 => st.origin = n,
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

    /// One record entry. `Ok(None)`: nothing to add and nothing to report.
    fn record(
        &mut self,
        zone_origin: &Name,
        st: &mut FileState,
        entry: Entry,
    ) -> Result<Option<ZoneRecord>, EntryError> {
        let toks = &entry.tokens;
        let mut i = 0;
        if !entry.blank_owner {
            st.owner = Some(parse_name(&toks[0], &st.origin).map_err(EntryError::Owner)?);
            i = 1;
        }
        let name = st.owner.clone().ok_or(EntryError::NoOwner)?;
        // [TTL] [class] in either order, then the type.
        let mut ttl: Option<u32> = None;
        let rtype = loop {
            let Some(t) = toks.get(i) else { return Err(EntryError::NoType) };
            i += 1;
            if ttl.is_none() && t.as_bytes()[0].is_ascii_digit() {
                ttl = Some(parse_ttl(t).map_err(|_| EntryError::Ttl(excerpt(t)))?);
                continue;
            }
            let up = t.to_ascii_uppercase();
            match up.as_str() {
                "IN" => continue,
                "CH" | "HS" | "CS" | "NONE" | "ANY" => return Err(EntryError::Class(up)),
                _ => {}
            }
            break match RecordType::from_str(&up) {
                Ok(rt) if !matches!(rt, RecordType::Unknown(_)) || up.starts_with("TYPE") => rt,
                _ => return Err(EntryError::Type(excerpt(t))),
            };
        };
        if is_meta_type(rtype) {
            return Err(EntryError::MetaType(rtype));
        }
        let data: Vec<&str> = toks[i..].iter().map(String::as_str).collect();
        let rdata = rdata::parse(rtype, &data, &st.origin).map_err(|source| EntryError::Data { rtype, source })?;
        let explicit_ttl = ttl;
        let ttl = match ttl.or(st.default_ttl).or(self.last_ttl) {
            Some(t) => t,
            None => match &rdata {
                RData::SOA(soa) => soa.minimum,
                _ => return Err(EntryError::NoTtl),
            },
        };
        if ttl > i32::MAX as u32 {
            return Err(EntryError::TtlRange(ttl));
        }
        if explicit_ttl.is_some() {
            self.last_ttl = explicit_ttl;
        }
        if !zone_origin.zone_of(&name) {
            return Err(EntryError::Outside { name: name.to_string(), zone: zone_origin.to_string() });
        }
        Ok(Some(ZoneRecord { name: name.to_lowercase(), ttl, rdata, file: st.file.clone(), line: entry.line }))
    }
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

/// Whole-zone checks (SOA and NS at the apex, CNAME exclusivity), for a zone
/// changed through the API.
pub fn check_zone(zone: &ZoneData) -> Result<(), ZoneCheckError> {
    let mut problems = Vec::new();
    check(&zone.origin, &zone.file, &zone.records, &mut problems);
    match problems.into_iter().next() {
        None => Ok(()),
        Some(p) => Err(ZoneCheckError(p)),
    }
}

/// The whole-zone checks for a zone that passed them before a change to the
/// RRsets at `name` alone: what the change can break is at that name (CNAME
/// exclusivity) and at the apex (its SOA and NS), so only those records are
/// checked, with the same messages. One pass over the records, no per-record
/// allocation or hashing.
pub fn check_change(zone: &ZoneData, name: &Name) -> Result<(), ZoneCheckError> {
    let origin = &zone.origin;
    let apex_type = |r: &ZoneRecord| matches!(r.rtype(), RecordType::SOA | RecordType::NS);
    let affected: Vec<ZoneRecord> =
        zone.records.iter().filter(|r| r.name == *name || (r.name == *origin && apex_type(r))).cloned().collect();
    let mut problems = Vec::new();
    check(origin, &zone.file, &affected, &mut problems);
    match problems.into_iter().next() {
        None => Ok(()),
        Some(p) => Err(ZoneCheckError(p)),
    }
}

fn parse_name(text: &str, origin: &Name) -> Result<Name, RecordError> {
    rdata::name(text, origin)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Whole-zone checks that need every record.
fn check(origin: &Name, file: &Path, records: &[ZoneRecord], problems: &mut Vec<Problem>) {
    let soas: Vec<&ZoneRecord> = records.iter().filter(|r| r.rtype() == RecordType::SOA).collect();
    let apex_soa = soas.iter().filter(|r| r.name == *origin).count();
    if apex_soa == 0 {
        problems.push(Problem::new(file, 0, format!("zone {origin} has no SOA record at its apex")));
    }
    for r in &soas {
        if r.name != *origin {
            problems.push(Problem::new(
                &*r.file,
                r.line,
                format!("SOA record at {} is not at the apex {origin}", r.name),
            ));
        }
    }
    if apex_soa > 1 {
        let r = soas.iter().filter(|r| r.name == *origin).nth(1).copied();
        if let Some(r) = r {
            problems.push(Problem::new(&*r.file, r.line, "second SOA record at the apex"));
        }
    }
    if !records.iter().any(|r| r.rtype() == RecordType::NS && r.name == *origin) {
        problems.push(Problem::new(file, 0, format!("zone {origin} has no NS record at its apex")));
    }
    // CNAME exclusivity: one pass to group types by name, one to check.
    let mut by_name: std::collections::HashMap<&Name, Vec<&ZoneRecord>> = std::collections::HashMap::new();
    for r in records {
        by_name.entry(&r.name).or_default().push(r);
    }
    for r in records.iter().filter(|r| r.rtype() == RecordType::CNAME) {
        if r.name == *origin {
            problems.push(Problem::new(&*r.file, r.line, format!("CNAME at the zone apex {origin}")));
            continue;
        }
        let same = &by_name[&r.name];
        if let Some(o) = same.iter().find(|o| o.rtype() != RecordType::CNAME) {
            problems.push(Problem::new(
                &*r.file,
                r.line,
                format!("CNAME at {} beside other data ({})", r.name, whence(o)),
            ));
        } else if same.iter().filter(|o| o.rtype() == RecordType::CNAME).count() > 1
            && !std::ptr::eq(*same.iter().find(|o| o.rtype() == RecordType::CNAME).unwrap_or(&r), r)
        {
            problems.push(Problem::new(&*r.file, r.line, format!("second CNAME at {}", r.name)));
        }
    }
}

/// One logical entry: the tokens of a line, or of several lines joined by parentheses.
struct Entry {
    line: usize,
    blank_owner: bool,
    /// Tokens as written (quotes and escapes kept, for hickory's RDATA parser).
    tokens: Vec<String>,
}

/// Splits zone text into entries, a line at a time; errors name the line.
struct Lexer {
    /// The line being read (1-based).
    line: usize,
    /// Entries completed so far, for the loader to take.
    done: Vec<Entry>,
    cur: Option<Entry>,
    /// Octets in `cur`'s tokens, bounded by `MAX_LINE`.
    cur_len: usize,
    tok: String,
    depth: usize,
    paren_line: usize,
    /// The line where the open quoted string started.
    quote: Option<usize>,
    escaped: bool,
    comment: bool,
    at_line_start: bool,
    blank: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            line: 1,
            done: Vec::new(),
            cur: None,
            cur_len: 0,
            tok: String::new(),
            depth: 0,
            paren_line: 0,
            quote: None,
            escaped: false,
            comment: false,
            at_line_start: true,
            blank: false,
        }
    }
}

impl Lexer {
    fn flush(&mut self) -> Result<(), (usize, String)> {
        if !self.tok.is_empty() {
            self.cur_len += self.tok.len() + 1;
            let (line, blank) = (self.line, self.blank);
            self.cur
                .get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() })
                .tokens
                .push(std::mem::take(&mut self.tok));
        }
        if self.cur_len > MAX_LINE {
            let line = self.cur.as_ref().map_or(self.line, |e| e.line);
            return Err((line, format!("entry is longer than {} KiB", MAX_LINE / 1024)));
        }
        Ok(())
    }

    /// Lexes one line (with its newline, unless it is the last).
    fn feed(&mut self, text: &str) -> Result<(), (usize, String)> {
        for c in text.chars() {
            if self.at_line_start && self.depth == 0 && self.quote.is_none() {
                self.blank = c == ' ' || c == '\t';
            }
            self.at_line_start = false;
            if self.escaped {
                self.escaped = false;
                self.tok.push(c);
                if c == '\n' {
                    self.line += 1;
                }
                continue;
            }
            if let Some(start) = self.quote {
                match c {
                    '\\' => self.escaped = true,
                    '"' => self.quote = None,
                    '\n' => return Err((start, "unterminated quoted string".into())),
                    _ => {}
                }
                self.tok.push(c);
                continue;
            }
            if self.comment && c != '\n' {
                continue;
            }
            self.comment = false;
            self.char(c)?;
        }
        Ok(())
    }

    /// One character outside quoted strings and comments.
    fn char(&mut self, c: char) -> Result<(), (usize, String)> {
        match c {
            '\n' => {
                self.flush()?;
                self.line += 1;
                self.at_line_start = true;
                if self.depth == 0 {
                    if let Some(e) = self.cur.take() {
                        self.done.push(e);
                    }
                    self.cur_len = 0;
                }
            }
            ' ' | '\t' | '\r' => self.flush()?,
            ';' => {
                self.flush()?;
                self.comment = true;
            }
            '(' => {
                self.flush()?;
                if self.depth == 0 {
                    self.paren_line = self.line;
                }
                self.depth += 1;
                let (line, blank) = (self.line, self.blank);
                self.cur.get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() });
            }
            ')' => {
                self.flush()?;
                if self.depth == 0 {
                    return Err((self.line, "unbalanced ')'".into()));
                }
                self.depth -= 1;
            }
            '"' => {
                self.tok.push('"');
                self.quote = Some(self.line);
            }
            '\\' => {
                self.tok.push('\\');
                self.escaped = true;
            }
            _ => self.tok.push(c),
        }
        Ok(())
    }

    /// The last entry, at the end of the input.
    fn finish(mut self) -> Result<Option<Entry>, (usize, String)> {
        if let Some(start) = self.quote {
            return Err((start, "unterminated quoted string".into()));
        }
        self.flush()?;
        if self.depth > 0 {
            return Err((self.paren_line, "unbalanced '(' (no closing parenthesis)".into()));
        }
        Ok(self.cur.take())
    }
}

/// Where a record came from, for messages: its zone file line, or the API
/// (records changed through the API carry no line).
fn whence(r: &ZoneRecord) -> String {
    if r.line == 0 { format!("{} set through the API", r.rtype()) } else { format!("{} at line {}", r.rtype(), r.line) }
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
        let find = |n: &str, t: RecordType| {
            z.records.iter().find(|r| r.name.to_ascii() == n && r.rtype() == t).unwrap().clone()
        };
        assert_eq!(find("www.example.test.", RecordType::AAAA).ttl, 300);
        assert_eq!(find("www.example.test.", RecordType::A).ttl, 60);
        match find("alias.example.test.", RecordType::CNAME).rdata {
            RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "www.example.test."),
            _ => unreachable!(),
        }
        match find("example.test.", RecordType::SOA).rdata {
            RData::SOA(s) => {
                assert_eq!(s.mname.to_ascii(), "ns1.example.test.");
                assert_eq!(s.minimum, 60);
            }
            _ => unreachable!(),
        }
        match find("txt.example.test.", RecordType::TXT).rdata {
            RData::TXT(t) => assert_eq!(t.to_string(), "hello; not a commenttwo"),
            other => panic!("{other:?}"),
        }
        assert_eq!(find("host.sub.example.test.", RecordType::A).line, 12);
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
        let t = z.records.iter().find(|r| r.rtype() == RecordType::TXT).unwrap();
        assert_eq!(crate::rdata::render(&t.rdata), "\"a\\010b\" \"c\" \"d\"");
        assert_eq!(
            z.records
                .iter()
                .find(|r| r.rtype() == RecordType::A && r.name.to_ascii() == "after.example.test.")
                .unwrap()
                .line,
            9
        );
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
        assert!(z.records.iter().any(|r| r.name.to_ascii() == "www.example.test."));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A change is checked at its name and the apex only, with the messages
    /// of the whole-zone check.
    #[test]
    fn a_change_is_checked_where_it_is() {
        let mut z = parse("$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\nc CNAME ns\n").unwrap();
        let c = Name::from_ascii("c.example.test.").unwrap();
        assert!(check_change(&z, &c).is_ok());
        let mut txt = z.records.iter().find(|r| r.rtype() == RecordType::A).unwrap().clone();
        txt.name = c.clone();
        txt.line = 0;
        z.records.push(txt);
        let e = check_change(&z, &c).unwrap_err().to_string();
        assert_eq!(e, check_zone(&z).unwrap_err().to_string());
        assert!(e.contains("CNAME at c.example.test. beside other data (A set through the API)"), "{e}");
        // Elsewhere in the zone nothing changed: not checked again.
        assert!(check_change(&z, &Name::from_ascii("ns.example.test.").unwrap()).is_ok());
        z.records.retain(|r| r.rtype() != RecordType::NS);
        assert!(check_change(&z, &c).unwrap_err().to_string().contains("no NS record at its apex"));
    }
}
