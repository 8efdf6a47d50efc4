//! Steady background writeback of appended log bytes.
//!
//! Left to itself the kernel lets the dirty pages of a busy log pile up and
//! writes them out in bursts, during which appends to the same file stall
//! for tens of milliseconds behind the flusher (seen with `perf` as appends
//! blocked in `ext4_da_get_block_prep`; p99 produce latency in
//! docs/benchmarks.md). Like RocksDB's `bytes_per_sync`, each segment hands
//! every [`CHUNK`] it appends to writeback at once; unlike it, the call is
//! made on one background thread, so the appending thread does not pay for
//! block allocation and I/O submission.
//!
//! The call is `posix_fadvise(POSIX_FADV_DONTNEED)` on the just-written
//! range, which issues `WB_SYNC_NONE` writeback and drops only clean pages:
//! the range's pages are dirty or under writeback, so they stay cached and
//! tail reads still hit memory. No durability is claimed: the recovery point
//! moves only by fsync.
//!
//! Optionally ([`set_cache_drop_behind`], the broker's
//! `log.cache.drop.behind.bytes`, off by default as in Kafka) the same
//! thread also drops from the page cache what lies that many bytes behind
//! each newly handed range: by then it has been written back, so the pages
//! are clean and freed, and the log's cache footprint stays bounded instead
//! of growing into all free memory. On a VM whose host takes back free guest
//! memory (free page reporting, proactive reclaim), every new page-cache
//! page otherwise costs a host fault inside the append's copy; reusing the
//! pages just freed avoids that (docs/benchmarks.md, "Page cache on a
//! reclaiming VM"). Readers further behind than the distance read from
//! disk.

use std::fs::File;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};

/// Appended bytes handed to writeback at a time. Measured on the 2-core
/// benchmark machine (RF=3, 1 KiB records, 1 partition, called on the
/// appending thread): 1 MiB gave the lowest p99 at 50% load but cost ~15%
/// of full-speed throughput, 32 MiB cost nothing but left p99 at 37–46 ms;
/// 4 MiB kept p99 at 5–7 ms.
pub(crate) const CHUNK: u64 = 4 << 20;

/// Ranges waiting for the thread. When it falls behind, new ranges are
/// dropped (the kernel's own flusher still writes them).
const QUEUE: usize = 64;

/// Bytes behind a newly handed range at which the page cache is dropped;
/// 0 keeps everything cached.
static DROP_BEHIND: AtomicU64 = AtomicU64::new(0);

/// Drop written-back log pages from the page cache once they are `bytes`
/// behind the appends (0, the default, never drops them). Process-wide:
/// one broker per process.
pub fn set_cache_drop_behind(bytes: u64) {
    DROP_BEHIND.store(bytes, Ordering::Relaxed);
}

#[derive(Debug)]
struct Range {
    file: File,
    offset: i64,
    len: i64,
}

fn queue() -> Option<&'static SyncSender<Range>> {
    static SENDER: OnceLock<Option<SyncSender<Range>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Range>(QUEUE);
            std::thread::Builder::new()
                .name("strom-writeback".into())
                .spawn(move || {
                    for range in rx {
                        advise(&range);
                        let distance = DROP_BEHIND.load(Ordering::Relaxed);
                        if let Some((offset, len)) = behind(range.offset, range.len, distance) {
                            advise(&Range {
                                file: range.file,
                                offset,
                                len,
                            });
                        }
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// The range `distance` bytes behind `[offset, offset + len)`, clipped at
/// the start of the file; `None` when there is nothing to drop. The ranges
/// handed to the thread are contiguous, so these are too.
fn behind(offset: i64, len: i64, distance: u64) -> Option<(i64, i64)> {
    let distance = i64::try_from(distance).ok().filter(|d| *d > 0)?;
    let end = offset.checked_add(len)?.checked_sub(distance)?;
    let start = offset.saturating_sub(distance).max(0);
    (end > start).then_some((start, end - start))
}

#[cfg(target_os = "linux")]
fn advise(r: &Range) {
    use std::os::fd::AsRawFd;
    // Advice only: a failure changes nothing but timing.
    let _ = nix::fcntl::posix_fadvise(
        r.file.as_raw_fd(),
        r.offset,
        r.len,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

#[cfg(not(target_os = "linux"))]
fn advise(_: &Range) {}

/// Queues `[from, to)` of `file` for writeback; never blocks.
pub(crate) fn start(file: &File, from: u64, to: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to.saturating_sub(from)))
    else {
        return;
    };
    let Some(queue) = queue() else { return };
    // A duplicate descriptor keeps the file open until the call is made,
    // even if the segment is deleted meanwhile.
    let Ok(file) = file.try_clone() else { return };
    // Full: the thread is behind and the kernel's flusher will do.
    let _ = queue.try_send(Range { file, offset, len });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1 << 20;

    #[test]
    fn the_dropped_range_trails_the_handed_one_by_the_distance() {
        /// (offset, len, distance) and the dropped (offset, len).
        type Case = ((i64, i64, u64), Option<(i64, i64)>);
        let cases: &[Case] = &[
            ((0, 4 * MIB, 16 << 20), None),        // off the start of the file
            ((8 * MIB, 4 * MIB, 16 << 20), None),  // still within the distance
            ((12 * MIB, 4 * MIB, 16 << 20), None), // ends exactly at the start
            ((14 * MIB, 4 * MIB, 16 << 20), Some((0, 2 * MIB))), // clipped at 0
            ((40 * MIB, 4 * MIB, 16 << 20), Some((24 * MIB, 4 * MIB))),
            ((40 * MIB, 9 * MIB, 16 << 20), Some((24 * MIB, 9 * MIB))), // a larger range
            ((40 * MIB, 4 * MIB, 0), None),                             // off
            ((40 * MIB, 4 * MIB, u64::MAX), None),                      // beyond any file
        ];
        for &((offset, len, distance), want) in cases {
            assert_eq!(
                behind(offset, len, distance),
                want,
                "offset {offset} len {len} distance {distance}"
            );
        }
    }

    #[test]
    fn consecutive_ranges_drop_contiguous_ranges() {
        let distance = 16 << 20;
        let mut dropped_to = 0;
        let mut offset = 0;
        for len in [
            4 * MIB,
            5 * MIB,
            4 * MIB,
            7 * MIB,
            4 * MIB,
            4 * MIB,
            6 * MIB,
        ] {
            if let Some((start, n)) = behind(offset, len, distance) {
                assert_eq!(start, dropped_to, "no gap and no overlap");
                dropped_to = start + n;
            }
            offset += len;
        }
        assert_eq!(dropped_to, offset - distance as i64);
    }
}
