//! The log start offset moving up, and the segments below it going:
//! retention on a timer and `DeleteRecords`.
//!
//! * Retention ([`ReplicaManager::retention_sweep`], every
//!   `log.retention.check.interval.ms` from the manager's loop): each
//!   replica rolls a non-empty active segment older than `segment.ms` (so a
//!   quiet partition's data becomes a closed segment retention may delete),
//!   then deletes what strom-log's pure [`decide`](strom_log::retention::decide)
//!   says. A leader applies its topic's `retention.ms` and
//!   `retention.bytes` (with `cleanup.policy` including `delete`); a
//!   follower only deletes the segments below its log start, which follows
//!   the leader's through fetch responses (`partition.rs`), so replicas
//!   agree on where the log starts. Which replicas have work is found in
//!   one pass on the blocking pool, without the writers; only those take
//!   their writer.
//! * `DeleteRecords` ([`ReplicaManager::delete_records`]): on the leader,
//!   the log start moves to the requested offset (-1: the high watermark),
//!   never beyond the high watermark (OFFSET_OUT_OF_RANGE, naming the valid
//!   range); segments wholly below it go at once. With `validate_only`
//!   nothing changes: the answer says what would happen, so a client can
//!   check a whole request before changing anything.
//!
//! Deleting runs on the blocking pool holding the writer: the new start is
//! checkpointed, then the segments' files are renamed `.deleted`
//! (strom-log's crash-safe order), and the renamed files are unlinked after
//! the writer is released.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use strom_log::retention::delete_records_offset;
use strom_log::{DeletedSegments, LogConfig, LogError, RetentionDecision, RetentionLimits};
use strom_proto::v1::ErrorCode;

use super::PartError;
use super::manager::ReplicaManager;
use super::partition::{Partition, Role};

/// Most replicas deleting segments at once (each checkpoints, so fsyncs).
const PARALLEL_DELETIONS: usize = 16;

/// What retention and `DeleteRecords` removed since the broker started,
/// for metrics.
#[derive(Debug, Default)]
pub struct RetentionStats {
    segments_deleted: AtomicU64,
    bytes_deleted: AtomicU64,
}

impl RetentionStats {
    /// Segments deleted (retention and `DeleteRecords`, leaders and
    /// followers).
    pub fn segments_deleted(&self) -> u64 {
        self.segments_deleted.load(Ordering::Relaxed)
    }

    /// Bytes of the segments deleted.
    pub fn bytes_deleted(&self) -> u64 {
        self.bytes_deleted.load(Ordering::Relaxed)
    }

    fn record(&self, deleted: &DeletedSegments) {
        self.segments_deleted
            .fetch_add(deleted.len() as u64, Ordering::Relaxed);
        self.bytes_deleted
            .fetch_add(deleted.bytes(), Ordering::Relaxed);
    }
}

/// One partition of a `DeleteRecords` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsToDelete {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The new log start offset; -1 for the high watermark.
    pub offset: i64,
}

/// What retention limits a replica in `role` applies: a leader its
/// topic's, a follower none (it follows its leader's log start).
fn limits_for(role: Role, config: &LogConfig) -> Option<RetentionLimits> {
    match role {
        Role::Leader => Some(config.retention_limits()),
        Role::Follower { .. } => Some(RetentionLimits::default()),
        Role::None => None,
    }
}

/// Whether `part` has retention work now: a roll, or segments to delete.
fn retention_due(part: &Partition) -> Result<bool, LogError> {
    let reader = part.reader();
    let Some(limits) = limits_for(part.role().0, &reader.config()) else {
        return Ok(false);
    };
    Ok(reader.roll_due() || reader.retention_decision(limits)?.is_some())
}

impl ReplicaManager {
    /// Each hosted replica's log start offset, for metrics.
    pub fn log_start_offsets(&self) -> Vec<(String, i32, i64)> {
        self.hosted()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.reader().log_start_offset()))
            .collect()
    }

    /// One retention pass over every hosted replica (see the module docs).
    /// Runs in the manager's loop, so no log is removed meanwhile.
    pub(crate) async fn retention_sweep(&self) {
        if self.log_dir_health().is_offline() {
            return;
        }
        let parts = self.hosted();
        let health = self.log_dir_health().clone();
        let due = self
            .blocking()
            .run(move || {
                parts
                    .into_iter()
                    .filter(|part| match retention_due(part) {
                        Ok(due) => due,
                        Err(e) => {
                            health.check(&e);
                            tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "retention check failed");
                            false
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        futures::stream::iter(due.into_iter().map(|part| self.apply_retention(part)))
            .buffer_unordered(PARALLEL_DELETIONS)
            .collect::<Vec<()>>()
            .await;
    }

    /// Rolls and deletes what is due in one replica, with its writer.
    async fn apply_retention(&self, part: Arc<Partition>) {
        let applied = part
            .with_writer(move |log, role| {
                let Some(limits) = limits_for(role, &log.config()) else {
                    return Ok((false, None));
                };
                let rolled = log.roll_if_due()?;
                let deleted = log
                    .apply_retention(limits)?
                    .map(|(decision, deleted)| (decision, deleted, log.log_start_offset()));
                Ok((rolled, deleted))
            })
            .await;
        match applied {
            Ok((rolled, deleted)) => {
                if rolled {
                    tracing::debug!(topic = %part.topic, partition = part.index, "rolled a segment older than segment.ms");
                }
                if let Some((decision, deleted, log_start_offset)) = deleted {
                    log_deletion(&part, &decision, &deleted, log_start_offset);
                    self.remove_files(&part, deleted).await;
                }
            }
            Err(e) => {
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "retention failed");
            }
        }
    }

    /// Unlinks deleted segments' files, off the writer.
    async fn remove_files(&self, part: &Partition, deleted: DeletedSegments) {
        if deleted.is_empty() {
            return;
        }
        self.retention_stats().record(&deleted);
        let health = self.log_dir_health().clone();
        let removed = self
            .blocking()
            .run(move || {
                deleted.remove_files().inspect_err(|e| {
                    health.check(e);
                })
            })
            .await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "removing deleted segment files");
            }
            Err(e) => {
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "removing deleted segment files");
            }
        }
    }

    /// `DeleteRecords`: moves each partition's log start on its leader
    /// (see the module docs). Answers, in request order, each partition's
    /// new log start offset (its low watermark), or what it would be with
    /// `validate_only`.
    pub async fn delete_records(
        &self,
        requests: Vec<RecordsToDelete>,
        validate_only: bool,
    ) -> Vec<Result<i64, PartError>> {
        futures::stream::iter(
            requests
                .into_iter()
                .map(|r| async move { self.delete_records_of(r, validate_only).await }),
        )
        .buffered(PARALLEL_DELETIONS)
        .collect()
        .await
    }

    async fn delete_records_of(
        &self,
        r: RecordsToDelete,
        validate_only: bool,
    ) -> Result<i64, PartError> {
        let part = self.partition(&r.topic, r.partition)?;
        part.check_leader(-1)?;
        let reader = part.reader();
        if !reader.config().cleanup_policy.delete {
            return Err(PartError::new(
                ErrorCode::PolicyViolation,
                format!(
                    "records of {}-{} cannot be deleted: its cleanup.policy does not include delete",
                    r.topic, r.partition
                ),
            ));
        }
        let target =
            delete_records_offset(r.offset, reader.log_start_offset(), reader.high_watermark())
                .map_err(|e| out_of_range(&r, &e))?;
        if validate_only {
            return Ok(target);
        }
        let offset = r.offset;
        let not_leader = PartError::not_leader(&r.topic, r.partition);
        let moved = part
            .with_writer(move |log, role| {
                if role != Role::Leader {
                    return Ok(Err(not_leader));
                }
                match log.delete_records(offset) {
                    Ok(deleted) => Ok(Ok((log.log_start_offset(), deleted))),
                    Err(e @ LogError::OffsetOutOfRange { .. }) => {
                        Ok(Err(out_of_range_of(offset, &e)))
                    }
                    Err(e) => Err(e),
                }
            })
            .await??;
        let (log_start_offset, deleted) = moved;
        tracing::info!(topic = %r.topic, partition = r.partition, offset, log_start_offset, segments = deleted.len(), "deleted records");
        self.remove_files(&part, deleted).await;
        Ok(log_start_offset)
    }
}

fn log_deletion(
    part: &Partition,
    decision: &RetentionDecision,
    deleted: &DeletedSegments,
    log_start_offset: i64,
) {
    tracing::info!(
        topic = %part.topic,
        partition = part.index,
        reason = decision.reason.as_str(),
        segments = deleted.len(),
        bytes = deleted.bytes(),
        log_start_offset,
        "retention deleted segments"
    );
}

/// OFFSET_OUT_OF_RANGE for a `DeleteRecords` offset, naming the range.
fn out_of_range(r: &RecordsToDelete, e: &LogError) -> PartError {
    let mut error = out_of_range_of(r.offset, e);
    error.message = format!("{}-{}: {}", r.topic, r.partition, error.message);
    error
}

fn out_of_range_of(offset: i64, e: &LogError) -> PartError {
    match e {
        LogError::OffsetOutOfRange {
            log_start, log_end, ..
        } => PartError::new(
            ErrorCode::OffsetOutOfRange,
            format!(
                "cannot delete records before offset {offset}: valid offsets are {log_start} to \
                 {log_end} (the high watermark), or -1 for the high watermark"
            ),
        ),
        other => PartError::from_log(other),
    }
}
