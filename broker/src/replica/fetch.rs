//! The one read path: [`ReplicaManager::fetch`], for consumers
//! (`replica_id` -1: read from the leader up to the high watermark, or for
//! `read_committed` up to the last stable offset with the aborted
//! transactions in range) and followers (`replica_id` = their broker id:
//! read up to the log end, reporting the follower's progress; isolation
//! does not apply).
//!
//! A follower fetch first updates the leader's view of that follower
//! (which may move the high watermark or start an ISR expansion) and
//! checks its last fetched epoch for divergence. Then, like Kafka's delayed
//! fetch, the request waits until `min_bytes` are available, a partition
//! errors, or `max_wait` passes, woken by partition notifications (the
//! purgatory is a set of `watch` receivers, not a timer wheel). Every
//! change of the last stable offset comes with one: it moves only with the
//! high watermark or with an append or truncation (a marker closing the
//! earliest open transaction), and each of those bumps the partition's
//! counter; each wake-up reads again up to the current bound.
//!
//! A follower being added under a leader throttle
//! (`leader.replication.throttled.replicas`, docs/reassignment.md) reads
//! only what the leader quota ([`quota`](super::quota)) grants; with
//! nothing granted its partition answers without records (not counting
//! towards `min_bytes`, as Kafka) and the wait also ends when the quota
//! refills. ISR members are never metered.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strom_log::AbortedTxn;
use strom_proto::v1::ErrorCode;
use uuid::Uuid;

use super::PartError;
use super::changes::Subscription;
use super::manager::ReplicaManager;
use super::partition::Partition;
use super::quota::{Grant, ReplicationQuota};

/// Which records a consumer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// Everything below the last stable offset (the first offset of the
    /// earliest open transaction, or the high watermark), with the aborted
    /// transactions in range.
    ReadCommitted,
}

/// A fetch of many partitions.
#[derive(Debug, Clone)]
pub struct FetchParams {
    /// -1 for a consumer, else the fetching follower's broker id.
    pub replica_id: i32,
    /// Longest wait for `min_bytes`, in milliseconds.
    pub max_wait_ms: i32,
    /// Bytes to wait for.
    pub min_bytes: i32,
    /// Response byte budget (≤ 0: unbounded); the first partition with
    /// data always returns at least one batch.
    pub max_bytes: i32,
    /// Consumer isolation.
    pub isolation: Isolation,
    /// What to read.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub struct FetchPartition {
    /// Topic name.
    pub topic: String,
    /// When set, the topic must have this id (UNKNOWN_TOPIC_ID otherwise).
    pub topic_id: Option<Uuid>,
    /// Partition index.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// The leader epoch the fetcher knows (-1: not checked).
    pub current_leader_epoch: i32,
    /// Followers: the epoch of their last batch, for divergence.
    pub last_fetched_epoch: i32,
    /// Followers: everything below this offset is fsynced on them (what
    /// the high watermark of a `write.caching=false` topic counts).
    pub durable_offset: i64,
    /// Per-partition byte budget (> 0).
    pub max_bytes: i32,
}

/// What one partition answered. On an error the offsets the broker knows
/// are still set (a follower out of range learns the leader's log start
/// and end from them); those it does not know are -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The partition's error, if any.
    pub error: Option<PartError>,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
    /// For a follower whose log diverged: (epoch, end offset) to truncate to.
    pub diverging_epoch: Option<(i32, i64)>,
    /// Whole stored batches.
    pub records: Bytes,
    /// `read_committed` consumers: the aborted transactions that overlap
    /// `records` (the reader drops their records).
    pub aborted_transactions: Vec<AbortedTxn>,
}

/// One requested partition, resolved.
struct Slot {
    fetch_offset: i64,
    max_bytes: usize,
    part: Result<Arc<Partition>, PartError>,
    /// Set for follower fetches whose log diverged.
    diverging: Option<(i32, i64)>,
    /// A follower fetch the leader quota meters.
    throttled: bool,
}

/// One pass over the slots.
struct Read {
    results: Vec<FetchedPartition>,
    /// Record bytes read.
    bytes: usize,
    /// Answer now whatever `min_bytes` says (an error or a divergence).
    complete: bool,
    /// Leader quota grants taken, and the bytes read under them.
    grants: Vec<(Grant, u64)>,
    /// A throttled partition got nothing: when the quota may grant again.
    refill: Option<Duration>,
}

impl ReplicaManager {
    /// Serves a fetch; the partitions' outcomes come in the request's
    /// order. A request-wide problem (negative wait or sizes, a bad
    /// replica id) fails the whole request.
    pub async fn fetch(&self, params: FetchParams) -> Result<Vec<FetchedPartition>, PartError> {
        if params.max_wait_ms < 0 || params.min_bytes < 0 {
            return Err(PartError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "max_wait_ms ({}) and min_bytes ({}) must not be negative",
                    params.max_wait_ms, params.min_bytes
                ),
            ));
        }
        if params.replica_id < -1 {
            return Err(PartError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "replica_id must be -1 or a broker id, got {}",
                    params.replica_id
                ),
            ));
        }
        let follower = params.replica_id >= 0;
        let max_bytes = if params.max_bytes <= 0 {
            usize::MAX
        } else {
            usize::try_from(params.max_bytes).unwrap_or(usize::MAX)
        };
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(u64::try_from(params.max_wait_ms).unwrap_or(0));

        let slots: Vec<Slot> = params
            .partitions
            .iter()
            .map(|p| self.resolve(params.replica_id, p))
            .collect();

        // Subscribe before the first read so no change between read and
        // wait is missed.
        let mut watches: Vec<Subscription> = slots
            .iter()
            .filter_map(|s| s.part.as_ref().ok().map(|p| p.subscribe()))
            .collect();
        let quota = &self.replication_quotas_ref().leader;
        loop {
            let read = read_all(
                &params.partitions,
                &slots,
                follower,
                params.isolation,
                max_bytes,
                quota,
            );
            let now = tokio::time::Instant::now();
            let answer = read.complete
                || read.bytes >= usize::try_from(params.min_bytes).unwrap_or(0)
                || now >= deadline
                || watches.is_empty();
            // Bytes read count against the quota only if they are sent.
            for (grant, used) in read.grants {
                quota.settle(grant, if answer { used } else { 0 });
            }
            if answer {
                return Ok(read.results);
            }
            let wake = read.refill.map_or(deadline, |d| deadline.min(now + d));
            let mut changed: FuturesUnordered<_> =
                watches.iter_mut().map(|w| w.changed()).collect();
            tokio::select! {
                biased;
                _ = changed.next() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Checks one partition of a fetch; for a follower, records its
    /// progress (and submits an ISR expansion it earns).
    fn resolve(&self, replica_id: i32, p: &FetchPartition) -> Slot {
        let mut slot = Slot {
            fetch_offset: p.fetch_offset,
            max_bytes: usize::try_from(p.max_bytes).unwrap_or(0),
            part: Err(PartError::new(ErrorCode::UnknownServerError, "")),
            diverging: None,
            throttled: false,
        };
        let id = self
            .cache()
            .with_image(|image| image.topic_by_name(&p.topic).map(|t| t.id));
        slot.part = if p.topic_id.is_some() && p.topic_id != id {
            Err(PartError::new(
                ErrorCode::UnknownTopicId,
                format!("topic {} does not have the requested topic id", p.topic),
            ))
        } else if p.max_bytes <= 0 {
            Err(PartError::new(
                ErrorCode::InvalidFetchSize,
                format!("partition_max_bytes must be positive, got {}", p.max_bytes),
            ))
        } else if p.fetch_offset < 0 {
            Err(PartError::new(
                ErrorCode::OffsetOutOfRange,
                format!("fetch offset {} is negative", p.fetch_offset),
            ))
        } else {
            self.partition(&p.topic, p.partition).and_then(|part| {
                if replica_id >= 0 {
                    let f = part.on_follower_fetch(
                        replica_id,
                        p.fetch_offset,
                        p.durable_offset,
                        p.last_fetched_epoch,
                        p.current_leader_epoch,
                    )?;
                    if let Some(change) = f.expand {
                        self.isr_sender().submit(part.clone(), change);
                    }
                    slot.diverging = f.diverging;
                    slot.throttled = part.leader_throttles(replica_id);
                } else {
                    part.check_leader(p.current_leader_epoch)?;
                }
                Ok(part)
            })
        };
        slot
    }
}

/// Reads every slot once: the outcomes, the record bytes, whether the
/// request should complete now regardless of `min_bytes` (an error or a
/// divergence to report), and the leader quota grants taken for
/// throttled followers (the caller settles them).
fn read_all(
    requested: &[FetchPartition],
    slots: &[Slot],
    follower: bool,
    isolation: Isolation,
    max_bytes: usize,
    quota: &ReplicationQuota,
) -> Read {
    let mut budget = max_bytes;
    let mut total = 0usize;
    let mut complete = false;
    let mut grants = Vec::new();
    let mut refill: Option<Duration> = None;
    let mut out = Vec::with_capacity(slots.len());
    for (p, s) in requested.iter().zip(slots) {
        let part = match &s.part {
            Ok(p) => p,
            Err(e) => {
                complete = true;
                out.push(FetchedPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    error: Some(e.clone()),
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    log_end_offset: -1,
                    diverging_epoch: None,
                    records: Bytes::new(),
                    aborted_transactions: Vec::new(),
                });
                continue;
            }
        };
        let reader = part.reader();
        let mut r = FetchedPartition {
            topic: p.topic.clone(),
            partition: p.partition,
            error: None,
            high_watermark: reader.high_watermark(),
            last_stable_offset: reader.last_stable_offset(),
            log_start_offset: reader.log_start_offset(),
            log_end_offset: reader.log_end_offset(),
            diverging_epoch: None,
            records: Bytes::new(),
            aborted_transactions: Vec::new(),
        };
        if let Some(diverging) = s.diverging {
            complete = true;
            r.diverging_epoch = Some(diverging);
            out.push(r);
            continue;
        }
        // At least one batch for the first partition with data, then only
        // what fits the response budget.
        let mut limit = s.max_bytes.min(budget);
        if limit == 0 && total > 0 {
            out.push(r);
            continue;
        }
        let mut grant = None;
        if s.throttled {
            match quota.take(u64::try_from(limit.max(1)).unwrap_or(u64::MAX)) {
                Grant::Wait(d) => {
                    refill = Some(refill.map_or(d, |r| r.min(d)));
                    out.push(r);
                    continue;
                }
                Grant::Bytes(n) => {
                    limit = limit.min(usize::try_from(n).unwrap_or(usize::MAX));
                    grant = Some(Grant::Bytes(n));
                }
                Grant::Unlimited => grant = Some(Grant::Unlimited),
            }
        }
        let read = if follower {
            part.read_all(s.fetch_offset, limit.max(1))
                .map(|data| (data, reader.last_stable_offset(), Vec::new()))
        } else {
            // The leadership may have moved while the request waited.
            part.check_leader(-1)
                .and_then(|()| part.read_for_consumer(s.fetch_offset, limit.max(1), isolation))
                .map(|c| (c.data, c.last_stable_offset, c.aborted))
        };
        match read {
            Ok((data, last_stable_offset, aborted)) => {
                let n = data.records.len();
                if let Some(g) = grant.take() {
                    grants.push((g, u64::try_from(n).unwrap_or(u64::MAX)));
                }
                total += n;
                budget = budget.saturating_sub(n);
                r.high_watermark = data.high_watermark;
                r.last_stable_offset = last_stable_offset;
                r.log_start_offset = data.log_start_offset;
                r.log_end_offset = data.log_end_offset;
                r.records = data.records;
                r.aborted_transactions = aborted;
            }
            Err(e) => {
                complete = true;
                r.error = Some(e);
            }
        }
        if let Some(g) = grant {
            grants.push((g, 0));
        }
        out.push(r);
    }
    Read {
        results: out,
        bytes: total,
        complete,
        grants,
        refill,
    }
}
