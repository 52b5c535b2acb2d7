//! A zone as the query path reads it, held once and compactly: every owner name in
//! one buffer, every record (TYPE to the end of RDATA, names uncompressed, case
//! kept) in another, and small fixed-size index entries for nodes and RRsets, found
//! through one hash table of node ids. No box per name or per RRset: a record costs
//! its encoded bytes plus a share of a few index entries.
//!
//! Invariants of a built [`Base`]: every name is lower-cased wire form at or below
//! the origin; every ancestor of a name up to the apex is a node (empty
//! non-terminals have no RRsets); a node's RRsets are contiguous in `rrsets`,
//! ordered by type, one per type; the records of an RRset are contiguous in `data`,
//! share one TTL and are distinct. A record's length is read from its RDLENGTH.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

mod builder;
pub use builder::{BaseBuilder, TooLarge};

/// The node is the zone apex.
const APEX: u8 = 1;
/// NS records at a name below the apex: a zone cut.
const DELEGATION: u8 = 2;
/// No pool at this node.
const NO_POOL: u32 = u32::MAX;

/// The immutable records of a zone, built once.
#[derive(Debug, Default)]
pub struct Base {
    names: Vec<u8>,
    index: HashTable<u32>,
    nodes: Vec<NodeRec>,
    rrsets: Vec<RRsetRec>,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct NodeRec {
    name_off: u32,
    first_rrset: u32,
    /// Index into `Snapshot::pools`, or `NO_POOL`.
    pool: u32,
    /// Child nodes (for empty non-terminals: a node with no RRsets exists while
    /// it has children or is a pool).
    children: u32,
    rrset_count: u16,
    name_len: u8,
    flags: u8,
}

#[derive(Debug, Clone, Copy)]
struct RRsetRec {
    off: u32,
    len: u32,
    rtype: u16,
    count: u16,
}

fn hash(name: &[u8]) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Base {
    fn name(&self, n: &NodeRec) -> &[u8] {
        &self.names[n.name_off as usize..n.name_off as usize + n.name_len as usize]
    }

    fn find(&self, name: &[u8]) -> Option<&NodeRec> {
        let id = self.index.find(hash(name), |&id| self.name(&self.nodes[id as usize]) == name)?;
        self.nodes.get(*id as usize)
    }

    /// The node at `name` (lower-cased wire), if it exists.
    pub fn node(&self, name: &[u8]) -> Option<NodeView<'_>> {
        self.find(name).map(|rec| NodeView(Inner::Base(self, rec)))
    }

    /// The node at `name` with `layer` over this base.
    pub fn node_in<'z>(&'z self, layer: &'z Layer, name: &[u8]) -> Option<NodeView<'z>> {
        lookup(self, layer, name)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes.iter().map(move |rec| NodeView(Inner::Base(self, rec)))
    }

    /// How many nodes (names, empty non-terminals included) the zone has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The position of the RRset `rtype` at `name` among the base's RRsets (what
    /// [`BaseBuilder::finish_tagged`]'s tags are indexed by).
    pub fn rrset_index(&self, name: &[u8], rtype: u16) -> Option<usize> {
        let rec = self.find(name)?;
        let first = rec.first_rrset as usize;
        let sets = self.rrsets.get(first..first + rec.rrset_count as usize)?;
        sets.iter().position(|r| r.rtype == rtype).map(|i| first + i)
    }

    /// The names marked as pools, with their pool index.
    pub fn pools(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.nodes.iter().filter(|n| n.pool != NO_POOL).map(move |n| (self.name(n), n.pool))
    }

    /// Whether `other` holds the same records at the same names (pool marks
    /// aside). O(zone): for a changed file only.
    pub fn same_records(&self, other: &Base) -> bool {
        self.rrsets.len() == other.rrsets.len()
            && self.data.len() == other.data.len()
            && self.nodes.iter().filter(|n| n.rrset_count > 0).all(|n| {
                let here = NodeView(Inner::Base(self, n));
                other.node(self.name(n)).is_some_and(|there| {
                    here.rrsets().map(|r| (r.rtype, r.data)).eq(there.rrsets().map(|r| (r.rtype, r.data)))
                })
            })
    }

    /// The id of the node at `name` (its position among the nodes), if any.
    pub fn node_id(&self, name: &[u8]) -> Option<u32> {
        self.index.find(hash(name), |&id| self.name(&self.nodes[id as usize]) == name).copied()
    }

    /// The name of node `id` (from [`Base::node_id`]).
    pub fn name_of_id(&self, id: u32) -> &[u8] {
        self.names_of(id)
    }

    /// How many bytes of record data the base holds (record offsets are below).
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Where `record` (TYPE to the end of RDATA, TTL included) is among the
    /// records of the RRset `rtype` at `name`: the RRset's position and the
    /// record's offset in the data.
    pub fn find_record(&self, name: &[u8], rtype: u16, record: &[u8]) -> Option<(usize, usize)> {
        self.find_record_at(self.node_id(name)?, rtype, record)
    }

    /// [`Base::find_record`] at the node `id` (from [`Base::node_id`]): a
    /// reload that has the node's id already looks the name up once.
    pub fn find_record_at(&self, id: u32, rtype: u16, record: &[u8]) -> Option<(usize, usize)> {
        let rec = self.nodes.get(id as usize)?;
        let first = rec.first_rrset as usize;
        let sets = self.rrsets.get(first..first + rec.rrset_count as usize)?;
        let i = first + sets.iter().position(|r| r.rtype == rtype)?;
        let off = self.records_of(i).find(|&(_, rec)| rec == record)?.0;
        Some((i, off))
    }

    /// Every RRset: its node's name, its position and its type.
    pub fn rrset_positions(&self) -> impl Iterator<Item = (&[u8], usize, u16)> {
        self.nodes.iter().flat_map(move |n| {
            let first = n.first_rrset as usize;
            (first..first + n.rrset_count as usize).map(move |i| (self.name(n), i, self.rrsets[i].rtype))
        })
    }

    /// The records of the RRset at position `i`, each with its offset in the data.
    pub fn records_of(&self, i: usize) -> impl Iterator<Item = (usize, &[u8])> + Clone {
        let r = self.rrsets.get(i).copied().unwrap_or(RRsetRec { off: 0, len: 0, rtype: 0, count: 0 });
        let data = &self.data[r.off as usize..(r.off + r.len) as usize];
        RRsetView::new(r.rtype, r.count, data).records().scan(r.off as usize, |off, rec| {
            let at = *off;
            *off += rec.len();
            Some((at, rec))
        })
    }

    /// How many RRsets the base holds.
    pub fn rrset_total(&self) -> usize {
        self.rrsets.len()
    }

    /// Bytes held, all included (buffers at capacity, the table's slots).
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.nodes.capacity() * std::mem::size_of::<NodeRec>()
            + self.rrsets.capacity() * std::mem::size_of::<RRsetRec>()
            + self.data.capacity()
    }
}

/// A name of a zone, borrowed from the zone: from its base, or from the layer of
/// API changes over it.
#[derive(Clone, Copy)]
pub struct NodeView<'z>(Inner<'z>);

#[derive(Clone, Copy)]
enum Inner<'z> {
    Base(&'z Base, &'z NodeRec),
    Layer(&'z LayerNode),
}

impl<'z> NodeView<'z> {
    fn flags(&self) -> u8 {
        match self.0 {
            Inner::Base(_, rec) => rec.flags,
            Inner::Layer(l) => l.flags,
        }
    }

    /// The zone apex (whose SOA lives in `Zone::soa`).
    pub fn apex(&self) -> bool {
        self.flags() & APEX != 0
    }

    /// NS records at a name below the apex: a zone cut.
    pub fn delegation(&self) -> bool {
        self.flags() & DELEGATION != 0
    }

    /// Index into `Snapshot::pools` when this name is a pool.
    pub fn pool(&self) -> Option<u32> {
        let pool = match self.0 {
            Inner::Base(_, rec) => rec.pool,
            Inner::Layer(l) => l.pool,
        };
        (pool != NO_POOL).then_some(pool)
    }

    /// The name, lower-cased wire form.
    pub fn name(&self) -> &'z [u8] {
        match self.0 {
            Inner::Base(base, rec) => base.name(rec),
            Inner::Layer(l) => &l.name,
        }
    }

    /// The RRsets, ordered by type.
    pub fn rrsets(&self) -> RRsets<'z> {
        RRsets { node: *self, i: 0 }
    }

    pub fn rrset(&self, rtype: u16) -> Option<RRsetView<'z>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }

    /// The RRset of lowest type (what an ANY query gets, RFC 8482).
    pub fn first(&self) -> Option<RRsetView<'z>> {
        self.rrsets().next()
    }
}

/// The RRsets of a node, in type order.
pub struct RRsets<'z> {
    node: NodeView<'z>,
    i: usize,
}

impl<'z> Iterator for RRsets<'z> {
    type Item = RRsetView<'z>;

    fn next(&mut self) -> Option<RRsetView<'z>> {
        let i = self.i;
        self.i += 1;
        match self.node.0 {
            Inner::Base(base, rec) if i < rec.rrset_count as usize => {
                let r = base.rrsets.get(rec.first_rrset as usize + i)?;
                Some(RRsetView {
                    rtype: r.rtype,
                    count: r.count,
                    data: base.data.get(r.off as usize..(r.off + r.len) as usize)?,
                })
            }
            Inner::Base(..) => None,
            Inner::Layer(l) => l.rrsets.get(i).map(|r| RRsetView { rtype: r.rtype, count: r.count, data: &r.data }),
        }
    }
}

/// A node as API changes left it: the whole node (its RRsets in type order),
/// so that a lookup that finds it reads nothing from the base. (Comparable, so
/// that the nodes two layers differ in are found without visiting what they share.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNode {
    name: Box<[u8]>,
    flags: u8,
    pool: u32,
    children: u32,
    rrsets: Vec<LayerRRset>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LayerRRset {
    rtype: u16,
    count: u16,
    data: Box<[u8]>,
}

impl LayerNode {
    /// A name exists while it has RRsets, is a pool or the apex, or has
    /// children (an empty non-terminal).
    fn exists(&self) -> bool {
        !self.rrsets.is_empty() || self.pool != NO_POOL || self.children > 0 || self.flags & APEX != 0
    }

    /// A copy of what the zone has at `name` now (nothing if it does not exist).
    fn of(name: &[u8], now: Option<NodeView<'_>>, children: u32) -> LayerNode {
        let mut l = LayerNode { name: name.into(), flags: 0, pool: NO_POOL, children, rrsets: Vec::new() };
        if let Some(n) = now {
            l.flags = n.flags();
            l.pool = n.pool().unwrap_or(NO_POOL);
            l.rrsets = n.rrsets().map(|r| LayerRRset { rtype: r.rtype, count: r.count, data: r.data.into() }).collect();
        }
        l
    }
}

/// API changes over a base: whole nodes by name, persistent (a change copies
/// O(log n) of it and shares the rest with the zone before).
pub type Layer = imbl::OrdMap<Box<[u8]>, Arc<LayerNode>>;

/// The node at `name` in `layer` over `base`, if it exists. The layer is looked
/// at only when it holds something: a zone without API changes since it was
/// built costs one probe.
fn lookup<'z>(base: &'z Base, layer: &'z Layer, name: &[u8]) -> Option<NodeView<'z>> {
    if !layer.is_empty() {
        if let Some(l) = layer.get(name) {
            return l.exists().then_some(NodeView(Inner::Layer(l)));
        }
    }
    base.find(name).map(|rec| NodeView(Inner::Base(base, rec)))
}

/// Every node of `layer` over `base` that exists, in no particular order.
pub fn nodes_in<'z>(base: &'z Base, layer: &'z Layer) -> impl Iterator<Item = NodeView<'z>> {
    let shadowed = move |n: &NodeView<'_>| !layer.is_empty() && layer.contains_key(n.name());
    let laid = layer.values().filter(|l| l.exists()).map(|l| NodeView(Inner::Layer(l)));
    base.nodes().filter(move |n| !shadowed(n)).chain(laid)
}

/// How many RRsets `layer` over `base` holds: the base's, corrected at the
/// nodes of the layer (O(layer)).
pub fn rrset_count(base: &Base, layer: &Layer) -> usize {
    let mut count = base.rrsets.len();
    for (name, l) in layer.iter() {
        count -= base.find(name).map_or(0, |r| r.rrset_count as usize);
        count += l.rrsets.len();
    }
    count
}

/// The child count a node at `name` has in `layer` over `base` (0 if none).
fn children(base: &Base, layer: &Layer, name: &[u8]) -> u32 {
    match layer.get(name) {
        Some(l) => l.children,
        None => base.find(name).map_or(0, |r| r.children),
    }
}

/// `layer` with the RRset `rtype` at `name` replaced by `set` (or removed), and
/// the child counts of its ancestors up to `origin` following the name's
/// existence.
pub fn with_rrset(
    base: &Base,
    layer: &Layer,
    origin: &[u8],
    name: &[u8],
    rtype: u16,
    set: Option<EncodedRRset>,
) -> Layer {
    with_node(base, layer, origin, name, |node| {
        node.rrsets.retain(|r| r.rtype != rtype);
        if let Some(s) = set.filter(|s| s.count > 0) {
            let at = node.rrsets.partition_point(|r| r.rtype < rtype);
            node.rrsets.insert(at, LayerRRset { rtype, count: s.count, data: s.data });
        }
        let cut = node.flags & APEX == 0 && node.rrsets.iter().any(|r| r.rtype == 2);
        node.flags = (node.flags & !DELEGATION) | if cut { DELEGATION } else { 0 };
    })
}

/// `layer` with `name` answering from pool `pool` (or from no pool), the child
/// counts of its ancestors following the name's existence. (A zone's pools are
/// marked in its base when its file is loaded; the pools the base does not know
/// at their positions, API pools and pools that moved, live in the layer.)
pub fn with_pool(base: &Base, layer: &Layer, origin: &[u8], name: &[u8], pool: Option<u32>) -> Layer {
    with_node(base, layer, origin, name, |node| node.pool = pool.unwrap_or(NO_POOL))
}

/// `layer` with the node at `name` changed by `edit`, and the child counts of
/// its ancestors up to `origin` following the name's existence.
fn with_node(base: &Base, layer: &Layer, origin: &[u8], name: &[u8], edit: impl FnOnce(&mut LayerNode)) -> Layer {
    let mut next = layer.clone();
    let mut node = LayerNode::of(name, lookup(base, layer, name), children(base, layer, name));
    let existed = node.exists();
    edit(&mut node);
    let exists = node.exists();
    next.insert(name.into(), Arc::new(node));
    let mut child = name;
    while existed != exists && child.len() > origin.len() {
        let parent = &child[1 + child[0] as usize..];
        let mut p = LayerNode::of(parent, lookup(base, &next, parent), children(base, &next, parent));
        let before = p.exists();
        p.children = if exists { p.children + 1 } else { p.children.saturating_sub(1) };
        let after = p.exists();
        next.insert(parent.into(), Arc::new(p));
        if before == after {
            break;
        }
        child = parent;
    }
    next
}

/// An RRset's records encoded back to back, one TTL, no duplicates.
#[derive(Debug, Clone)]
pub struct EncodedRRset {
    pub count: u16,
    pub data: Box<[u8]>,
}

impl EncodedRRset {
    /// `records` (each TYPE to the end of RDATA, one type) as one RRset: the
    /// lowest TTL for all (RFC 2181 5.2), identical records once (RFC 2181 5).
    pub fn new<'r>(records: impl IntoIterator<Item = &'r [u8]> + Clone) -> EncodedRRset {
        let ttl = records
            .clone()
            .into_iter()
            .filter_map(|r| r.get(4..8))
            .map(|t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
            .min()
            .unwrap_or(0);
        let mut data = Vec::new();
        let count = push_rrset(&mut data, records, ttl);
        EncodedRRset { count, data: data.into() }
    }
}

/// Appends `records` to `data` with TTL `ttl`, each distinct record once;
/// returns how many were appended.
fn push_rrset<'r>(data: &mut Vec<u8>, records: impl IntoIterator<Item = &'r [u8]>, ttl: u32) -> u16 {
    let off = data.len();
    let mut count = 0u16;
    for rec in records {
        if rec.len() < 10 || RRsetView::new(0, count, &data[off..]).records().any(|r| r[8..] == rec[8..]) {
            continue;
        }
        data.extend_from_slice(&rec[..4]);
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&rec[8..]);
        count = count.saturating_add(1);
    }
    count
}

/// One RRset: its records encoded from TYPE to the end of RDATA, back to back.
#[derive(Debug, Clone, Copy)]
pub struct RRsetView<'z> {
    pub rtype: u16,
    count: u16,
    data: &'z [u8],
}

impl<'z> RRsetView<'z> {
    /// A view of `count` records encoded back to back in `data`.
    pub fn new(rtype: u16, count: u16, data: &'z [u8]) -> RRsetView<'z> {
        RRsetView { rtype, count, data }
    }

    /// How many records.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// All records' bytes.
    pub fn bytes(&self) -> &'z [u8] {
        self.data
    }

    /// Each record, TYPE to the end of RDATA, its length read from its RDLENGTH.
    pub fn records(&self) -> Records<'z> {
        Records { rest: self.data }
    }
}

/// The records of an RRset, walked by their RDLENGTH.
#[derive(Clone)]
pub struct Records<'z> {
    rest: &'z [u8],
}

impl<'z> Iterator for Records<'z> {
    type Item = &'z [u8];

    fn next(&mut self) -> Option<&'z [u8]> {
        let rdlen = u16::from_be_bytes([*self.rest.get(8)?, *self.rest.get(9)?]) as usize;
        let len = (10 + rdlen).min(self.rest.len());
        let (rec, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(rec)
    }
}

fn name_of<'a>(names: &'a [u8], n: &NodeRec) -> &'a [u8] {
    &names[n.name_off as usize..n.name_off as usize + n.name_len as usize]
}

impl Base {
    fn names_of(&self, id: u32) -> &[u8] {
        name_of(&self.names, &self.nodes[id as usize])
    }
}

/// What is signed ahead in a signed zone: every RRset of the base the zone is
/// authoritative for (not a delegation's NS, nothing below a zone cut), but a
/// wildcard's, which is signed as the name asked for, while answering.
impl crate::dnssec::RRsetSource for Base {
    fn each_rrset(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        let cuts = self.nodes.iter().any(|n| n.flags & DELEGATION != 0);
        for rec in &self.nodes {
            let name = self.name(rec);
            if name.starts_with(b"\x01*") || (cuts && self.below_cut(name)) {
                continue;
            }
            for rs in NodeView(Inner::Base(self, rec)).rrsets() {
                if !(rec.flags & DELEGATION != 0 && rs.rtype == u16::from(hickory_proto::rr::RecordType::NS)) {
                    f(name, rs.data);
                }
            }
        }
    }

    fn rrset_count(&self) -> usize {
        self.rrsets.len()
    }
}

impl Base {
    /// Whether a proper ancestor of `name` (lower-cased wire) is a zone cut.
    fn below_cut(&self, name: &[u8]) -> bool {
        let mut at = 0usize;
        while let Some(&len) = name.get(at).filter(|&&l| l != 0) {
            at += 1 + len as usize;
            if self.find(name.get(at..).unwrap_or_default()).is_some_and(|n| n.flags & DELEGATION != 0) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::RRsetSource;

    /// What is signed ahead: the apex's and names' RRsets and a delegation's
    /// DS, not the delegation's NS nor the glue below it, nor a wildcard.
    #[test]
    fn rrsets_signed_ahead_leave_out_the_childs() {
        let rec = |rtype: u16, rdata: &[u8]| {
            [&rtype.to_be_bytes()[..], &[0, 1, 0, 0, 0, 60], &(rdata.len() as u16).to_be_bytes(), rdata].concat()
        };
        let mut b = BaseBuilder::default();
        let ns = b"\x02ns\x03sub\x01t\x00";
        b.add(b"\x01t\x00", &rec(2, b"\x02ns\x01t\x00")).unwrap();
        b.add(b"\x03www\x01t\x00", &rec(1, &[192, 0, 2, 1])).unwrap();
        b.add(b"\x03sub\x01t\x00", &rec(2, ns)).unwrap();
        b.add(b"\x03sub\x01t\x00", &rec(43, &[0, 1, 13, 2, 0xab])).unwrap();
        b.add(ns, &rec(1, &[192, 0, 2, 2])).unwrap();
        b.add(b"\x01*\x01t\x00", &rec(1, &[192, 0, 2, 3])).unwrap();
        let base = b.finish(b"\x01t\x00").unwrap();
        let mut seen = Vec::new();
        base.each_rrset(&mut |owner, records| {
            seen.push((owner.to_vec(), u16::from_be_bytes([records[0], records[1]])))
        });
        seen.sort();
        let want = [(b"\x01t\x00".to_vec(), 2), (b"\x03sub\x01t\x00".to_vec(), 43), (b"\x03www\x01t\x00".to_vec(), 1)];
        assert_eq!(seen, want);
        assert_eq!(base.rrset_count(), 6);
    }
}
