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

use std::fs::File;
use std::sync::OnceLock;
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
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
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
