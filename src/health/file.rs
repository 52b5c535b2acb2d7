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
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::{mpsc, watch};

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

    /// Reads and parses `path` (at start-up and reload, before the pools are
    /// published with it): see [`HealthFile::of`].
    pub fn read(path: &Path) -> HealthFile {
        HealthFile::of(path, std::fs::read_to_string(path))
    }

    /// A file from what reading it gave: a missing file has no entries and no
    /// problem (a writer may remove it to hand every member back to the probes).
    fn of(path: &Path, read: std::io::Result<String>) -> HealthFile {
        match read {
            Ok(text) => HealthFile::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HealthFile::default(),
            Err(e) => HealthFile { entries: HashMap::new(), problems: vec![format!("{}: {e}", path.display())] },
        }
    }
}

/// How often the watcher looks at each file's metadata (jittered ±10%).
pub const POLL: Duration = Duration::from_secs(1);

/// A health file as the watcher read it after it changed.
#[derive(Debug)]
pub struct FileUpdate {
    pub path: PathBuf,
    pub file: Arc<HealthFile>,
}

/// What tells a changed file from an unchanged one without reading it: size,
/// inode (a file replaced by rename) and change times; `None` when missing.
type Signature = Option<(u64, u64, i64, i64, i64, i64)>;

fn signature(path: &Path) -> Signature {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.size(), m.ino(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
}

/// The files of `list` whose signature differs from `seen`'s, read; `seen`
/// updated (and rid of files no longer listed).
fn look(list: Vec<PathBuf>, mut seen: HashMap<PathBuf, Signature>) -> (HashMap<PathBuf, Signature>, Vec<FileUpdate>) {
    seen.retain(|p, _| list.contains(p));
    let mut changed = Vec::new();
    for path in list {
        let sig = signature(&path);
        if seen.get(&path) == Some(&sig) {
            continue;
        }
        seen.insert(path.clone(), sig);
        changed.push(FileUpdate { file: Arc::new(HealthFile::read(&path)), path });
    }
    (seen, changed)
}

/// Watches the files `paths` names (it changes on reload) with a short poll of
/// their metadata, which also sees a file replaced by rename or created later,
/// and sends each one read after a change (and each one once at first, so that
/// a change between start-up's read and the first look is not missed). The
/// file system is touched on the blocking pool. Ends when either channel's
/// other end is gone.
pub async fn watch(mut paths: watch::Receiver<Vec<PathBuf>>, updates: mpsc::Sender<FileUpdate>) {
    let mut seen: HashMap<PathBuf, Signature> = HashMap::new();
    loop {
        let list = paths.borrow_and_update().clone();
        let before = std::mem::take(&mut seen);
        let Ok((now, changed)) = tokio::task::spawn_blocking(move || look(list, before)).await else { return };
        seen = now;
        for u in changed {
            if updates.send(u).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(super::probe::jitter(POLL)) => {}
            changed = paths.changed() => if changed.is_err() { return },
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
