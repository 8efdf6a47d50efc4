//! Sequential validation of a segment's log file: the shared core of
//! recovery, index rebuilds and loading an index's unindexed tail.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::SegmentIndex;
use crate::batch::HEADER_LEN;
use crate::batch::header::{CRC_OFFSET, HeaderSummary, compute_crc, get_i32, summarize};

/// Read granularity of a scan.
const CHUNK: usize = 1 << 20;

/// Where a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// End of the last valid batch.
    pub(crate) valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub(crate) invalid: Option<String>,
}

/// Validate batches from `start` to `file_len`, feeding each valid batch to
/// `index` and `observer`. Stops at the first batch that is torn, fails its
/// CRC, is not a v2 batch, or does not start at the expected offset; never
/// panics.
pub(crate) fn scan(
    file: &File,
    file_len: u64,
    start: u64,
    segment_base: i64,
    index: &mut SegmentIndex,
    index_interval: u64,
    observer: &mut dyn FnMut(&HeaderSummary),
) -> std::io::Result<ScanOutcome> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = start;
    let mut pos = start;
    let stop = |pos: u64, reason: String| {
        Ok(ScanOutcome {
            valid_end: pos,
            invalid: Some(reason),
        })
    };
    while pos < file_len {
        let remaining = file_len - pos;
        if remaining < HEADER_LEN as u64 {
            return stop(
                pos,
                format!("torn batch header of {remaining} bytes at {pos}"),
            );
        }
        if pos + HEADER_LEN as u64 > buf_start + buf.len() as u64 {
            refill(file, &mut buf, &mut buf_start, pos, CHUNK, file_len)?;
        }
        let at = (pos - buf_start) as usize;
        let summary = match summarize(&buf[at..]) {
            Ok(summary) => summary,
            Err(e) => return stop(pos, format!("{e} at {pos}")),
        };
        let size = summary.size as u64;
        if size > remaining {
            return stop(
                pos,
                format!("torn batch of {size} bytes at {pos}, {remaining} left"),
            );
        }
        if pos + size > u64::from(u32::MAX) {
            return stop(pos, format!("batch at {pos} extends past 4 GiB"));
        }
        // Logs are dense: each batch starts where the previous one ended and
        // the first one at the segment's base offset. This also catches
        // corruption of `baseOffset`, which the CRC does not cover.
        if summary.base_offset != index.next_offset {
            return stop(
                pos,
                format!(
                    "offset {} at {pos} does not follow {}",
                    summary.base_offset, index.next_offset
                ),
            );
        }
        if summary.last_offset - segment_base > i64::from(i32::MAX) {
            return stop(
                pos,
                format!("offset {} overflows the segment", summary.last_offset),
            );
        }
        if pos + size > buf_start + buf.len() as u64 {
            refill(
                file,
                &mut buf,
                &mut buf_start,
                pos,
                CHUNK.max(summary.size),
                file_len,
            )?;
        }
        let at = (pos - buf_start) as usize;
        let batch = &buf[at..at + summary.size];
        let stored = get_i32(batch, CRC_OFFSET) as u32;
        if compute_crc(batch) != stored {
            return stop(pos, format!("crc mismatch in batch at {pos}"));
        }
        index.on_batch(segment_base, pos, &summary, index_interval);
        observer(&summary);
        pos += size;
    }
    Ok(ScanOutcome {
        valid_end: pos,
        invalid: None,
    })
}

fn refill(
    file: &File,
    buf: &mut Vec<u8>,
    buf_start: &mut u64,
    at: u64,
    want: usize,
    file_len: u64,
) -> std::io::Result<()> {
    let len = (want as u64).min(file_len - at) as usize;
    buf.resize(len, 0);
    file.read_exact_at(buf, at)?;
    *buf_start = at;
    Ok(())
}
