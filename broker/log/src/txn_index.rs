//! The aborted-transaction index (Kafka's `.txnindex`): for every aborted
//! transaction, its producer id, first offset, last offset (the ABORT
//! marker) and the last stable offset when it was aborted. A
//! `read_committed` fetch returns the aborted transactions that overlap the
//! returned range, and the client drops their records.
//!
//! Entries are Kafka's 34 bytes: `int16` version (0), `int64` producer id,
//! `int64` first offset, `int64` last offset, `int64` last stable offset.
//! The log writes them to `<segment base>.txnindex` beside the segment
//! holding the marker and keeps them in memory, ordered by last offset
//! (the order markers are written in). This module is the pure part.

use crate::error::{LogError, Result};

/// Suffix of aborted-transaction index files.
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
/// Bytes per entry.
pub const ENTRY_LEN: usize = 34;
/// The entry version Kafka writes.
pub const ENTRY_VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset once it was aborted.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry's 34 bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Parses one entry.
    pub fn decode(bytes: &[u8; ENTRY_LEN]) -> Result<AbortedTxn> {
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != ENTRY_VERSION {
            return Err(LogError::corrupt(format!(
                "aborted transaction index entry version {version}"
            )));
        }
        let i64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        Ok(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Parses an index file's bytes. A partial entry at the end (a write cut
/// by a crash) is dropped, as is everything from an undecodable entry on;
/// the second value says whether anything was.
pub fn decode_entries(bytes: &[u8]) -> (Vec<AbortedTxn>, bool) {
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    let mut chunks = bytes.chunks_exact(ENTRY_LEN);
    for chunk in &mut chunks {
        let mut entry = [0; ENTRY_LEN];
        entry.copy_from_slice(chunk);
        match AbortedTxn::decode(&entry) {
            Ok(e) => out.push(e),
            Err(_) => return (out, true),
        }
    }
    let damaged = !chunks.remainder().is_empty();
    (out, damaged)
}

/// The aborted transactions of a log, ordered by last offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnIndex {
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// An index of `entries` in any order.
    pub fn from_entries(mut entries: Vec<AbortedTxn>) -> Self {
        entries.sort_by_key(|e| (e.last_offset, e.producer_id));
        entries.dedup();
        TxnIndex { entries }
    }

    /// Adds an abort whose marker follows every entry's.
    pub fn push(&mut self, entry: AbortedTxn) {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|l| l.last_offset < entry.last_offset)
        );
        self.entries.push(entry);
    }

    /// Every entry, by last offset.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the entries whose marker is at or after `offset` (truncation);
    /// returns how many.
    pub fn truncate_from(&mut self, offset: i64) -> usize {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        let dropped = self.entries.len() - keep;
        self.entries.truncate(keep);
        dropped
    }

    /// Drops the entries whose marker is below `log_start` (their records
    /// are gone); returns how many.
    pub fn remove_below(&mut self, log_start: i64) -> usize {
        let drop = self.entries.partition_point(|e| e.last_offset < log_start);
        self.entries.drain(..drop);
        drop
    }

    /// Drops the entry of `producer_id` whose marker is at `last_offset`
    /// (the cleaner removed that marker); returns whether there was one.
    pub fn remove(&mut self, producer_id: i64, last_offset: i64) -> bool {
        let from = self
            .entries
            .partition_point(|e| e.last_offset < last_offset);
        let found = self.entries[from..]
            .iter()
            .take_while(|e| e.last_offset == last_offset)
            .position(|e| e.producer_id == producer_id);
        if let Some(i) = found {
            self.entries.remove(from + i);
        }
        found.is_some()
    }

    /// Whether the batch of `producer_id` at `offset` belongs to an
    /// aborted transaction (one whose span from its first offset to its
    /// marker holds `offset`).
    pub fn is_aborted(&self, producer_id: i64, offset: i64) -> bool {
        let from = self.entries.partition_point(|e| e.last_offset < offset);
        self.entries[from..]
            .iter()
            .any(|e| e.producer_id == producer_id && e.first_offset <= offset)
    }

    /// The aborted transactions a `read_committed` fetch of
    /// `[fetch_offset, upper)` must report: those whose marker is at or
    /// after `fetch_offset` and that started before `upper` (Kafka's
    /// `collectAbortedTxns`).
    pub fn collect(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        let from = self
            .entries
            .partition_point(|e| e.last_offset < fetch_offset);
        self.entries[from..]
            .iter()
            .filter(|e| e.first_offset < upper)
            .copied()
            .collect()
    }
}

/// The `read_committed` reader's filter (Kafka's consumer `Fetcher`):
/// given the aborted transactions a fetch returned, says which of the
/// fetched batches to deliver, in order. A transactional batch is dropped
/// while its producer has an aborted transaction that began at or before
/// the batch's last offset and whose ABORT marker was not passed yet;
/// control batches are never delivered.
#[derive(Debug, Clone, Default)]
pub struct AbortedFilter {
    /// Aborted transactions not reached yet as `(first offset, producer
    /// id)`, reversed: the next one last.
    upcoming: Vec<(i64, i64)>,
    /// Producers inside an aborted transaction now.
    aborting: std::collections::BTreeSet<i64>,
}

impl AbortedFilter {
    /// A filter for one fetch's `aborted` transactions.
    pub fn new(aborted: Vec<AbortedTxn>) -> Self {
        Self::from_starts(aborted.iter().map(|a| (a.producer_id, a.first_offset)))
    }

    /// A filter for aborted transactions given as `(producer id, first
    /// offset)`, what a fetch response carries.
    pub fn from_starts(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut upcoming: Vec<(i64, i64)> = aborted
            .into_iter()
            .map(|(producer_id, first_offset)| (first_offset, producer_id))
            .collect();
        upcoming.sort_unstable_by(|a, b| b.cmp(a));
        AbortedFilter {
            upcoming,
            aborting: Default::default(),
        }
    }

    /// Whether to deliver `batch`, the next fetched batch in offset order.
    /// A control batch that does not parse as a marker is
    /// `CorruptMessage`.
    pub fn keep(&mut self, batch: &crate::batch::RecordBatch) -> Result<bool> {
        while self
            .upcoming
            .last()
            .is_some_and(|(first_offset, _)| *first_offset <= batch.last_offset())
        {
            if let Some((_, producer_id)) = self.upcoming.pop() {
                self.aborting.insert(producer_id);
            }
        }
        if batch.is_control() {
            if let Some(marker) = crate::batch::control::marker_of(batch, 0)?
                && !marker.commit
            {
                self.aborting.remove(&batch.producer_id());
            }
            return Ok(false);
        }
        Ok(!(batch.is_transactional() && self.aborting.contains(&batch.producer_id())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entry_bytes_match_kafka() {
        let e = AbortedTxn {
            producer_id: 0x0102,
            first_offset: 3,
            last_offset: 0x1_0000_0000,
            last_stable_offset: -1,
        };
        #[rustfmt::skip]
        let want: [u8; 34] = [
            0, 0,
            0, 0, 0, 0, 0, 0, 1, 2,
            0, 0, 0, 0, 0, 0, 0, 3,
            0, 0, 0, 1, 0, 0, 0, 0,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(e.encode(), want);
        assert_eq!(AbortedTxn::decode(&want).unwrap(), e);
    }

    #[test]
    fn damaged_files_keep_what_decodes() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&txn(1, 0, 5).encode());
        bytes.extend_from_slice(&txn(2, 3, 9).encode());
        assert_eq!(
            decode_entries(&bytes),
            (vec![txn(1, 0, 5), txn(2, 3, 9)], false)
        );
        let cut = &bytes[..50];
        assert_eq!(decode_entries(cut), (vec![txn(1, 0, 5)], true));
        let mut bad_version = bytes.clone();
        bad_version[ENTRY_LEN] = 7;
        assert_eq!(decode_entries(&bad_version), (vec![txn(1, 0, 5)], true));
        assert_eq!(decode_entries(&[]), (vec![], false));
    }

    #[test]
    fn collect_returns_the_overlapping_aborts() {
        let index = TxnIndex::from_entries(vec![txn(2, 10, 20), txn(1, 0, 5), txn(3, 12, 30)]);
        let pids = |v: Vec<AbortedTxn>| v.iter().map(|e| e.producer_id).collect::<Vec<_>>();
        // (fetch offset, upper, producers reported)
        let cases: &[(i64, i64, &[i64])] = &[
            (0, 100, &[1, 2, 3]),
            (0, 10, &[1]),
            (0, 11, &[1, 2]),
            (5, 11, &[1, 2]),
            (6, 11, &[2]),
            (21, 100, &[3]),
            (31, 100, &[]),
            (0, 0, &[]),
        ];
        for (fetch, upper, want) in cases {
            assert_eq!(
                pids(index.collect(*fetch, *upper)),
                *want,
                "[{fetch}, {upper})"
            );
        }
    }

    #[test]
    fn truncation_and_start_moves() {
        let mut index = TxnIndex::from_entries(vec![txn(1, 0, 5), txn(2, 10, 20), txn(3, 12, 30)]);
        assert_eq!(index.truncate_from(20), 2);
        assert_eq!(index.entries(), &[txn(1, 0, 5)]);
        let mut index = TxnIndex::from_entries(vec![txn(1, 0, 5), txn(2, 10, 20)]);
        assert_eq!(index.remove_below(6), 1);
        assert_eq!(index.entries(), &[txn(2, 10, 20)]);
        assert_eq!(index.truncate_from(0), 1);
        assert!(index.is_empty());
    }

    #[test]
    fn remove_drops_only_the_entry_of_that_marker() {
        let all = vec![txn(1, 0, 5), txn(2, 3, 9), txn(3, 4, 12)];
        // (producer, marker offset, removed, producers left)
        let cases: &[(i64, i64, bool, &[i64])] = &[
            (2, 9, true, &[1, 3]),
            (1, 9, false, &[1, 2, 3]),
            (2, 10, false, &[1, 2, 3]),
            (1, 5, true, &[2, 3]),
            (3, 12, true, &[1, 2]),
        ];
        for (pid, offset, removed, left) in cases {
            let mut index = TxnIndex::from_entries(all.clone());
            assert_eq!(index.remove(*pid, *offset), *removed, "({pid}, {offset})");
            let pids: Vec<i64> = index.entries().iter().map(|e| e.producer_id).collect();
            assert_eq!(pids, *left, "({pid}, {offset})");
        }
    }
}
