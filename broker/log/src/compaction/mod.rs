//! Log compaction's pure parts (`cleanup.policy=compact`); the cleaning
//! pass itself, which reads and writes segment files, is `log/compact.rs`.
//!
//! - [`offset_map`]: [`OffsetMap`], key → newest offset in bounded memory.
//! - [`decide`]: the cleanable section of a log, its dirty ratio, and
//!   whether it is due (`min.cleanable.dirty.ratio`,
//!   `min.compaction.lag.ms`, `max.compaction.lag.ms`).
//! - `filter` (private): which records of one batch survive, and the batch
//!   written in its place (delete horizons, header-only batches).
//! - `txn` (private): what each batch is to the cleaner with transactions
//!   (aborted records, markers that may go).

pub mod decide;
pub(crate) mod filter;
pub mod offset_map;
pub(crate) mod txn;

pub use decide::{Cleanable, CompactionFacts, CompactionLags, cleanable};
pub use offset_map::OffsetMap;
