//! The record-batch format: Kafka's v2 ("magic 2") batch, byte for byte.
//!
//! - [`header`]: header layout constants and [`RecordBatch`], a validated view
//!   over the bytes of one stored batch.
//! - [`iter`]: [`BatchIter`], splitting concatenated batches (a produce
//!   request, a fetch response, a segment file) without copying.
//! - [`record`]: zigzag varints and the per-record encoding ([`Record`],
//!   [`Header`]).
//! - [`compression`]: [`Compression`] codecs applied to a batch's records.
//! - [`builder`]: [`RecordBatchBuilder`], which producers use to encode batches.
//! - [`control`]: control batches: transaction markers (`EndTransactionMarker`).
//!
//! The log never re-encodes records: stored batches are served as `Bytes`
//! slices, and a leader only patches the base offset and partition leader
//! epoch (both outside the CRC) in place.

pub mod builder;
pub mod compression;
pub mod control;
pub mod header;
pub mod iter;
pub mod record;

pub use builder::RecordBatchBuilder;
pub use compression::Compression;
pub use header::{HEADER_LEN, LOG_OVERHEAD, MAGIC, RecordBatch, TimestampType};
pub use iter::BatchIter;
pub use record::{Header, Record};
