//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use strom_log::batch::BatchIter;
use strom_log::{Compression, LogConfig, LogReader, RecordBatch, RecordBatchBuilder};

/// A producer batch (base offset 0) of `records` records with `value_len`
/// byte values, timestamps `timestamp..`.
pub fn batch(records: usize, timestamp: i64, value_len: usize) -> Bytes {
    batch_with(Compression::None, records, timestamp, value_len, 0)
}

pub fn batch_with(
    compression: Compression,
    records: usize,
    timestamp: i64,
    value_len: usize,
    seed: u8,
) -> Bytes {
    let mut builder = RecordBatchBuilder::new(compression);
    for i in 0..records {
        let value: Vec<u8> = (0..value_len)
            .map(|j| seed.wrapping_add((i + j) as u8))
            .collect();
        builder.append(
            timestamp + i as i64,
            Some(&[seed, i as u8]),
            Some(&value),
            &[],
        );
    }
    builder.build()
}

/// Small segments and a dense index so tests exercise rolling and lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Every batch from `from` to the log end.
pub fn read_all(reader: &LogReader, from: i64) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut next = from;
    while next < reader.log_end_offset() {
        let fetched = reader.read(next, 64 << 10).expect("read");
        assert!(
            !fetched.records.is_empty(),
            "empty read at {next} below the log end"
        );
        for batch in BatchIter::new(fetched.records) {
            let batch = batch.expect("whole batches");
            batch.validate().expect("stored batches are valid");
            next = batch.next_offset();
            out.push(batch);
        }
    }
    out
}

/// Proptest case count: `default`, or `STROM_PROPTEST_CASES` for long runs.
pub fn cases(default: u32) -> u32 {
    std::env::var("STROM_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
