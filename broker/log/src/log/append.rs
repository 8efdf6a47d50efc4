//! Appends (leader and follower) and segment rolling.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::producers::producer_batch;
use super::shared::lock;
use super::validate::{check_leader_batch, validate_batches};
use super::{AppendInfo, PartitionLog};
use crate::batch::TimestampType;
use crate::batch::control::{EndTxnMarker, build_marker_batch};
use crate::batch::header::{
    ATTRIBUTES_OFFSET, CONTROL_BIT, HEADER_LEN, HeaderSummary, TIMESTAMP_TYPE_BIT, get_i16,
    patch_log_append_time, patch_offset_and_epoch,
};
use crate::error::{LogError, Result};
use crate::producer::{MarkerBatch, Verdict};
use crate::segment::Segment;

impl PartitionLog {
    /// Leader append: assign offsets from the log end, stamp `leader_epoch`
    /// into each batch (outside the CRC) and the append time into
    /// LogAppendTime batches, all in copies of the headers: `batches` is
    /// left as it is. `batches` holds one or more
    /// concatenated batches from a producer; all are validated before any is
    /// written: framing, CRC and codec, then each batch's records, which
    /// must number `recordCount == lastOffsetDelta + 1` and be well formed
    /// (decompressed first when compressed). Any failure is
    /// `CorruptMessage` and writes nothing; so is, as `InvalidRecord`, a
    /// record without a key in a compacted log.
    ///
    /// Control batches (transaction markers) are refused with
    /// `InvalidRecord`: only the transaction coordinator writes them,
    /// through [`append_txn_marker`](Self::append_txn_marker).
    pub fn append_as_leader(&mut self, batches: Bytes, leader_epoch: i32) -> Result<AppendInfo> {
        self.append_leader(batches, leader_epoch, false)
    }

    /// Leader append of a transaction marker for `producer_id` at
    /// `producer_epoch` (the coordinator's WriteTxnMarkers): refused with
    /// `INVALID_PRODUCER_EPOCH` if the producer has a newer epoch here, or
    /// `TRANSACTION_COORDINATOR_FENCED` if a newer coordinator already
    /// wrote a marker for it. The producer's open transaction (if any)
    /// ends at the marker; an aborted one enters the aborted-transaction
    /// index, and the last stable offset moves on.
    pub fn append_txn_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let now = self.reader.shared.clock.now_ms();
        self.producers.check_marker(&MarkerBatch {
            producer_id,
            producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            commit: marker.commit,
            offset: self.log_end_offset(),
            timestamp: now,
        })?;
        let batch = build_marker_batch(producer_id, producer_epoch, marker, now);
        self.append_leader(batch, leader_epoch, true)
    }

    fn append_leader(
        &mut self,
        batches: Bytes,
        leader_epoch: i32,
        allow_control: bool,
    ) -> Result<AppendInfo> {
        let config = self.config();
        let validated = validate_batches(&batches, Some(config.max_message_bytes))?;
        let stamp_all = config.message_timestamp_type == TimestampType::LogAppendTime;
        for v in &validated {
            check_leader_batch(&batches, v, config.cleanup_policy.compact)?;
            let attributes = get_i16(&batches[v.start..], ATTRIBUTES_OFFSET);
            if !allow_control && attributes & CONTROL_BIT != 0 {
                return Err(LogError::InvalidRecord {
                    reason: format!(
                        "the batch at byte {} is a control batch: only the transaction coordinator writes those",
                        v.start
                    ),
                });
            }
        }
        if let Some(duplicate) = self.check_producers(&batches, &validated)? {
            return Ok(duplicate);
        }
        let now = self.reader.shared.clock.now_ms();
        let mut next = self.log_end_offset();
        let mut log_append_time = None;
        let mut summaries = Vec::with_capacity(validated.len());
        // The request's bytes are shared with the transport's buffer, so the
        // leader's fields go into copies of the 61-byte headers, written
        // ahead of the untouched records (one `pwritev`), not into a copy of
        // the whole request.
        let mut headers = Vec::with_capacity(validated.len());
        for v in &validated {
            let batch = &batches[v.start..v.start + v.summary.size];
            let (head, records) = batch.split_at(HEADER_LEN);
            let mut header = [0; HEADER_LEN];
            header.copy_from_slice(head);
            let delta = v.summary.last_offset - v.summary.base_offset;
            patch_offset_and_epoch(&mut header, next, leader_epoch);
            let mut max_timestamp = v.summary.max_timestamp;
            let attributes = get_i16(&header, ATTRIBUTES_OFFSET);
            if stamp_all || attributes & TIMESTAMP_TYPE_BIT != 0 {
                // The topic's `message.timestamp.type=LogAppendTime` marks
                // every batch; the CRC (over the attributes too) is
                // recomputed by the patch.
                header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                    .copy_from_slice(&(attributes | TIMESTAMP_TYPE_BIT).to_be_bytes());
                patch_log_append_time(&mut header, records, now);
                log_append_time = Some(now);
                max_timestamp = now;
            }
            headers.push(header);
            summaries.push(HeaderSummary {
                base_offset: next,
                last_offset: next + delta,
                max_timestamp,
                leader_epoch,
                size: v.summary.size,
            });
            next += delta + 1;
        }
        let info = self.write_batches(&batches, Some(&headers), &summaries, log_append_time)?;
        if lock(&self.reader.shared.epochs).assign(leader_epoch, info.first_offset) {
            self.reader.shared.write_epochs()?;
        }
        Ok(info)
    }

    /// The idempotence check of a leader append ([`ProducerStateTable::check_all`]
    /// over the batches with a producer id, at the offsets they would get):
    /// `Some` answer for a retry of batches already in the log, an error for
    /// a zombie epoch or a sequence gap.
    ///
    /// [`ProducerStateTable::check_all`]: crate::producer::ProducerStateTable::check_all
    fn check_producers(
        &self,
        batches: &Bytes,
        validated: &[super::validate::Validated],
    ) -> Result<Option<AppendInfo>> {
        let mut next = self.log_end_offset();
        let mut producer_batches = Vec::new();
        for v in validated {
            let delta = v.summary.last_offset - v.summary.base_offset;
            let at = HeaderSummary {
                base_offset: next,
                last_offset: next + delta,
                ..v.summary
            };
            next += delta + 1;
            if let Some(p) = producer_batch(&batches[v.start..v.start + HEADER_LEN], &at, 0) {
                producer_batches.push(p);
            }
        }
        if producer_batches.is_empty() {
            return Ok(None);
        }
        Ok(match self.producers.check_all(&producer_batches)? {
            Verdict::Append => None,
            Verdict::Duplicate(original) => Some(AppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                max_timestamp: original.timestamp,
                offset_of_max_timestamp: original.last_offset,
                log_append_time: None,
                batch_count: 0,
                bytes: 0,
                duplicate: true,
            }),
        })
    }

    /// Follower append: store batches fetched from the leader unchanged,
    /// keeping their offsets and epochs. Each batch must start exactly at the
    /// log end: Strom logs are dense (there is no compaction), which lets
    /// recovery detect a corrupt `baseOffset` (outside the CRC). A new epoch in
    /// a batch header is added to the leader-epoch cache.
    pub fn append_as_follower(&mut self, batches: Bytes) -> Result<AppendInfo> {
        let validated = validate_batches(&batches, None)?;
        let mut expected = self.log_end_offset();
        for v in &validated {
            if v.summary.base_offset != expected {
                return Err(LogError::UnexpectedAppendOffset {
                    offset: v.summary.base_offset,
                    log_end: expected,
                });
            }
            expected = v.summary.last_offset + 1;
        }
        let summaries: Vec<HeaderSummary> = validated.iter().map(|v| v.summary).collect();
        let info = self.write_batches(&batches, None, &summaries, None)?;
        let changed = {
            let mut epochs = lock(&self.reader.shared.epochs);
            let mut changed = false;
            for s in &summaries {
                changed |= epochs.assign(s.leader_epoch, s.base_offset);
            }
            changed
        };
        if changed {
            self.reader.shared.write_epochs()?;
        }
        Ok(info)
    }

    /// Write contiguous, validated batches, rolling segments as needed, then
    /// publish the new log end offset. `headers`, when given, replace the
    /// first [`HEADER_LEN`] bytes of each batch in `buf`.
    fn write_batches(
        &mut self,
        buf: &[u8],
        headers: Option<&[[u8; HEADER_LEN]]>,
        summaries: &[HeaderSummary],
        log_append_time: Option<i64>,
    ) -> Result<AppendInfo> {
        let mut run_start = 0; // index into summaries
        let mut run_pos = 0; // byte position in buf
        let mut pos = 0;
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        for (i, s) in summaries.iter().enumerate() {
            if self.should_roll(s, (pos - run_pos) as u64)? {
                self.active.append(
                    &buf[run_pos..pos],
                    headers.map(|h| &h[run_start..i]),
                    &summaries[run_start..i],
                )?;
                self.track_producers(buf, &summaries[run_start..i], run_pos)?;
                self.roll(s.base_offset)?;
                run_start = i;
                run_pos = pos;
            }
            if s.max_timestamp > max_timestamp {
                max_timestamp = s.max_timestamp;
                offset_of_max_timestamp = s.last_offset;
            }
            pos += s.size;
        }
        self.active.append(
            &buf[run_pos..pos],
            headers.map(|h| &h[run_start..]),
            &summaries[run_start..],
        )?;
        self.track_producers(buf, &summaries[run_start..], run_pos)?;
        self.maybe_expire_producers();
        let first = summaries
            .first()
            .expect("validated batches are never empty");
        let last = summaries.last().expect("validated batches are never empty");
        self.reader
            .shared
            .log_end_offset
            .store(last.last_offset + 1, Ordering::Release);
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time,
            batch_count: summaries.len(),
            bytes: pos,
            duplicate: false,
        })
    }

    /// Whether `next` must go to a new segment, `pending` bytes of this
    /// append being bound for the active segment ahead of it.
    fn should_roll(&self, next: &HeaderSummary, pending: u64) -> Result<bool> {
        let config = self.config();
        let size = self.active.size() + pending;
        if size == 0 {
            return Ok(false);
        }
        let now = self.reader.shared.clock.now_ms();
        Ok(size + next.size as u64 > config.segment_bytes
            || self.reader.segment_ms_elapsed(now, config.roll_ms())
            || next.last_offset - self.active.base_offset() > i64::from(i32::MAX)
            || self.active.index_full(
                config.max_index_entries(),
                (config.segment_index_bytes / 12) as usize,
            )?)
    }

    /// Seal the active segment and start a new one at `base_offset`, with
    /// a producer-state snapshot as of `base_offset` (the table holds every
    /// batch below it).
    fn roll(&mut self, base_offset: i64) -> Result<()> {
        self.active.seal()?;
        self.write_producer_snapshot(base_offset)?;
        let shared = &self.reader.shared;
        let segment = Arc::new(Segment::create(
            &shared.dir,
            base_offset,
            shared.config().index_interval_bytes,
        )?);
        shared.dir_dirty.store(true, Ordering::Release);
        shared
            .segments_mut()
            .insert(base_offset, Arc::clone(&segment));
        self.active = segment;
        shared
            .active_since_ms
            .store(shared.clock.now_ms(), Ordering::Release);
        tracing::debug!(base_offset, "rolled segment");
        Ok(())
    }

    /// Force a roll if the active segment is not empty (tests, admin).
    pub fn roll_now(&mut self) -> Result<()> {
        if self.active.size() > 0 {
            self.roll(self.log_end_offset())?;
        }
        Ok(())
    }

    /// Roll a non-empty active segment older than `segment.ms` even though
    /// nothing is appended: a quiet partition's last segment then becomes
    /// closed, which retention may delete. The broker calls it on a timer
    /// ([`LogReader::roll_due`] says whether it would roll). Returns whether
    /// it rolled.
    pub fn roll_if_due(&mut self) -> Result<bool> {
        if !self.reader.roll_due() {
            return Ok(false);
        }
        self.roll(self.log_end_offset())?;
        Ok(true)
    }
}
