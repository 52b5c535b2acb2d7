//! Pools found by name without a scan: a hash table of positions into a list
//! the caller holds (the pools in effect, or the config's), so that a member
//! write at 100,000 pools looks at its own pool. It holds 4 bytes (plus the
//! table's control byte) per pool, not a second copy of each name: the names
//! are compared in the list itself. The list must not change under it; it is
//! made anew with each new list.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::Name;

use crate::config::PoolDef;

/// Positions of pools in a list, by name (case-insensitively, as names compare).
#[derive(Debug, Clone, Default)]
pub struct PoolIndex(HashTable<u32>);

fn hash(name: &Name) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(name)
}

impl PoolIndex {
    /// The index of `names`, in list order.
    pub fn of<'a>(names: impl ExactSizeIterator<Item = &'a Name> + Clone) -> PoolIndex {
        let mut table = HashTable::with_capacity(names.len());
        let all: Vec<&Name> = names.collect();
        for (i, name) in all.iter().enumerate() {
            table.insert_unique(hash(name), i as u32, |&j| hash(all[j as usize]));
        }
        PoolIndex(table)
    }

    /// The position of `name`, whose list gives the name at each position.
    pub fn find<'n>(&self, name: &Name, name_at: impl Fn(usize) -> Option<&'n Name>) -> Option<usize> {
        let at = self.0.find(hash(name), |&i| name_at(i as usize) == Some(name))?;
        Some(*at as usize)
    }

    /// The position of `name` in the config's pools (as this index was made of).
    pub fn in_config(&self, pools: &[Arc<PoolDef>], name: &Name) -> Option<usize> {
        self.find(name, |i| pools.get(i).map(|p| &p.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_name_case_insensitively_and_no_other() {
        let names: Vec<Name> = (0..1000).map(|i| Name::from_ascii(format!("p{i}.e.test.")).unwrap()).collect();
        let index = PoolIndex::of(names.iter());
        let at = |i: usize| names.get(i);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(index.find(n, at), Some(i));
        }
        assert_eq!(index.find(&Name::from_ascii("P17.E.TEST.").unwrap(), at), Some(17));
        assert_eq!(index.find(&Name::from_ascii("p1000.e.test.").unwrap(), at), None);
    }
}
