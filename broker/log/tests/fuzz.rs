//! Fuzzing with proptest: arbitrary and mutated bytes into the batch decoder
//! and into recovery. Nothing may panic.

mod common;

use std::fs;

use bytes::Bytes;
use proptest::prelude::*;
use strom_log::batch::BatchIter;
use strom_log::{Compression, LogConfig, PartitionLog, RecordBatch};

fn decode_everything(bytes: Bytes) {
    for batch in BatchIter::new(bytes) {
        let Ok(batch) = batch else { break };
        let _ = batch.validate();
        let _ = batch.records();
        let _ = (
            batch.last_offset(),
            batch.compression(),
            batch.timestamp_type(),
        );
    }
}

/// Recompute the CRC so mutations reach the record decoder.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= 61 {
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn valid_batch(codec: usize, records: usize) -> Vec<u8> {
    common::batch_with(Compression::ALL[codec % 5], records, 1_000, 20, 1).to_vec()
}

/// Open a log over arbitrary files, then exercise every read path.
fn open_and_read(dir: &std::path::Path) {
    let config = LogConfig {
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    let Ok(log) = PartitionLog::open(dir, config) else {
        return;
    };
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end);
    let mut next = start;
    while next < end {
        let fetched = log.read(next, 4096).expect("recovered data is readable");
        let Some(Ok(first)) = BatchIter::new(fetched.records).next() else {
            panic!("no batch at {next} below end {end}");
        };
        first.validate().expect("recovered batches pass their crc");
        next = first.next_offset();
    }
    for ts in [-1, 0, 1_000, i64::MAX] {
        let _ = log.offset_for_timestamp(ts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(Bytes::from(bytes.clone()));
        if let Ok(batch) = RecordBatch::from_bytes(Bytes::from(bytes)) {
            let _ = batch.records();
        }
    }

    #[test]
    fn mutated_batches_with_fixed_crc_never_panic_the_decoder(
        codec in 0usize..5,
        records in 1usize..8,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_batch(codec, records);
        for (at, value) in flips {
            let i = 21 + at.index(bytes.len() - 21);
            bytes[i] = value;
        }
        fix_crc(&mut bytes);
        decode_everything(Bytes::from(bytes.clone()));
        let keep = cut.index(bytes.len() + 1);
        decode_everything(Bytes::from(bytes[..keep].to_vec()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(200), ..ProptestConfig::default() })]

    #[test]
    fn recovery_of_arbitrary_segment_files_never_panics(
        prefix_batches in 0usize..6,
        garbage in prop::collection::vec(any::<u8>(), 0..300),
        index in prop::collection::vec(any::<u8>(), 0..40),
        timeindex in prop::collection::vec(any::<u8>(), 0..40),
        checkpoint in prop::collection::vec(any::<u8>(), 0..40),
        clean in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log_file = Vec::new();
        for i in 0..prefix_batches {
            let mut b = valid_batch(i, 2);
            b[..8].copy_from_slice(&(2 * i as i64).to_be_bytes());
            log_file.extend_from_slice(&b);
        }
        log_file.extend_from_slice(&garbage);
        let name = "00000000000000000000";
        fs::write(dir.path().join(format!("{name}.log")), &log_file).expect("write");
        fs::write(dir.path().join(format!("{name}.index")), &index).expect("write");
        fs::write(dir.path().join(format!("{name}.timeindex")), &timeindex).expect("write");
        fs::write(dir.path().join("partition.checkpoint"), &checkpoint).expect("write");
        if clean {
            fs::write(dir.path().join(".clean-shutdown"), b"").expect("write");
        }
        open_and_read(dir.path());
        // Valid batches before the garbage survive.
        let log = PartitionLog::open(dir.path(), LogConfig::default()).expect("reopen");
        prop_assert!(log.log_end_offset() >= 2 * prefix_batches as i64);
    }

    #[test]
    fn recovery_of_garbage_checkpoints_and_segment_names_never_panics(
        files in prop::collection::vec((0u64..50, prop::collection::vec(any::<u8>(), 0..200)), 1..4),
        epochs in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (base, bytes) in &files {
            fs::write(dir.path().join(format!("{base:020}.log")), bytes).expect("write");
        }
        fs::write(dir.path().join("leader-epoch-checkpoint"), &epochs).expect("write");
        fs::write(dir.path().join("not-a-segment.log"), b"x").expect("write");
        open_and_read(dir.path());
    }
}
