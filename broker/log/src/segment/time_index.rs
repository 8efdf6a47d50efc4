//! Sparse time index: max timestamp so far → relative offset of the record
//! holding it. An entry `(t, o)` means every record at or before offset `o`
//! has a timestamp ≤ `t`. On disk (`.timeindex`) each entry is 12 bytes:
//! timestamp `i64` BE, relative offset `u32` BE, as in Kafka.

/// Size of one on-disk entry.
pub(crate) const ENTRY_LEN: usize = 12;

/// Time index entries, strictly increasing timestamps, non-decreasing offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    /// Add an entry if `timestamp` is larger than the last one.
    pub(crate) fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) {
        if self
            .entries
            .last()
            .is_none_or(|&(t, o)| timestamp > t && relative_offset >= o)
        {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// The last entry whose timestamp is strictly below `timestamp`: every
    /// record at or before its offset is older than `timestamp`.
    pub(crate) fn lookup_below(&self, timestamp: i64) -> Option<(i64, u32)> {
        let idx = self.entries.partition_point(|&(t, _)| t < timestamp);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drop entries whose offset is ≥ `relative_end`.
    pub(crate) fn truncate_to_offset(&mut self, relative_end: u32) {
        let keep = self.entries.partition_point(|&(_, o)| o < relative_end);
        self.entries.truncate(keep);
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for &(timestamp, offset) in &self.entries {
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        out
    }

    /// Decode a time index file, or `None` if it fails the sanity check.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return None;
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let timestamp = i64::from_be_bytes(ts);
            let offset = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if let Some(&(t, o)) = entries.last()
                && (timestamp <= t || offset < o)
            {
                return None;
            }
            entries.push((timestamp, offset));
        }
        Some(TimeIndex { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_increasing_timestamps_are_indexed() {
        let mut index = TimeIndex::default();
        index.maybe_push(100, 0);
        index.maybe_push(90, 3);
        index.maybe_push(100, 4);
        index.maybe_push(150, 6);
        assert_eq!(index.len(), 2);
        assert_eq!(index.last(), Some((150, 6)));
    }

    #[test]
    fn lookup_below_returns_the_last_strictly_older_entry() {
        let mut index = TimeIndex::default();
        for (t, o) in [(100, 0), (200, 10), (300, 20)] {
            index.maybe_push(t, o);
        }
        let cases = [
            (50, None),
            (100, None),
            (101, Some((100, 0))),
            (300, Some((200, 10))),
            (301, Some((300, 20))),
        ];
        for (ts, expected) in cases {
            assert_eq!(index.lookup_below(ts), expected, "ts {ts}");
        }
    }

    #[test]
    fn encode_decode_and_truncate() {
        let mut index = TimeIndex::default();
        index.maybe_push(5, 1);
        index.maybe_push(9, 7);
        let bytes = index.encode();
        assert_eq!(TimeIndex::decode(&bytes).as_ref(), Some(&index));
        assert_eq!(TimeIndex::decode(&bytes[1..]), None);
        let mut reversed = bytes[12..].to_vec();
        reversed.extend_from_slice(&bytes[..12]);
        assert_eq!(TimeIndex::decode(&reversed), None);
        index.truncate_to_offset(7);
        assert_eq!(index.last(), Some((5, 1)));
    }
}
