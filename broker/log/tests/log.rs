//! Behaviour of `PartitionLog` through its public API.

mod common;

use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use common::{batch, read_all, small_config};
use strom_log::batch::BatchIter;
use strom_log::{
    Compression, ErrorKind, LogConfig, LogError, ManualClock, OffsetSpec, PartitionLog,
    RecordBatch, RecordBatchBuilder, TimestampType,
};

fn open(dir: &std::path::Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

#[test]
fn leader_append_assigns_offsets_and_reads_return_the_stored_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let first = log
        .append_as_leader(batch(5, 1_000, 10), 3)
        .expect("append");
    assert_eq!((first.first_offset, first.last_offset), (0, 4));
    let mut two = batch(2, 2_000, 10).to_vec();
    two.extend_from_slice(&batch(3, 3_000, 10));
    let second = log
        .append_as_leader(Bytes::from(two), 3)
        .expect("append two batches");
    assert_eq!(
        (second.first_offset, second.last_offset, second.batch_count),
        (5, 9, 2)
    );
    assert_eq!(second.max_timestamp, 3_002);
    assert_eq!(log.log_end_offset(), 10);

    let batches = read_all(&log.reader(), 0);
    let bases: Vec<i64> = batches.iter().map(RecordBatch::base_offset).collect();
    assert_eq!(bases, [0, 5, 7]);
    assert!(batches.iter().all(|b| b.partition_leader_epoch() == 3));
    let records = batches[2].records().expect("decode");
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [7, 8, 9]
    );
    assert_eq!(records[0].timestamp, 3_000);

    // A read inside a batch starts at the containing batch.
    let fetched = log.read(8, 1).expect("read");
    let first_batch = BatchIter::new(fetched.records)
        .next()
        .expect("one")
        .expect("valid");
    assert_eq!(first_batch.base_offset(), 7);
    assert_eq!(fetched.log_end_offset, 10);
}

#[test]
fn a_leader_request_in_a_shared_buffer_is_stored_patched_across_segment_rolls() {
    // As the transport hands it over: the request is a slice of a larger,
    // shared buffer. Ten ~1.1 KiB batches roll 4 KiB segments mid-request.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    log.append_as_leader(batch(1, 0, 10), 1).expect("first");
    let mut frame = b"transport frame header".to_vec();
    let start = frame.len();
    for i in 0..10 {
        frame.extend_from_slice(&batch(3, 100 * i, 350));
    }
    let frame = Bytes::from(frame);
    let request = frame.slice(start..);
    let sent = request.clone();
    let info = log.append_as_leader(request, 4).expect("append");
    assert_eq!(
        (info.first_offset, info.last_offset, info.batch_count),
        (1, 30, 10)
    );
    assert_eq!(
        frame.slice(start..),
        sent,
        "the shared buffer is not modified"
    );
    assert!(
        segment_files(dir.path()).len() > 3,
        "the request rolled segments"
    );

    let stored = read_all(&log.reader(), 1);
    let mut sent_batches = BatchIter::new(sent);
    for (i, batch) in stored.iter().enumerate() {
        let original = sent_batches.next().expect("as many").expect("valid");
        assert_eq!(batch.base_offset(), 1 + 3 * i as i64);
        assert_eq!(batch.partition_leader_epoch(), 4);
        assert_eq!(
            batch.crc(),
            original.crc(),
            "offset and epoch are outside the CRC"
        );
        assert_eq!(
            batch
                .records()
                .expect("decode")
                .iter()
                .map(|r| r.value.clone())
                .collect::<Vec<_>>(),
            original
                .records()
                .expect("decode")
                .iter()
                .map(|r| r.value.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(stored.len(), 10);
}

#[test]
fn reads_outside_the_log_are_out_of_range_with_both_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..20 {
        log.append_as_leader(batch(4, i * 10, 200), 1)
            .expect("append");
    }
    assert!(log.read(80, 1024).expect("read at end").records.is_empty());
    match log.read(81, 1024) {
        Err(LogError::OffsetOutOfRange {
            requested: 81,
            log_start: 0,
            log_end: 80,
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
    let deleted = log.delete_segments_before(40).expect("retention");
    assert!(deleted > 0);
    assert_eq!(log.log_start_offset(), 40);
    let err = log.read(39, 1024).expect_err("below start");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert!(matches!(
        err,
        LogError::OffsetOutOfRange {
            log_start: 40,
            log_end: 80,
            ..
        }
    ));
    assert_eq!(
        read_all(&log.reader(), 40)
            .first()
            .map(RecordBatch::base_offset),
        Some(40)
    );
}

#[test]
fn oversized_corrupt_or_truncated_batches_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_message_bytes: 1024,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader(batch(1, 0, 10), 0).expect("append");

    let big = log
        .append_as_leader(batch(2, 0, 1000), 0)
        .expect_err("too large");
    assert_eq!(big.kind(), ErrorKind::RecordTooLarge);

    let mut flipped = batch(2, 0, 10).to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut request = batch(1, 0, 10).to_vec();
    request.extend_from_slice(&flipped);
    let corrupt = log
        .append_as_leader(Bytes::from(request), 0)
        .expect_err("bad crc");
    assert_eq!(corrupt.kind(), ErrorKind::CorruptMessage);

    let good = batch(2, 0, 10);
    let torn = log
        .append_as_leader(good.slice(..good.len() - 1), 0)
        .expect_err("torn");
    assert_eq!(torn.kind(), ErrorKind::CorruptMessage);
    let empty = log.append_as_leader(Bytes::new(), 0).expect_err("empty");
    assert_eq!(empty.kind(), ErrorKind::CorruptMessage);
    let no_records = RecordBatchBuilder::new(Compression::None).build();
    assert_eq!(
        log.append_as_leader(no_records, 0)
            .expect_err("empty batch")
            .kind(),
        ErrorKind::CorruptMessage
    );

    assert_eq!(log.log_end_offset(), 1, "failed requests append nothing");
    assert_eq!(read_all(&log.reader(), 0).len(), 1);
}

#[test]
fn segments_roll_on_size_and_are_named_by_base_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..40 {
        log.append_as_leader(batch(3, i, 300), 0).expect("append");
    }
    let files = segment_files(dir.path());
    assert!(files.len() > 5, "rolled: {files:?}");
    assert_eq!(files[0], "00000000000000000000.log");
    let segments = log.segments().expect("segments");
    for pair in segments.windows(2) {
        assert_eq!(pair[0].next_offset, pair[1].base_offset, "contiguous");
        assert!(pair[0].size_bytes <= 4096);
    }
    for s in &segments {
        assert_eq!(
            files
                .iter()
                .filter(|f| **f == format!("{:020}.log", s.base_offset))
                .count(),
            1
        );
    }
    let all = read_all(&log.reader(), 0);
    assert_eq!(all.len(), 40);
    for offset in [0, 1, 59, 60, 61, 119] {
        let fetched = log.read(offset, 1).expect("read");
        let b = BatchIter::new(fetched.records)
            .next()
            .expect("batch")
            .expect("valid");
        assert!(
            b.base_offset() <= offset && offset <= b.last_offset(),
            "offset {offset}"
        );
    }
}

#[test]
fn segments_roll_on_age_and_on_a_full_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open_with_clock(dir.path(), config, clock.clone()).expect("open");
    log.append_as_leader(batch(1, 0, 10), 0).expect("append");
    clock.advance(59_999);
    log.append_as_leader(batch(1, 0, 10), 0).expect("append");
    assert_eq!(segment_files(dir.path()).len(), 1);
    clock.advance(1);
    log.append_as_leader(batch(1, 0, 10), 0).expect("append");
    assert_eq!(segment_files(dir.path()).len(), 2, "aged segment rolled");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 64,
        segment_index_bytes: 16,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..10 {
        log.append_as_leader(batch(1, 0, 100), 0).expect("append");
    }
    assert!(
        segment_files(dir.path()).len() >= 3,
        "two index entries per segment"
    );
    assert_eq!(read_all(&log.reader(), 0).len(), 10);
}

#[test]
fn truncation_across_segments_drops_whole_batches_and_later_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..30 {
        log.append_as_leader(batch(2, i, 300), if i < 15 { 1 } else { 2 })
            .expect("append");
    }
    log.set_high_watermark(60);
    assert_eq!(log.reader().epoch_entries(), [(1, 0), (2, 30)]);
    // Mid-batch truncation removes the containing batch (offsets 20..=21).
    assert!(log.truncate_to(21).expect("truncate"));
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.high_watermark(), 20);
    assert_eq!(log.reader().epoch_entries(), [(1, 0)]);
    assert_eq!(read_all(&log.reader(), 0).len(), 10);
    let info = log
        .append_as_leader(batch(2, 0, 300), 3)
        .expect("append after truncate");
    assert_eq!(info.first_offset, 20);
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 20)));
    assert!(
        !log.truncate_to(500).expect("noop"),
        "beyond the end is a no-op"
    );
    drop(log);
    // The truncated state survives an unclean reopen.
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 22);
    assert_eq!(log.reader().epoch_entries(), [(1, 0), (3, 20)]);
}

#[test]
fn follower_append_keeps_leader_offsets_and_learns_epochs() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let mut leader = open(leader_dir.path(), LogConfig::default());
    leader.append_as_leader(batch(3, 0, 10), 1).expect("append");
    leader.append_as_leader(batch(3, 0, 10), 4).expect("append");
    leader.append_as_leader(batch(3, 0, 10), 4).expect("append");
    leader.append_as_leader(batch(3, 0, 10), 7).expect("append");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut follower = open(dir.path(), LogConfig::default());
    let fetched = leader.read(0, 1 << 20).expect("fetch");
    let info = follower
        .append_as_follower(fetched.records.clone())
        .expect("follower append");
    assert_eq!((info.first_offset, info.last_offset), (0, 11));
    assert_eq!(
        follower.read(0, 1 << 20).expect("read").records,
        fetched.records,
        "byte-identical"
    );
    assert_eq!(follower.reader().epoch_entries(), [(1, 0), (4, 3), (7, 9)]);
    assert_eq!(follower.end_offset_for_epoch(4), Some((4, 9)));
    assert_eq!(follower.end_offset_for_epoch(5), Some((4, 9)));
    assert_eq!(follower.end_offset_for_epoch(7), Some((7, 12)));
    assert_eq!(follower.end_offset_for_epoch(8), None);

    let replay = follower
        .append_as_follower(fetched.records)
        .expect_err("non-monotonic");
    assert_eq!(replay.kind(), ErrorKind::UnexpectedAppendOffset);
    let mut gap = RecordBatchBuilder::new(Compression::None)
        .base_offset(20)
        .partition_leader_epoch(9);
    gap.append(0, None, Some(b"x"), &[]);
    let err = follower
        .append_as_follower(gap.build())
        .expect_err("logs are dense");
    assert_eq!(err.kind(), ErrorKind::UnexpectedAppendOffset);
    assert_eq!(follower.log_end_offset(), 12);
}

#[test]
fn list_offsets_by_timestamp_use_the_time_index_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..50 {
        // Batch i: offsets 4i..4i+3, timestamps 10_000 + 100i + 0..3.
        log.append_as_leader(batch(4, 10_000 + 100 * i, 200), 0)
            .expect("append");
    }
    assert!(log.segments().expect("segments").len() > 3);
    let reader = log.reader();
    let at = |ts| {
        reader
            .offset_for_timestamp(ts)
            .expect("lookup")
            .map(|o| (o.offset, o.timestamp))
    };
    assert_eq!(at(0), Some((0, 10_000)));
    assert_eq!(at(10_000), Some((0, 10_000)));
    assert_eq!(at(10_002), Some((2, 10_002)));
    assert_eq!(at(10_004), Some((4, 10_100)));
    assert_eq!(at(12_345), Some((96, 12_400)));
    assert_eq!(at(14_903), Some((199, 14_903)));
    assert_eq!(at(14_904), None);
    let earliest = log
        .list_offset(OffsetSpec::Earliest)
        .expect("list")
        .expect("some");
    let latest = log
        .list_offset(OffsetSpec::Latest)
        .expect("list")
        .expect("some");
    assert_eq!((earliest.offset, latest.offset), (0, 200));
    log.delete_segments_before(50).expect("retention");
    assert_eq!(at(0), Some((50, 11_202)));
}

#[test]
fn log_append_time_batches_get_the_leaders_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(77_000));
    let mut log =
        PartitionLog::open_with_clock(dir.path(), LogConfig::default(), clock).expect("open");
    let mut builder =
        RecordBatchBuilder::new(Compression::Lz4).timestamp_type(TimestampType::LogAppendTime);
    builder
        .append(5, None, Some(b"a"), &[])
        .append(6, None, Some(b"b"), &[]);
    let info = log.append_as_leader(builder.build(), 0).expect("append");
    assert_eq!(info.log_append_time, Some(77_000));
    let stored = read_all(&log.reader(), 0).remove(0);
    assert_eq!(stored.max_timestamp(), 77_000);
    assert!(
        stored
            .records()
            .expect("decode")
            .iter()
            .all(|r| r.timestamp == 77_000)
    );
}

#[test]
fn config_changes_apply_to_the_open_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(77_000));
    let mut log =
        PartitionLog::open_with_clock(dir.path(), LogConfig::default(), clock).expect("open");
    let create_time = || {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.append(5, None, Some(b"a"), &[]);
        b.build()
    };
    let info = log.append_as_leader(create_time(), 0).expect("append");
    assert_eq!(info.log_append_time, None);

    // message.timestamp.type=LogAppendTime stamps batches the producer did
    // not mark, with a valid CRC.
    let reader = log.reader();
    reader
        .set_config(LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        })
        .expect("valid config");
    let info = log.append_as_leader(create_time(), 0).expect("append");
    assert_eq!(info.log_append_time, Some(77_000));
    let stored = read_all(&reader, 0);
    assert_eq!(stored[0].max_timestamp(), 5);
    assert_eq!(stored[1].max_timestamp(), 77_000);
    assert_eq!(stored[1].timestamp_type(), TimestampType::LogAppendTime);
    stored[1].validate().expect("crc recomputed");

    // A lower max.message.bytes refuses a batch that fitted before; an
    // invalid config is refused and the one in force stays.
    reader
        .set_config(LogConfig {
            max_message_bytes: 64,
            ..LogConfig::default()
        })
        .expect("valid config");
    let err = log
        .append_as_leader(create_time(), 0)
        .expect_err("too large");
    assert!(matches!(err, LogError::RecordTooLarge { .. }), "{err:?}");
    assert!(
        reader
            .set_config(LogConfig {
                segment_bytes: 1,
                ..LogConfig::default()
            })
            .is_err()
    );
    assert_eq!(log.config().max_message_bytes, 64);
}

#[test]
fn clean_close_and_reopen_preserve_offsets_checkpoints_and_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..25 {
        log.append_as_leader(batch(2, i, 300), 5).expect("append");
    }
    log.set_high_watermark(40);
    log.delete_segments_before(10).expect("retention");
    let before = read_all(&log.reader(), 10);
    log.close().expect("close");
    assert!(dir.path().join(".clean-shutdown").exists());

    let log = open(dir.path(), small_config());
    assert!(
        !dir.path().join(".clean-shutdown").exists(),
        "marker consumed on open"
    );
    assert_eq!(log.log_end_offset(), 50);
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.high_watermark(), 40);
    assert_eq!(log.recovery_point(), 50);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(read_all(&log.reader(), 10), before);
}

#[test]
fn truncate_fully_restarts_the_log_at_an_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    for i in 0..20 {
        log.append_as_leader(batch(2, i, 300), 1).expect("append");
    }
    log.truncate_fully_and_start_at(1_000).expect("reset");
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (1_000, 1_000)
    );
    assert_eq!(segment_files(dir.path()), ["00000000000000001000.log"]);
    assert_eq!(log.latest_epoch(), None);
    let info = log.append_as_leader(batch(1, 0, 10), 2).expect("append");
    assert_eq!(info.first_offset, 1_000);
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (1_000, 1_001)
    );
}

#[test]
fn flush_until_is_a_shared_group_commit_and_advances_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.recovery_point(), 0);
    let reader = log.reader();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flushers: Vec<_> = (0..4)
        .map(|_| {
            let reader = reader.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                // At least one flush each, even if the appends are done
                // before this thread first runs (a loaded machine).
                let mut flushes = 0;
                loop {
                    let target = reader.log_end_offset();
                    reader.flush_until(target).expect("flush");
                    assert!(reader.recovery_point() >= target);
                    flushes += 1;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break flushes;
                    }
                }
            })
        })
        .collect();
    for i in 0..200 {
        log.append_as_leader(batch(2, i, 100), 0).expect("append");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flushers {
        assert!(f.join().expect("flusher") > 0);
    }
    log.flush_until(i64::MAX).expect("flush all");
    assert_eq!(log.recovery_point(), 400);
}

#[test]
fn flush_policy_says_when_an_fsync_is_due_and_appends_never_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_messages: Some(10),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader(batch(4, 0, 10), 0).expect("append");
    assert!(!log.flush_due());
    log.append_as_leader(batch(6, 0, 10), 0).expect("append");
    assert!(log.flush_due(), "10 unflushed records");
    assert_eq!(log.recovery_point(), 0, "the append itself does not fsync");
    log.flush_if_due().expect("flush");
    assert_eq!(log.recovery_point(), 10);
    assert!(!log.flush_due());

    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(batch(100, 0, 10), 0).expect("append");
    assert!(!log.flush_due(), "no policy, never due");

    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(0));
    let config = LogConfig {
        flush_ms: Some(1_000),
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open_with_clock(dir.path(), config, clock.clone()).expect("open");
    log.append_as_leader(batch(1, 0, 10), 0).expect("append");
    assert_eq!(log.recovery_point(), 0);
    assert!(!log.flush_due());
    clock.advance(1_000);
    assert!(log.flush_due());
    log.flush_if_due().expect("scheduler tick");
    assert_eq!(log.recovery_point(), 1);
}

#[test]
fn readers_see_consistent_prefixes_while_the_writer_appends_and_rolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_config());
    let reader = log.reader();
    let handle = thread::spawn(move || {
        let mut checked = 0;
        while reader.log_end_offset() < 600 {
            let end = reader.log_end_offset();
            if end == 0 {
                continue;
            }
            let batches = read_all(&reader, 0);
            let mut next = 0;
            for b in &batches {
                assert_eq!(b.base_offset(), next, "contiguous");
                next = b.next_offset();
            }
            assert!(next >= end);
            checked += 1;
        }
        checked
    });
    for i in 0..200 {
        log.append_as_leader(batch(3, i, 150), 0).expect("append");
    }
    assert!(handle.join().expect("reader") > 0);
}

#[test]
fn every_compression_codec_is_stored_and_served_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    for codec in Compression::ALL {
        log.append_as_leader(common::batch_with(codec, 10, 0, 50, 3), 0)
            .expect("append");
    }
    let batches = read_all(&log.reader(), 0);
    assert_eq!(batches.len(), 5);
    let expected = batches[0]
        .records()
        .expect("decode")
        .into_iter()
        .map(|r| r.value)
        .collect::<Vec<_>>();
    for (b, codec) in batches.iter().zip(Compression::ALL) {
        assert_eq!(b.compression().expect("codec"), codec);
        let values: Vec<_> = b
            .records()
            .expect("decode")
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(values, expected, "{codec:?}");
    }
}

#[test]
fn an_epoch_started_without_appends_is_dropped_by_truncation_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(batch(3, 1_000, 10), 1)
        .expect("append");
    // Became leader at epoch 2 but wrote nothing before losing it.
    log.assign_epoch_start(2).expect("assign");
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 3)));
    assert!(!log.truncate_to(3).expect("truncate"), "no batch removed");
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(log.log_end_offset(), 3);
    // A new leader's epoch start is recorded once and only when newer.
    log.assign_epoch_start(4).expect("assign");
    log.assign_epoch_start(3).expect("older epoch ignored");
    assert_eq!(log.reader().epoch_entries(), vec![(1, 0), (4, 3)]);
}
