//! Log compaction against an in-memory model: random keyed appends
//! (tombstones and keyless records included, every codec), cleaning
//! passes (some with an offset map too small for the dirty section),
//! passes that crash at every step of a segment swap, retention, high
//! watermark moves, truncations above the high watermark, rolls, clean
//! and unclean reopens, and a clock that passes delete horizons.
//!
//! After every step the log must hold:
//! * the model's offsets: log start and log end;
//! * only records the model has, unchanged, at their offsets;
//! * every record at or above the highest high watermark any pass ran
//!   under (nothing there is cleanable);
//! * the same table as the model: each key's newest record present is the
//!   model's newest; a newest tombstone may be gone only once its delete
//!   horizon can have passed, and then no older value of the key remains;
//! * at most one record per key below the first dirty offset (the clean
//!   section is deduplicated).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use strom_log::{
    CleanupPolicy, Clock, Compression, LogConfig, ManualClock, OffsetMap, PartitionLog,
    RecordBatchBuilder, SwapStep,
};

const DELETE_RETENTION_MS: u64 = 1_000;

/// One record of an append: key (None = keyless), value (None = tombstone).
type Rec = (Option<u8>, Option<u8>);

#[derive(Debug, Clone)]
enum Op {
    Append { records: Vec<Rec>, codec: usize },
    Clean { small_map: bool },
    CleanCrash { step: usize, nth: u16 },
    SetHighWatermark { at: u16 },
    Advance { past_horizon: bool },
    Roll,
    Truncate { at: u16 },
    DeleteRecords { at: u16 },
    CloseReopen,
    CrashReopen,
}

fn rec() -> impl Strategy<Value = Rec> {
    prop_oneof![
        12 => (0u8..8).prop_map(|k| (Some(k), Some(k))),
        12 => (0u8..8, any::<u8>()).prop_map(|(k, v)| (Some(k), Some(v))),
        3 => (0u8..8).prop_map(|k| (Some(k), None)),
        1 => any::<u8>().prop_map(|v| (None, Some(v))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::collection::vec(rec(), 1..6), 0usize..5)
            .prop_map(|(records, codec)| Op::Append { records, codec }),
        3 => any::<bool>().prop_map(|small_map| Op::Clean { small_map }),
        2 => (0usize..5, any::<u16>()).prop_map(|(step, nth)| Op::CleanCrash { step, nth }),
        3 => any::<u16>().prop_map(|at| Op::SetHighWatermark { at }),
        1 => any::<bool>().prop_map(|past_horizon| Op::Advance { past_horizon }),
        1 => Just(Op::Roll),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => any::<u16>().prop_map(|at| Op::DeleteRecords { at }),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::CrashReopen),
    ]
}

/// What the log must be equivalent to.
#[derive(Debug, Default)]
struct Model {
    /// Every record appended, not truncated, at or above the log start.
    records: BTreeMap<i64, Rec>,
    log_start: i64,
    log_end: i64,
    /// Highest high watermark a pass ran under.
    cleaned_below: i64,
    /// Highest high watermark set: committed records are never truncated
    /// (a reopened log may come back with an older checkpointed one).
    max_hw: i64,
    /// The clock moved past a delete horizon at least once.
    tombstones_may_go: bool,
    /// Value counter, so every value is distinct.
    serial: u64,
}

fn pick(from: i64, to: i64, at: u16) -> i64 {
    from + i64::from(at) % (to - from + 1)
}

/// Every record the log serves from its start: offset → (key, value).
fn stored(log: &PartitionLog) -> BTreeMap<i64, (Option<Bytes>, Option<Bytes>)> {
    let mut out = BTreeMap::new();
    for batch in common::read_all(&log.reader(), log.log_start_offset()) {
        for r in batch.records().expect("stored batches decode") {
            if r.offset >= log.log_start_offset() {
                assert!(
                    out.insert(r.offset, (r.key, r.value)).is_none(),
                    "offset {} twice",
                    r.offset
                );
            }
        }
    }
    out
}

fn check(log: &PartitionLog, model: &Model) {
    assert_eq!(log.log_start_offset(), model.log_start, "log start");
    assert_eq!(log.log_end_offset(), model.log_end, "log end");
    let present = stored(log);
    let as_bytes = |r: &Rec| {
        (
            r.0.map(|k| Bytes::from(vec![k])),
            r.1.map(|v| Bytes::from(vec![v])),
        )
    };
    for (offset, record) in &present {
        let expected = model
            .records
            .get(offset)
            .unwrap_or_else(|| panic!("offset {offset} is not in the model"));
        assert_eq!(record, &as_bytes(expected), "record at {offset} changed");
    }
    for (offset, record) in model.records.range(model.cleaned_below..) {
        assert_eq!(
            present.get(offset),
            Some(&as_bytes(record)),
            "record at {offset} above the cleanable part is gone"
        );
    }
    // The table.
    let mut newest_model: HashMap<u8, (i64, Option<u8>)> = HashMap::new();
    for (&offset, &(key, value)) in &model.records {
        if let Some(k) = key {
            newest_model.insert(k, (offset, value));
        }
    }
    let mut newest_log: HashMap<u8, i64> = HashMap::new();
    let first_dirty = log.reader().first_dirty_offset();
    let mut clean_keys: HashMap<u8, i64> = HashMap::new();
    for (&offset, (key, _)) in &present {
        if let Some(k) = key {
            let k = k[0];
            newest_log.insert(k, offset);
            if offset < first_dirty
                && let Some(previous) = clean_keys.insert(k, offset)
            {
                panic!(
                    "key {k} twice below the first dirty offset {first_dirty}: {previous} and {offset}"
                );
            }
        }
    }
    for (k, (offset, value)) in &newest_model {
        match (value, newest_log.get(k)) {
            (_, Some(found)) => assert_eq!(
                found, offset,
                "key {k}: newest in the log is not the newest written"
            ),
            (Some(_), None) => panic!("key {k}: its newest value at {offset} is gone"),
            (None, None) => assert!(
                model.tombstones_may_go,
                "key {k}: tombstone at {offset} removed before its delete horizon"
            ),
        }
    }
    for k in newest_log.keys() {
        assert!(newest_model.contains_key(k), "key {k} is not in the model");
    }
}

fn append(
    log: &mut PartitionLog,
    model: &mut Model,
    clock: &ManualClock,
    records: Vec<Rec>,
    codec: usize,
) {
    let mut builder = RecordBatchBuilder::new(Compression::ALL[codec]);
    let mut stored_records = Vec::new();
    for (key, value) in records {
        // Distinct values make every record identifiable.
        model.serial += 1;
        let value = value.map(|_| model.serial as u8);
        builder.append(
            clock.now_ms(),
            key.as_ref().map(std::slice::from_ref),
            value.as_ref().map(std::slice::from_ref),
            &[],
        );
        stored_records.push((key, value));
    }
    let batch = builder.build();
    let keyless = stored_records.iter().any(|r| r.0.is_none());
    let info = if keyless {
        // A compacted log refuses keyless records, writing nothing; they
        // get in only as written before the topic became compacted.
        let end = log.log_end_offset();
        let refused = log
            .append_as_leader(batch.clone(), 1)
            .expect_err("keyless refused");
        assert_eq!(refused.kind(), strom_log::ErrorKind::InvalidRecord);
        assert_eq!(log.log_end_offset(), end);
        let compacted = log.config();
        let delete = LogConfig {
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            ..(*compacted).clone()
        };
        log.reader().set_config(delete).expect("config");
        let info = log.append_as_leader(batch, 1).expect("append");
        log.reader()
            .set_config((*compacted).clone())
            .expect("config");
        info
    } else {
        log.append_as_leader(batch, 1).expect("append")
    };
    assert_eq!(info.first_offset, model.log_end);
    for (i, r) in stored_records.into_iter().enumerate() {
        model.records.insert(model.log_end + i as i64, r);
    }
    model.log_end = info.last_offset + 1;
}

fn open(dir: &std::path::Path, config: &LogConfig, clock: &Arc<ManualClock>) -> PartitionLog {
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    PartitionLog::open_with_clock(dir, config.clone(), clock).expect("open")
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mut log = open(dir.path(), &config, &clock);
    let mut model = Model::default();
    let mut map = OffsetMap::with_memory(64 * 1024);
    for op in ops {
        match op {
            Op::Append { records, codec } => append(&mut log, &mut model, &clock, records, codec),
            Op::Clean { small_map } => {
                model.cleaned_below = model.cleaned_below.max(log.high_watermark());
                let result = if small_map {
                    // Two keys: passes end early, at batch boundaries.
                    let mut small =
                        OffsetMap::with_memory(3 * strom_log::compaction::offset_map::SLOT_BYTES);
                    log.clean(&mut small, &mut |_| {})
                } else {
                    log.clean(&mut map, &mut |_| {})
                };
                result.expect("clean");
            }
            Op::CleanCrash { step, nth } => {
                model.cleaned_below = model.cleaned_below.max(log.high_watermark());
                let reader = log.reader();
                if let Some(cleanable) = reader.cleanable().expect("cleanable")
                    && let Some(mut pass) = reader
                        .begin_cleaning(&cleanable, &mut map, &mut |_| {})
                        .expect("map")
                {
                    let segments = pass.segments().to_vec();
                    let crash_at = usize::from(nth) % segments.len();
                    for (i, base) in segments.into_iter().enumerate() {
                        let Some(cleaned) = reader
                            .clean_segment(&mut pass, &map, base, &mut |_| {})
                            .expect("clean segment")
                        else {
                            continue;
                        };
                        if i < crash_at {
                            log.swap_cleaned(cleaned).expect("swap");
                        } else {
                            let stop = [
                                SwapStep::Written,
                                SwapStep::Renamed,
                                SwapStep::IndexesDeleted,
                                SwapStep::Replaced,
                                SwapStep::Done,
                            ][step];
                            log.swap_cleaned_until(cleaned, stop).expect("partial swap");
                            break;
                        }
                    }
                }
                drop(log);
                log = open(dir.path(), &config, &clock);
            }
            Op::SetHighWatermark { at } => {
                let hw = pick(log.high_watermark(), model.log_end, at);
                log.set_high_watermark(hw);
                model.max_hw = model.max_hw.max(log.high_watermark());
            }
            Op::Advance { past_horizon } => {
                if past_horizon {
                    clock.advance(DELETE_RETENTION_MS as i64 + 1);
                    model.tombstones_may_go = true;
                } else {
                    clock.advance(10);
                }
            }
            Op::Roll => log.roll_now().expect("roll"),
            Op::Truncate { at } => {
                let offset = pick(log.high_watermark().max(model.max_hw), model.log_end, at);
                log.truncate_to(offset).expect("truncate");
                let end = log.log_end_offset();
                assert!(end <= offset, "truncated to {end}, above {offset}");
                if log.log_start_offset() != model.log_start {
                    // The batch holding `offset` started below the log
                    // start: the log restarted empty at `offset`.
                    assert_eq!(log.log_start_offset(), end);
                    model.log_start = end;
                }
                let start = model.log_start;
                model.records.retain(|&o, _| o >= start && o < end);
                model.log_end = end;
                model.max_hw = model.max_hw.min(end);
            }
            Op::DeleteRecords { at } => {
                let offset = pick(model.log_start, log.high_watermark(), at);
                log.delete_records(offset)
                    .expect("delete records")
                    .remove_files()
                    .expect("unlink");
                model.log_start = model.log_start.max(offset);
                model.records.retain(|&o, _| o >= model.log_start);
            }
            Op::CloseReopen => {
                log.close().expect("close");
                log = open(dir.path(), &config, &clock);
            }
            Op::CrashReopen => {
                drop(log);
                log = open(dir.path(), &config, &clock);
            }
        }
        check(&log, &model);
    }
    // A last pass over everything (one record of key 99 makes sure
    // something is dirty) keeps one record per key and stamps the
    // tombstones it keeps; then, with nothing dirty, the clock past every
    // delete horizon makes the log due again (KIP-534), after a restart
    // too (the horizon is in the cleaner checkpoint), and that pass drops
    // every tombstone.
    model.tombstones_may_go = true;
    clock.advance(DELETE_RETENTION_MS as i64 + 1);
    append(&mut log, &mut model, &clock, vec![(Some(99), Some(0))], 0);
    log.roll_now().expect("roll");
    log.set_high_watermark(model.log_end);
    model.cleaned_below = model.log_end;
    log.clean(&mut map, &mut |_| {}).expect("clean");
    check(&log, &model);
    log.close().expect("close");
    log = open(dir.path(), &config, &clock);
    let has_tombstone = stored(&log).values().any(|(_, v)| v.is_none());
    assert_eq!(
        log.reader().cleanable().expect("cleanable"),
        None,
        "nothing is due before the horizons"
    );
    clock.advance(DELETE_RETENTION_MS as i64 + 1);
    let cleanable = log.reader().cleanable().expect("cleanable");
    if has_tombstone {
        let due = cleanable.expect("expired tombstones make the log cleanable");
        assert!(due.tombstones_due && due.dirty_bytes == 0, "{due:?}");
        assert!(due.is_due(1.0));
    }
    log.clean(&mut map, &mut |_| {}).expect("clean");
    check(&log, &model);
    assert_eq!(
        log.reader().cleanable().expect("cleanable"),
        None,
        "no tombstone is left to expire"
    );
    let present = stored(&log);
    let first_dirty = log.reader().first_dirty_offset();
    assert_eq!(first_dirty, model.log_end, "everything was cleanable");
    for (offset, (key, value)) in &present {
        assert!(key.is_some(), "keyless record at {offset} survived");
        assert!(
            value.is_some(),
            "tombstone at {offset} survived its horizon"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(64), ..ProptestConfig::default() })]

    #[test]
    fn compacted_log_matches_the_model(
        segment_bytes in 200u64..1500,
        index_interval_bytes in 64u64..400,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes,
            cleanup_policy: CleanupPolicy { delete: false, compact: true },
            delete_retention_ms: DELETE_RETENTION_MS,
            ..LogConfig::default()
        };
        run(config, ops);
    }
}

/// ListOffsets by time and OffsetsForLeaderEpoch after cleaning: a time
/// whose record was removed answers the next surviving record; epochs
/// keep their start offsets (batch headers stay); a read inside a merged
/// header-only batch starts at the offset asked.
#[test]
fn offset_queries_answer_around_the_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        segment_bytes: 300,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &config, &clock);
    // Offsets 0..20, one record per batch, timestamps 100 + offset; key 0
    // for even offsets below 16, epochs 1 then 2 from offset 10.
    for o in 0..20i64 {
        let key = if o % 2 == 0 && o < 16 {
            0u8
        } else {
            1 + o as u8
        };
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(100 + o, Some(&[key]), Some(b"v"), &[]);
        let epoch = if o < 10 { 1 } else { 2 };
        log.append_as_leader(b.build(), epoch).expect("append");
    }
    log.roll_now().expect("roll");
    log.set_high_watermark(20);
    let mut map = OffsetMap::with_memory(1 << 16);
    let stats = log
        .clean(&mut map, &mut |_| {})
        .expect("clean")
        .expect("cleanable");
    assert_eq!(
        stats.records_removed, 7,
        "key 0 at 0, 2, .., 12 superseded by 14"
    );
    let present: Vec<i64> = stored(&log).keys().copied().collect();
    assert!(!present.contains(&0) && present.contains(&14) && present.contains(&1));
    // Time of removed offset 2 → next surviving record, offset 3.
    let found = log
        .offset_for_timestamp(102)
        .expect("lookup")
        .expect("a later record");
    assert_eq!((found.offset, found.timestamp), (3, 103));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 10)));
    assert_eq!(log.reader().epoch_entries(), vec![(1, 0), (2, 10)]);
    // Offset 0 was removed: a read there starts with a batch covering it.
    let read = log.read(0, 1 << 10).expect("read");
    let first = strom_log::batch::BatchIter::new(read.records)
        .next()
        .expect("a batch")
        .expect("whole");
    assert_eq!(first.base_offset(), 0);
    assert_eq!(first.record_count(), 0);
}
