//! The signature cache: a fixed table of slots shared by every query thread,
//! read and written without locks and without allocation. Each slot is a
//! sequence lock over atomic words: a reader copies the slot and keeps the copy
//! only if the sequence number did not move meanwhile (a torn read is a miss, never
//! a wrong signature); a writer that finds the slot being written by another
//! thread skips it (the signature is used, just not cached). Slots are chosen by
//! the key's hash, one entry per slot: a new signature replaces the one there, so
//! memory is bounded by the slot count whatever the number of distinct RRsets.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A cached signature: its validity window and the 64 signature bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub inception: u32,
    pub expiration: u32,
    pub signature: [u8; 64],
}

/// Key (2 words), window (1), signature (8).
const WORDS: usize = 11;

struct Slot {
    seq: AtomicU32,
    words: [AtomicU64; WORDS],
}

/// A bounded table of signatures by RRset key (a keyed 128-bit hash of what is
/// signed but the validity window).
pub struct SigCache {
    slots: Box<[Slot]>,
}

impl SigCache {
    /// A cache of `slots` entries (rounded up to a power of two; 0 = none).
    pub fn new(slots: usize) -> SigCache {
        let n = if slots == 0 { 0 } else { slots.next_power_of_two() };
        let slots = (0..n).map(|_| Slot { seq: AtomicU32::new(0), words: Default::default() }).collect();
        SigCache { slots }
    }

    /// Bytes held by the table.
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    fn slot(&self, key: u128) -> Option<&Slot> {
        let mask = self.slots.len().checked_sub(1)?;
        self.slots.get(key as usize & mask)
    }

    /// The entry cached under `key`, if any (and not being rewritten).
    pub fn get(&self, key: u128) -> Option<Entry> {
        let s = self.slot(key)?;
        let v1 = s.seq.load(Ordering::Acquire);
        if v1 & 1 == 1 {
            return None;
        }
        let mut w = [0u64; WORDS];
        for (d, a) in w.iter_mut().zip(&s.words) {
            *d = a.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != v1 || (w[0], w[1]) != (key as u64, (key >> 64) as u64) {
            return None;
        }
        let mut signature = [0u8; 64];
        for (chunk, word) in signature.chunks_exact_mut(8).zip(&w[3..]) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Some(Entry { inception: w[2] as u32, expiration: (w[2] >> 32) as u32, signature })
    }

    /// Caches `entry` under `key`, unless another thread is writing that slot.
    pub fn put(&self, key: u128, entry: &Entry) {
        let Some(s) = self.slot(key) else { return };
        let v = s.seq.load(Ordering::Relaxed);
        if v & 1 == 1 || s.seq.compare_exchange(v, v.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        fence(Ordering::Release);
        s.words[0].store(key as u64, Ordering::Relaxed);
        s.words[1].store((key >> 64) as u64, Ordering::Relaxed);
        s.words[2].store(entry.inception as u64 | (entry.expiration as u64) << 32, Ordering::Relaxed);
        for (a, chunk) in s.words[3..].iter().zip(entry.signature.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            a.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        s.seq.store(v.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_get_and_replace() {
        let c = SigCache::new(4);
        let e = Entry { inception: 1, expiration: 2, signature: [7; 64] };
        assert_eq!(c.get(5), None);
        c.put(5, &e);
        assert_eq!(c.get(5), Some(e));
        // Same slot (5 & 3 == 9 & 3), other key: replaces.
        c.put(9, &Entry { signature: [8; 64], ..e });
        assert_eq!(c.get(5), None);
        assert_eq!(c.get(9).map(|e| e.signature), Some([8; 64]));
        assert_eq!(SigCache::new(0).get(5), None);
    }

    /// Readers racing a writer see a whole entry or none, never a mix.
    #[test]
    fn concurrent_readers_never_see_a_torn_entry() {
        let c = std::sync::Arc::new(SigCache::new(1));
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let b = (i % 251) as u8;
                    c.put(1, &Entry { inception: i, expiration: i, signature: [b; 64] });
                }
            })
        };
        for _ in 0..20_000 {
            if let Some(e) = c.get(1) {
                assert_eq!(e.inception, e.expiration);
                assert!(e.signature.iter().all(|&x| x == (e.inception % 251) as u8));
            }
        }
        writer.join().unwrap();
    }
}
