//! Checks a produce request's batches pass before anything is written.

use crate::batch::Compression;
use crate::batch::header::{
    ATTRIBUTES_OFFSET, CRC_OFFSET, HeaderSummary, compute_crc, framed_size, get_i16, get_i32,
    summarize,
};
use crate::error::{LogError, Result};

/// A batch checked by `validate_batches`, located in the request buffer.
pub(super) struct Validated {
    pub(super) start: usize,
    pub(super) summary: HeaderSummary,
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
        Compression::from_id(get_i16(batch, ATTRIBUTES_OFFSET) & 0x07)?;
        out.push(Validated {
            start: pos,
            summary,
        });
        pos += size;
    }
    if out.is_empty() {
        return Err(LogError::corrupt("no record batches"));
    }
    Ok(out)
}
