//! The producer's background task: sends ready batches, grouped by leader
//! into one `Produce` request per broker (each partition in up to
//! `max.in.flight.requests.per.connection` requests at a time), applies the
//! answers, keeps metadata fresh, expires
//! batches at `delivery.timeout.ms`, and exits once closing and idle.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::{ErrorCode, InitProducerIdRequest};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::debug;

use super::Shared;
use super::accumulator::{Deliveries, ProducerBatch};
use super::config::Acks;
use super::convert::{PartitionOutcome, missing_outcome, partition_outcomes, produce_request};
use crate::admin::TopicPartition;
use crate::cluster::Leader;
use crate::error::{Error, item_error};
use crate::retry::{self, Backoff, invalidates_metadata, is_retriable_for_partition};

/// Extra time the client waits for a produce answer beyond the
/// `timeout_ms` it gives the broker, so the broker's REQUEST_TIMED_OUT
/// arrives before the client gives up on the connection.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// Batches sent to one leader in one request.
type Drained = Vec<(TopicPartition, Vec<ProducerBatch>)>;

/// A finished produce request: its batches come back with the answer.
#[derive(Debug)]
struct RequestOutcome {
    leader: Leader,
    batches: Drained,
    result: Result<std::collections::HashMap<TopicPartition, PartitionOutcome>, Error>,
}

/// A produce request awaiting its answer.
type InFlight = Pin<Box<dyn Future<Output = RequestOutcome> + Send>>;

/// Runs until the producer is closed and every batch is finished.
pub(super) async fn run(shared: Arc<Shared>, finished: watch::Sender<bool>) {
    // Polled by this loop itself rather than spawned: an answer then wakes
    // this task directly (one hop from the produce session's reader), not
    // a request task that in turn wakes this one.
    let mut requests: FuturesUnordered<InFlight> = FuturesUnordered::new();
    let mut unacknowledged: JoinSet<()> = JoinSet::new();
    let mut refreshes: JoinSet<crate::Result<()>> = JoinSet::new();
    // The idempotent producer's `InitProducerId`, one at a time, retried
    // after a backoff when it fails.
    let mut producer_id: JoinSet<crate::Result<i64>> = JoinSet::new();
    let mut producer_id_attempts = 0u32;
    let mut producer_id_retry_at: Option<Instant> = None;
    let config = &shared.config;
    loop {
        let now = Instant::now();
        if producer_id.is_empty()
            && producer_id_retry_at.is_none_or(|at| at <= now)
            && shared.lock().accumulator.needs_producer_id()
        {
            producer_id_retry_at = None;
            producer_id.spawn(init_producer_id(shared.clone()));
        }
        let memory_exhausted = shared.memory_waiters.load(Ordering::Relaxed) > 0;

        let refresh_due = shared.metadata.refresh_due(now, config.metadata_max_age);
        if refreshes.is_empty()
            && let Some(due) = refresh_due
            && due <= now
        {
            let shared = shared.clone();
            refreshes.spawn(async move { shared.metadata.refresh().await });
        }

        let mut expired = Deliveries::default();
        let ready = {
            let mut core = shared.lock();
            core.accumulator.expire(now, &mut expired);
            core.accumulator.ready(now, memory_exhausted)
        };
        deliver(&shared, expired);

        let (by_leader, leaderless) = group_by_leader(&shared, ready.partitions);
        if leaderless {
            shared.metadata.mark_stale();
        }
        for (leader, partitions) in by_leader.into_values() {
            let mut answered = Deliveries::default();
            let drained = {
                let mut core = shared.lock();
                let mut drained = core.accumulator.drain(
                    &partitions,
                    config.max_request_size,
                    now,
                    memory_exhausted,
                );
                if config.acks == Acks::None {
                    core.accumulator
                        .complete_unacknowledged(&mut drained, &mut answered);
                }
                drained
            };
            if drained.is_empty() {
                continue;
            }
            if config.acks == Acks::None {
                deliver(&shared, answered);
                unacknowledged.spawn(send_unacknowledged(shared.clone(), leader, drained));
            } else {
                requests.push(Box::pin(send(shared.clone(), leader, drained)));
            }
        }

        let (closing, idle) = {
            let core = shared.lock();
            (core.accumulator.is_closing(), core.accumulator.is_idle())
        };
        if closing && idle && requests.is_empty() && unacknowledged.is_empty() {
            break;
        }

        let mut next = ready.next_check;
        if let Some(at) = producer_id_retry_at {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        if refreshes.is_empty()
            && let Some(due) = shared.metadata.refresh_due(now, config.metadata_max_age)
        {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        tokio::select! {
            _ = shared.wakeup.notified() => {}
            Some(outcome) = requests.next(), if !requests.is_empty() => {
                handle_outcome(&shared, outcome);
                // Others that completed meanwhile, before the next scan.
                while let Some(Some(outcome)) = requests.next().now_or_never() {
                    handle_outcome(&shared, outcome);
                }
            }
            Some(_) = unacknowledged.join_next(), if !unacknowledged.is_empty() => {}
            Some(done) = producer_id.join_next(), if !producer_id.is_empty() => {
                match done {
                    Ok(Ok(id)) => {
                        debug!(producer_id = id, "idempotent producer id");
                        producer_id_attempts = 0;
                        shared.lock().accumulator.set_producer_id(id);
                    }
                    Ok(Err(error)) => {
                        producer_id_attempts += 1;
                        debug!(%error, attempts = producer_id_attempts, "InitProducerId failed");
                        producer_id_retry_at = Some(Instant::now() + Backoff::delay_for_attempt(
                            config.client.retry_backoff,
                            config.client.retry_backoff_max,
                            producer_id_attempts,
                        ));
                    }
                    Err(_) => producer_id_retry_at = Some(Instant::now()),
                }
            }
            Some(done) = refreshes.join_next(), if !refreshes.is_empty() => {
                if let Ok(Err(e)) = done {
                    debug!(error = %e, "metadata refresh failed");
                }
            }
            _ = sleep_until(next) => {}
        }
    }
    refreshes.abort_all();
    producer_id.abort_all();
    let _ = finished.send(true);
}

/// Gets a producer id for the idempotent producer from any broker
/// (`InitProducerId`, retried across brokers like a metadata request).
async fn init_producer_id(shared: Arc<Shared>) -> crate::Result<i64> {
    let message = InitProducerIdRequest {
        transactional_id: String::new(),
        transaction_timeout_ms: 0,
        producer_id: -1,
        producer_epoch: -1,
    };
    let response = retry::call(
        &shared.config.client,
        &shared.pool,
        "init producer id",
        |channel, timeout| {
            let message = message.clone();
            async move {
                let mut request = tonic::Request::new(message);
                request.set_timeout(timeout);
                BrokerServiceClient::new(channel)
                    .init_producer_id(request)
                    .await
            }
        },
    )
    .await?;
    match item_error(response.error_code, &response.error_message) {
        Some(e) => Err(Error::Strom(e)),
        None => Ok(response.producer_id),
    }
}

/// Sleeps until `at`, forever when `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Ready partitions by their leader (keyed by address and id); `true` when
/// some have no known leader.
type LeaderGroups = BTreeMap<(String, i32), (Leader, Vec<TopicPartition>)>;

fn group_by_leader(shared: &Shared, partitions: Vec<TopicPartition>) -> (LeaderGroups, bool) {
    let mut leaderless = false;
    let mut groups = LeaderGroups::new();
    shared.metadata.read(|image| {
        for tp in partitions {
            match image.leader(&tp) {
                Some(leader) => {
                    groups
                        .entry((leader.address.clone(), leader.id))
                        .or_insert_with(|| (leader, Vec::new()))
                        .1
                        .push(tp);
                }
                None => leaderless = true,
            }
        }
    });
    (groups, leaderless)
}

/// Sends one produce request on the leader's produce session and waits for
/// its answer (bounded by `request.timeout.ms` plus a margin).
async fn send(shared: Arc<Shared>, leader: Leader, mut batches: Drained) -> RequestOutcome {
    let config = &shared.config;
    let request = produce_request(
        config.acks,
        config.client.request_timeout,
        config.transactional_id.as_deref().unwrap_or(""),
        &mut batches,
    );
    let wait = config.client.request_timeout + ANSWER_MARGIN;
    let result = shared
        .sessions
        .produce(&shared.pool, &leader, request, wait)
        .await
        .map(partition_outcomes);
    RequestOutcome {
        leader,
        batches,
        result,
    }
}

/// acks=0: sends without awaiting anything but the transport; the records
/// were answered already. The batches (and their memory) are released when
/// this returns.
async fn send_unacknowledged(shared: Arc<Shared>, leader: Leader, batches: Drained) {
    let outcome = send(shared.clone(), leader, batches).await;
    if let Err(error) = &outcome.result {
        debug!(broker = outcome.leader.id, %error, "acks=0 produce request failed");
        forget_connection(&shared, &outcome.leader, error);
    }
}

/// After a transport failure or a timeout: drop the connection (it may
/// hang rather than fail) and refresh metadata (the broker may be gone).
fn forget_connection(shared: &Shared, leader: &Leader, error: &Error) {
    let hung = matches!(error, Error::Transport { .. })
        || error.code() == Some(ErrorCode::RequestTimedOut);
    if hung {
        shared.pool.evict(&leader.address);
        shared.metadata.mark_stale();
    }
}

/// Applies a produce answer: completes acknowledged batches, retries or
/// fails the others, re-routes on leader hints.
fn handle_outcome(shared: &Shared, outcome: RequestOutcome) {
    let RequestOutcome {
        leader,
        batches,
        result,
    } = outcome;
    let config = &shared.config;
    let mut answers = match result {
        Ok(answers) => Ok(answers),
        Err(error) => {
            forget_connection(shared, &leader, &error);
            Err(error)
        }
    };
    let now = Instant::now();
    let mut deliveries = Deliveries::default();
    let mut core = shared.lock();
    for (tp, batches) in batches {
        let answer = match &mut answers {
            Ok(answers) => answers.remove(&tp).unwrap_or_else(|| missing_outcome(&tp)),
            Err(error) => PartitionOutcome::Failed {
                error: error.clone(),
                leader: None,
            },
        };
        match answer {
            PartitionOutcome::Acked {
                base_offset,
                log_append_time,
            } => {
                if let Some(group) = batches.first().map(|b| b.group) {
                    core.accumulator.finish(&tp, group);
                }
                core.accumulator
                    .complete(batches, base_offset, log_append_time, &mut deliveries);
            }
            PartitionOutcome::Failed {
                error,
                leader: hint,
            } => {
                let moved = hint
                    .as_ref()
                    .is_some_and(|hint| shared.metadata.apply_leader_hint(&tp, hint, leader.id));
                if invalidates_metadata(&error) && !moved {
                    shared.metadata.mark_stale();
                }
                let topic_known = shared.metadata.read(|m| m.has_topic(&tp.topic));
                // Refused only because an earlier request of the partition
                // failed: it goes again after that one, in order.
                let out_of_order_after_failure = error.code()
                    == Some(ErrorCode::OutOfOrderSequenceNumber)
                    && batches
                        .first()
                        .is_some_and(|b| core.accumulator.sent_after_failure(&tp, b.group));
                if error.code() == Some(ErrorCode::UnknownProducerId) && shared.txn.is_some() {
                    // Transactional: the epoch is the coordinator's. The
                    // records fail, the transaction must abort, and the
                    // abort's EndTxn bumps the epoch (KIP-360 as KIP-890
                    // does it): the next transaction starts at sequence 0.
                    debug!(partition = %tp, broker = leader.id, %error, "the transaction must abort for a new epoch");
                    core.accumulator.fail(&tp, batches, &error, &mut deliveries);
                } else if error.code() == Some(ErrorCode::UnknownProducerId) {
                    // The broker forgot this producer (its state expired)
                    // and wrote nothing: a new epoch, sequences from 0.
                    debug!(partition = %tp, broker = leader.id, %error, "resending under a new epoch");
                    core.accumulator.resequence(&tp, batches, &error, now);
                } else if out_of_order_after_failure
                    || is_retriable_for_partition(&error, topic_known)
                {
                    let attempts = batches.iter().map(|b| b.attempts).max().unwrap_or(1);
                    let retry_at = if moved {
                        now
                    } else {
                        now + Backoff::delay_for_attempt(
                            config.client.retry_backoff,
                            config.client.retry_backoff_max,
                            attempts,
                        )
                    };
                    let retrying = core.accumulator.retry_or_fail(
                        &tp,
                        batches,
                        &error,
                        config.retries,
                        retry_at,
                        now,
                        &mut deliveries,
                    );
                    debug!(partition = %tp, broker = leader.id, %error, retrying, attempts, "produce failed");
                } else {
                    debug!(partition = %tp, broker = leader.id, %error, "produce failed for good");
                    core.accumulator.fail(&tp, batches, &error, &mut deliveries);
                }
            }
        }
    }
    drop(core);
    deliver(shared, deliveries);
}

/// Answers finished records without the lock, so `send` callers never wait
/// on the wake-ups or callbacks; flushes see the batches end only after
/// their answers.
pub(super) fn deliver(shared: &Shared, deliveries: Deliveries) {
    if deliveries.is_empty() {
        return;
    }
    // A failed record makes the open transaction abortable (or the
    // producer fatal), before anyone waiting on the records hears of it.
    if let Some(txn) = &shared.txn
        && let Some(error) = deliveries.first_error()
    {
        txn.record_failed(error.clone());
    }
    let ids = deliveries.deliver();
    shared.lock().accumulator.delivered(&ids);
    shared.progress.send_modify(|n| *n += 1);
}
