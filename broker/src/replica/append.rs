//! The one write path: [`ReplicaManager::append`] validates and appends
//! record batches to the partitions this broker leads, and
//! [`Appending::wait`] answers once acks allow — for acks=all after the
//! high watermark passes the batches, the leadership ends
//! (NOT_LEADER_OR_FOLLOWER) or the timeout expires (REQUEST_TIMED_OUT).
//! On a `write.caching=false` topic the high watermark counts only what
//! every ISR member fsynced, so acks=all means "on every ISR member's
//! disk"; acks 0 and 1 answer as before. An append that makes the
//! `flush.messages` / `flush.ms` policy due is answered (acks 1 and all)
//! after the leader's fsync, which the partition's flusher runs off the
//! async workers, one fsync for every append since the last.
//!
//! Every writer uses it: the gRPC produce handlers, and the internal
//! writers to come (group and transaction coordinators) with
//! [`AppendOrigin::Coordinator`]. The two steps are apart so that a stream
//! of requests appends in arrival order while the acks=all waits overlap.
//!
//! Each partition is validated and appended on its own: a bad batch fails
//! only its partition and writes nothing there. With acks=all the ISR must
//! hold `min.insync.replicas` members before anything is written
//! (NOT_ENOUGH_REPLICAS). The waits are on partition notifications, never
//! polling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strom_log::batch::BatchIter;
use strom_proto::v1::ErrorCode;

use super::PartError;
use super::manager::ReplicaManager;
use super::partition::Partition;

/// Who writes. Kafka's `AppendOrigin`: client batches are held to the
/// client rules (no producer state yet, no control batches); coordinators
/// write the internal topics through the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer, over any front end.
    Client,
    /// A coordinator of this broker writing its internal topic.
    Coordinator,
}

/// An append to many partitions.
#[derive(Debug)]
pub struct AppendRequest {
    /// -1 (all), 0 or 1.
    pub acks: i32,
    /// How long acks=all may wait for the ISR, in milliseconds.
    pub timeout_ms: i32,
    /// The producer's transactional id, if any.
    pub transactional_id: Option<String>,
    /// Who writes.
    pub origin: AppendOrigin,
    /// What to append where.
    pub partitions: Vec<PartitionAppend>,
}

/// Record batches for one partition.
#[derive(Debug, Clone)]
pub struct PartitionAppend {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Kafka v2 record batches.
    pub records: Bytes,
}

/// Where one partition's batches landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker's append time for LogAppendTime topics.
    pub log_append_time: Option<i64>,
    /// The log start offset after the append.
    pub log_start_offset: i64,
}

/// One partition's outcome, in the request's order.
#[derive(Debug, Clone)]
pub struct PartitionResult<T> {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// What happened.
    pub result: Result<T, PartError>,
}

/// One partition after its append, before the acks=all wait.
#[derive(Debug)]
struct Slot {
    topic: String,
    partition: i32,
    result: Result<Appended, PartError>,
    /// `(offset after the last record, leader epoch, replica)` to wait for.
    wait: Option<(i64, i32, Arc<Partition>)>,
    /// The flush policy was due: wait for the leader's fsync too.
    flush: bool,
}

/// Batches appended (or refused), awaiting their acknowledgement.
#[derive(Debug)]
#[must_use = "an append is answered by waiting for it"]
pub struct Appending {
    slots: Vec<Slot>,
    deadline: tokio::time::Instant,
    acks_all: bool,
}

impl ReplicaManager {
    /// Validates and appends every partition of `req`, then wakes the
    /// fetches waiting on them, once, after the last append (a follower
    /// picks the whole request up in one round trip).
    pub async fn append(&self, req: AppendRequest) -> Appending {
        let request_error = request_error(&req);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
        let mut slots = Vec::with_capacity(req.partitions.len());
        // Dropped after every partition is appended: fetches wake once.
        let mut wakes = Vec::with_capacity(req.partitions.len());
        for p in req.partitions {
            let mut slot = Slot {
                topic: p.topic,
                partition: p.partition,
                result: Err(PartError::new(ErrorCode::UnknownServerError, "")),
                wait: None,
                flush: false,
            };
            let appended = match &request_error {
                Some(e) => Err(e.clone()),
                None => {
                    self.append_partition(
                        &slot.topic,
                        p.partition,
                        p.records,
                        req.acks,
                        req.origin,
                        req.transactional_id.as_deref(),
                        deadline,
                    )
                    .await
                }
            };
            match appended {
                Ok((appended, epoch, policy_flush, part, wake)) => {
                    wakes.push(wake);
                    slot.result = Ok(appended);
                    if req.acks != 0 {
                        slot.flush = policy_flush;
                        slot.wait = Some((appended.last_offset + 1, epoch, part));
                    }
                }
                Err(e) => slot.result = Err(e),
            }
            slots.push(slot);
        }
        drop(wakes);
        Appending {
            slots,
            deadline,
            acks_all: req.acks == -1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_partition(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i32,
        origin: AppendOrigin,
        transactional_id: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<(Appended, i32, bool, Arc<Partition>, super::partition::Wake), PartError> {
        if records.is_empty() {
            return Err(PartError::new(
                ErrorCode::CorruptMessage,
                "the request holds no record batch",
            ));
        }
        if origin == AppendOrigin::Client {
            if strom_metadata::is_internal_topic(topic) {
                return Err(PartError::new(
                    ErrorCode::InvalidTopicException,
                    format!("{topic} is an internal topic: clients cannot write to it"),
                ));
            }
            check_client_batches(&records)?;
        }
        let part = self.partition(topic, partition)?;
        if origin == AppendOrigin::Client
            && let Some((producer_id, producer_epoch)) = part.txn_to_verify(&records).await
        {
            self.verify_txn(
                transactional_id,
                producer_id,
                producer_epoch,
                topic,
                partition,
                deadline,
            )
            .await?;
        }
        let (info, epoch, policy_flush, wake) = part.append_as_leader(records, acks).await?;
        let appended = Appended {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_append_time: info.log_append_time,
            log_start_offset: part.reader().log_start_offset(),
        };
        Ok((appended, epoch, policy_flush, part, wake))
    }
}

impl ReplicaManager {
    /// A coordinator's transactional write for a producer (TxnOffsetCommit
    /// on `__consumer_offsets`): the first sequence its batch must carry in
    /// `topic`-`partition`. The caller serialises its writes there.
    pub async fn next_sequence(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<i32, PartError> {
        Ok(self
            .partition(topic, partition)?
            .next_sequence(producer_id, producer_epoch)
            .await)
    }

    /// KIP-890 for a coordinator's transactional batch (TxnOffsetCommit):
    /// verifies `records` at the transaction coordinator when they would
    /// start the producer's transaction in `topic`-`partition`.
    pub async fn verify_txn_batch(
        &self,
        transactional_id: &str,
        topic: &str,
        partition: i32,
        records: &Bytes,
    ) -> Result<(), PartError> {
        let part = self.partition(topic, partition)?;
        match part.txn_to_verify(records).await {
            Some((producer_id, producer_epoch)) => {
                self.verify_txn(
                    Some(transactional_id),
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                    tokio::time::Instant::now() + COORDINATOR_VERIFY_RETRY_BUDGET,
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// KIP-890: asks the transaction coordinator to add `topic`-`partition`
    /// to the transaction of `transactional_id` before the leader writes
    /// the producer's first transactional batch here. A refusal
    /// (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, ...)
    /// refuses the batch: a late batch of a finished transaction never
    /// opens a hanging one. CONCURRENT_TRANSACTIONS (the previous
    /// transaction's markers are still being written, as right after an
    /// EndTxn) is retried here after [`concurrent_txn_retry_delay`] until
    /// `deadline`, as Kafka 4.0's leader does (KAFKA-18654), instead of
    /// sending the producer into its 100 ms `retry.backoff.ms`.
    async fn verify_txn(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
        deadline: tokio::time::Instant,
    ) -> Result<(), PartError> {
        let Some(transactional_id) = transactional_id else {
            return Err(PartError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "transactional batches of producer {producer_id} for {topic}-{partition} come without the producer's transactional id"
                ),
            ));
        };
        let Some(verifier) = self.txn_verifier() else {
            return Err(PartError::new(
                ErrorCode::CoordinatorNotAvailable,
                "this broker runs no transaction coordinator to verify transactional batches",
            ));
        };
        let mut attempt = 0;
        loop {
            let result = verifier
                .verify(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                )
                .await;
            match result {
                Err(e) if e.code == ErrorCode::ConcurrentTransactions => {
                    let delay = concurrent_txn_retry_delay(attempt);
                    if tokio::time::Instant::now() + delay >= deadline {
                        return Err(verification_error(e));
                    }
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                other => return other.map_err(verification_error),
            }
        }
    }

    /// WriteTxnMarkers on a partition this broker leads: appends a COMMIT
    /// or ABORT marker for `producer_id` at `producer_epoch` and waits for
    /// the ISR (acks=all, `timeout_ms`). An older producer epoch than the
    /// partition knows is INVALID_PRODUCER_EPOCH, an older coordinator
    /// epoch TRANSACTION_COORDINATOR_FENCED: nothing is written then.
    pub async fn write_txn_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: strom_log::batch::control::EndTxnMarker,
        timeout_ms: i32,
    ) -> Result<Appended, PartError> {
        let part = self.partition(topic, partition)?;
        let (info, epoch, flush, wake) = part
            .append_txn_marker_as_leader(producer_id, producer_epoch, marker)
            .await?;
        drop(wake);
        let appended = Appended {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_append_time: info.log_append_time,
            log_start_offset: part.reader().log_start_offset(),
        };
        Appending::one(topic, partition, appended, epoch, part, flush, timeout_ms)
            .wait_one()
            .await
    }

    /// A coordinator's write: appends `records` to `topic`-`partition` only
    /// while this broker leads it at `leader_epoch` (the epoch the
    /// coordinator loaded its state at), then waits for acks=all. Another
    /// epoch is FENCED_LEADER_EPOCH (the records may be in the log then,
    /// unacknowledged: the coordinator reloads).
    pub async fn append_at_epoch(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        leader_epoch: i32,
        timeout_ms: i32,
    ) -> Result<Appended, PartError> {
        let (role, epoch) = self.partition(topic, partition)?.role();
        if role != super::partition::Role::Leader || epoch != leader_epoch {
            return Err(PartError::new(
                ErrorCode::FencedLeaderEpoch,
                format!("{topic}-{partition} is no longer led here at epoch {leader_epoch}"),
            ));
        }
        let (appended, epoch, flush, part, wake) = self
            .append_partition(
                topic,
                partition,
                records,
                -1,
                AppendOrigin::Coordinator,
                None,
                tokio::time::Instant::now()
                    + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
            )
            .await?;
        drop(wake);
        if epoch != leader_epoch {
            return Err(PartError::new(
                ErrorCode::FencedLeaderEpoch,
                format!("{topic}-{partition} changed leader epoch to {epoch} during the write"),
            ));
        }
        Appending::one(topic, partition, appended, epoch, part, flush, timeout_ms)
            .wait_one()
            .await
    }
}

impl Appending {
    /// An acks=all wait for one partition's append.
    fn one(
        topic: &str,
        partition: i32,
        appended: Appended,
        epoch: i32,
        part: Arc<Partition>,
        flush: bool,
        timeout_ms: i32,
    ) -> Self {
        Appending {
            slots: vec![Slot {
                topic: topic.to_owned(),
                partition,
                result: Ok(appended),
                wait: Some((appended.last_offset + 1, epoch, part)),
                flush,
            }],
            deadline: tokio::time::Instant::now()
                + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
            acks_all: true,
        }
    }

    /// The outcome of [`one`](Self::one).
    async fn wait_one(self) -> Result<Appended, PartError> {
        match self.wait().await.pop() {
            Some(r) => r.result,
            None => Err(PartError::new(
                ErrorCode::UnknownServerError,
                "no append result",
            )),
        }
    }

    /// The outcome per partition, in the request's order: at once for
    /// acks 0 and 1, after the ISR has the records (or the leadership
    /// ends, or the timeout expires) for acks=all. A partition that fails
    /// its wait has its records in the leader's log, unacknowledged.
    pub async fn wait(self) -> Vec<PartitionResult<Appended>> {
        let Self {
            slots,
            deadline,
            acks_all,
        } = self;
        let waits = slots.into_iter().map(|slot| async move {
            let Slot {
                topic,
                partition,
                mut result,
                wait,
                flush,
            } = slot;
            if let Some((required, epoch, part)) = wait {
                let waited = if flush {
                    part.wait_flushed(required, epoch, deadline).await
                } else {
                    Ok(())
                };
                let waited = match waited {
                    Ok(()) if acks_all => part.wait_for_isr(required, epoch, deadline).await,
                    other => other,
                };
                if let Err(e) = waited {
                    result = Err(e);
                }
            }
            PartitionResult {
                topic,
                partition,
                result,
            }
        });
        futures::future::join_all(waits).await
    }
}

/// The first wait before verifying again after CONCURRENT_TRANSACTIONS.
/// Kafka's `add.partitions.to.txn.retry.backoff.ms` defaults to 20 ms, but
/// here the common case is the previous transaction's markers, which take
/// a replication round trip or two (a few ms on a LAN): with 20 ms, every
/// back-to-back transaction waited ~20 ms for its first batch (release
/// txn-latency p50 24 ms, docs/benchmarks.md). Doubling from 2 ms costs a
/// few more verification calls in that window and answers within ~2× the
/// markers' time.
const CONCURRENT_TXN_RETRY_BACKOFF: Duration = Duration::from_millis(2);
/// The longest such wait (Kafka's `add.partitions.to.txn.retry.backoff.max.ms`
/// default).
const CONCURRENT_TXN_RETRY_BACKOFF_MAX: Duration = Duration::from_millis(100);
/// How long a coordinator's own transactional write (TxnOffsetCommit)
/// retries its verification through CONCURRENT_TRANSACTIONS before it
/// answers the retriable error.
const COORDINATOR_VERIFY_RETRY_BUDGET: Duration = Duration::from_secs(1);

/// The wait before verification retry `attempt` + 1 after
/// CONCURRENT_TRANSACTIONS: 2 ms doubled per attempt, at most 100 ms.
fn concurrent_txn_retry_delay(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    CONCURRENT_TXN_RETRY_BACKOFF
        .saturating_mul(factor)
        .min(CONCURRENT_TXN_RETRY_BACKOFF_MAX)
}

/// A failed KIP-890 verification as the producer sees it. The coordinator
/// being away or busy is retriable for the produce: NOT_ENOUGH_REPLICAS,
/// as Kafka answers (a producer retries it, while it would not retry
/// NOT_COORDINATOR on a produce). Refusals keep their code.
fn verification_error(e: strom_proto::StromError) -> PartError {
    let code = match e.code {
        ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::ConcurrentTransactions
        | ErrorCode::NetworkException
        | ErrorCode::RequestTimedOut
        | ErrorCode::BrokerNotAvailable => ErrorCode::NotEnoughReplicas,
        other => other,
    };
    PartError::new(
        code,
        format!("verifying the transaction at its coordinator: {e}"),
    )
}

/// The request-wide refusal, if any.
fn request_error(req: &AppendRequest) -> Option<PartError> {
    if !matches!(req.acks, -1..=1) {
        Some(PartError::new(
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1 (all), 0 or 1, got {}", req.acks),
        ))
    } else if req.timeout_ms < 0 {
        Some(PartError::new(
            ErrorCode::InvalidRequest,
            format!("timeout_ms must not be negative, got {}", req.timeout_ms),
        ))
    } else {
        None
    }
}

/// Refuses client batches this broker cannot honour: control batches
/// (only a transaction coordinator writes markers), and inconsistent
/// producer fields. An idempotent (or transactional) batch carries a
/// producer id, epoch and base sequence, all at least 0; a plain one
/// carries -1 in all three, and cannot be transactional. The log's producer
/// state then checks the sequence. Malformed batches pass here: the log's
/// validation refuses them with CORRUPT_MESSAGE.
pub(crate) fn check_client_batches(records: &Bytes) -> Result<(), PartError> {
    for batch in BatchIter::new(records.clone()) {
        let Ok(batch) = batch else { return Ok(()) };
        let (id, epoch, seq) = (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        );
        let what = if batch.is_control() {
            Some("is a control batch, which only a transaction coordinator writes".to_owned())
        } else if batch.is_transactional() && id < 0 {
            Some("is transactional without a producer id".to_owned())
        } else if (id, epoch, seq) == (-1, -1, -1) || (id >= 0 && epoch >= 0 && seq >= 0) {
            None
        } else {
            Some(format!(
                "carries producer id {id}, epoch {epoch}, base sequence {seq}: an idempotent batch sets all three (at least 0), a plain one none (-1)"
            ))
        };
        if let Some(what) = what {
            return Err(PartError::new(
                ErrorCode::InvalidRecord,
                format!("the batch at offset delta {} {what}", batch.base_offset()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use strom_log::batch::{Compression, RecordBatchBuilder};

    use super::*;

    fn batch(configure: impl FnOnce(RecordBatchBuilder) -> RecordBatchBuilder) -> Bytes {
        let mut b = configure(RecordBatchBuilder::new(Compression::None));
        b.append(1, Some(b"k"), Some(b"v"), &[]);
        b.build()
    }

    #[test]
    fn concurrent_transactions_are_retried_after_2_ms_doubling_to_100() {
        let delays: Vec<u128> = (0..9)
            .map(|a| concurrent_txn_retry_delay(a).as_millis())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 100, 100, 100]);
        assert_eq!(
            concurrent_txn_retry_delay(u32::MAX),
            CONCURRENT_TXN_RETRY_BACKOFF_MAX
        );
    }

    #[test]
    fn verification_errors_are_retriable_while_the_coordinator_is_away() {
        use strom_proto::StromError;
        let table = [
            (ErrorCode::NotCoordinator, ErrorCode::NotEnoughReplicas),
            (
                ErrorCode::CoordinatorLoadInProgress,
                ErrorCode::NotEnoughReplicas,
            ),
            (
                ErrorCode::ConcurrentTransactions,
                ErrorCode::NotEnoughReplicas,
            ),
            (ErrorCode::NetworkException, ErrorCode::NotEnoughReplicas),
            (ErrorCode::ProducerFenced, ErrorCode::ProducerFenced),
            (
                ErrorCode::InvalidProducerEpoch,
                ErrorCode::InvalidProducerEpoch,
            ),
            (
                ErrorCode::InvalidProducerIdMapping,
                ErrorCode::InvalidProducerIdMapping,
            ),
            (ErrorCode::InvalidTxnState, ErrorCode::InvalidTxnState),
        ];
        for (from, to) in table {
            let e = verification_error(StromError::new(from, "x"));
            assert_eq!(e.code, to, "{}", from.as_str_name());
            assert!(e.message.contains(from.as_str_name()), "{}", e.message);
        }
    }

    #[test]
    fn client_batches_with_inconsistent_producer_fields_or_control_bits_are_refused() {
        let table: Vec<(&str, Bytes, Option<&str>)> = vec![
            ("plain", batch(|b| b), None),
            ("idempotent", batch(|b| b.producer(1000, 0, 0)), None),
            (
                "producer id",
                batch(|b| b.producer(7, -1, -1)),
                Some("producer id 7"),
            ),
            (
                "producer epoch",
                batch(|b| b.producer(-1, 0, -1)),
                Some("epoch 0"),
            ),
            (
                "sequence",
                batch(|b| b.producer(-1, -1, 0)),
                Some("base sequence 0"),
            ),
            (
                "negative sequence with a producer id",
                batch(|b| b.producer(1000, 0, -1)),
                Some("base sequence -1"),
            ),
            (
                "transactional",
                batch(|b| b.producer(1000, 0, 0).transactional(true)),
                None,
            ),
            (
                "transactional without a producer",
                batch(|b| b.transactional(true)),
                Some("transactional without a producer id"),
            ),
            ("control", batch(|b| b.control(true)), Some("control batch")),
            // Malformed input is the log's to refuse (CORRUPT_MESSAGE).
            ("garbage", Bytes::from_static(b"garbage"), None),
        ];
        for (name, records, refused) in table {
            let result = check_client_batches(&records);
            match refused {
                None => assert!(result.is_ok(), "{name}: {result:?}"),
                Some(needle) => {
                    let e = result.expect_err(name);
                    assert_eq!(e.code, ErrorCode::InvalidRecord, "{name}");
                    assert!(e.message.contains(needle), "{name}: {}", e.message);
                }
            }
        }
        // A refused batch behind a good one refuses the whole partition.
        let mut two = bytes::BytesMut::new();
        two.extend_from_slice(&batch(|b| b));
        two.extend_from_slice(&batch(|b| b.producer(3, -1, 0)));
        assert!(check_client_batches(&two.freeze()).is_err());
    }
}
