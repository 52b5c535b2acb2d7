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

use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use crate::config::Problem;

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
    loader.text(origin, file, text, 0, None);
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

/// Reads a zone file, refusing anything but a regular file: `$INCLUDE /dev/zero`
/// or a FIFO would otherwise hang the loader or exhaust memory.
fn read_regular(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    std::fs::read_to_string(file)
}

impl Loader {
    fn file(&mut self, origin: &Name, file: &Path, depth: usize, from: Option<(&Path, usize)>, ttl: Option<u32>) {
        match read_regular(file) {
            Ok(text) => self.text(origin, file, &text, depth, ttl),
            Err(e) => {
                let (f, l) = from.unwrap_or((file, 0));
                self.problems.push(Problem::new(f, l, format!("cannot read zone file {}: {e}", file.display())));
            }
        }
    }

    /// `default_ttl`: the $TTL in force where this file is included.
    fn text(&mut self, zone_origin: &Name, file: &Path, text: &str, depth: usize, default_ttl: Option<u32>) {
        let file_arc: Arc<Path> = Arc::from(file);
        let mut origin = zone_origin.clone();
        let mut default_ttl = default_ttl;
        let mut owner: Option<Name> = None;
        let entries = match lex(text) {
            Ok(e) => e,
            Err((line, msg)) => {
                self.problems.push(Problem::new(file, line, msg));
                return;
            }
        };
        for entry in entries {
            let line = entry.line;
            let err = |msg: String| Problem::new(file, line, msg);
            let toks = &entry.tokens;
            if toks.is_empty() {
                continue;
            }
            let first = toks[0].as_str();
            if !entry.blank_owner && first.starts_with('$') {
                match first.to_ascii_uppercase().as_str() {
                    "$ORIGIN" => match toks.get(1).map(|t| parse_name(t, &origin)) {
                        Some(Ok(n)) if toks.len() == 2 => origin = n,
                        Some(Err(e)) => self.problems.push(err(format!("$ORIGIN: {e}"))),
                        _ => self.problems.push(err("$ORIGIN takes one domain name".into())),
                    },
                    "$TTL" => match toks.get(1).map(|t| parse_ttl(t)) {
                        Some(Ok(t)) if toks.len() == 2 => default_ttl = Some(t),
                        _ => self.problems.push(err("$TTL takes one TTL value".into())),
                    },
                    "$INCLUDE" => {
                        if toks.len() < 2 || toks.len() > 3 {
                            self.problems.push(err("$INCLUDE takes a file name and an optional origin".into()));
                            continue;
                        }
                        if depth >= MAX_INCLUDE_DEPTH {
                            self.problems.push(err("$INCLUDE nested too deeply".into()));
                            continue;
                        }
                        let inc_origin = match toks.get(2).map(|t| parse_name(t, &origin)) {
                            Some(Ok(n)) => n,
                            Some(Err(e)) => {
                                self.problems.push(err(format!("$INCLUDE origin: {e}")));
                                continue;
                            }
                            None => origin.clone(),
                        };
                        let rel = Path::new(unquote(&toks[1]));
                        let path = if rel.is_absolute() {
                            rel.to_path_buf()
                        } else {
                            file.parent().unwrap_or(Path::new("/")).join(rel)
                        };
                        self.file(&inc_origin, &path, depth + 1, Some((file, line)), default_ttl);
                    }
                    other => self.problems.push(err(format!("unknown directive {other}"))),
                }
                continue;
            }

            // Owner.
            let mut i = 0;
            if !entry.blank_owner {
                match parse_name(first, &origin) {
                    Ok(n) => owner = Some(n),
                    Err(e) => {
                        self.problems.push(err(format!("owner name: {e}")));
                        continue;
                    }
                }
                i = 1;
            }
            let Some(name) = owner.clone() else {
                self.problems.push(err("record without an owner name".into()));
                continue;
            };
            // [TTL] [class] in either order, then the type.
            let mut ttl: Option<u32> = None;
            let mut rtype: Option<RecordType> = None;
            while i < toks.len() {
                let t = toks[i].as_str();
                i += 1;
                if ttl.is_none() && t.as_bytes()[0].is_ascii_digit() {
                    match parse_ttl(t) {
                        Ok(v) => {
                            ttl = Some(v);
                            continue;
                        }
                        Err(_) => {
                            self.problems.push(err(format!("invalid TTL {t:?}")));
                            break;
                        }
                    }
                }
                let up = t.to_ascii_uppercase();
                if up == "IN" {
                    continue;
                }
                if matches!(up.as_str(), "CH" | "HS" | "CS" | "NONE" | "ANY") {
                    self.problems.push(err(format!("class {up} is not supported (only IN)")));
                    break;
                }
                match RecordType::from_str(&up) {
                    Ok(rt) if !matches!(rt, RecordType::Unknown(_)) || up.starts_with("TYPE") => rtype = Some(rt),
                    _ => self.problems.push(err(format!("unknown record type {t:?}"))),
                }
                break;
            }
            let Some(rtype) = rtype else {
                if !self.problems.iter().any(|p| p.line == line && *p.file == *file) {
                    self.problems.push(err("missing record type".into()));
                }
                continue;
            };
            if matches!(rtype, RecordType::OPT | RecordType::AXFR | RecordType::IXFR | RecordType::ANY) {
                self.problems.push(err(format!("record type {rtype} cannot appear in a zone file")));
                continue;
            }
            let origin_text = origin.to_ascii();
            let rdata_text: Vec<&str> =
                toks[i..].iter().map(|t| if t == "@" { origin_text.as_str() } else { t.as_str() }).collect();
            if rdata_text.is_empty() {
                self.problems.push(err(format!("{rtype} record has no data")));
                continue;
            }
            let rdata = match RData::try_from_str(rtype, &rdata_text.join(" ")) {
                Ok(r) => r,
                Err(e) => {
                    self.problems.push(err(format!("invalid {rtype} data {:?}: {e}", rdata_text.join(" "))));
                    continue;
                }
            };
            let rdata = match complete_names(rdata, &origin) {
                Ok(r) => r,
                Err(e) => {
                    self.problems.push(err(e));
                    continue;
                }
            };
            let explicit_ttl = ttl;
            let ttl = match ttl.or(default_ttl).or(self.last_ttl) {
                Some(t) => t,
                None => match &rdata {
                    RData::SOA(soa) => soa.minimum,
                    _ => {
                        self.problems.push(err("record has no TTL and there is no $TTL before it".into()));
                        continue;
                    }
                },
            };
            if ttl > i32::MAX as u32 {
                self.problems.push(err(format!("TTL {ttl} is above 2^31-1")));
                continue;
            }
            if explicit_ttl.is_some() {
                self.last_ttl = explicit_ttl;
            }
            if !zone_origin.zone_of(&name) {
                self.problems.push(err(format!("{name} is outside the zone {zone_origin}")));
                continue;
            }
            self.records.push(ZoneRecord { name: name.to_lowercase(), ttl, rdata, file: file_arc.clone(), line });
        }
    }
}

/// Parses one record's data in presentation format, names relative to `origin`
/// (used for RRsets written through the admin API).
pub fn parse_rdata(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, String> {
    let origin_text = origin.to_ascii();
    let text: Vec<&str> = text.split_whitespace().map(|t| if t == "@" { origin_text.as_str() } else { t }).collect();
    let text = text.join(" ");
    if text.is_empty() {
        return Err(format!("empty {rtype} data"));
    }
    let rdata = RData::try_from_str(rtype, &text).map_err(|e| format!("invalid {rtype} data {text:?}: {e}"))?;
    complete_names(rdata, origin)
}

/// Record types that cannot be stored in a zone.
pub fn is_meta_type(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::OPT | RecordType::AXFR | RecordType::IXFR | RecordType::ANY)
}

/// Whole-zone checks (SOA and NS at the apex, CNAME exclusivity), for a zone
/// changed through the API.
pub fn check_zone(zone: &ZoneData) -> Result<(), String> {
    let mut problems = Vec::new();
    check(&zone.origin, &zone.file, &zone.records, &mut problems);
    match problems.first() {
        None => Ok(()),
        Some(p) => Err(p.message.clone()),
    }
}

/// Completes names in the record data that were written relative to the origin.
fn complete_names(rdata: RData, origin: &Name) -> Result<RData, String> {
    let fix = |n: Name| -> Result<Name, String> {
        if n.is_fqdn() { Ok(n) } else { n.append_domain(origin).map_err(|e| format!("name too long: {e}")) }
    };
    Ok(match rdata {
        RData::CNAME(c) => RData::CNAME(CNAME(fix(c.0)?)),
        RData::NS(n) => RData::NS(NS(fix(n.0)?)),
        RData::PTR(p) => RData::PTR(PTR(fix(p.0)?)),
        RData::MX(m) => RData::MX(MX::new(m.preference, fix(m.exchange)?)),
        RData::SRV(s) => RData::SRV(SRV::new(s.priority, s.weight, s.port, fix(s.target)?)),
        RData::SOA(mut s) => {
            s.mname = fix(s.mname)?;
            s.rname = fix(s.rname)?;
            RData::SOA(s)
        }
        other => other,
    })
}

fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let mut n = Name::parse(text, Some(origin)).map_err(|e| format!("invalid name {text:?}: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
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
                format!("CNAME at {} beside other data ({} at line {})", r.name, o.rtype(), o.line),
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

/// Splits zone text into entries. Errors name the line.
fn lex(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    let mut line = 1usize;
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    let mut cur: Option<Entry> = None;
    let mut tok = String::new();
    let mut at_line_start = true;
    let mut chars = text.chars().peekable();

    fn flush_tok(tok: &mut String, cur: &mut Option<Entry>, line: usize, blank: bool) {
        if !tok.is_empty() {
            cur.get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() })
                .tokens
                .push(std::mem::take(tok));
        }
    }

    let mut blank = false;
    while let Some(c) = chars.next() {
        if at_line_start && depth == 0 {
            blank = c == ' ' || c == '\t';
        }
        at_line_start = false;
        match c {
            '\n' => {
                flush_tok(&mut tok, &mut cur, line, blank);
                line += 1;
                at_line_start = true;
                if depth == 0 {
                    if let Some(e) = cur.take() {
                        entries.push(e);
                    }
                }
            }
            ' ' | '\t' | '\r' => flush_tok(&mut tok, &mut cur, line, blank),
            ';' => {
                flush_tok(&mut tok, &mut cur, line, blank);
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '(' => {
                flush_tok(&mut tok, &mut cur, line, blank);
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
                cur.get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() });
            }
            ')' => {
                flush_tok(&mut tok, &mut cur, line, blank);
                if depth == 0 {
                    return Err((line, "unbalanced ')'".into()));
                }
                depth -= 1;
            }
            '"' => {
                tok.push('"');
                let start = line;
                loop {
                    match chars.next() {
                        Some('\\') => {
                            tok.push('\\');
                            if let Some(n) = chars.next() {
                                if n == '\n' {
                                    line += 1;
                                }
                                tok.push(n);
                            }
                        }
                        Some('"') => {
                            tok.push('"');
                            break;
                        }
                        Some('\n') => return Err((start, "unterminated quoted string".into())),
                        Some(ch) => tok.push(ch),
                        None => return Err((start, "unterminated quoted string".into())),
                    }
                }
            }
            '\\' => {
                tok.push('\\');
                if let Some(n) = chars.next() {
                    tok.push(n);
                }
            }
            _ => tok.push(c),
        }
    }
    flush_tok(&mut tok, &mut cur, line, blank);
    if depth > 0 {
        return Err((paren_line, "unbalanced '(' (no closing parenthesis)".into()));
    }
    if let Some(e) = cur.take() {
        entries.push(e);
    }
    Ok(entries)
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
}
