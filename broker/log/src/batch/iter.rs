//! Splitting a buffer of concatenated batches into [`RecordBatch`] views.

use bytes::Bytes;

use super::header::{RecordBatch, framed_size};
use crate::error::{LogError, Result};

/// Iterates over whole batches in a buffer, zero-copy. Yields an error for
/// the first malformed batch (or trailing partial batch) and then stops.
#[derive(Debug, Clone)]
pub struct BatchIter {
    rest: Bytes,
    failed: bool,
}

impl BatchIter {
    /// Iterate over `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        BatchIter {
            rest: bytes,
            failed: false,
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = framed_size(&self.rest).and_then(|size| {
            if size > self.rest.len() {
                return Err(LogError::corrupt(format!(
                    "batch of {size} bytes is truncated to {}",
                    self.rest.len()
                )));
            }
            RecordBatch::from_bytes(self.rest.split_to(size))
        });
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}
