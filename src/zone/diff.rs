//! A reload of a changed zone file whose zone is held: the records read are
//! looked up in the held zone instead of being built into a second one. A record
//! the held base has sets a bit at its offset there; a record it does not have
//! (or that is at a name the held zone's layer shadows) is kept in a small list.
//! At the end only the RRsets that differ are laid over the held zone, through
//! the same layer as the API's changes, so that the reload holds one zone plus
//! what changed. Too many changes give up the diff (the caller loads the file
//! in full), so that the layer stays small against its base.

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::rr::Name;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::snapshot::{Base, EncodedRRset, Zone};

use super::ZoneData;

/// Where the RRsets laid over the base were read: (owner, type) -> tag.
pub(super) type Laid = FxHashMap<(Box<[u8]>, u16), u64>;

/// One RRset to lay over the held zone (`None`: removed).
type Change = (Box<[u8]>, u16, Option<EncodedRRset>);

/// A record the held base does not have, its bytes in `Diff::scratch`.
struct New {
    name: Box<[u8]>,
    rtype: u16,
    tag: u64,
    off: usize,
    len: usize,
}

/// The comparison of a zone file as it is read against the zone held for it.
pub(super) struct Diff {
    pub held: Arc<ZoneData>,
    /// One bit per byte of the held base's record data, set at each record the
    /// file still has.
    seen: Vec<u64>,
    /// Per held RRset, the lowest tag of its records the file still has.
    tags: Vec<u64>,
    new: Vec<New>,
    scratch: Vec<u8>,
    /// The node after the last record's (see [`Diff::near`]).
    next: u32,
    /// More new records than `limit`: the diff is given up.
    limit: usize,
    over: bool,
}

/// The zone a diff gives: the held zone with the changed RRsets laid over it,
/// and where each RRset was read.
pub(super) struct Relaid {
    pub zone: Arc<Zone>,
    pub tags: Vec<u64>,
    pub laid: Laid,
}

/// How many changes a diff lays at most: a tenth of the zone, and never fewer
/// than a small zone's worth.
fn most_changes(count: usize) -> usize {
    count / 10 + 64
}

impl Diff {
    pub fn new(held: Arc<ZoneData>) -> Diff {
        let base = &held.zone.base;
        Diff {
            seen: vec![0; base.data_len() / 64 + 1],
            tags: vec![u64::MAX; base.rrset_total()],
            new: Vec::new(),
            scratch: Vec::new(),
            next: 0,
            limit: most_changes(held.records),
            over: false,
            held,
        }
    }

    pub fn base(&self) -> &Base {
        &self.held.zone.base
    }

    fn shadowed(&self, name: &[u8]) -> bool {
        let layer = &self.held.zone.layer;
        !layer.is_empty() && layer.contains_key(name)
    }

    /// The id of `owner` when it is the node of the last record read or the
    /// one after it. The held base numbers its nodes in the order the file
    /// first named them, so a file read again mostly names them in that order:
    /// comparing one name there spares most records a lookup in the name index
    /// (at 1,000,000 names, a cache miss each).
    fn near(&self, owner: &[u8]) -> Option<u32> {
        let base = self.base();
        let count = base.node_count() as u32;
        [self.next.wrapping_sub(1), self.next].into_iter().find(|&id| id < count && base.name_of_id(id) == owner)
    }

    fn is_seen(&self, off: usize) -> bool {
        self.seen[off / 64] & (1 << (off % 64)) != 0
    }

    /// Takes one record (`owner` lower-cased wire, `record` encoded) read at
    /// `tag`. Returns the id of `owner`'s node in the held base, if it has it
    /// (the name is looked up once per record, for both).
    pub fn push(&mut self, owner: &[u8], rtype: u16, record: &[u8], tag: u64) -> Option<u32> {
        let id = self.near(owner).or_else(|| self.held.zone.base.node_id(owner));
        self.next = id.map_or(self.next, |i| i.saturating_add(1));
        if let Some(id) = id.filter(|_| !self.shadowed(owner)) {
            if let Some((i, off)) = self.held.zone.base.find_record_at(id, rtype, record) {
                self.seen[off / 64] |= 1 << (off % 64);
                self.tags[i] = self.tags[i].min(tag);
                return Some(id);
            }
        }
        if self.over {
            return id;
        }
        if self.new.len() >= self.limit {
            // Not worth it: what was gathered is freed for the full load.
            (self.over, self.new, self.scratch) = (true, Vec::new(), Vec::new());
            return id;
        }
        let off = self.scratch.len();
        self.scratch.extend_from_slice(record);
        self.new.push(New { name: owner.into(), rtype, tag, off, len: record.len() });
        id
    }

    /// The held zone with what changed laid over it, its SOA `soa`; `None` when
    /// too much changed (the file is then loaded in full).
    pub fn finish(mut self, soa: Zone, pools: &BTreeMap<Name, u32>) -> Option<Relaid> {
        if self.over {
            return None;
        }
        let mut laid = Laid::default();
        let changes = self.changes(&mut laid)?;
        let mut zone = soa;
        for (name, rtype, set) in changes {
            zone = zone.with_rrset(&name, rtype, set);
        }
        let zone = Arc::new(Arc::new(zone).with_pools(pools).as_file());
        Some(Relaid { zone, tags: std::mem::take(&mut self.tags), laid })
    }

    /// The RRsets that differ from the held zone's; `None` when there are too many.
    fn changes(&mut self, laid: &mut Laid) -> Option<Vec<Change>> {
        let mut new = std::mem::take(&mut self.new);
        new.sort_by(|a, b| (&a.name, a.rtype, a.tag).cmp(&(&b.name, b.rtype, b.tag)));
        let mut out = Vec::new();
        let mut grouped = FxHashSet::default();
        for group in new.chunk_by(|a, b| (&a.name, a.rtype) == (&b.name, b.rtype)) {
            if let Some(change) = self.group_change(group, laid, &mut grouped) {
                out.push(change);
            }
        }
        self.held_changes(&grouped, laid, &mut out);
        let most = most_changes(self.base().rrset_total());
        (out.len() + self.held.zone.layer.len() <= most).then_some(out)
    }

    /// The RRset of a group of new records (one owner and type), with the held
    /// records of it the file still has, if it differs from the held one.
    fn group_change(&self, group: &[New], laid: &mut Laid, grouped: &mut FxHashSet<usize>) -> Option<Change> {
        let (name, rtype) = (&group[0].name, group[0].rtype);
        let held = if self.shadowed(name) { None } else { self.base().rrset_index(name, rtype) };
        let mut records: Vec<&[u8]> = Vec::new();
        let mut tag = group[0].tag;
        if let Some(i) = held {
            grouped.insert(i);
            tag = tag.min(self.tags[i]);
            records.extend(self.base().records_of(i).filter(|&(off, _)| self.is_seen(off)).map(|(_, r)| r));
        }
        records.extend(group.iter().map(|n| &self.scratch[n.off..n.off + n.len]));
        let set = EncodedRRset::new(records.iter().copied());
        laid.insert((name.clone(), rtype), tag);
        let now = self.held.zone.node(name).and_then(|n| n.rrset(rtype));
        if now.is_some_and(|r| r.count() == set.count && r.bytes() == &*set.data) {
            return None;
        }
        Some((name.clone(), rtype, Some(set)))
    }

    /// The held RRsets no new record touched: those the file has in part or
    /// not at all.
    fn held_changes(&self, grouped: &FxHashSet<usize>, laid: &mut Laid, out: &mut Vec<Change>) {
        let base = self.base();
        for (name, i, rtype) in base.rrset_positions() {
            if grouped.contains(&i) || self.shadowed(name) {
                continue;
            }
            let (total, kept) =
                base.records_of(i).fold((0, 0), |(t, k), (off, _)| (t + 1, k + usize::from(self.is_seen(off))));
            if kept == total {
                continue;
            }
            let set = (kept > 0).then(|| {
                laid.insert((name.into(), rtype), self.tags[i]);
                EncodedRRset::new(base.records_of(i).filter(|&(off, _)| self.is_seen(off)).map(|(_, r)| r))
            });
            out.push((name.into(), rtype, set));
        }
        // The RRsets at names the layer shadows were all read as new.
        for (name, _) in self.held.zone.layer.iter() {
            let Some(node) = self.held.zone.node(name) else { continue };
            for set in node.rrsets() {
                if !laid.contains_key(&(name.clone(), set.rtype)) {
                    out.push((name.clone(), set.rtype, None));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::zone::{load, reload_named_at};

    const HEAD: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n";

    fn origin() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `text` reloaded over `held`, and the same text loaded in full.
    fn reload(dir: &Path, held: &Arc<ZoneData>, text: &str) -> (Arc<ZoneData>, ZoneData) {
        let file = dir.join("z.zone");
        std::fs::write(&file, text).unwrap();
        let relaid = reload_named_at(&origin(), &file, None, &BTreeMap::new(), held).unwrap();
        (Arc::new(relaid), load(&origin(), &file).unwrap())
    }

    /// The RRsets of `zone` (`file`: as its file has them), records in order
    /// (an RRset is a set: the held zone keeps its order when a file reorders it).
    fn sets(zone: &ZoneData, file: bool) -> crate::snapshot::RRsetTexts {
        let mut texts = zone.zone.texts(file, 0);
        texts.values_mut().for_each(|(_, records)| records.sort());
        texts
    }

    /// The relaid zone answers as the full load, and names the same lines.
    fn assert_same(relaid: &ZoneData, full: &ZoneData) {
        let texts = sets(full, true);
        assert_eq!(sets(relaid, true), texts);
        assert_eq!(sets(relaid, false), sets(full, false));
        assert_eq!(relaid.records, full.records);
        for (name, rtype) in texts.keys() {
            let (name, rtype) = (Name::from_ascii(name).unwrap(), rtype.parse::<RecordType>().unwrap());
            assert_eq!(relaid.whence(&name, rtype), full.whence(&name, rtype), "{name} {rtype}");
        }
    }

    #[test]
    fn a_reload_lays_only_the_changed_rrsets_over_the_held_zone() {
        let dir = Dir(std::env::temp_dir().join(format!("lbdns-diff-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let first = format!("{HEAD}www A 192.0.2.1\nwww A 192.0.2.2\nmail MX 10 mx\nold TXT \"x\"\nkeep A 192.0.2.9\n");
        std::fs::write(dir.0.join("z.zone"), &first).unwrap();
        let held = Arc::new(load(&origin(), &dir.0.join("z.zone")).unwrap());

        // The same records in another order: nothing laid, the base shared.
        let reordered =
            format!("{HEAD}keep A 192.0.2.9\nold TXT \"x\"\nmail MX 10 mx\nwww A 192.0.2.2\nwww A 192.0.2.1\n");
        let (same, full) = reload(&dir.0, &held, &reordered);
        assert!(Arc::ptr_eq(&same.zone.base, &held.zone.base));
        assert!(same.zone.layer.is_empty());
        assert_same(&same, &full);

        // One RRset changed, one added (with a new name), one removed.
        let changed = format!(
            "{HEAD}www A 192.0.2.1\nwww A 192.0.2.3\nmail MX 10 mx\nnew.sub AAAA 2001:db8::1\nkeep A 192.0.2.9\n"
        );
        let (relaid, full) = reload(&dir.0, &held, &changed);
        assert!(Arc::ptr_eq(&relaid.zone.base, &held.zone.base));
        let laid: Vec<&[u8]> = relaid.zone.layer.keys().map(|k| &**k).collect();
        let names: Vec<String> = laid.iter().map(|w| super::super::sink::name_of_wire(w)).collect();
        // The apex and `sub` follow `new.sub`'s existence (their child counts).
        let want =
            ["new.sub.example.test.", "old.example.test.", "sub.example.test.", "www.example.test.", "example.test."];
        assert_eq!(names, want);
        assert_same(&relaid, &full);

        // A second reload compares against the layered zone: back to the first file.
        let (back, full) = reload(&dir.0, &relaid, &first);
        assert!(Arc::ptr_eq(&back.zone.base, &held.zone.base));
        assert_same(&back, &full);
        let (again, full) = reload(&dir.0, &back, &first);
        assert_eq!(again.zone.layer, back.zone.layer, "an unchanged file lays nothing new");
        assert_same(&again, &full);
    }

    #[test]
    fn a_broken_file_keeps_its_messages_and_much_change_loads_in_full() {
        let dir = Dir(std::env::temp_dir().join(format!("lbdns-diff-broken-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join("z.zone");
        std::fs::write(&file, format!("{HEAD}www A 192.0.2.1\n")).unwrap();
        let held = Arc::new(load(&origin(), &file).unwrap());
        std::fs::write(&file, format!("{HEAD}www A 192.0.2.1\nwww CNAME other\n")).unwrap();
        let e = reload_named_at(&origin(), &file, None, &BTreeMap::new(), &held).map(|_| ()).unwrap_err();
        assert_eq!(e, load(&origin(), &file).map(|_| ()).unwrap_err());
        assert_eq!(
            (e[0].line, e[0].message.as_str()),
            (6, "CNAME at www.example.test. beside other data (A at line 5)")
        );

        let many: String = (0..200).map(|i| format!("h{i} A 192.0.2.{}\n", i % 250)).collect();
        let (relaid, full) = reload(&dir.0, &held, &format!("{HEAD}{many}"));
        assert!(!Arc::ptr_eq(&relaid.zone.base, &held.zone.base), "loaded in full");
        assert_same(&relaid, &full);
    }
}
