//! Strom's on-disk partition log: every partition replica lives in one
//! [`PartitionLog`] directory. No network or async dependency, so it can be
//! tested, fuzzed and benchmarked alone.
//!
//! Layout:
//! - [`batch`]: the Kafka v2 record-batch format — header view, builder,
//!   record varint codec, compression codecs, batch iterator.
//! - [`segment`](crate::segment) (private): one `.log` file plus its sparse
//!   `.index` and `.timeindex`; positional reads, index rebuilds, scans.
//! - [`log`]: [`PartitionLog`] (the writer: append, truncate, roll,
//!   retention, close) and [`LogReader`] (cloneable: read, ListOffsets,
//!   OffsetsForLeaderEpoch, group-commit `flush_until`); one file per concern
//!   under `log/`: validation, append, flush, truncation, retention, reads.
//! - [`retention`]: the pure retention decision (which segments
//!   `retention.ms`, `retention.bytes` or a moved log start delete) and
//!   `DeleteRecords`' bound.
//! - [`recovery`](crate::recovery) (private): opening a directory, clean or
//!   after a crash. It builds on `segment` and `checkpoint` only; `log`
//!   calls it, never the other way round.
//! - [`producer`]: idempotent-producer state (epochs, sequences, the
//!   last batches of each producer id), its rules and its snapshots; pure.
//! - [`txn_index`]: the aborted-transaction index (`.txnindex` entries, the
//!   `read_committed` query); pure. The log keeps it with the producer
//!   state (`log/producers.rs`).
//! - [`checkpoint`]: leader-epoch cache, high-watermark / recovery-point /
//!   log-start checkpoint files replaced atomically, and the names of the
//!   files beside the segments (incl. the clean-shutdown marker).
//! - [`compaction`]: the log cleaner's pure parts: the [`OffsetMap`], the
//!   cleanable section and dirty ratio, the per-batch record filter; the
//!   pass and the swap of cleaned segments are in `log/compact.rs`.
//! - [`config`]: [`LogConfig`] with Kafka's setting names.
//! - [`clock`]: time source for `segment.ms`, `flush.ms`, LogAppendTime.
//! - [`error`]: [`LogError`] and its Kafka error-code classification.
//!
//! See `docs/log-storage.md` for the on-disk format and design decisions.

pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod compaction;
pub mod config;
pub mod error;
pub mod log;
pub mod producer;
mod recovery;
pub mod retention;
mod segment;
pub mod txn_index;
mod writeback;

pub use batch::{Compression, Header, Record, RecordBatch, RecordBatchBuilder, TimestampType};
pub use checkpoint::LeaderEpochCache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use compaction::{Cleanable, CompactionLags, OffsetMap};
pub use config::{CleanupPolicy, LogConfig};
pub use error::{ErrorKind, LogError, Result};
pub use log::{
    AppendInfo, CleanedSegment, CleanerStats, CleaningPass, DeletedSegments, FetchData, LogReader,
    OffsetAndTimestamp, OffsetSpec, PartitionLog, SegmentInfo, SwapStep,
};
pub use producer::{CompletedTxn, MarkerBatch, ProducerBatch, ProducerStateTable, Verdict};
pub use retention::{RetentionDecision, RetentionLimits, RetentionReason};
pub use txn_index::{AbortedFilter, AbortedTxn, TxnIndex};
pub use writeback::set_cache_drop_behind;
