//! Checks a request's batches pass before anything is written.
//!
//! Every append (leader or follower) checks framing, magic, CRC and codec
//! ([`validate_batches`]). A leader also checks what is inside each batch
//! ([`check_leader_batch`]), as Kafka's `LogValidator` does before
//! acknowledging: a follower stores what its leader already checked.

use bytes::Bytes;

use crate::batch::Compression;
use crate::batch::header::{
    ATTRIBUTES_OFFSET, COMPRESSION_MASK, CRC_OFFSET, HEADER_LEN, HeaderSummary,
    RECORD_COUNT_OFFSET, compute_crc, framed_size, get_i16, get_i32, summarize,
};
use crate::batch::record::check_records;
use crate::error::{LogError, Result};

/// A batch checked by `validate_batches`, located in the request buffer.
pub(super) struct Validated {
    pub(super) start: usize,
    pub(super) summary: HeaderSummary,
    pub(super) compression: Compression,
}

/// Split `buf` into batches and check framing, magic, CRC and codec.
pub(super) fn validate_batches(buf: &[u8], max_bytes: Option<usize>) -> Result<Vec<Validated>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let size = framed_size(rest)?;
        if size > rest.len() {
            return Err(LogError::corrupt(format!(
                "batch at byte {pos} claims {size} bytes, {} remain",
                rest.len()
            )));
        }
        if let Some(max) = max_bytes
            && size > max
        {
            return Err(LogError::RecordTooLarge { size, max });
        }
        let batch = &rest[..size];
        let summary = summarize(batch)?;
        let stored = get_i32(batch, CRC_OFFSET) as u32;
        let computed = compute_crc(batch);
        if stored != computed {
            return Err(LogError::corrupt(format!(
                "crc mismatch in batch at byte {pos}: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let compression =
            Compression::from_id(get_i16(batch, ATTRIBUTES_OFFSET) & COMPRESSION_MASK)?;
        out.push(Validated {
            start: pos,
            summary,
            compression,
        });
        pos += size;
    }
    if out.is_empty() {
        return Err(LogError::corrupt("no record batches"));
    }
    Ok(out)
}

/// Leader-only checks of one batch `v` of `batches` (already through
/// [`validate_batches`]): a record count of at least 1 that matches
/// `lastOffsetDelta + 1`, and records that are all there and well formed
/// (`check_records`) — after decompression for a compressed batch, so a
/// batch no consumer could decompress or decode is refused with
/// `CorruptMessage` instead of acknowledged. Uncompressed batches pay for a
/// walk over the record lengths and varints, not for a copy.
///
/// With `require_keys` (a compacted log), a record without a key is
/// refused with `InvalidRecord`, as Kafka's `LogValidator` does: the cleaner
/// could not keep it.
pub(super) fn check_leader_batch(batches: &Bytes, v: &Validated, require_keys: bool) -> Result<()> {
    let batch = &batches[v.start..v.start + v.summary.size];
    let count = get_i32(batch, RECORD_COUNT_OFFSET);
    let delta = v.summary.last_offset - v.summary.base_offset;
    if count <= 0 || i64::from(count) - 1 != delta {
        return Err(LogError::corrupt(format!(
            "batch has {count} records but last offset delta {delta}"
        )));
    }
    let checked = match v.compression {
        Compression::None => check_records(&batch[HEADER_LEN..], count),
        codec => codec
            .decompress(batches.slice(v.start + HEADER_LEN..v.start + v.summary.size))
            .and_then(|records| check_records(&records, count)),
    };
    let keyless = checked.map_err(|e| match e {
        LogError::CorruptMessage { reason } => LogError::corrupt(format!(
            "batch at byte {} ({:?}, {count} records): {reason}",
            v.start, v.compression
        )),
        other => other,
    })?;
    match keyless {
        Some(i) if require_keys => Err(LogError::InvalidRecord {
            reason: format!(
                "record {i} of the batch at byte {} has no key: a compacted topic \
                 (cleanup.policy=compact) needs a key on every record",
                v.start
            ),
        }),
        _ => Ok(()),
    }
}
