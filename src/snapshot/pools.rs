//! The snapshot's pools: a vector the query path indexes by `u32`, held as
//! fixed-size chunks of `Arc<Pool>` so that the next snapshot after a change to
//! a few pools copies the short list of chunks and the chunks holding those pools,
//! not one `Arc` per pool (100,000 pools are 391 chunks of 256). Indexing is two
//! dependent loads, with no lock and no allocation; an old snapshot dropped by a
//! query thread releases only what it does not share with the next.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Pool;

/// log2 of the pools per chunk: a flip copies at most this many `Arc`s per
/// changed chunk, and the chunk list is `len / 256` long.
const CHUNK_BITS: usize = 8;
const CHUNK: usize = 1 << CHUNK_BITS;

/// One chunk of pools.
type Chunk = Arc<[Arc<Pool>]>;

/// The pools in index order.
pub type Iter<'a> = std::iter::FlatMap<
    std::slice::Iter<'a, Chunk>,
    std::slice::Iter<'a, Arc<Pool>>,
    fn(&'a Chunk) -> std::slice::Iter<'a, Arc<Pool>>,
>;

/// Every pool of a snapshot, in index order; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    /// Full chunks of `CHUNK` pools, the last one possibly shorter.
    chunks: Vec<Chunk>,
    len: usize,
}

impl Pools {
    /// The pool at index `i` (what a zone node names).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Arc<Pool>> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `other` holds the very same pools (chunk for chunk): what a
    /// change that touched no pool publishes. O(chunks), no pool is looked at.
    pub fn same(&self, other: &Pools) -> bool {
        self.len == other.len && self.chunks.iter().zip(&other.chunks).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// The positions whose pool is not the very one `before` has there, when
    /// both hold as many pools (`None` otherwise): found chunk by chunk, so a
    /// change to one pool of 100,000 looks at the chunk list and one chunk.
    pub fn changed_since(&self, before: &Pools) -> Option<Vec<usize>> {
        if self.len != before.len {
            return None;
        }
        let mut changed = Vec::new();
        for (c, (now, was)) in self.chunks.iter().zip(&before.chunks).enumerate() {
            if Arc::ptr_eq(now, was) {
                continue;
            }
            let differs = now.iter().zip(was.iter()).enumerate().filter(|(_, (a, b))| !Arc::ptr_eq(a, b));
            changed.extend(differs.map(|(i, _)| (c << CHUNK_BITS) + i));
        }
        Some(changed)
    }

    pub fn iter(&self) -> Iter<'_> {
        let chunk: fn(&Chunk) -> std::slice::Iter<'_, Arc<Pool>> = |c| c.iter();
        self.chunks.iter().flat_map(chunk)
    }

    /// These pools with those at the given indices replaced (an index out of
    /// range is ignored): only the chunks that hold them are copied, every other
    /// chunk is shared with `self`.
    pub fn with_replaced(&self, changes: impl IntoIterator<Item = (u32, Arc<Pool>)>) -> Pools {
        let mut copied: BTreeMap<usize, Vec<Arc<Pool>>> = BTreeMap::new();
        for (i, pool) in changes {
            let (c, at) = (i as usize >> CHUNK_BITS, i as usize & (CHUNK - 1));
            let Some(chunk) = self.chunks.get(c) else { continue };
            let copy = copied.entry(c).or_insert_with(|| chunk.to_vec());
            if let Some(slot) = copy.get_mut(at) {
                *slot = pool;
            }
        }
        let mut chunks = self.chunks.clone();
        for (c, copy) in copied {
            chunks[c] = copy.into();
        }
        Pools { chunks, len: self.len }
    }
}

impl FromIterator<Arc<Pool>> for Pools {
    fn from_iter<I: IntoIterator<Item = Arc<Pool>>>(iter: I) -> Pools {
        let mut chunks = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut len = 0;
        for pool in iter {
            chunk.push(pool);
            len += 1;
            if chunk.len() == CHUNK {
                chunks.push(Arc::from(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))));
            }
        }
        if !chunk.is_empty() {
            chunks.push(Arc::from(chunk));
        }
        Pools { chunks, len }
    }
}

impl<'a> IntoIterator for &'a Pools {
    type Item = &'a Arc<Pool>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{AllUp, build_pool};

    fn pool(n: usize) -> Arc<Pool> {
        let text =
            format!("[[pool]]\nname = \"p{n}.example.\"\n[[pool.member]]\naddress = \"192.0.2.{}\"\n", n % 250 + 1);
        let config = crate::config::parse(std::path::Path::new("/lbdns.toml"), &text).unwrap();
        let def = Arc::new(config.pools[0].clone());
        Arc::new(build_pool(def, &AllUp, None, &Default::default()))
    }

    /// Indexing sees every pool in order across chunk boundaries; a replacement
    /// copies only its chunk and leaves the original as it was.
    #[test]
    fn indexes_and_replaces_by_chunk() {
        let all: Vec<Arc<Pool>> = (0..CHUNK * 2 + 3).map(pool).collect();
        let pools: Pools = all.iter().cloned().collect();
        assert_eq!(pools.len(), all.len());
        assert_eq!(pools.chunks.len(), 3);
        for (i, p) in all.iter().enumerate() {
            assert!(Arc::ptr_eq(pools.get(i).unwrap(), p), "pool {i}");
        }
        assert!(pools.get(all.len()).is_none());
        assert_eq!(pools.iter().count(), all.len());

        let fresh = pool(9999);
        let next = pools.with_replaced([(CHUNK as u32 + 5, fresh.clone()), (u32::MAX, fresh.clone())]);
        assert!(Arc::ptr_eq(next.get(CHUNK + 5).unwrap(), &fresh));
        assert!(Arc::ptr_eq(pools.get(CHUNK + 5).unwrap(), &all[CHUNK + 5]), "the old snapshot is untouched");
        assert!(Arc::ptr_eq(&next.chunks[0], &pools.chunks[0]), "unchanged chunks are shared");
        assert!(Arc::ptr_eq(&next.chunks[2], &pools.chunks[2]));
        assert!(!Arc::ptr_eq(&next.chunks[1], &pools.chunks[1]));
        assert_eq!(next.len(), pools.len());
    }

    /// What changed between two pool lists: the replaced positions only, and
    /// nothing to say when the lengths differ.
    #[test]
    fn changed_since_names_the_replaced_positions() {
        let pools: Pools = (0..CHUNK * 2 + 3).map(pool).collect();
        assert_eq!(pools.changed_since(&pools), Some(vec![]));
        let next = pools.with_replaced([(CHUNK as u32 + 5, pool(1)), (2, pool(2))]);
        assert_eq!(next.changed_since(&pools), Some(vec![2, CHUNK + 5]));
        let shorter: Pools = (0..CHUNK).map(pool).collect();
        assert_eq!(shorter.changed_since(&pools), None);
    }
}
