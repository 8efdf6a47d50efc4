//! Sparse offset index: relative offset → byte position, one entry per
//! `index.interval.bytes` of log. On disk (`.index`) each entry is 8 bytes:
//! relative offset `u32` BE, position `u32` BE, as in Kafka.
//!
//! The index is a hint: lookups verify that the batch at the returned
//! position starts at the indexed offset, and a mismatch rebuilds the index.

/// Size of one on-disk entry.
pub(crate) const ENTRY_LEN: usize = 8;

/// Offset index entries, sorted and strictly increasing in both fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// Add an entry; the caller guarantees both fields increase.
    pub(crate) fn push(&mut self, relative_offset: u32, position: u32) {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|&(o, p)| o < relative_offset && p < position)
        );
        self.entries.push((relative_offset, position));
    }

    /// The entry with the largest relative offset ≤ `relative_offset`.
    pub(crate) fn lookup(&self, relative_offset: u32) -> Option<(u32, u32)> {
        let idx = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drop entries at or after byte `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.truncate(keep);
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for &(offset, position) in &self.entries {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
        }
        out
    }

    /// Decode an index file, or `None` if it fails the sanity check (bad
    /// length, non-increasing entries, a position at or past `log_size`).
    pub(crate) fn decode(bytes: &[u8], log_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return None;
        }
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let offset = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if u64::from(position) >= log_size {
                return None;
            }
            if let Some(&(o, p)) = entries.last()
                && (offset <= o || position <= p)
            {
                return None;
            }
            entries.push((offset, position));
        }
        Some(OffsetIndex { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(u32, u32)]) -> OffsetIndex {
        let mut index = OffsetIndex::default();
        for &(o, p) in entries {
            index.push(o, p);
        }
        index
    }

    #[test]
    fn lookup_finds_the_floor_entry() {
        let index = index(&[(10, 4096), (20, 8192), (35, 12288)]);
        let cases = [
            (0, None),
            (9, None),
            (10, Some((10, 4096))),
            (19, Some((10, 4096))),
            (20, Some((20, 8192))),
            (1000, Some((35, 12288))),
        ];
        for (target, expected) in cases {
            assert_eq!(index.lookup(target), expected, "target {target}");
        }
    }

    #[test]
    fn encode_decode_round_trips_and_sanity_check_rejects_garbage() {
        let original = index(&[(1, 100), (5, 5000)]);
        let bytes = original.encode();
        assert_eq!(bytes.len(), 16);
        assert_eq!(OffsetIndex::decode(&bytes, 6000), Some(original));
        assert_eq!(
            OffsetIndex::decode(&bytes, 5000),
            None,
            "position past log end"
        );
        assert_eq!(
            OffsetIndex::decode(&bytes[..15], 6000),
            None,
            "partial entry"
        );
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert_eq!(OffsetIndex::decode(&swapped, 6000), None, "decreasing");
        assert_eq!(OffsetIndex::decode(&[], 0), Some(OffsetIndex::default()));
    }

    #[test]
    fn truncation_drops_entries_at_or_after_the_position() {
        let mut index = index(&[(1, 100), (5, 5000), (9, 9000)]);
        index.truncate_to_position(5000);
        assert_eq!(index.last(), Some((1, 100)));
        index.truncate_to_position(0);
        assert_eq!(index.len(), 0);
    }
}
