//! The IXFR journal (RFC 1995): for each transferred zone, the changes between
//! consecutive serials as secondaries see them (records removed, records
//! added), oldest first, bounded by bytes and by age.
//!
//! The transfer task (`xfr`) appends a change when a zone's serial moves; the
//! TCP path reads the journal to answer IXFR. Readers load an immutable list
//! (one `ArcSwap` load, no lock); an append copies the zone's list of `Arc`s.
//! A change is a plain value with a byte encoding ([`Change::encode`]) so that
//! the journal can be kept with the rest of the state and outlive a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

/// One record of a change: its owner (lower-cased wire) and the record from
/// TYPE to the end of RDATA.
pub type Rr = (Box<[u8]>, Box<[u8]>);

/// The change from one serial to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    /// The SOA records (TYPE to the end of RDATA) before and after.
    pub from_soa: Box<[u8]>,
    pub to_soa: Box<[u8]>,
    pub removed: Vec<Rr>,
    pub added: Vec<Rr>,
    /// When it was recorded, in seconds since the epoch.
    pub at: u64,
}

/// A stored change that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("damaged journal entry")]
pub struct Damaged;

impl Change {
    /// Bytes it holds, for the journal's bound.
    pub fn bytes(&self) -> usize {
        let rrs = |v: &[Rr]| v.iter().map(|(o, r)| o.len() + r.len() + 32).sum::<usize>();
        64 + self.from_soa.len() + self.to_soa.len() + rrs(&self.removed) + rrs(&self.added)
    }

    /// The stored form: serials, time, the two SOAs and the two record lists,
    /// each piece length-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes());
        out.extend_from_slice(&self.from.to_be_bytes());
        out.extend_from_slice(&self.to.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        for piece in [&self.from_soa, &self.to_soa] {
            put(&mut out, piece);
        }
        for list in [&self.removed, &self.added] {
            out.extend_from_slice(&(list.len() as u32).to_be_bytes());
            for (owner, rec) in list {
                put(&mut out, owner);
                put(&mut out, rec);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Change, Damaged> {
        let mut r = Reader(b);
        let (from, to, at) = (r.u32()?, r.u32()?, r.u64()?);
        let (from_soa, to_soa) = (r.piece()?, r.piece()?);
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            for _ in 0..r.u32()? {
                list.push((r.piece()?, r.piece()?));
            }
        }
        let [removed, added] = lists;
        if !r.0.is_empty() {
            return Err(Damaged);
        }
        Ok(Change { from, to, from_soa, to_soa, removed, added, at })
    }
}

fn put(out: &mut Vec<u8>, piece: &[u8]) {
    out.extend_from_slice(&(piece.len() as u32).to_be_bytes());
    out.extend_from_slice(piece);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Damaged> {
        if self.0.len() < n {
            return Err(Damaged);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, Damaged> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Damaged> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn piece(&mut self) -> Result<Box<[u8]>, Damaged> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.into())
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A zone's changes, oldest first, each `to` the next one's `from`.
pub type Changes = Arc<Vec<Arc<Change>>>;

/// The journals of every transferred zone, by lower-cased wire origin.
#[derive(Debug, Default)]
pub struct Journals {
    zones: ArcSwap<FxHashMap<Box<[u8]>, Changes>>,
}

impl Journals {
    /// The zone's changes now.
    pub fn changes(&self, origin: &[u8]) -> Changes {
        self.zones.load().get(origin).cloned().unwrap_or_default()
    }

    /// The changes that take a secondary at `serial` to the journal's last
    /// serial, oldest first; `None` when the journal does not reach back to it.
    pub fn since(&self, origin: &[u8], serial: u32) -> Option<Vec<Arc<Change>>> {
        let all = self.changes(origin);
        let start = all.iter().position(|c| c.from == serial)?;
        Some(all[start..].to_vec())
    }

    /// Replaces the zone's changes (at start, with what was stored).
    pub fn set(&self, origin: &[u8], changes: Vec<Arc<Change>>) {
        let mut next = (**self.zones.load()).clone();
        next.insert(origin.into(), Arc::new(changes));
        self.zones.store(Arc::new(next));
    }

    /// Appends `change` (it must follow the last one; else the journal restarts
    /// with it), then drops the oldest changes beyond `max_bytes` in all or older
    /// than `max_age`. Returns how many were dropped from the front.
    pub fn push(&self, origin: &[u8], change: Change, max_bytes: usize, max_age: Duration) -> usize {
        let old = self.changes(origin);
        let mut list: Vec<Arc<Change>> = match old.last() {
            Some(last) if last.to == change.from => old.to_vec(),
            _ => Vec::new(),
        };
        let before = list.len();
        list.push(Arc::new(change));
        let oldest = now().saturating_sub(max_age.as_secs());
        let mut total: usize = list.iter().map(|c| c.bytes()).sum();
        let mut drop = 0;
        // The newest change stays even when it alone is over the bound: IXFR from
        // the serial just before it is the common case.
        while drop + 1 < list.len() && (total > max_bytes || list[drop].at < oldest) {
            total -= list[drop].bytes();
            drop += 1;
        }
        list.drain(..drop);
        self.set(origin, list);
        drop + (old.len() - before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: u32, to: u32, at: u64) -> Change {
        let rr = |b: &[u8]| (Box::from(&b"\x01x\x00"[..]), Box::from(b));
        Change {
            from,
            to,
            from_soa: Box::from(&b"soa1"[..]),
            to_soa: Box::from(&b"soa2"[..]),
            removed: vec![rr(b"old")],
            added: vec![rr(b"new"), rr(b"new2")],
            at,
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let c = change(1, 2, 77);
        assert_eq!(Change::decode(&c.encode()).unwrap(), c);
        let enc = c.encode();
        assert!(Change::decode(&enc[..enc.len() - 1]).is_err());
        assert!(Change::decode(&[enc.clone(), vec![0]].concat()).is_err());
    }

    /// IXFR reaches back as far as the journal goes; appends that do not follow
    /// restart it; the oldest go first when over the bounds.
    #[test]
    fn chains_and_bounds() {
        let j = Journals::default();
        let z = b"\x01z\x00";
        let day = Duration::from_secs(86_400);
        j.push(z, change(1, 2, now()), 1 << 20, day);
        j.push(z, change(2, 3, now()), 1 << 20, day);
        assert_eq!(j.since(z, 1).map(|v| v.len()), Some(2));
        assert_eq!(j.since(z, 2).map(|v| v.len()), Some(1));
        assert!(j.since(z, 3).is_none() && j.since(z, 9).is_none());
        j.push(z, change(7, 8, now()), 1 << 20, day);
        assert!(j.since(z, 1).is_none(), "a gap restarts the journal");
        let one = change(8, 9, now()).bytes();
        j.push(z, change(8, 9, now()), one + 1, day);
        assert_eq!(j.changes(z).iter().map(|c| c.from).collect::<Vec<_>>(), [8]);
        j.push(z, change(9, 10, now()), 1 << 20, day);
        assert_eq!(j.changes(z).len(), 2);
        let y = b"\x01y\x00";
        j.push(y, change(1, 2, now() - 100), 1 << 20, day);
        j.push(y, change(2, 3, now() - 100), 1 << 20, Duration::from_secs(50));
        assert_eq!(j.changes(y).iter().map(|c| c.from).collect::<Vec<_>>(), [2], "too old, but the newest stays");
    }
}
