//! Cleaner throughput against a raw read-and-rewrite of the same bytes,
//! measured in the same run, and the offset map's memory per key; numbers
//! in docs/benchmarks.md ("Compaction"). Ignored by default:
//!
//! ```sh
//! cargo test --release -p strom-log --features bench --test compaction_bench -- --nocapture
//! ```
//!
//! `STROM_BENCH_DIR` chooses the filesystem (default
//! `/root/.cache/strom/bench-tmp`, a real disk).

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use strom_log::{
    CleanupPolicy, Compression, LogConfig, OffsetMap, PartitionLog, RecordBatchBuilder,
};

fn bench_dir() -> tempfile::TempDir {
    let root = std::env::var("STROM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/root/.cache/strom/bench-tmp"));
    std::fs::create_dir_all(&root).expect("create bench dir");
    tempfile::tempdir_in(root).expect("tempdir")
}

/// A compacted log of `batches` batches of 16 records (`value` bytes) over
/// `keys` keys, every segment closed and below the high watermark.
fn filled(dir: &std::path::Path, batches: usize, keys: usize, value: usize) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: 64 << 20,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir, config).expect("open");
    let payload = vec![0x5a; value];
    let mut n = 0usize;
    for _ in 0..batches {
        let mut b = RecordBatchBuilder::new(Compression::None);
        for _ in 0..16 {
            // Keys cycle with a stride so batches mix old and new keys.
            let key = format!("key-{:08}", (n * 7919) % keys);
            b.append(1_700_000_000_000, Some(key.as_bytes()), Some(&payload), &[]);
            n += 1;
        }
        log.append_as_leader(b.build(), 1).expect("append");
    }
    log.roll_now().expect("roll");
    log.set_high_watermark(log.log_end_offset());
    log.flush().expect("flush");
    log
}

/// Read every `.log` file and write a copy (fsynced): what a cleaner that
/// removed nothing would at least do.
fn raw_rewrite(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let mut input = File::open(&path).expect("open");
        let mut output = File::create(path.with_extension("copy")).expect("create");
        loop {
            let n = input.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            output.write_all(&buf[..n]).expect("write");
            total += n as u64;
        }
        output.sync_all().expect("fsync");
        std::fs::remove_file(path.with_extension("copy")).expect("remove copy");
    }
    total
}

#[test]
fn cleaner_throughput_against_raw_rewrite() {
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    for &(batches, keys, value) in &[(16_384usize, 50_000usize, 512usize), (16_384, 2_000, 512)] {
        let dir = bench_dir();
        let mut log = filled(dir.path(), batches, keys, value);
        let size: u64 = log
            .segments()
            .expect("segments")
            .iter()
            .map(|s| s.size_bytes)
            .sum();
        // Drop the page cache's advantage as far as we can: both read the
        // same files right after they were written.
        let t = Instant::now();
        let raw = raw_rewrite(dir.path());
        let raw_s = t.elapsed().as_secs_f64();
        let mut map = OffsetMap::with_memory(128 << 20);
        let t = Instant::now();
        let stats = log
            .clean(&mut map, &mut |_| {})
            .expect("clean")
            .expect("cleanable");
        let clean_s = t.elapsed().as_secs_f64();
        let after: u64 = log
            .segments()
            .expect("segments")
            .iter()
            .map(|s| s.size_bytes)
            .sum();
        println!(
            "{batches} batches x16 records of {value} B over {keys} keys: log {:.1} MiB -> {:.1} MiB; \
             raw read+rewrite {:.1} MiB in {raw_s:.3} s = {:.0} MiB/s; \
             cleaner read {:.1} MiB (map + rewrite), wrote {:.1} MiB in {clean_s:.3} s = {:.0} MiB/s of log; \
             cleaner/raw = {:.0}%; map {} keys, {:.1} B/key",
            mb(size),
            mb(after),
            mb(raw),
            mb(raw) / raw_s,
            mb(stats.bytes_read),
            mb(stats.bytes_written),
            mb(size) / clean_s,
            100.0 * (mb(size) / clean_s) / (mb(raw) / raw_s),
            stats.map_keys,
            map.memory_bytes() as f64 / map.capacity() as f64,
        );
    }
}
