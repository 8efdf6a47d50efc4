//! The cleaner's offset map: key → newest offset of that key in the dirty
//! section, in a fixed, bounded amount of memory.
//!
//! Open addressing (linear probing) over one flat array of 20-byte slots:
//! 96 bits of a keyed SipHash of the key and the offset. Kafka's
//! `SkimpyOffsetMap` stores a 16-byte MD5 and an 8-byte offset (24 bytes a
//! slot); 96 bits keep the chance that two of five million keys collide
//! below 1e-15 per pass, and the hash is keyed afresh for every map, so a
//! collision (which would drop the older key's newest record) cannot repeat
//! on the next pass. At the 0.9 load factor Kafka uses, a key costs
//! 20 / 0.9 ≈ 22.2 bytes (goal: at most 24).

use std::hash::{BuildHasher, Hasher, RandomState};

/// Bytes of one slot.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// Largest fraction of the slots the map fills (Kafka's
/// `log.cleaner.io.buffer.load.factor` default).
const LOAD_FACTOR: f64 = 0.9;

/// One slot: three words of hash, the offset plus one in two words (0 means
/// empty), so the slot is 20 bytes with 4-byte alignment.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: [u32; 3],
    offset_lo: u32,
    offset_hi: u32,
}

impl Slot {
    fn stored(&self) -> u64 {
        u64::from(self.offset_lo) | (u64::from(self.offset_hi) << 32)
    }

    fn is_empty(&self) -> bool {
        self.stored() == 0
    }

    fn offset(&self) -> i64 {
        self.stored() as i64 - 1
    }

    fn set_offset(&mut self, offset: i64) {
        let stored = (offset as u64).wrapping_add(1);
        self.offset_lo = stored as u32;
        self.offset_hi = (stored >> 32) as u32;
    }
}

/// Key hash → newest offset, bounded by the byte budget given at creation.
#[derive(Debug)]
pub struct OffsetMap {
    slots: Vec<Slot>,
    /// Keys stored.
    len: usize,
    /// Most keys the map takes (`LOAD_FACTOR` of the slots).
    max_len: usize,
    hashers: (RandomState, RandomState),
    /// Largest offset put since the last clear, -1 if none.
    latest_offset: i64,
}

impl OffsetMap {
    /// A map using at most `memory_bytes` for its slots (at least one slot).
    pub fn with_memory(memory_bytes: usize) -> Self {
        let slots = (memory_bytes / SLOT_BYTES).max(2);
        OffsetMap {
            slots: vec![Slot::default(); slots],
            len: 0,
            max_len: ((slots as f64 * LOAD_FACTOR) as usize).clamp(1, slots - 1),
            hashers: (RandomState::new(), RandomState::new()),
            latest_offset: -1,
        }
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most distinct keys the map can hold.
    pub fn capacity(&self) -> usize {
        self.max_len
    }

    /// Heap bytes of the slot array.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// Whether the map is full: the next new key would not be stored.
    pub fn is_full(&self) -> bool {
        self.len >= self.max_len
    }

    /// Largest offset put since the last [`clear`](Self::clear), -1 if none.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Forget every key and pick new hash keys.
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.len = 0;
        self.latest_offset = -1;
        self.hashers = (RandomState::new(), RandomState::new());
    }

    fn hash(&self, key: &[u8]) -> [u32; 3] {
        let mut a = self.hashers.0.build_hasher();
        a.write(key);
        let a = a.finish();
        let mut b = self.hashers.1.build_hasher();
        b.write(key);
        let b = b.finish();
        [a as u32, (a >> 32) as u32, b as u32]
    }

    /// The slot holding `hash`, or the empty slot where it would go.
    fn find(&self, hash: [u32; 3]) -> usize {
        let n = self.slots.len();
        let mut i = (((u64::from(hash[1]) << 32) | u64::from(hash[0])) % n as u64) as usize;
        loop {
            let slot = &self.slots[i];
            if slot.is_empty() || slot.hash == hash {
                return i;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Record that `key` was seen at `offset`, keeping the larger offset.
    /// Returns `false` (and stores nothing) when `key` is new and the map is
    /// full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = self.hash(key);
        let i = self.find(hash);
        let slot = &mut self.slots[i];
        if slot.is_empty() {
            if self.len >= self.max_len {
                return false;
            }
            slot.hash = hash;
            slot.set_offset(offset);
            self.len += 1;
        } else if offset > slot.offset() {
            slot.set_offset(offset);
        }
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    /// The newest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let slot = &self.slots[self.find(self.hash(key))];
        (!slot.is_empty()).then(|| slot.offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_twenty_bytes() {
        assert_eq!(SLOT_BYTES, 20);
        let map = OffsetMap::with_memory(1 << 20);
        let per_key = map.memory_bytes() as f64 / map.capacity() as f64;
        assert!(per_key <= 24.0, "{per_key} bytes per key");
    }

    #[test]
    fn put_keeps_the_newest_offset_per_key() {
        // (key, offset put, expected newest after the put)
        let cases: &[(&[u8], i64, i64)] = &[
            (b"a", 0, 0),
            (b"b", 1, 1),
            (b"a", 2, 2),
            (b"a", 1, 2), // an older offset never replaces a newer one
            (b"", 3, 3),  // the empty key is a key
            (b"b", 4, 4),
        ];
        let mut map = OffsetMap::with_memory(1024);
        for &(key, offset, newest) in cases {
            assert!(map.put(key, offset));
            assert_eq!(map.get(key), Some(newest), "key {key:?}");
        }
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.latest_offset(), 4);
    }

    #[test]
    fn a_full_map_refuses_new_keys_but_updates_known_ones() {
        let mut map = OffsetMap::with_memory(10 * SLOT_BYTES);
        assert_eq!(map.capacity(), 9);
        for i in 0..9u8 {
            assert!(map.put(&[i], i64::from(i)));
        }
        assert!(map.is_full());
        assert!(!map.put(b"new", 100), "a new key does not fit");
        assert_eq!(map.get(b"new"), None);
        assert!(map.put(&[3], 200), "a known key is updated");
        assert_eq!(map.get(&[3]), Some(200));
        for i in 0..9u8 {
            assert!(map.get(&[i]).is_some(), "key {i} kept");
        }
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.get(&[3]), None);
        assert_eq!(map.latest_offset(), -1);
    }

    #[test]
    fn large_offsets_round_trip() {
        let mut map = OffsetMap::with_memory(1024);
        for offset in [0, 1, u32::MAX as i64, u32::MAX as i64 + 1, i64::MAX - 1] {
            map.put(b"k", offset);
            assert_eq!(map.get(b"k"), Some(offset));
        }
    }

    #[test]
    fn many_keys_fill_to_the_load_factor() {
        let mut map = OffsetMap::with_memory(100_000 * SLOT_BYTES);
        let keys = map.capacity();
        for i in 0..keys {
            assert!(map.put(format!("key-{i}").as_bytes(), i as i64));
        }
        for i in (0..keys).step_by(97) {
            assert_eq!(map.get(format!("key-{i}").as_bytes()), Some(i as i64));
        }
        assert_eq!(map.len(), keys);
    }
}
