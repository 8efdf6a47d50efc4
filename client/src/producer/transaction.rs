//! The transactional producer's calls (Kafka's `initTransactions`,
//! `beginTransaction`, `sendOffsetsToTransaction`, `commitTransaction`,
//! `abortTransaction`) and its link to the transaction coordinator.
//!
//! The decisions (which call is allowed, fatal or abortable) are
//! `txn_state`'s; this file does the requests:
//! * the coordinator is the leader of the id's `__transaction_state`
//!   partition (`FindCoordinator` with key type TRANSACTION), found again
//!   after NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a broken
//!   connection;
//! * NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS
//!   and the other retriable answers are retried with backoff until
//!   `max.block.ms`, as Kafka's client does; CONCURRENT_TRANSACTIONS (the
//!   previous transaction still writing its markers) after a short one,
//!   20 ms doubling up to `retry.backoff.ms`;
//! * records join the transaction with their first batch: the produce
//!   request carries the transactional id and the partition leader adds
//!   the partition at the coordinator (transaction version 2, KIP-890), so
//!   the client sends no AddPartitionsToTxn;
//! * every EndTxn answers the producer id and epoch of the next
//!   transaction (the coordinator bumps the epoch, KIP-890): every
//!   partition's sequences start again at 0 in it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::transaction_service_client::TransactionServiceClient;
use tokio::time::Instant;
use tonic::transport::Channel;
use tracing::debug;

use super::accumulator::Deliveries;
use super::txn_state::{Call, Phase, TxnState};
use super::{Producer, Shared};
use crate::admin::TopicPartition;
use crate::consumer::{ConsumerGroupMetadata, OffsetAndMetadata};
use crate::coordinator::{self, Coordinator, request};
use crate::error::{Error, Result};
use crate::pool::MAX_MESSAGE_SIZE;
use crate::retry::{self, Backoff};

/// A transactional producer's state, shared by its clones and its sender.
#[derive(Debug)]
pub(super) struct Transactions {
    pub(super) transactional_id: String,
    state: Mutex<TxnState>,
    /// The transaction coordinator.
    coordinator: Coordinator,
    /// The last group coordinator used for TxnOffsetCommit.
    group_coordinator: Mutex<Option<Arc<Coordinator>>>,
    /// The producer id and epoch of the current transaction.
    producer: Mutex<Option<(i64, i16)>>,
    /// One transactional call at a time (init, offsets, commit, abort).
    calls: tokio::sync::Mutex<()>,
}

impl Transactions {
    pub(super) fn new(transactional_id: String) -> Self {
        Self {
            coordinator: Coordinator::new(
                transactional_id.clone(),
                pb::CoordinatorKeyType::Transaction,
            ),
            transactional_id,
            state: Mutex::new(TxnState::default()),
            group_coordinator: Mutex::new(None),
            producer: Mutex::new(None),
            calls: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TxnState> {
        self.state
            .lock()
            .expect("transaction lock is never poisoned")
    }

    /// Checks that a record may be sent now (fails fast, before waiting
    /// for metadata or memory); sending leaves the phase as it is.
    pub(super) fn check_send(&self) -> Result<()> {
        self.state().start(Call::Send)
    }

    /// Under the producer's core lock, right before the append: the record
    /// joins the open transaction, or is refused.
    pub(super) fn join(&self) -> Result<()> {
        let mut state = self.state();
        state.start(Call::Send)?;
        state.mark_started();
        Ok(())
    }

    /// A record of the transaction failed for good.
    pub(super) fn record_failed(&self, error: Error) {
        let mut state = self.state();
        if matches!(state.phase(), Phase::InTransaction | Phase::Committing) {
            debug!(%error, "a record failed: the transaction must abort");
        }
        state.fail_record(error);
    }

    /// A record could not be queued: the transaction must abort.
    pub(super) fn send_failed(&self, error: Error) -> Error {
        self.state().fail(error)
    }

    fn fail(&self, error: Error) -> Error {
        self.state().fail(error)
    }

    fn producer(&self) -> Result<(i64, i16)> {
        self.producer
            .lock()
            .expect("transaction lock is never poisoned")
            .ok_or_else(|| Error::IllegalState("the producer has no producer id".into()))
    }

    fn set_producer(&self, id: i64, epoch: i16) {
        *self
            .producer
            .lock()
            .expect("transaction lock is never poisoned") = Some((id, epoch));
    }
}

/// Converts a wire epoch; the coordinator never sends one outside `i16`.
fn epoch_of(epoch: i32) -> Result<i16> {
    i16::try_from(epoch).map_err(|_| {
        Error::strom(
            ErrorCode::UnknownServerError,
            format!("the coordinator answered an invalid producer epoch {epoch}"),
        )
    })
}

impl Producer {
    fn transactions(&self) -> Result<&Transactions> {
        self.handle.shared.txn.as_ref().ok_or_else(|| {
            Error::IllegalState(
                "the producer is not transactional: set transactional.id in its config".into(),
            )
        })
    }

    /// Registers the producer's `transactional.id` with its coordinator
    /// (`InitProducerId`): fences every earlier producer with the same id
    /// and completes or aborts the transaction it left open. Call once,
    /// before any other transactional call; waits at most `max.block.ms`.
    /// After a timeout it may be called again.
    ///
    /// Errors: INVALID_TRANSACTION_TIMEOUT (`transaction.timeout.ms`
    /// above the broker's `transaction.max.timeout.ms`) and other refusals
    /// are fatal ([`Error::FatalTransaction`]); INVALID_TXN_STATE
    /// ([`Error::IllegalState`]) when called twice.
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactions()?;
        let _call = txn.calls.lock().await;
        txn.state().start(Call::Init)?;
        let shared = &self.handle.shared;
        let message = pb::InitProducerIdRequest {
            transactional_id: txn.transactional_id.clone(),
            transaction_timeout_ms: i32::try_from(shared.config.transaction_timeout.as_millis())
                .unwrap_or(i32::MAX),
            producer_id: -1,
            producer_epoch: -1,
        };
        let answer = self
            .coordinator_call("init transactions", |channel, timeout| {
                let message = message.clone();
                async move {
                    let r = BrokerServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_SIZE)
                        .init_producer_id(request(message, timeout))
                        .await?
                        .into_inner();
                    match crate::error::item_error(r.error_code, &r.error_message) {
                        Some(e) => Err(e.to_status()),
                        None => Ok(tonic::Response::new(r)),
                    }
                }
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // Timed out: init_transactions may be called again.
            Err(error @ Error::Timeout { .. }) => return Err(error),
            Err(error) => return Err(txn.state().fail_fatal(error)),
        };
        let epoch = epoch_of(answer.producer_epoch)?;
        debug!(
            transactional_id = %txn.transactional_id,
            producer_id = answer.producer_id,
            epoch,
            "transactional producer initialised"
        );
        self.start_epoch(answer.producer_id, epoch);
        txn.state().ready();
        Ok(())
    }

    /// Opens a transaction: the records sent until the commit or abort
    /// belong to it. INVALID_TXN_STATE ([`Error::IllegalState`]) before
    /// `init_transactions` or while a transaction is open.
    pub fn begin_transaction(&self) -> Result<()> {
        self.transactions()?.state().start(Call::Begin)
    }

    /// Commits consumer offsets inside the open transaction (Kafka's
    /// `sendOffsetsToTransaction`): they become the group's committed
    /// offsets when the transaction commits, and are dropped if it aborts.
    /// `offsets` are the next offsets to consume (as
    /// `Consumer::consumed_offsets`), `group` the consumer's
    /// [`Consumer::group_metadata`](crate::Consumer::group_metadata): the
    /// coordinator refuses a member that is no longer current
    /// (FENCED_MEMBER_EPOCH, STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID), and the
    /// transaction must then abort ([`Error::AbortableTransaction`]).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.transactions()?;
        let _call = txn.calls.lock().await;
        txn.state().start(Call::SendOffsets)?;
        if group.group_id.is_empty() {
            return Err(Error::InvalidArgument("the group id is empty".into()));
        }
        if let Some((tp, o)) = offsets.iter().find(|(_, o)| o.offset < 0) {
            return Err(Error::InvalidArgument(format!(
                "cannot commit a negative offset ({}) for {tp}",
                o.offset
            )));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let (producer_id, epoch) = txn.producer()?;
        let add = pb::AddOffsetsToTxnRequest {
            transactional_id: txn.transactional_id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            group_id: group.group_id.clone(),
        };
        self.coordinator_call("add offsets to the transaction", |channel, timeout| {
            let add = add.clone();
            async move {
                TransactionServiceClient::new(channel)
                    .add_offsets_to_txn(request(add, timeout))
                    .await
            }
        })
        .await
        .map_err(|e| txn.fail(e))?;
        txn.state().mark_started();
        let commit = pb::TxnOffsetCommitRequest {
            transactional_id: txn.transactional_id.clone(),
            group_id: group.group_id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            member_id: group.member_id.clone(),
            member_epoch: group.generation_id,
            offsets: offsets
                .iter()
                .map(|(tp, o)| pb::TxnOffsetCommitPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch.unwrap_or(-1),
                    metadata: o.metadata.clone(),
                })
                .collect(),
        };
        self.group_call(
            &group.group_id,
            "transactional offset commit",
            |channel, timeout| {
                let commit = commit.clone();
                async move {
                    TransactionServiceClient::new(channel)
                        .txn_offset_commit(request(commit, timeout))
                        .await
                }
            },
        )
        .await
        .map_err(|e| txn.fail(e))?;
        Ok(())
    }

    /// Sends every record of the transaction (a flush), then commits it:
    /// its records and offsets become visible to `read_committed`
    /// consumers at once. Waits at most `max.block.ms` for the
    /// coordinator; after a timeout it may be called again.
    ///
    /// Errors: [`Error::AbortableTransaction`] when a record or an offset
    /// commit of the transaction failed (call
    /// [`abort_transaction`](Self::abort_transaction));
    /// [`Error::FatalTransaction`] when a newer producer with the same
    /// transactional id fenced this one (PRODUCER_FENCED), or the
    /// coordinator aborted the transaction after `transaction.timeout.ms`.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        let _call = txn.calls.lock().await;
        txn.state().start(Call::Commit)?;
        self.flush().await?;
        // A record that failed made the transaction abortable meanwhile.
        txn.state().start(Call::Commit)?;
        self.end_transaction(txn, true).await
    }

    /// Aborts the transaction: records not sent yet fail with the abort,
    /// records in flight are awaited, and everything the transaction wrote
    /// is never shown to `read_committed` consumers. The producer may then
    /// begin the next transaction. Waits at most `max.block.ms` for the
    /// coordinator; after a timeout it may be called again.
    ///
    /// Errors: [`Error::FatalTransaction`] when the producer was fenced.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        let _call = txn.calls.lock().await;
        txn.state().start(Call::Abort)?;
        self.fail_pending_records().await;
        self.end_transaction(txn, false).await
    }

    /// Fails the records still queued with the abort and waits until the
    /// ones in flight are answered.
    async fn fail_pending_records(&self) {
        let shared = &self.handle.shared;
        let abort = Error::AbortableTransaction(Box::new(Error::IllegalState(
            "the transaction was aborted before the record was sent".into(),
        )));
        let mut progress = shared.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let mut failed = Deliveries::default();
            let idle = {
                let mut core = shared.lock();
                core.accumulator.fail_queued(&abort, &mut failed);
                core.accumulator.is_idle()
            };
            super::sender::deliver(shared, failed);
            if idle {
                return;
            }
            shared.wakeup.notify_one();
            if progress.changed().await.is_err() {
                return;
            }
        }
    }

    /// EndTxn (commit or abort), unless nothing of the transaction reached
    /// a broker; the answer's producer id and epoch are the next
    /// transaction's.
    async fn end_transaction(&self, txn: &Transactions, commit: bool) -> Result<()> {
        if !txn.state().started() {
            txn.state().ready();
            return Ok(());
        }
        let (producer_id, epoch) = txn.producer()?;
        let end = pb::EndTxnRequest {
            transactional_id: txn.transactional_id.clone(),
            producer_id,
            producer_epoch: i32::from(epoch),
            committed: commit,
        };
        let what = if commit {
            "commit the transaction"
        } else {
            "abort the transaction"
        };
        let answer = self
            .coordinator_call(what, |channel, timeout| {
                let end = end.clone();
                async move {
                    TransactionServiceClient::new(channel)
                        .end_txn(request(end, timeout))
                        .await
                }
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // Still committing (aborting): the call may be made again, and
            // the coordinator answers the retry from its state.
            Err(error @ Error::Timeout { .. }) => return Err(error),
            Err(error) => return Err(txn.fail(error)),
        };
        let next_epoch = epoch_of(answer.producer_epoch)?;
        debug!(
            transactional_id = %txn.transactional_id,
            commit,
            producer_id = answer.producer_id,
            epoch = next_epoch,
            "transaction ended"
        );
        self.start_epoch(answer.producer_id, next_epoch);
        txn.state().ready();
        Ok(())
    }

    /// The next batches go out as `producer_id` at `epoch`, sequences from 0.
    fn start_epoch(&self, producer_id: i64, epoch: i16) {
        let shared = &self.handle.shared;
        if let Some(txn) = &shared.txn {
            txn.set_producer(producer_id, epoch);
        }
        shared.lock().accumulator.set_epoch(producer_id, epoch);
    }

    /// A call to the transaction coordinator, found (again) as needed, and
    /// retried through retriable answers until `max.block.ms`.
    async fn coordinator_call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let txn = self.transactions()?;
        call_coordinator(&self.handle.shared, &txn.coordinator, what, f).await
    }

    /// A call to `group`'s coordinator, as [`Self::coordinator_call`].
    async fn group_call<T, F, Fut>(&self, group: &str, what: &str, f: F) -> Result<T>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let txn = self.transactions()?;
        let coordinator = {
            let mut last = txn
                .group_coordinator
                .lock()
                .expect("transaction lock is never poisoned");
            match last.as_ref().filter(|c| c.key() == group) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(Coordinator::new(group, pb::CoordinatorKeyType::Group));
                    *last = Some(c.clone());
                    c
                }
            }
        };
        call_coordinator(&self.handle.shared, &coordinator, what, f).await
    }
}

/// The first wait after CONCURRENT_TRANSACTIONS: the previous transaction
/// of the id is still completing (its markers are being written), which
/// takes milliseconds, so the wait is short, as Kafka's client does for
/// AddPartitionsToTxn (KAFKA-20000 for the other transactional calls).
const CONCURRENT_TRANSACTIONS_BACKOFF: Duration = Duration::from_millis(20);

/// The wait before retry `attempt` (1 for the first) after
/// CONCURRENT_TRANSACTIONS: 20 ms doubled per attempt, at most
/// `retry_backoff` (`retry.backoff.ms`, 100), and never more than
/// `retry_backoff` when that is configured shorter than 20 ms.
fn concurrent_transactions_delay(retry_backoff: Duration, attempt: u32) -> Duration {
    Backoff::delay_for_attempt(
        CONCURRENT_TRANSACTIONS_BACKOFF.min(retry_backoff),
        retry_backoff,
        attempt,
    )
}

/// See [`Producer::coordinator_call`].
async fn call_coordinator<T, F, Fut>(
    shared: &Shared,
    coordinator: &Coordinator,
    what: &str,
    mut f: F,
) -> Result<T>
where
    F: FnMut(Channel, Duration) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let config = &shared.config;
    let key = coordinator.key();
    let deadline = Instant::now() + config.max_block;
    let mut backoff = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
    let mut concurrent = 0;
    loop {
        let timeout = config
            .client
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1));
        let error = match coordinator
            .call_once(&config.client, &shared.pool, timeout, |channel, t| {
                f(channel, t)
            })
            .await
        {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        let transient = retry::is_retriable(&error) || coordinator::moved(&error);
        let delay = if error.code() == Some(ErrorCode::ConcurrentTransactions) {
            concurrent += 1;
            concurrent_transactions_delay(config.client.retry_backoff, concurrent)
        } else {
            backoff.next_delay()
        };
        if !transient {
            return Err(error);
        }
        if Instant::now() + delay >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "{what} ({key}) did not complete within max.block.ms ({} ms; last error: \
                     {error})",
                    config.max_block.as_millis()
                ),
            });
        }
        debug!(%error, what, key, "retrying a coordinator call");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_transactions_are_retried_after_20_ms_up_to_retry_backoff() {
        let ms = Duration::from_millis;
        let table = [
            // (retry.backoff.ms, attempt, wait)
            (ms(100), 1, ms(20)),
            (ms(100), 2, ms(40)),
            (ms(100), 3, ms(80)),
            (ms(100), 4, ms(100)),
            (ms(100), 30, ms(100)),
            (ms(1000), 5, ms(320)),
            (ms(5), 1, ms(5)),
            (ms(5), 3, ms(5)),
        ];
        for (retry_backoff, attempt, want) in table {
            assert_eq!(
                concurrent_transactions_delay(retry_backoff, attempt),
                want,
                "retry.backoff.ms {retry_backoff:?}, attempt {attempt}"
            );
        }
    }
}
