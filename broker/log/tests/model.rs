//! Random sequences of append / read / truncate / roll / retention / reopen
//! checked against a simple in-memory model.

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use strom_log::batch::BatchIter;
use strom_log::{Compression, ErrorKind, LeaderEpochCache, LogConfig, PartitionLog};

#[derive(Debug, Clone)]
enum Op {
    Append {
        batches: Vec<(usize, usize, usize)>,
        epoch_bump: bool,
    },
    Follow {
        records: usize,
    },
    Read {
        at: u16,
        max_bytes: usize,
    },
    Truncate {
        at: u16,
    },
    DeleteBefore {
        at: u16,
    },
    Roll,
    Flush,
    CloseReopen,
    CrashReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec((1usize..6, 0usize..300, 0usize..5), 1..3), any::<bool>())
            .prop_map(|(batches, epoch_bump)| Op::Append { batches, epoch_bump }),
        1 => (1usize..4).prop_map(|records| Op::Follow { records }),
        4 => (any::<u16>(), 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => any::<u16>().prop_map(|at| Op::DeleteBefore { at }),
        1 => Just(Op::Roll),
        1 => Just(Op::Flush),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::CrashReopen),
    ]
}

/// The model: stored batches (bytes as the log must serve them), log start
/// and log end, and the expected epoch cache.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<(i64, i64, Bytes)>,
    log_start: i64,
    log_end: i64,
    epochs: LeaderEpochCache,
    epoch: i32,
}

impl Model {
    fn pick(&self, at: u16) -> i64 {
        // Offsets from a little below the start to a little past the end.
        let span = self.log_end - self.log_start + 4;
        self.log_start - 2 + i64::from(at) % span
    }

    fn visible(&self) -> Vec<&Bytes> {
        self.batches
            .iter()
            .filter(|(_, last, _)| *last >= self.log_start)
            .map(|(_, _, b)| b)
            .collect()
    }
}

fn check(log: &PartitionLog, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end, "log end");
    assert_eq!(log.log_start_offset(), model.log_start, "log start");
    assert_eq!(
        log.reader().epoch_entries(),
        model.epochs.entries(),
        "epochs"
    );
    let stored = common::read_all(&log.reader(), model.log_start);
    let expected = model.visible();
    assert_eq!(stored.len(), expected.len(), "batch count");
    for (s, e) in stored.iter().zip(expected) {
        assert_eq!(s.as_bytes(), e);
    }
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), config.clone()).expect("open");
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append {
                batches,
                epoch_bump,
            } => {
                if epoch_bump {
                    model.epoch += 1;
                }
                let mut request = Vec::new();
                for &(records, value_len, codec) in &batches {
                    let compression = Compression::ALL[codec];
                    request.extend_from_slice(&common::batch_with(
                        compression,
                        records,
                        1_000,
                        value_len,
                        7,
                    ));
                }
                let info = log
                    .append_as_leader(Bytes::from(request), model.epoch)
                    .expect("append");
                assert_eq!(info.first_offset, model.log_end);
                // Reads stop at segment boundaries, so read back in a loop.
                let mut next = info.first_offset;
                while next <= info.last_offset {
                    let stored = log.read(next, 1 << 20).expect("read back").records;
                    for batch in BatchIter::new(stored) {
                        let batch = batch.expect("valid");
                        next = batch.next_offset();
                        model.batches.push((
                            batch.base_offset(),
                            batch.last_offset(),
                            batch.as_bytes().clone(),
                        ));
                    }
                }
                model.epochs.assign(model.epoch, info.first_offset);
                model.log_end = info.last_offset + 1;
            }
            Op::Follow { records } => {
                model.epoch += 1;
                let mut builder = strom_log::RecordBatchBuilder::new(Compression::None)
                    .base_offset(model.log_end)
                    .partition_leader_epoch(model.epoch);
                for i in 0..records {
                    builder.append(i as i64, None, Some(b"follower"), &[]);
                }
                let bytes = builder.build();
                log.append_as_follower(bytes.clone())
                    .expect("follower append");
                let base = model.log_end;
                let last = base + records as i64 - 1;
                model.batches.push((base, last, bytes));
                model.epochs.assign(model.epoch, base);
                model.log_end = last + 1;
            }
            Op::Read { at, max_bytes } => {
                let offset = model.pick(at);
                match log.read(offset, max_bytes) {
                    Ok(fetched) => {
                        assert!(offset >= model.log_start && offset <= model.log_end);
                        let got: Vec<_> = BatchIter::new(fetched.records)
                            .map(|b| b.expect("whole"))
                            .collect();
                        if offset == model.log_end {
                            assert!(got.is_empty());
                        } else {
                            let first = model
                                .batches
                                .iter()
                                .position(|(_, last, _)| *last >= offset)
                                .expect("model has it");
                            assert!(!got.is_empty());
                            for (i, b) in got.iter().enumerate() {
                                assert_eq!(b.as_bytes(), &model.batches[first + i].2);
                            }
                            let total: usize = got.iter().map(|b| b.size_in_bytes()).sum();
                            assert!(got.len() == 1 || total <= max_bytes, "max_bytes respected");
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::OffsetOutOfRange);
                        assert!(offset < model.log_start || offset > model.log_end);
                    }
                }
            }
            Op::Truncate { at } => {
                let offset = model.pick(at).max(0);
                log.truncate_to(offset).expect("truncate");
                if offset < model.log_end {
                    let containing = model
                        .batches
                        .iter()
                        .find(|(_, last, _)| *last >= offset)
                        .map(|b| b.0);
                    let base = containing.unwrap_or(offset);
                    if offset < model.log_start || base < model.log_start {
                        model.batches.clear();
                        model.log_start = offset;
                        model.log_end = offset;
                        model.epochs.clear();
                    } else {
                        model.batches.retain(|(_, last, _)| *last < offset);
                        model.log_end = model.batches.last().map_or(base, |b| b.1 + 1);
                        model.epochs.truncate_from_end(model.log_end);
                    }
                } else {
                    // Nothing to remove, but an epoch starting at the log end
                    // (no batch of it) is dropped, as in Kafka's truncateTo.
                    model.epochs.truncate_from_end(model.log_end);
                }
            }
            Op::DeleteBefore { at } => {
                let offset = model.pick(at);
                log.delete_segments_before(offset).expect("delete");
                model.log_start = offset.min(model.log_end).max(model.log_start);
                model.epochs.truncate_from_start(model.log_start);
            }
            Op::Roll => log.roll_now().expect("roll"),
            Op::Flush => {
                log.flush().expect("flush");
                assert_eq!(log.recovery_point(), model.log_end);
            }
            Op::CloseReopen => {
                log.close().expect("close");
                log = PartitionLog::open(dir.path(), config.clone()).expect("reopen");
            }
            Op::CrashReopen => {
                drop(log);
                log = PartitionLog::open(dir.path(), config.clone()).expect("reopen after crash");
            }
        }
        check(&log, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(40), ..ProptestConfig::default() })]

    #[test]
    fn log_matches_the_in_memory_model(
        segment_bytes in 600u64..4000,
        index_interval_bytes in 64u64..600,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let config = LogConfig { segment_bytes, index_interval_bytes, ..LogConfig::default() };
        run(config, ops);
    }
}
