//! Which records of one stored batch the cleaner keeps, and the batch it
//! writes in its place. Pure: bytes and an [`OffsetMap`] in, bytes out.
//!
//! Offsets never change. A batch keeps its header — base offset,
//! `lastOffsetDelta`, partition leader epoch, producer id, epoch and base
//! sequence, max timestamp — and loses records from inside: offsets now
//! have gaps within batches. A batch left without records stays as a
//! header-only batch (record count 0), and runs of such batches written by
//! no idempotent producer, in one leader epoch, merge into one header
//! spanning their offsets ([`EmptyRun`]), so the batch-level offsets of a
//! segment stay dense and recovery's, replication's and the index's checks
//! keep holding. An idempotent producer's emptied batches all stay (their
//! sequence numbers are the producer's state).
//!
//! A record goes when its key is in the map with a newer offset, when it
//! has no key (a compacted log cannot keep it, as in Kafka), or when it is
//! a tombstone whose batch's delete horizon has passed. The first cleaning
//! that keeps a tombstone sets the batch's delete horizon (KIP-534): the
//! `baseTimestamp` becomes `now + delete.retention.ms`, attribute bit 6 is
//! set and the records' timestamp deltas are rewritten against it.
//! Transactions ([`TxnRole`], `compaction/txn.rs`): every record of an
//! aborted transaction goes (its header stays). Records of aborted
//! transactions never enter the map (the pass skips them when it builds
//! it), so they never supersede committed records. Control batches
//! (transaction markers) are never deduplicated by key: a marker is kept
//! whole while its transaction holds records; after that it gets a delete
//! horizon, and once the horizon passed it becomes a plain header-only
//! batch (no producer, no control bit), which neighbouring emptied plain
//! batches may absorb.

use bytes::{BufMut, Bytes};

use super::offset_map::OffsetMap;
use super::txn::TxnRole;
use crate::batch::header::{
    ATTRIBUTES_OFFSET, COMPRESSION_MASK, CONTROL_BIT, CRC_OFFSET, DELETE_HORIZON_BIT, HEADER_LEN,
    LOG_OVERHEAD, MAGIC, NO_PRODUCER_ID, TRANSACTIONAL_BIT, TimestampType, compute_crc,
};
use crate::batch::record::encode_record;
use crate::batch::{Compression, RecordBatch};
use crate::error::Result;

/// What the cleaner knows when it filters a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterContext<'a> {
    /// Newest offset per key of the dirty section.
    pub(crate) map: &'a OffsetMap,
    /// The end of the section the map covers: batches from here on are
    /// kept whole (a batch boundary).
    pub(crate) map_end: i64,
    /// The cleaner's clock.
    pub(crate) now_ms: i64,
    /// `delete.retention.ms`.
    pub(crate) delete_retention_ms: i64,
}

/// The header fields of a batch left without records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmptyRun {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) partition_leader_epoch: i32,
    /// Attributes without the codec bits (an empty batch is uncompressed).
    pub(crate) attributes: i16,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
}

impl EmptyRun {
    /// Whether `next` (the batch right after) can join this run into one
    /// header: neither belongs to an idempotent producer, a transaction or
    /// is a control batch, and both have the same leader epoch (so
    /// recovery relearns the same epoch starts) and timestamp type.
    pub(crate) fn can_absorb(&self, next: &EmptyRun) -> bool {
        let plain = |r: &EmptyRun| {
            r.producer_id == NO_PRODUCER_ID && r.attributes & (TRANSACTIONAL_BIT | CONTROL_BIT) == 0
        };
        plain(self)
            && plain(next)
            && next.base_offset == self.last_offset + 1
            && next.partition_leader_epoch == self.partition_leader_epoch
            && next.attributes == self.attributes
            && next.last_offset - self.base_offset <= i64::from(i32::MAX)
    }

    /// Extend this run with `next` (see [`can_absorb`](Self::can_absorb)).
    pub(crate) fn absorb(&mut self, next: &EmptyRun) {
        self.last_offset = next.last_offset;
        self.max_timestamp = self.max_timestamp.max(next.max_timestamp);
    }

    /// The header-only batch.
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_batch(&BatchFields {
            base_offset: self.base_offset,
            last_offset_delta: i32::try_from(self.last_offset - self.base_offset)
                .expect("runs are checked to fit a segment's relative offsets"),
            partition_leader_epoch: self.partition_leader_epoch,
            attributes: self.attributes,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: 0,
            body: &[],
        })
    }
}

/// The header-only batch `batch` (record count 0) cut to start at
/// `offset`, which lies inside it.
pub(crate) fn trimmed_empty_header(batch: &RecordBatch, offset: i64) -> Vec<u8> {
    EmptyRun {
        base_offset: offset,
        last_offset: batch.last_offset(),
        partition_leader_epoch: batch.partition_leader_epoch(),
        attributes: batch.attributes() & !COMPRESSION_MASK,
        base_timestamp: batch.base_timestamp(),
        max_timestamp: batch.max_timestamp(),
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
    }
    .encode()
}

/// What becomes of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Kept byte for byte.
    Unchanged,
    /// Kept with fewer records, or with a delete horizon newly set.
    Rewritten(Bytes),
    /// No record left.
    Empty(EmptyRun),
}

/// `batch` without any record, its header kept.
fn emptied(batch: &RecordBatch) -> EmptyRun {
    EmptyRun {
        base_offset: batch.base_offset(),
        last_offset: batch.last_offset(),
        partition_leader_epoch: batch.partition_leader_epoch(),
        attributes: batch.attributes() & !COMPRESSION_MASK & !DELETE_HORIZON_BIT,
        base_timestamp: batch.base_timestamp(),
        max_timestamp: batch.max_timestamp(),
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
    }
}

/// Decide the fate of `batch`'s records under `ctx`, the batch having
/// `role` in its producer's transaction.
pub(crate) fn filter_batch(
    batch: &RecordBatch,
    ctx: &FilterContext<'_>,
    role: TxnRole,
) -> Result<Filtered> {
    if batch.base_offset() >= ctx.map_end {
        return Ok(Filtered::Unchanged);
    }
    if batch.is_control() {
        return filter_marker(batch, ctx, role);
    }
    if role == TxnRole::Aborted {
        return Ok(if batch.record_count() == 0 {
            Filtered::Unchanged
        } else {
            Filtered::Empty(emptied(batch))
        });
    }
    let records = batch.records()?;
    let horizon = batch.delete_horizon_ms();
    let tombstones_expired = horizon.is_some_and(|h| ctx.now_ms >= h);
    let total = records.len();
    let kept: Vec<_> = records
        .into_iter()
        .filter(|r| {
            let Some(key) = &r.key else { return false };
            if ctx.map.get(key).is_some_and(|newest| newest > r.offset) {
                return false;
            }
            !(r.value.is_none() && tombstones_expired)
        })
        .collect();
    if kept.is_empty() {
        return Ok(Filtered::Empty(emptied(batch)));
    }
    let set_horizon = horizon.is_none() && kept.iter().any(|r| r.value.is_none());
    if kept.len() == total && !set_horizon {
        return Ok(Filtered::Unchanged);
    }
    Ok(Filtered::Rewritten(rewrite(
        batch,
        &kept,
        set_horizon,
        ctx,
    )?))
}

/// A marker: kept whole while its transaction holds records
/// ([`TxnRole::MarkerNeeded`]); else stamped with a delete horizon, and
/// once that passed, a plain header-only batch.
fn filter_marker(batch: &RecordBatch, ctx: &FilterContext<'_>, role: TxnRole) -> Result<Filtered> {
    if role != TxnRole::MarkerDone {
        return Ok(Filtered::Unchanged);
    }
    match batch.delete_horizon_ms() {
        None => {
            let records = batch.records()?;
            Ok(Filtered::Rewritten(rewrite(batch, &records, true, ctx)?))
        }
        Some(horizon) if ctx.now_ms >= horizon => Ok(Filtered::Empty(EmptyRun {
            attributes: batch.attributes()
                & !(COMPRESSION_MASK | DELETE_HORIZON_BIT | CONTROL_BIT | TRANSACTIONAL_BIT),
            base_timestamp: batch.max_timestamp(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: -1,
            ..emptied(batch)
        })),
        Some(_) => Ok(Filtered::Unchanged),
    }
}

/// `batch` holding only `kept` (a subset of its records), with a delete
/// horizon newly set if `set_horizon`.
fn rewrite(
    batch: &RecordBatch,
    kept: &[crate::batch::Record],
    set_horizon: bool,
    ctx: &FilterContext<'_>,
) -> Result<Bytes> {
    let attributes = batch.attributes();
    let (attributes, base_timestamp) = if set_horizon {
        (
            attributes | DELETE_HORIZON_BIT,
            ctx.now_ms.saturating_add(ctx.delete_retention_ms),
        )
    } else {
        (attributes, batch.base_timestamp())
    };
    let log_append_time = batch.timestamp_type() == TimestampType::LogAppendTime;
    let mut body = Vec::new();
    for r in kept {
        let timestamp_delta = if log_append_time {
            0
        } else {
            r.timestamp.wrapping_sub(base_timestamp)
        };
        let offset_delta = i32::try_from(r.offset - batch.base_offset())
            .expect("a record's offset is within its batch's");
        encode_record(
            &mut body,
            timestamp_delta,
            offset_delta,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let compression = batch.compression()?;
    let compressed;
    let body: &[u8] = if compression == Compression::None {
        &body
    } else {
        compressed = compression.compress(&body);
        &compressed
    };
    Ok(Bytes::from(encode_batch(&BatchFields {
        base_offset: batch.base_offset(),
        last_offset_delta: batch.last_offset_delta(),
        partition_leader_epoch: batch.partition_leader_epoch(),
        attributes,
        base_timestamp,
        max_timestamp: batch.max_timestamp(),
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
        record_count: i32::try_from(kept.len()).expect("fewer records than the batch had"),
        body,
    })))
}

struct BatchFields<'a> {
    base_offset: i64,
    last_offset_delta: i32,
    partition_leader_epoch: i32,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    body: &'a [u8],
}

fn encode_batch(f: &BatchFields<'_>) -> Vec<u8> {
    let total = HEADER_LEN + f.body.len();
    let length = i32::try_from(total - LOG_OVERHEAD).expect("a batch is smaller than 2 GiB");
    let mut buf = Vec::with_capacity(total);
    buf.put_i64(f.base_offset);
    buf.put_i32(length);
    buf.put_i32(f.partition_leader_epoch);
    buf.put_i8(MAGIC);
    buf.put_u32(0); // crc, patched below
    debug_assert_eq!(buf.len(), ATTRIBUTES_OFFSET);
    buf.put_i16(f.attributes);
    buf.put_i32(f.last_offset_delta);
    buf.put_i64(f.base_timestamp);
    buf.put_i64(f.max_timestamp);
    buf.put_i64(f.producer_id);
    buf.put_i16(f.producer_epoch);
    buf.put_i32(f.base_sequence);
    buf.put_i32(f.record_count);
    debug_assert_eq!(buf.len(), HEADER_LEN);
    buf.extend_from_slice(f.body);
    let crc = compute_crc(&buf);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RecordBatchBuilder;

    /// A batch at `base` of records `(key, value)`, timestamps 1000 + i.
    fn batch(
        base: i64,
        compression: Compression,
        records: &[(Option<&str>, Option<&str>)],
    ) -> RecordBatch {
        let mut b = RecordBatchBuilder::new(compression)
            .base_offset(base)
            .partition_leader_epoch(3);
        for (i, (k, v)) in records.iter().enumerate() {
            b.append(
                1_000 + i as i64,
                k.map(str::as_bytes),
                v.map(str::as_bytes),
                &[],
            );
        }
        RecordBatch::from_bytes(b.build()).expect("framed")
    }

    fn map(entries: &[(&str, i64)]) -> OffsetMap {
        let mut m = OffsetMap::with_memory(4096);
        for &(k, o) in entries {
            m.put(k.as_bytes(), o);
        }
        m
    }

    /// (offset, key, value) of the records kept.
    fn kept(f: &Filtered, original: &RecordBatch) -> Vec<(i64, Option<String>, Option<String>)> {
        let batch = match f {
            Filtered::Unchanged => original.clone(),
            Filtered::Rewritten(bytes) => {
                let b = RecordBatch::from_bytes(bytes.clone()).expect("framed");
                b.validate().expect("valid crc");
                assert_eq!(b.base_offset(), original.base_offset());
                assert_eq!(b.last_offset(), original.last_offset());
                assert_eq!(
                    b.partition_leader_epoch(),
                    original.partition_leader_epoch()
                );
                assert_eq!(b.max_timestamp(), original.max_timestamp());
                assert_eq!(b.compression().ok(), original.compression().ok());
                b
            }
            Filtered::Empty(_) => return Vec::new(),
        };
        let s = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).expect("utf8"));
        batch
            .records()
            .expect("decodes")
            .into_iter()
            .map(|r| (r.offset, s(r.key), s(r.value)))
            .collect()
    }

    #[test]
    fn keeps_the_newest_record_per_key() {
        type Case = (
            &'static str,
            &'static [(&'static str, i64)],
            i64,
            &'static [i64],
        );
        // Batch at 10: a=v0 (10), b=v1 (11), a=v2 (12), c=tombstone (13), keyless (14).
        let cases: &[Case] = &[
            (
                "map knows newer a and b",
                &[("a", 12), ("b", 20)],
                100,
                &[12, 13],
            ),
            ("map knows nothing", &[], 100, &[10, 11, 12, 13]),
            (
                "newest in this batch",
                &[("a", 12), ("b", 11), ("c", 13)],
                100,
                &[11, 12, 13],
            ),
            ("tombstone superseded", &[("c", 30)], 100, &[10, 11, 12]),
            (
                "batch at the map end is kept whole",
                &[("a", 12), ("b", 20)],
                10,
                &[10, 11, 12, 13, 14],
            ),
        ];
        for &(name, entries, map_end, expected) in cases {
            for compression in Compression::ALL {
                let original = batch(
                    10,
                    compression,
                    &[
                        (Some("a"), Some("v0")),
                        (Some("b"), Some("v1")),
                        (Some("a"), Some("v2")),
                        (Some("c"), None),
                        (None, Some("keyless")),
                    ],
                );
                let m = map(entries);
                let ctx = FilterContext {
                    map: &m,
                    map_end,
                    now_ms: 5_000,
                    delete_retention_ms: 100,
                };
                let f = filter_batch(&original, &ctx, TxnRole::Data).expect("filters");
                let offsets: Vec<i64> = kept(&f, &original).iter().map(|r| r.0).collect();
                assert_eq!(offsets, expected, "{name} ({compression:?})");
            }
        }
    }

    #[test]
    fn a_kept_tombstone_gets_a_delete_horizon_and_goes_after_it() {
        let original = batch(
            0,
            Compression::None,
            &[(Some("a"), Some("x")), (Some("t"), None)],
        );
        let m = map(&[]);
        let ctx = FilterContext {
            map: &m,
            map_end: 100,
            now_ms: 5_000,
            delete_retention_ms: 100,
        };
        let Filtered::Rewritten(bytes) =
            filter_batch(&original, &ctx, TxnRole::Data).expect("filters")
        else {
            panic!("the horizon is set in a rewrite");
        };
        let marked = RecordBatch::from_bytes(bytes).expect("framed");
        assert_eq!(marked.delete_horizon_ms(), Some(5_100));
        let records = marked.records().expect("decodes");
        assert_eq!(
            records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            vec![1_000, 1_001],
            "record timestamps survive the new base timestamp"
        );
        // Before the horizon nothing changes; after it the tombstone goes.
        let before = FilterContext {
            now_ms: 5_099,
            ..ctx
        };
        assert_eq!(
            filter_batch(&marked, &before, TxnRole::Data).expect("filters"),
            Filtered::Unchanged
        );
        let after = FilterContext {
            now_ms: 5_100,
            ..ctx
        };
        let f = filter_batch(&marked, &after, TxnRole::Data).expect("filters");
        assert_eq!(
            kept(&f, &marked),
            vec![(0, Some("a".into()), Some("x".into()))]
        );
    }

    #[test]
    fn an_emptied_batch_keeps_its_offsets_and_producer_fields() {
        let mut b = RecordBatchBuilder::new(Compression::Lz4)
            .base_offset(40)
            .partition_leader_epoch(2)
            .producer(9, 1, 77);
        b.append(1, Some(b"k"), Some(b"old"), &[]);
        b.append(5, Some(b"k"), Some(b"older"), &[]);
        let original = RecordBatch::from_bytes(b.build()).expect("framed");
        let m = map(&[("k", 50)]);
        let ctx = FilterContext {
            map: &m,
            map_end: 60,
            now_ms: 0,
            delete_retention_ms: 0,
        };
        let Filtered::Empty(run) = filter_batch(&original, &ctx, TxnRole::Data).expect("filters")
        else {
            panic!("no record is left");
        };
        let header = RecordBatch::from_bytes(Bytes::from(run.encode())).expect("framed");
        header.validate().expect("valid");
        assert_eq!((header.base_offset(), header.last_offset()), (40, 41));
        assert_eq!(header.record_count(), 0);
        assert_eq!(header.records().expect("decodes"), vec![]);
        assert_eq!(
            (
                header.producer_id(),
                header.producer_epoch(),
                header.base_sequence()
            ),
            (9, 1, 77)
        );
        assert_eq!(header.max_timestamp(), 5);
        assert_eq!(header.compression().ok(), Some(Compression::None));
    }

    #[test]
    fn empty_runs_merge_only_when_nothing_is_lost() {
        let run = |base: i64, last: i64, epoch: i32, producer_id: i64, attributes: i16| EmptyRun {
            base_offset: base,
            last_offset: last,
            partition_leader_epoch: epoch,
            attributes,
            base_timestamp: base,
            max_timestamp: last,
            producer_id,
            producer_epoch: -1,
            base_sequence: -1,
        };
        let first = run(0, 4, 1, -1, 0);
        let cases = [
            ("adjacent plain batch", run(5, 9, 1, -1, 0), true),
            ("a gap between them", run(6, 9, 1, -1, 0), false),
            ("another leader epoch", run(5, 9, 2, -1, 0), false),
            ("an idempotent producer", run(5, 9, 1, 7, 0), false),
            ("transactional", run(5, 9, 1, -1, TRANSACTIONAL_BIT), false),
            ("log append time", run(5, 9, 1, -1, 0x08), false),
        ];
        for (name, next, expected) in cases {
            assert_eq!(first.can_absorb(&next), expected, "{name}");
        }
        let mut merged = first;
        merged.absorb(&run(5, 9, 1, -1, 0));
        let header = RecordBatch::from_bytes(Bytes::from(merged.encode())).expect("framed");
        assert_eq!(
            (
                header.base_offset(),
                header.last_offset(),
                header.max_timestamp()
            ),
            (0, 9, 9)
        );
    }

    #[test]
    fn control_batches_are_never_deduplicated() {
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(3)
            .control(true);
        b.append(1, Some(b"k"), Some(b"marker"), &[]);
        let original = RecordBatch::from_bytes(b.build()).expect("framed");
        let m = map(&[("k", 50)]);
        let ctx = FilterContext {
            map: &m,
            map_end: 60,
            now_ms: 0,
            delete_retention_ms: 0,
        };
        assert_eq!(
            filter_batch(&original, &ctx, TxnRole::Data).expect("filters"),
            Filtered::Unchanged
        );
    }

    /// A transaction marker of producer 5 at `base`, stamped at 1000.
    fn marker(base: i64, commit: bool) -> RecordBatch {
        let m = crate::batch::control::EndTxnMarker {
            commit,
            coordinator_epoch: 2,
        };
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .partition_leader_epoch(3)
            .producer(5, 1, -1)
            .transactional(true)
            .control(true);
        b.append(1_000, Some(&m.key_bytes()), Some(&m.value_bytes()), &[]);
        RecordBatch::from_bytes(b.build()).expect("framed")
    }

    #[test]
    fn every_record_of_an_aborted_batch_goes_and_its_header_stays() {
        let mut b = RecordBatchBuilder::new(Compression::Zstd)
            .base_offset(20)
            .producer(5, 1, 0)
            .transactional(true);
        b.append(1, Some(b"k"), Some(b"aborted"), &[]);
        b.append(2, Some(b"j"), Some(b"aborted"), &[]);
        let original = RecordBatch::from_bytes(b.build()).expect("framed");
        // Nothing supersedes its keys: only the abort removes them.
        let m = map(&[]);
        let ctx = FilterContext {
            map: &m,
            map_end: 100,
            now_ms: 0,
            delete_retention_ms: 0,
        };
        let Filtered::Empty(run) =
            filter_batch(&original, &ctx, TxnRole::Aborted).expect("filters")
        else {
            panic!("an aborted batch keeps no record");
        };
        let header = RecordBatch::from_bytes(Bytes::from(run.encode())).expect("framed");
        assert_eq!((header.base_offset(), header.last_offset()), (20, 21));
        assert_eq!(header.record_count(), 0);
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!((header.producer_id(), header.base_sequence()), (5, 0));
        // Emptied already: nothing more to do. As data, it would be kept.
        assert_eq!(
            filter_batch(&header, &ctx, TxnRole::Aborted).expect("filters"),
            Filtered::Unchanged
        );
        let f = filter_batch(&original, &ctx, TxnRole::Data).expect("filters");
        assert_eq!(kept(&f, &original).len(), 2);
    }

    #[test]
    fn a_marker_goes_only_after_its_delete_horizon_once_its_transaction_is_empty() {
        for commit in [true, false] {
            let original = marker(30, commit);
            let m = map(&[]);
            let ctx = FilterContext {
                map: &m,
                map_end: 100,
                now_ms: 5_000,
                delete_retention_ms: 100,
            };
            // Its transaction still holds records: kept whole, however old.
            assert_eq!(
                filter_batch(&original, &ctx, TxnRole::MarkerNeeded).expect("filters"),
                Filtered::Unchanged
            );
            // Beyond the map end: untouched.
            let beyond = FilterContext { map_end: 30, ..ctx };
            assert_eq!(
                filter_batch(&original, &beyond, TxnRole::MarkerDone).expect("filters"),
                Filtered::Unchanged
            );
            // Empty transaction: first stamped, still a readable marker.
            let Filtered::Rewritten(bytes) =
                filter_batch(&original, &ctx, TxnRole::MarkerDone).expect("filters")
            else {
                panic!("the horizon is set in a rewrite");
            };
            let stamped = RecordBatch::from_bytes(bytes).expect("framed");
            stamped.validate().expect("valid crc");
            assert_eq!(stamped.delete_horizon_ms(), Some(5_100));
            let read = crate::batch::control::marker_of(&stamped, 0)
                .expect("a marker")
                .expect("control");
            assert_eq!((read.producer_id, read.commit), (5, commit));
            // Before the horizon it stays; from it on it is a plain header.
            let before = FilterContext {
                now_ms: 5_099,
                ..ctx
            };
            assert_eq!(
                filter_batch(&stamped, &before, TxnRole::MarkerDone).expect("filters"),
                Filtered::Unchanged
            );
            let after = FilterContext {
                now_ms: 5_100,
                ..ctx
            };
            let Filtered::Empty(run) =
                filter_batch(&stamped, &after, TxnRole::MarkerDone).expect("filters")
            else {
                panic!("the marker goes");
            };
            let header = RecordBatch::from_bytes(Bytes::from(run.encode())).expect("framed");
            header.validate().expect("valid crc");
            assert_eq!((header.base_offset(), header.last_offset()), (30, 30));
            assert_eq!(header.record_count(), 0);
            assert!(!header.is_control() && !header.is_transactional());
            assert_eq!(
                (
                    header.producer_id(),
                    header.producer_epoch(),
                    header.base_sequence()
                ),
                (-1, -1, -1)
            );
            assert_eq!(header.delete_horizon_ms(), None);
            // It may join the plain emptied batch right before it.
            let plain = EmptyRun {
                base_offset: 25,
                last_offset: 29,
                partition_leader_epoch: 3,
                attributes: 0,
                base_timestamp: 0,
                max_timestamp: 0,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            };
            assert!(plain.can_absorb(&run));
        }
    }
}
