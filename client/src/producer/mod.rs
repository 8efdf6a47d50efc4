//! The producer: [`Producer`], like Kafka's `KafkaProducer`.
//!
//! * `config` — [`ProducerConfig`] with Kafka's names and defaults, [`Acks`].
//! * `record` — [`ProducerRecord`] in, [`RecordMetadata`] out.
//! * `partitioner` — murmur2 for keyed records (same partition as the Java
//!   client), sticky partitions for keyless ones.
//! * `accumulator` — per-partition batches: filling, readiness (full,
//!   `linger.ms`, flush, close), draining into requests, retries, expiry.
//! * `sender` — the one background task that sends ready batches, grouped
//!   by leader into one produce request per broker, one request per
//!   partition at a time, and handles the answers.
//! * `session` — the requests to each broker as messages on one
//!   long-lived `ProduceStream`, answered in completion order.
//! * `convert` — produce requests and responses.
//! * `txn_state` — the transactional producer's state machine (pure):
//!   which call is allowed when, fatal and abortable errors.
//! * `transaction` — the transactional calls (`init_transactions`,
//!   `begin_transaction`, `send_offsets_to_transaction`,
//!   `commit_transaction`, `abort_transaction`) and the coordinator link.
//!
//! A record's life: [`Producer::send`] waits (at most `max.block.ms`) for
//! the topic's metadata and for `buffer.memory`, picks the partition and
//! appends the record to the partition's open batch, then returns a
//! [`DeliveryFuture`] ([`Producer::send_with_callback`]: the outcome goes
//! to a callback instead). The sender sends the batch when it is full, when
//! `linger.ms` has passed, on [`flush`](Producer::flush) or
//! [`close`](Producer::close), or at once while a `send` waits for memory.
//! Retriable errors resend the batch after an exponential backoff
//! (`retry.backoff.ms` doubling to `retry.backoff.max.ms`), at once when the
//! error named a new leader, until `retries` or `delivery.timeout.ms` run
//! out; other errors fail the batch's records.
//!
//! With `transactional.id` set, records are sent only inside a transaction
//! (docs/transactions.md, "The Rust client"):
//!
//! ```no_run
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::{Producer, ProducerConfig, ProducerRecord, Properties};
//!
//! let config = ProducerConfig::from_properties([
//!     "bootstrap.servers=127.0.0.1:9092",
//!     "transactional.id=billing-1",
//! ])?;
//! let producer = Producer::connect(config).await?;
//! producer.init_transactions().await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("invoices").value("a")).await?;
//! producer.send(ProducerRecord::new("payments").value("b")).await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(strom_client::Error::AbortableTransaction(_)) => producer.abort_transaction().await?,
//!     Err(fatal) => return Err(fatal), // fenced: close the producer
//! }
//! producer.close().await?;
//! # Ok(())
//! # }
//! ```

mod accumulator;
mod config;
mod convert;
mod idempotence;
mod partitioner;
mod record;
mod sender;
mod session;
mod transaction;
mod txn_state;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use strom_log::batch::HEADER_LEN;
use strom_proto::v1::ErrorCode;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use self::accumulator::{BatchSettings, Completion, NewRecord, RecordAccumulator};
pub use self::config::{Acks, ProducerConfig, compression_name, parse_compression};
use self::partitioner::StickyPartitioner;
pub use self::partitioner::{murmur2, partition_for_key, to_positive};
pub use self::record::{ProducerRecord, RecordMetadata};
use self::session::ProduceSessions;
use crate::cluster::MetadataCache;
use crate::config::Properties;
use crate::error::{Error, Result};
use crate::pool::ChannelPool;
use crate::retry::Backoff;

/// A producer of records. Cheap to clone; clones share the batches, the
/// connections and the background sender task.
///
/// Dropping the last clone closes the producer in the background (pending
/// records are still sent while the runtime runs); call
/// [`close`](Self::close) to wait for them.
///
/// ```no_run
/// # async fn demo() -> strom_client::Result<()> {
/// use strom_client::{Producer, ProducerConfig, ProducerRecord};
///
/// let producer = Producer::connect(ProducerConfig::new("127.0.0.1:9092")?).await?;
/// let delivery = producer
///     .send(ProducerRecord::new("orders").key("customer-7").value("{\"total\": 12}"))
///     .await?;
/// let metadata = delivery.await?;
/// println!("written to {}-{} at offset {}", metadata.topic, metadata.partition, metadata.offset);
/// producer.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

/// Owned by the producer's clones; the last one to go closes the producer.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    /// Becomes `true` when the sender task has finished.
    finished: watch::Receiver<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}

/// The accumulator and the partitioner's state, under one lock so the
/// sticky partitioner sees the batches it sticks to.
#[derive(Debug)]
struct Core {
    accumulator: RecordAccumulator,
    sticky: StickyPartitioner<StdRng>,
}

/// What the producer's handles and its sender task share. Lock order: the
/// core lock may be held while taking the metadata lock, never the reverse.
#[derive(Debug)]
struct Shared {
    config: ProducerConfig,
    pool: Arc<ChannelPool>,
    /// One `ProduceStream` per broker.
    sessions: ProduceSessions,
    metadata: MetadataCache,
    core: Mutex<Core>,
    /// Set once closing begins, so `send` refuses records without taking
    /// the lock (the accumulator's own flag, under the lock, decides).
    closing: AtomicBool,
    /// `buffer.memory`, one permit per byte of records not yet finished.
    memory: Arc<Semaphore>,
    /// `send` calls waiting for memory: batches are sent without lingering.
    memory_waiters: AtomicUsize,
    /// Wakes the sender: a new or full batch, a flush, close, memory pressure.
    wakeup: Notify,
    /// Bumped whenever batches finish, for `flush`.
    progress: watch::Sender<u64>,
    /// The transactional producer's state (`transactional.id` set).
    txn: Option<transaction::Transactions>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().expect("producer lock is never poisoned")
    }

    fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.lock().accumulator.begin_close();
        self.wakeup.notify_one();
    }

    fn closed_error() -> Error {
        Error::Closed("the producer is closed".to_owned())
    }
}

/// The outcome of one sent record: resolves to its [`RecordMetadata`] once
/// the leader acknowledged it (at once with offset -1 for `acks=0`), or to
/// the error that failed it for good. Dropping it does not cancel the send.
#[derive(Debug)]
pub struct DeliveryFuture {
    receiver: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|outcome| outcome.unwrap_or_else(|_| Err(stopped_error())))
    }
}

/// What a record hears when the producer stopped before knowing its fate.
fn stopped_error() -> Error {
    Error::Closed("the producer stopped before the record's delivery was known".to_owned())
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Validates `config` and starts the sender task on the current Tokio
    /// runtime. Nodes are dialled lazily, on the first record.
    pub async fn connect(config: ProducerConfig) -> Result<Self> {
        config.validate()?;
        let pool = Arc::new(ChannelPool::new(
            config.client.bootstrap_servers.clone(),
            config.client.connect_timeout,
        ));
        let metadata = MetadataCache::new(config.client.clone(), pool.clone());
        let accumulator = RecordAccumulator::new(BatchSettings {
            batch_size: config.batch_size,
            linger: config.linger,
            compression: config.compression,
            delivery_timeout: config.delivery_timeout,
            idempotent: config.idempotence(),
            max_in_flight: config.max_in_flight,
            transactional: config.transactional_id.is_some(),
        });
        let txn = config
            .transactional_id
            .clone()
            .map(transaction::Transactions::new);
        let shared = Arc::new(Shared {
            memory: Arc::new(Semaphore::new(config.buffer_memory)),
            config,
            pool,
            sessions: ProduceSessions::default(),
            metadata,
            core: Mutex::new(Core {
                accumulator,
                sticky: StickyPartitioner::new(StdRng::from_entropy()),
            }),
            closing: AtomicBool::new(false),
            memory_waiters: AtomicUsize::new(0),
            wakeup: Notify::new(),
            progress: watch::Sender::new(0),
            txn,
        });
        let (finished_tx, finished) = watch::channel(false);
        let span = tracing::debug_span!("producer", client_id = %shared.config.client_id);
        tokio::spawn(sender::run(shared.clone(), finished_tx).instrument(span));
        Ok(Self {
            handle: Arc::new(Handle { shared, finished }),
        })
    }

    /// The config this producer was created with.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// Queues a record for sending and returns the future of its delivery.
    ///
    /// Waits (up to `max.block.ms`) only for the topic's metadata and for
    /// room in `buffer.memory`. Errors here mean the record was not queued:
    /// RECORD_TOO_LARGE (larger than `max.request.size` or `buffer.memory`,
    /// checked before anything is sent), UNKNOWN_TOPIC_OR_PARTITION (the
    /// topic or partition did not appear in metadata within `max.block.ms`),
    /// a timeout waiting for memory, or [`Error::Closed`]. Delivery errors
    /// come from the [`DeliveryFuture`].
    ///
    /// A transactional producer sends only inside a transaction
    /// ([`Error::IllegalState`] otherwise, [`Error::AbortableTransaction`]
    /// or [`Error::FatalTransaction`] after an earlier failure); a record
    /// it could not queue makes the transaction abortable, as in Kafka.
    ///
    /// Records of one partition are written in the order their `send`s
    /// returned.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (sender, receiver) = oneshot::channel();
        self.enqueue(record, || Completion::Future(Some(sender)))
            .await?;
        Ok(DeliveryFuture { receiver })
    }

    /// Like [`send`](Self::send), but the outcome goes to `callback`, as
    /// with Kafka's `send(record, callback)`: it is called exactly once with
    /// the record's metadata or the error that failed it, unless this
    /// returns an error (then the record was not queued and the callback is
    /// dropped uncalled).
    ///
    /// The callback runs on the producer's background task, so it should be
    /// quick: while it runs, no other answer is handled. It costs less than
    /// a [`DeliveryFuture`] polled by another task (no channel, no wake-up),
    /// which is what `strom perf produce` uses it for. A panic in it is
    /// logged and does not affect other records.
    pub async fn send_with_callback<F>(&self, record: ProducerRecord, callback: F) -> Result<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        self.enqueue(record, || Completion::Callback(Some(Box::new(callback))))
            .await
    }

    /// Queues `record`; `completion` is made only once it is sure to be
    /// appended, so a refused record's callback is never called.
    ///
    /// This runs for every record, so its common case (metadata known,
    /// memory free, the partition's batch open) reads the clock once, for
    /// the timestamp, and allocates nothing beyond the completion.
    async fn enqueue(
        &self,
        record: ProducerRecord,
        completion: impl FnOnce() -> Completion,
    ) -> Result<()> {
        let result = self.enqueue_record(record, completion).await;
        match (result, &self.handle.shared.txn) {
            (
                Err(
                    error @ (Error::Strom(_)
                    | Error::Transport { .. }
                    | Error::Timeout { .. }
                    | Error::InvalidArgument(_)),
                ),
                Some(txn),
            ) => Err(txn.send_failed(error)),
            (result, _) => result,
        }
    }

    async fn enqueue_record(
        &self,
        record: ProducerRecord,
        completion: impl FnOnce() -> Completion,
    ) -> Result<()> {
        let shared = &self.handle.shared;
        let config = &shared.config;
        if shared.closing.load(Ordering::Acquire) {
            return Err(Shared::closed_error());
        }
        if let Some(txn) = &shared.txn {
            txn.check_send()?;
        }
        let size = record.encoded_size_upper_bound();
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = record;
        if topic.is_empty() {
            return Err(Error::InvalidArgument("the record has no topic".to_owned()));
        }
        if let Some(p) = partition
            && p < 0
        {
            return Err(Error::InvalidArgument(format!(
                "invalid partition {p} for topic '{topic}'"
            )));
        }
        check_record_size(size + HEADER_LEN, config)?;
        let (partitions, deadline) = self.wait_for_partition(&topic, partition).await?;
        let memory = self.reserve_memory(size, deadline).await?;
        let timestamp = timestamp.unwrap_or_else(now_ms);
        let keyless = partition.is_none() && key.is_none();
        let appended = {
            let mut core = shared.lock();
            let Core {
                accumulator,
                sticky,
            } = &mut *core;
            if accumulator.is_closing() {
                return Err(Shared::closed_error());
            }
            if let Some(txn) = &shared.txn {
                txn.join()?;
            }
            let partition = match (partition, &key) {
                (Some(p), _) => p,
                (None, Some(key)) => partition_for_key(key, partitions),
                (None, None) => sticky.partition(
                    &topic,
                    partitions,
                    // Only when the sticky partition moves on.
                    || shared.metadata.read(|m| m.available_partitions(&topic)),
                    |p| accumulator.open_batch(&(topic.as_str(), p), size),
                ),
            };
            let appended = accumulator.append(
                &(topic.as_str(), partition),
                NewRecord {
                    timestamp,
                    key: key.as_deref(),
                    value: value.as_deref(),
                    headers: &headers,
                    size,
                    completion: completion(),
                    memory: Some(memory),
                },
                Instant::now,
            );
            if keyless {
                sticky.on_append(&topic, partition, appended.batch);
            }
            appended
        };
        if appended.new_batch || appended.full {
            shared.wakeup.notify_one();
        }
        Ok(())
    }

    /// Sends every record queued so far without waiting for `linger.ms`, and
    /// waits until each of them is acknowledged or failed. Records sent
    /// meanwhile may be included.
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.handle.shared;
        let mut progress = shared.progress.subscribe();
        let Some(mark) = shared.lock().accumulator.begin_flush() else {
            return Ok(());
        };
        shared.wakeup.notify_one();
        loop {
            progress.borrow_and_update();
            let done = shared
                .lock()
                .accumulator
                .lowest_incomplete()
                .is_none_or(|lowest| lowest > mark);
            if done || progress.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// Stops accepting records, sends everything pending without lingering,
    /// and waits until every record is acknowledged or failed (at most
    /// `delivery.timeout.ms` plus one request timeout). Other clones see
    /// [`Error::Closed`] from `send` afterwards.
    pub async fn close(&self) -> Result<()> {
        self.handle.shared.begin_close();
        let mut finished = self.handle.finished.clone();
        // An error means the sender task is gone, which is finished too.
        let _ = finished.wait_for(|done| *done).await;
        Ok(())
    }

    /// Waits until `topic` (and `partition`, if given) is in metadata, at
    /// most `max.block.ms`; returns the topic's partition count and, when it
    /// had to wait, the deadline the rest of `send` keeps to (Kafka's
    /// `max.block.ms` bounds both waits together).
    async fn wait_for_partition(
        &self,
        topic: &str,
        partition: Option<i32>,
    ) -> Result<(usize, Option<Instant>)> {
        let shared = &self.handle.shared;
        let metadata = &shared.metadata;
        let present = |count: Option<usize>| match (count, partition) {
            (Some(n), None) if n > 0 => Some(n),
            (Some(n), Some(p)) if (p as usize) < n => Some(n),
            _ => None,
        };
        let (added, mut count) = metadata.add_topic_partition_count(topic);
        if added {
            shared.wakeup.notify_one();
        }
        if let Some(n) = present(count) {
            return Ok((n, None));
        }
        let deadline = Instant::now() + shared.config.max_block;
        let backoff = shared.config.client.retry_backoff;
        let backoff_max = shared.config.client.retry_backoff_max;
        let mut attempt = 0;
        let mut last_error = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(missing_partition_error(
                    topic,
                    partition,
                    count,
                    shared.config.max_block,
                    last_error,
                ));
            }
            if attempt > 0 {
                let delay = Backoff::delay_for_attempt(backoff, backoff_max, attempt);
                tokio::time::sleep_until((now + delay).min(deadline)).await;
            }
            attempt += 1;
            if let Ok(result) = tokio::time::timeout_at(deadline, metadata.refresh()).await {
                last_error = result.err();
            }
            count = metadata.read(|m| m.partition_count(topic));
            if let Some(n) = present(count) {
                return Ok((n, Some(deadline)));
            }
        }
    }

    /// Takes `size` bytes of `buffer.memory`, waiting until `deadline`
    /// (`None`: `max.block.ms` from the moment it has to wait).
    async fn reserve_memory(
        &self,
        size: usize,
        deadline: Option<Instant>,
    ) -> Result<OwnedSemaphorePermit> {
        let shared = &self.handle.shared;
        let permits = u32::try_from(size).expect("records are checked against buffer.memory");
        // Released permits go to waiting `send`s first, so taking free ones
        // here does not jump the queue.
        match shared.memory.clone().try_acquire_many_owned(permits) {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(Shared::closed_error()),
            Err(TryAcquireError::NoPermits) => {}
        }
        let deadline = deadline.unwrap_or_else(|| Instant::now() + shared.config.max_block);
        /// Counts this `send` among the memory waiters while it waits.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _waiting = (shared.memory.available_permits() < size).then(|| {
            shared.memory_waiters.fetch_add(1, Ordering::Relaxed);
            shared.wakeup.notify_one();
            Waiting(&shared.memory_waiters)
        });
        match tokio::time::timeout_at(deadline, shared.memory.clone().acquire_many_owned(permits))
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(Shared::closed_error()),
            Err(_elapsed) => Err(Error::Timeout {
                what: format!(
                    "failed to allocate memory within the configured max blocking time {} ms \
                     (buffer.memory {} bytes)",
                    shared.config.max_block.as_millis(),
                    shared.config.buffer_memory
                ),
            }),
        }
    }
}

/// RECORD_TOO_LARGE for a record (with its batch header) above
/// `max.request.size` or `buffer.memory`, as Kafka checks before sending.
fn check_record_size(size: usize, config: &ProducerConfig) -> Result<()> {
    let limit = |name: &str, max: usize| {
        Err(Error::strom(
            ErrorCode::RecordTooLarge,
            format!(
                "the record is {size} bytes when serialized, which is larger than {name} ({max})"
            ),
        ))
    };
    if size > config.max_request_size {
        return limit("max.request.size", config.max_request_size);
    }
    if size > config.buffer_memory {
        return limit("buffer.memory", config.buffer_memory);
    }
    Ok(())
}

/// Why a topic or partition was not found in metadata within `max.block.ms`.
fn missing_partition_error(
    topic: &str,
    partition: Option<i32>,
    count: Option<usize>,
    max_block: Duration,
    last_error: Option<Error>,
) -> Error {
    let ms = max_block.as_millis();
    match (count, partition, last_error) {
        (Some(n), Some(p), _) => Error::strom(
            ErrorCode::UnknownTopicOrPartition,
            format!(
                "partition {p} of topic '{topic}' with partition count {n} is not present in \
                 metadata after {ms} ms"
            ),
        ),
        (_, _, Some(error)) if !matches!(&error, Error::Strom(e) if e.code == ErrorCode::UnknownTopicOrPartition) => {
            Error::Timeout {
                what: format!(
                    "topic '{topic}' not present in metadata after {ms} ms (last error: {error})"
                ),
            }
        }
        _ => Error::strom(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{topic}' not present in metadata after {ms} ms"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_above_the_request_or_memory_limit_are_too_large() {
        let config = ProducerConfig {
            max_request_size: 1000,
            buffer_memory: 800,
            ..ProducerConfig::default()
        };
        let table = [
            (500, None),
            (801, Some("buffer.memory (800)")),
            (1001, Some("max.request.size (1000)")),
        ];
        for (size, limit) in table {
            match (check_record_size(size, &config), limit) {
                (Ok(()), None) => {}
                (Err(e), Some(limit)) => {
                    assert_eq!(e.code(), Some(ErrorCode::RecordTooLarge));
                    assert!(e.to_string().ends_with(limit), "{e}");
                }
                (result, limit) => panic!("size {size}: {result:?}, expected limit {limit:?}"),
            }
        }
    }

    #[test]
    fn missing_metadata_errors_name_topic_partition_and_wait() {
        let wait = Duration::from_millis(60_000);
        let refused = Error::Transport {
            address: "h:1".into(),
            source: tonic::Status::unavailable("refused"),
        };
        let table = [
            (
                Some(3),
                Some(5),
                None,
                ErrorCode::UnknownTopicOrPartition,
                "partition 5 of topic 't' with partition count 3 is not present in metadata after 60000 ms",
            ),
            (
                None,
                None,
                None,
                ErrorCode::UnknownTopicOrPartition,
                "topic 't' not present in metadata after 60000 ms",
            ),
            (
                None,
                None,
                Some(refused),
                ErrorCode::RequestTimedOut,
                "topic 't' not present in metadata after 60000 ms (last error: cannot reach h:1: refused)",
            ),
        ];
        for (count, partition, last, code, message) in table {
            let error = missing_partition_error("t", partition, count, wait, last);
            assert_eq!(error.code(), Some(code));
            assert_eq!(error.detail(), message);
        }
    }

    #[tokio::test]
    async fn send_after_close_is_refused() {
        let producer = Producer::connect(ProducerConfig::default()).await.unwrap();
        producer.close().await.unwrap();
        let error = producer
            .send(ProducerRecord::new("t").value("v"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Closed(_)), "{error}");
        producer.flush().await.unwrap();
    }

    #[tokio::test]
    async fn oversized_records_fail_before_any_network_use() {
        let config = ProducerConfig {
            max_request_size: 1024,
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(config).await.unwrap();
        let error = producer
            .send(ProducerRecord::new("t").value(vec![0u8; 2048]))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::RecordTooLarge));
        producer.close().await.unwrap();
    }
}
