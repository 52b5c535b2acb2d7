//! Building a [`Base`] from records added in any order (the zone loader's
//! sink, the snapshot's zone builds): nodes made as names come, records kept
//! aside until `finish` sorts them into RRsets.

use super::*;

/// A base too large for its 32-bit offsets.
#[derive(Debug, thiserror::Error)]
#[error("zone too large: more than 4 GiB of records or names")]
pub struct TooLarge;

/// Builds a [`Base`] from records added in any order.
#[derive(Default)]
pub struct BaseBuilder {
    base: Base,
    /// Records as added: node, type, order, and where their bytes are in `scratch`.
    pending: Vec<Pending>,
    scratch: Vec<u8>,
}

struct Pending {
    node: u32,
    rtype: u16,
    off: u32,
    len: u32,
    ttl: u32,
    /// The caller's mark of the record (e.g. where it was written).
    tag: u64,
}

impl BaseBuilder {
    /// The node at `name` (lower-cased wire), made if it is not there yet.
    pub fn node_id(&mut self, name: &[u8]) -> Result<u32, TooLarge> {
        let h = hash(name);
        let b = &mut self.base;
        if let Some(&id) = b.index.find(h, |&id| b.names_of(id) == name) {
            return Ok(id);
        }
        let id = u32::try_from(b.nodes.len()).map_err(|_| TooLarge)?;
        let name_off = u32::try_from(b.names.len()).map_err(|_| TooLarge)?;
        b.names.extend_from_slice(name);
        b.nodes.push(NodeRec {
            name_off,
            first_rrset: 0,
            pool: NO_POOL,
            children: 0,
            rrset_count: 0,
            name_len: name.len() as u8,
            flags: 0,
        });
        let (names, nodes) = (&b.names, &b.nodes);
        b.index.insert_unique(h, id, |&id| hash(name_of(names, &nodes[id as usize])));
        Ok(id)
    }

    /// Makes room for `more` records like those added so far (each at a new
    /// name, its name and record as long as theirs on average), so the node
    /// table is not rehashed at each doubling.
    pub fn reserve(&mut self, more: usize) {
        let added = self.pending.len().max(1);
        let b = &mut self.base;
        let (names, nodes) = (&b.names, &b.nodes);
        b.index.reserve(more, |&id| hash(name_of(names, &nodes[id as usize])));
        b.nodes.reserve(more);
        b.names.reserve((b.names.len() / added).saturating_mul(more));
        self.pending.reserve(more);
        self.scratch.reserve((self.scratch.len() / added).saturating_mul(more));
    }

    /// The name of node `id` (lower-cased wire).
    pub fn name_of_id(&self, id: u32) -> &[u8] {
        self.base.names_of(id)
    }

    /// Adds one record at `name` (lower-cased wire): `record` is TYPE, CLASS, TTL,
    /// RDLENGTH and RDATA. Its TTL is replaced by the lowest of its RRset's.
    pub fn add(&mut self, name: &[u8], record: &[u8]) -> Result<(), TooLarge> {
        self.add_tagged(name, record, 0).map(|_| ())
    }

    /// [`BaseBuilder::add`] with `tag`, the mark [`BaseBuilder::finish_tagged`]
    /// gives the RRset whose first record this is. Returns the node's id.
    pub fn add_tagged(&mut self, name: &[u8], record: &[u8], tag: u64) -> Result<u32, TooLarge> {
        let node = self.node_id(name)?;
        let rtype = u16::from_be_bytes([record[0], record[1]]);
        let ttl = u32::from_be_bytes([record[4], record[5], record[6], record[7]]);
        let off = u32::try_from(self.scratch.len()).map_err(|_| TooLarge)?;
        self.scratch.extend_from_slice(record);
        self.pending.push(Pending { node, rtype, off, len: record.len() as u32, ttl, tag });
        Ok(node)
    }

    /// Makes `name` a node that answers from pool `index`.
    pub fn pool(&mut self, name: &[u8], index: u32) -> Result<(), TooLarge> {
        let id = self.node_id(name)?;
        self.base.nodes[id as usize].pool = index;
        Ok(())
    }

    /// The finished base for the zone `origin` (lower-cased wire): RRsets grouped,
    /// duplicates dropped, empty non-terminals made, the apex and cuts marked.
    pub fn finish(self, origin: &[u8]) -> Result<Base, TooLarge> {
        self.finish_tagged(origin).map(|(base, _)| base)
    }

    /// [`BaseBuilder::finish`], with the tag of each RRset's first record, by the
    /// RRset's position ([`Base::rrset_index`]).
    pub fn finish_tagged(mut self, origin: &[u8]) -> Result<(Base, Vec<u64>), TooLarge> {
        let apex = self.node_id(origin)?;
        self.base.nodes[apex as usize].flags |= APEX;
        self.ancestors(origin)?;
        // Stable: records keep the order they were added in within their RRset.
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|p| (p.node, p.rtype));
        let scratch = std::mem::take(&mut self.scratch);
        let b = &mut self.base;
        b.data.reserve_exact(scratch.len());
        let mut tags = Vec::new();
        for group in pending.chunk_by(|x, y| (x.node, x.rtype) == (y.node, y.rtype)) {
            let (node, rtype) = (group[0].node, group[0].rtype);
            // RFC 2181 5.2: one TTL per RRset; use the lowest.
            let ttl = group.iter().map(|p| p.ttl).min().unwrap_or(0);
            let off = b.data.len();
            let records = group.iter().map(|p| &scratch[p.off as usize..p.off as usize + p.len as usize]);
            let count = push_rrset(&mut b.data, records, ttl);
            let len = b.data.len() - off;
            let (off, len) = (u32::try_from(off).map_err(|_| TooLarge)?, u32::try_from(len).map_err(|_| TooLarge)?);
            let rrset_id = u32::try_from(b.rrsets.len()).map_err(|_| TooLarge)?;
            b.rrsets.push(RRsetRec { off, len, rtype, count });
            tags.push(group[0].tag);
            let n = &mut b.nodes[node as usize];
            if n.rrset_count == 0 {
                n.first_rrset = rrset_id;
            }
            n.rrset_count += 1;
            if rtype == 2 && node != apex {
                n.flags |= DELEGATION;
            }
        }
        b.data.shrink_to_fit();
        b.rrsets.shrink_to_fit();
        b.nodes.shrink_to_fit();
        b.names.shrink_to_fit();
        tags.shrink_to_fit();
        Ok((self.base, tags))
    }

    /// Makes every ancestor of every node (up to the apex) a node, and counts
    /// each node's children. A node's ancestors are suffixes of its name, so an
    /// empty non-terminal's name is read from inside its child's.
    fn ancestors(&mut self, origin: &[u8]) -> Result<(), TooLarge> {
        let mut i = 0usize;
        while i < self.base.nodes.len() {
            let rec = self.base.nodes[i];
            i += 1;
            let name_len = rec.name_len as usize;
            if name_len <= origin.len() {
                continue;
            }
            let first = self.base.names[rec.name_off as usize] as usize + 1;
            let parent_off = rec.name_off + first as u32;
            let parent_len = (name_len - first) as u8;
            let pid = self.parent_id(parent_off, parent_len)?;
            self.base.nodes[pid as usize].children += 1;
        }
        Ok(())
    }

    /// The node whose name is at `off`/`len` in `names`, made (sharing those
    /// bytes) if it is not there yet.
    fn parent_id(&mut self, off: u32, len: u8) -> Result<u32, TooLarge> {
        let b = &mut self.base;
        let name = &b.names[off as usize..off as usize + len as usize];
        let h = hash(name);
        if let Some(&id) = b.index.find(h, |&id| name_of(&b.names, &b.nodes[id as usize]) == name) {
            return Ok(id);
        }
        let id = u32::try_from(b.nodes.len()).map_err(|_| TooLarge)?;
        b.nodes.push(NodeRec {
            name_off: off,
            first_rrset: 0,
            pool: NO_POOL,
            children: 0,
            rrset_count: 0,
            name_len: len,
            flags: 0,
        });
        let (names, nodes) = (&b.names, &b.nodes);
        b.index.insert_unique(h, id, |&id| hash(name_of(names, &nodes[id as usize])));
        Ok(id)
    }
}
