//! Health files (`health_file`): lines `ADDRESS up|down [REASON]` that a
//! keepalived script, a cron job or a monitoring system writes to drive members'
//! state on this node. `#` starts a comment; blank lines are skipped. A line
//! that does not parse is reported as FILE:LINE and ignored, the others apply; a
//! missing file has no entries. The file is this node's own vote: in a cluster
//! it feeds the votes this node publishes, and an API override still wins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::push::{FileEntry, Pushed};

/// One health file as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthFile {
    pub entries: HashMap<IpAddr, FileEntry>,
    /// `FILE:LINE: problem`, one per line ignored (or the file unreadable).
    pub problems: Vec<String>,
}

impl HealthFile {
    /// Parses a file's text; `path` names it in problems.
    pub fn parse(path: &Path, text: &str) -> HealthFile {
        let mut f = HealthFile::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok((addr, state, reason)) => {
                    f.entries.insert(addr, FileEntry { state, reason, line: i + 1 });
                }
                Err(why) => f.problems.push(format!("{}:{}: {why}", path.display(), i + 1)),
            }
        }
        f
    }

    /// Reads and parses `path`: a missing file has no entries and no problem
    /// (writers may remove it to hand every member back to the probes).
    pub fn read(path: &Path) -> HealthFile {
        match std::fs::read_to_string(path) {
            Ok(text) => HealthFile::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HealthFile::default(),
            Err(e) => HealthFile { entries: HashMap::new(), problems: vec![format!("{}: {e}", path.display())] },
        }
    }
}

/// `ADDRESS up|down [REASON]`.
fn parse_line(line: &str) -> Result<(IpAddr, Pushed, Option<String>), String> {
    let mut words = line.splitn(3, char::is_whitespace);
    let addr = words.next().unwrap_or("");
    let addr: IpAddr =
        addr.parse().map_err(|_| format!("{addr:?} is not an IP address (expected ADDRESS up|down [REASON])"))?;
    let state = match words.next().map(str::to_ascii_lowercase).as_deref() {
        Some("up") => Pushed::Up,
        Some("down") => Pushed::Down,
        Some(other) => return Err(format!("{other:?} is not up or down")),
        None => return Err(format!("{addr}: no state (expected ADDRESS up|down [REASON])")),
    };
    let reason = words.next().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    Ok((addr, state, reason))
}

/// The health files this node reads and which pools each one drives: the
/// `[health]` file for every pool, unless a pool names its own.
#[derive(Debug, Clone, Default)]
pub struct FileVotes {
    pub global: Option<PathBuf>,
    pub by_pool: HashMap<Name, PathBuf>,
    pub files: HashMap<PathBuf, Arc<HealthFile>>,
}

impl FileVotes {
    /// The file that drives `pool`, if any.
    pub fn path_of(&self, pool: &Name) -> Option<&Path> {
        self.by_pool.get(pool).or(self.global.as_ref()).map(PathBuf::as_path)
    }

    /// The line of `pool`'s file for `address`, with the file's path.
    pub fn entry(&self, pool: &Name, address: IpAddr) -> Option<(&Path, &FileEntry)> {
        if self.files.is_empty() {
            return None;
        }
        let path = self.path_of(pool)?;
        Some((path, self.files.get(path)?.entries.get(&address)?))
    }

    /// Every file named, each once.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.global.iter().chain(self.by_pool.values()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_apply_and_bad_ones_are_reported_with_file_and_line() {
        let text = "# keepalived\n192.0.2.1 down maintenance window\n\n2001:db8::1 UP\n192.0.2.x down\n192.0.2.3 sideways\n192.0.2.4\n";
        let f = HealthFile::parse(Path::new("/run/h"), text);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            f.entries[&a],
            FileEntry { state: Pushed::Down, reason: Some("maintenance window".into()), line: 2 }
        );
        assert_eq!(f.entries[&"2001:db8::1".parse::<IpAddr>().unwrap()].state, Pushed::Up);
        assert_eq!(f.entries.len(), 2);
        let lines: Vec<&str> = f.problems.iter().map(|p| p.split(": ").next().unwrap()).collect();
        assert_eq!(lines, ["/run/h:5", "/run/h:6", "/run/h:7"], "{:?}", f.problems);
    }

    #[test]
    fn a_missing_file_has_no_entries() {
        let f = HealthFile::read(Path::new("/nonexistent/lbdns-health"));
        assert_eq!(f, HealthFile::default());
    }
}
