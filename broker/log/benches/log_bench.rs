//! Criterion benchmarks for strom-log; results in docs/benchmarks.md.
//!
//! Set `STROM_BENCH_DIR` to choose the filesystem (default
//! `/root/.cache/strom/bench-tmp`, a real disk, so fsync numbers mean
//! something).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom_log::batch::BatchIter;
use strom_log::{
    Compression, LogConfig, PartitionLog, ProducerBatch, ProducerStateTable, RecordBatchBuilder,
};

const RECORD: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;

fn bench_dir() -> tempfile::TempDir {
    let root = std::env::var("STROM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/root/.cache/strom/bench-tmp"));
    std::fs::create_dir_all(&root).expect("create bench dir");
    tempfile::tempdir_in(root).expect("tempdir")
}

/// One producer batch: 16 records of 1 KiB (about 16.5 KiB stored).
fn batch(records: usize, value: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    let payload = vec![0x5a; value];
    for i in 0..records {
        builder.append(
            1_700_000_000_000 + i as i64,
            Some(b"key"),
            Some(&payload),
            &[],
        );
    }
    builder.build().to_vec()
}

fn fresh_batches(template: &[u8], n: usize) -> Vec<Bytes> {
    (0..n).map(|_| Bytes::from(template.to_vec())).collect()
}

/// `n` copies of `template` as slices of one buffer, the way the transport
/// hands over a request's batches: shared, so the log cannot patch them in
/// place.
fn shared_batches(template: &[u8], n: usize) -> Vec<Bytes> {
    let whole = Bytes::from(template.repeat(n));
    (0..n)
        .map(|i| whole.slice(i * template.len()..(i + 1) * template.len()))
        .collect()
}

fn append(c: &mut Criterion) {
    let template = batch(RECORDS_PER_BATCH, RECORD);
    let mut group = c.benchmark_group("append_16k_batches");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // Without fsync: 64 batches (~1 MiB) per iteration.
    let n = 64;
    group.throughput(Throughput::Bytes((template.len() * n) as u64));
    for (name, make) in [
        (
            "log_append_no_fsync",
            fresh_batches as fn(&[u8], usize) -> Vec<Bytes>,
        ),
        ("log_append_no_fsync_shared_buffer", shared_batches),
    ] {
        group.bench_function(name, |b| {
            let dir = bench_dir();
            let config = LogConfig {
                segment_bytes: 256 << 20,
                ..LogConfig::default()
            };
            let mut log = PartitionLog::open(dir.path(), config).expect("open");
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let batches = make(&template, n);
                    let start = Instant::now();
                    for batch in batches {
                        black_box(log.append_as_leader(batch, 1).expect("append"));
                    }
                    total += start.elapsed();
                    if log.log_end_offset() - log.log_start_offset() > 64 * 1024 {
                        log.roll_now().expect("roll");
                        log.delete_segments_before(log.log_end_offset())
                            .expect("retention");
                    }
                }
                total
            });
        });
    }
    group.bench_function("raw_write_no_fsync", |b| {
        let dir = bench_dir();
        let file = raw_file(&dir);
        let mut pos = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Fresh buffers, like the log gets, not a cache-hot template.
                let batches = fresh_batches(&template, n);
                let start = Instant::now();
                for batch in batches {
                    file.write_all_at(&batch, pos).expect("write");
                    pos += batch.len() as u64;
                }
                total += start.elapsed();
                if pos > 256 << 20 {
                    file.set_len(0).expect("reset");
                    pos = 0;
                }
            }
            total
        });
    });
    group.bench_function("raw_write_then_one_fdatasync", |b| {
        let dir = bench_dir();
        let file = raw_file(&dir);
        let mut pos = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Fresh buffers, like the log gets, not a cache-hot template.
                let batches = fresh_batches(&template, n);
                let start = Instant::now();
                for batch in batches {
                    file.write_all_at(&batch, pos).expect("write");
                    pos += batch.len() as u64;
                }
                file.sync_data().expect("fdatasync");
                total += start.elapsed();
                if pos > 256 << 20 {
                    file.set_len(0).expect("reset");
                    pos = 0;
                }
            }
            total
        });
    });

    // The CRC32C check every append does (the main cost over a raw write).
    group.bench_function("crc32c_validation_only", |b| {
        let batches = fresh_batches(&template, n);
        b.iter(|| {
            for batch in &batches {
                black_box(crc32c::crc32c(&batch[21..]));
            }
        });
    });

    // With fsync per batch: one batch per iteration.
    group.throughput(Throughput::Bytes(template.len() as u64));
    group.bench_function("log_append_fsync_per_batch", |b| {
        let dir = bench_dir();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
        b.iter_custom(|iters| {
            let batches = fresh_batches(&template, iters as usize);
            let start = Instant::now();
            for batch in batches {
                let info = log.append_as_leader(batch, 1).expect("append");
                log.flush_until(info.last_offset + 1).expect("flush");
            }
            start.elapsed()
        });
    });
    group.bench_function("raw_write_fdatasync_per_batch", |b| {
        let dir = bench_dir();
        let file = raw_file(&dir);
        let mut pos = 0u64;
        b.iter(|| {
            file.write_all_at(&template, pos).expect("write");
            file.sync_data().expect("fdatasync");
            pos += template.len() as u64;
        });
    });
    group.finish();
}

/// A batch of `records` × `value` bytes under `compression`, with values of
/// 16 letters drawn pseudo-randomly: about half their size under gzip or
/// zstd, like text, so decompression has real work to do.
fn compressible_batch(compression: Compression, records: usize, value: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(compression);
    let mut x = 0x9e3779b97f4a7c15u64;
    for i in 0..records {
        let payload: Vec<u8> = (0..value)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 16) as u8
            })
            .collect();
        builder.append(
            1_700_000_000_000 + i as i64,
            Some(format!("key-{i}").as_bytes()),
            Some(&payload),
            &[],
        );
    }
    builder.build().to_vec()
}

/// Leader appends of one batch per codec: what validating a batch before
/// acknowledging it costs (uncompressed: CRC and a record walk; compressed:
/// also decompression).
fn leader_append_by_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("leader_append_16x1k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 64;
    group.throughput(Throughput::Elements((n * RECORDS_PER_BATCH) as u64));
    for codec in Compression::ALL {
        let template = compressible_batch(codec, RECORDS_PER_BATCH, RECORD);
        let name = format!("{codec:?}").to_lowercase();
        group.bench_function(BenchmarkId::new("codec", &name), |b| {
            let dir = bench_dir();
            let config = LogConfig {
                segment_bytes: 256 << 20,
                ..LogConfig::default()
            };
            let mut log = PartitionLog::open(dir.path(), config).expect("open");
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let batches = fresh_batches(&template, n);
                    let start = Instant::now();
                    for batch in batches {
                        black_box(log.append_as_leader(batch, 1).expect("append"));
                    }
                    total += start.elapsed();
                    if log.log_end_offset() - log.log_start_offset() > 64 * 1024 {
                        log.roll_now().expect("roll");
                        log.delete_segments_before(log.log_end_offset())
                            .expect("retention");
                    }
                }
                total
            });
        });
        eprintln!("{name}: {} bytes stored per batch", template.len());
    }
    group.finish();
}

fn raw_file(dir: &tempfile::TempDir) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("raw"))
        .expect("open raw file")
}

/// A log of `bytes` bytes in batches of `records` x `value` bytes.
fn filled_log(dir: &tempfile::TempDir, bytes: usize, records: usize, value: usize) -> PartitionLog {
    let template = batch(records, value);
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
    for _ in 0..bytes / template.len() {
        log.append_as_leader(Bytes::from(template.clone()), 1)
            .expect("append");
    }
    log
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = bench_dir();
    let size = 64 << 20;
    let log = filled_log(&dir, size, RECORDS_PER_BATCH, RECORD);
    let end = log.log_end_offset();
    let reader = log.reader();
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("sequential_1mib_fetches_page_cache", |b| {
        b.iter(|| {
            let mut next = 0;
            while next < end {
                let fetched = reader.read(next, 1 << 20).expect("read");
                let last = BatchIter::new(fetched.records)
                    .last()
                    .expect("batch")
                    .expect("valid");
                next = last.next_offset();
            }
        });
    });
    group.finish();

    // Offset lookup: read one small batch at a pseudo-random offset, for
    // segments with few and many index entries.
    let mut group = c.benchmark_group("offset_lookup");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for mib in [1usize, 16, 256] {
        let dir = bench_dir();
        let log = filled_log(&dir, mib << 20, 1, 100);
        let end = log.log_end_offset();
        let reader = log.reader();
        let mut x = 0x9e3779b97f4a7c15u64;
        group.bench_with_input(
            BenchmarkId::new("read_one_batch_segment_mib", mib),
            &mib,
            |b, _| {
                b.iter(|| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let offset = (x % end as u64) as i64;
                    black_box(reader.read(offset, 1).expect("read"));
                });
            },
        );
        let info = reader.segments().expect("segments");
        eprintln!(
            "segment of {mib} MiB: {} offsets, index heap {} bytes",
            end,
            info.iter().map(|s| s.index_heap_bytes).sum::<usize>()
        );
    }
    group.finish();
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = bench_dir();
    let size = 256usize << 20;
    let config = LogConfig {
        segment_bytes: 64 << 20,
        ..LogConfig::default()
    };
    {
        let template = batch(RECORDS_PER_BATCH, RECORD);
        let mut log = PartitionLog::open(dir.path(), config.clone()).expect("open");
        for _ in 0..size / template.len() {
            log.append_as_leader(Bytes::from(template.clone()), 1)
                .expect("append");
        }
        log.flush().expect("flush");
    }
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("unclean_open_full_scan_256mib", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Recovery point 0: every segment is scanned and re-indexed.
                let _ = std::fs::remove_file(dir.path().join("partition.checkpoint"));
                let start = Instant::now();
                let log = PartitionLog::open(dir.path(), config.clone()).expect("recover");
                total += start.elapsed();
                drop(black_box(log));
            }
            total
        });
    });
    group.finish();
}

/// Producer ids in the producer-state benchmark (issue 22: "restart time
/// of a broker holding 100,000 producer ids").
const PRODUCER_IDS: i64 = 100_000;

/// A table of `n` idempotent producers, each with its full window of
/// [`strom_log::producer::CACHED_BATCHES`] batches remembered (a producer
/// that keeps sending: the most a producer id costs).
fn producer_table(n: i64) -> ProducerStateTable {
    let mut table = ProducerStateTable::new();
    let batches = strom_log::producer::CACHED_BATCHES as i64;
    let mut offset = 0i64;
    for round in 0..batches {
        for id in 0..n {
            let first_seq = i32::try_from(round * 16).expect("small");
            table.update(&ProducerBatch {
                producer_id: 1_000 + id,
                producer_epoch: 0,
                first_seq,
                last_seq: first_seq + 15,
                first_offset: offset,
                last_offset: offset + 15,
                max_timestamp: 1_700_000_000_000 + offset,
                is_transactional: false,
            });
            offset += 16;
        }
    }
    table
}

/// This process's resident set in bytes (Linux `/proc/self/statm`), to
/// measure what a table of producers costs.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Memory per producer id (resident set growth while building the table,
/// printed once), and the time to write (encode, write, fsync) and load
/// (read, CRC check, decode) the snapshot of 100k producer ids: what a
/// segment roll costs and what a restart reads before replaying the tail.
fn producer_state(c: &mut Criterion) {
    let before = resident_bytes();
    let table = producer_table(PRODUCER_IDS);
    let after = resident_bytes();
    let snapshot = table.encode();
    if let (Some(before), Some(after)) = (before, after) {
        eprintln!(
            "producer_state: {} producer ids, resident set +{} bytes ({} bytes per producer id, \
             {} batches remembered each); snapshot {} bytes ({} bytes per producer id)",
            table.len(),
            after.saturating_sub(before),
            after.saturating_sub(before) / PRODUCER_IDS as u64,
            strom_log::producer::CACHED_BATCHES,
            snapshot.len(),
            snapshot.len() / PRODUCER_IDS as usize,
        );
    }
    let mut group = c.benchmark_group("producer_state");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = bench_dir();
    let path = dir.path().join("00000000000000000000.snapshot");
    group.bench_function("snapshot_write_100k_producer_ids", |b| {
        b.iter(|| {
            let bytes = table.encode();
            let mut file = File::create(&path).expect("create snapshot");
            std::io::Write::write_all(&mut file, &bytes).expect("write snapshot");
            file.sync_data().expect("fsync snapshot");
        });
    });
    std::fs::write(&path, &snapshot).expect("write snapshot");
    group.bench_function("snapshot_load_100k_producer_ids", |b| {
        b.iter(|| {
            let bytes = std::fs::read(&path).expect("read snapshot");
            let loaded = ProducerStateTable::decode(&bytes).expect("decode snapshot");
            assert_eq!(loaded.len(), table.len());
            black_box(loaded)
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    append,
    leader_append_by_codec,
    read,
    recovery,
    producer_state
);
criterion_main!(benches);
