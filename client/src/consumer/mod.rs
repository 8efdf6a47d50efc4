//! The consumer: [`Consumer`], like Kafka's `KafkaConsumer` with manual
//! assignment (consumer groups are not supported yet).
//!
//! * `config` — [`ConsumerConfig`], [`OffsetReset`], [`IsolationLevel`].
//! * `record` — [`ConsumerRecord`], [`OffsetAndTimestamp`].
//! * `state` — the assignment and each partition's position, pending
//!   resets, backoff and generation (pure).
//! * `fetcher` — fetch requests per leader and their answers.
//! * `decode` — record batches to records (pure).
//! * `offsets` — ListOffsets, once or with retries.
//!
//! All network work runs in tasks the consumer owns: metadata refreshes,
//! offset lookups for partitions without a position, and one fetch per
//! leader broker at a time. [`Consumer::poll`] starts what is needed,
//! returns buffered records, and otherwise waits for the next answer, so
//! fetching continues (prefetch) between polls. Dropping the consumer
//! stops them.

mod config;
mod decode;
mod fetcher;
mod offsets;
mod record;
mod state;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::FetchSession;
use strom_proto::v1::ErrorCode;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::debug;

pub use self::config::{ConsumerConfig, IsolationLevel, OffsetReset};
use self::fetcher::{FetchAnswer, FetchOutcome, FetchTarget};
use self::offsets::{OffsetAnswer, OffsetQuery, forget_connection, note_partition_error};
pub use self::record::{ConsumerRecord, OffsetAndTimestamp};
use self::state::{ResetTo, SubscriptionState};
use crate::admin::TopicPartition;
use crate::cluster::{Leader, MetadataCache};
use crate::config::Properties;
use crate::error::{Error, Result};
use crate::pool::ChannelPool;
use crate::retry::is_retriable;

/// What the consumer's tasks share.
#[derive(Debug)]
struct Shared {
    config: ConsumerConfig,
    pool: Arc<ChannelPool>,
    metadata: MetadataCache,
    /// Fetch sessions between rounds, by leader address.
    sessions: Mutex<HashMap<String, FetchSession>>,
}

/// A finished background task.
#[derive(Debug)]
enum Task {
    Metadata(Result<()>),
    Reset {
        leader: Leader,
        queries: Vec<(OffsetQuery, u64)>,
        result: Result<Vec<(OffsetQuery, OffsetAnswer)>>,
    },
    Fetch(FetchOutcome),
}

/// Requests grouped by leader (keyed by address and id).
type LeaderGroups<T> = BTreeMap<(String, i32), (Leader, Vec<T>)>;

/// Records (or an error) fetched for one partition, waiting for `poll`.
#[derive(Debug)]
struct Buffered {
    tp: TopicPartition,
    generation: u64,
    records: VecDeque<ConsumerRecord>,
    /// Where the partition continues once the records are returned.
    next_offset: Option<i64>,
    /// Surfaces from `poll` after the records.
    error: Option<Error>,
}

/// A consumer of assigned partitions.
///
/// ```no_run
/// # async fn demo() -> strom_client::Result<()> {
/// use std::time::Duration;
/// use strom_client::{Consumer, ConsumerConfig, TopicPartition};
///
/// let mut consumer = Consumer::connect(ConsumerConfig::new("127.0.0.1:9092")?).await?;
/// let tp = TopicPartition::new("orders", 0);
/// consumer.assign([tp.clone()]);
/// consumer.seek_to_beginning(&[tp])?;
/// loop {
///     for record in consumer.poll(Duration::from_secs(1)).await? {
///         println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    state: SubscriptionState,
    tasks: JoinSet<Task>,
    /// Leader addresses with a fetch in flight.
    fetching: HashSet<String>,
    refreshing: bool,
    buffered: VecDeque<Buffered>,
}

impl Consumer {
    /// Validates `config`. Nodes are dialled lazily, on the first poll.
    pub async fn connect(config: ConsumerConfig) -> Result<Self> {
        config.validate()?;
        let pool = Arc::new(ChannelPool::new(
            config.client.bootstrap_servers.clone(),
            config.client.connect_timeout,
        ));
        let metadata = MetadataCache::new(config.client.clone(), pool.clone());
        Ok(Self {
            state: SubscriptionState::new(config.auto_offset_reset),
            shared: Arc::new(Shared {
                config,
                pool,
                metadata,
                sessions: Mutex::default(),
            }),
            tasks: JoinSet::new(),
            fetching: HashSet::new(),
            refreshing: false,
            buffered: VecDeque::new(),
        })
    }

    /// The config this consumer was created with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// Reads exactly these partitions from now on (replacing the previous
    /// assignment; an empty list stops reading). Partitions kept keep their
    /// position; new ones start per `auto.offset.reset` unless sought.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.state.assign(partitions);
        let topics = self.state.topics();
        self.shared.metadata.retain_topics(&topics);
        self.shared
            .metadata
            .add_topics(topics.iter().map(String::as_str));
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state.assignment()
    }

    /// Continues `tp` at `offset` on the next poll. Records already
    /// fetched for it are dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.state.seek(tp, offset)
    }

    /// Continues these partitions (all assigned ones when empty) at their
    /// log start offset, looked up on the next poll.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.reset(partitions, ResetTo::Earliest)
    }

    /// Continues these partitions (all assigned ones when empty) at their
    /// end (high watermark), looked up on the next poll: only records
    /// written from then on are read.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.reset(partitions, ResetTo::Latest)
    }

    fn reset(&mut self, partitions: &[TopicPartition], to: ResetTo) -> Result<()> {
        let partitions = if partitions.is_empty() {
            self.state.assignment()
        } else {
            partitions.to_vec()
        };
        for tp in &partitions {
            self.state.request_reset(tp, to)?;
        }
        Ok(())
    }

    /// Continues `tp` at the first record whose timestamp is at or after
    /// `timestamp` (ms since the epoch), looked up now; at the end of the
    /// partition when no record is that recent.
    pub async fn seek_to_timestamp(&mut self, tp: &TopicPartition, timestamp: i64) -> Result<()> {
        if !self.state.is_assigned(tp) {
            return Err(Error::InvalidArgument(format!(
                "no current assignment for partition {tp}"
            )));
        }
        let found = self.offsets_for_times([(tp.clone(), timestamp)]).await?;
        match found.get(tp).copied().flatten() {
            Some(found) => self.state.seek(tp, found.offset),
            None => self.state.request_reset(tp, ResetTo::Latest),
        }
    }

    /// The offset of the next record `poll` returns for `tp`, looking it up
    /// first if needed (bounded by `request.timeout.ms`).
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        if !self.state.is_assigned(tp) {
            return Err(Error::InvalidArgument(format!(
                "no current assignment for partition {tp}"
            )));
        }
        let timeout = self.shared.config.client.request_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(position) = self.state.position(tp) {
                return Ok(position);
            }
            if let Some(error) = self.take_error_of(tp) {
                return Err(error);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "the position of {tp} could not be determined within {} ms",
                        timeout.as_millis()
                    ),
                });
            }
            self.step(deadline).await?;
        }
    }

    /// How far the position of `tp` is behind the partition's high
    /// watermark, as of the last fetch answer (Kafka's `currentLag`).
    pub fn current_lag(&self, tp: &TopicPartition) -> Option<i64> {
        self.state.lag(tp)
    }

    /// Returns fetched records of the assigned partitions, at most
    /// `max.poll.records`, waiting up to `timeout` for some. Records of a
    /// partition come in offset order, from its position on.
    ///
    /// Errors: a partition without a position under `auto.offset.reset =
    /// none` (seek first); OFFSET_OUT_OF_RANGE under `none` (the message
    /// names the valid range); CORRUPT_MESSAGE; RECORD_TOO_LARGE when a
    /// batch does not fit `max.partition.fetch.bytes`. The partition keeps
    /// its position, so the error repeats until it is sought elsewhere.
    /// Leader changes and transient errors are retried internally.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.handle_finished()?;
            let records = self.take_buffered()?;
            if !records.is_empty() {
                // Prefetch; an error here shows on the next poll.
                let _ = self.start_requests(Instant::now());
                return Ok(records);
            }
            if Instant::now() >= deadline {
                self.start_requests(Instant::now())?;
                return Ok(Vec::new());
            }
            self.step(deadline).await?;
        }
    }

    /// The log start offset of each partition (assigned or not).
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.list(partitions, -2).await
    }

    /// The end offset (high watermark; last stable offset under
    /// `read_committed`) of each partition (assigned or not).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.list(partitions, -1).await
    }

    async fn list(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let queries = partitions
            .iter()
            .map(|tp| (tp.clone(), timestamp))
            .collect();
        let found = offsets::list_offsets(&self.shared, queries).await?;
        Ok(found.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
    }

    /// For each partition, the first offset whose record timestamp is at or
    /// after the given one (ms since the epoch), or `None` when no record is
    /// that recent.
    pub async fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        let queries: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        if let Some((tp, ts)) = queries.iter().find(|(_, ts)| *ts < 0) {
            return Err(Error::InvalidArgument(format!(
                "the timestamp to search for {tp} must not be negative, got {ts}"
            )));
        }
        let found = offsets::list_offsets(&self.shared, queries).await?;
        Ok(found
            .into_iter()
            .map(|(tp, o)| {
                let found = (o.offset >= 0).then_some(OffsetAndTimestamp {
                    offset: o.offset,
                    timestamp: o.timestamp,
                    leader_epoch: o.leader_epoch,
                });
                (tp, found)
            })
            .collect())
    }

    /// Applies the answers of tasks that already finished, without waiting.
    fn handle_finished(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.handle(done.map_err(task_failed)?);
        }
        Ok(())
    }

    /// Starts what is needed, then waits for one task to finish, a backoff
    /// to end, or `deadline`.
    async fn step(&mut self, deadline: Instant) -> Result<()> {
        let now = Instant::now();
        self.start_requests(now)?;
        let mut wake = deadline;
        if let Some(at) = self.state.next_retry(now) {
            wake = wake.min(at);
        }
        if !self.refreshing
            && let Some(at) = self
                .shared
                .metadata
                .refresh_due(now, self.shared.config.metadata_max_age)
        {
            wake = wake.min(at.max(now + Duration::from_millis(1)));
        }
        tokio::select! {
            Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                self.handle(done.map_err(task_failed)?);
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        Ok(())
    }

    /// Starts a metadata refresh, offset lookups and fetches as needed.
    fn start_requests(&mut self, now: Instant) -> Result<()> {
        let shared = &self.shared;
        if !self.refreshing
            && let Some(due) = shared
                .metadata
                .refresh_due(now, shared.config.metadata_max_age)
            && due <= now
        {
            self.refreshing = true;
            let shared = shared.clone();
            self.tasks
                .spawn(async move { Task::Metadata(shared.metadata.refresh().await) });
        }

        let resets = self.state.pending_resets(now)?;
        let mut by_leader: LeaderGroups<(OffsetQuery, u64)> = BTreeMap::new();
        let mut leaderless = false;
        for reset in resets {
            let (leader, epoch) = shared
                .metadata
                .read(|m| (m.leader(&reset.tp), m.leader_epoch(&reset.tp)));
            let Some(leader) = leader else {
                leaderless = true;
                continue;
            };
            self.state.mark_busy(&reset.tp);
            by_leader
                .entry((leader.address.clone(), leader.id))
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push((
                    OffsetQuery {
                        tp: reset.tp,
                        timestamp: reset.to.timestamp(),
                        leader_epoch: epoch,
                    },
                    reset.generation,
                ));
        }
        for (leader, queries) in by_leader.into_values() {
            let shared = shared.clone();
            self.tasks.spawn(async move {
                let only: Vec<OffsetQuery> = queries.iter().map(|(q, _)| q.clone()).collect();
                let result = offsets::list_offsets_once(&shared, &leader, &only).await;
                Task::Reset {
                    leader,
                    queries,
                    result,
                }
            });
        }

        let mut fetches: LeaderGroups<FetchTarget> = BTreeMap::new();
        for position in self.state.fetchable(now) {
            let (leader, epoch) = shared
                .metadata
                .read(|m| (m.leader(&position.tp), m.leader_epoch(&position.tp)));
            let Some(leader) = leader else {
                leaderless = true;
                continue;
            };
            if self.fetching.contains(&leader.address) {
                continue;
            }
            fetches
                .entry((leader.address.clone(), leader.id))
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push(FetchTarget {
                    tp: position.tp,
                    offset: position.offset,
                    generation: position.generation,
                    leader_epoch: epoch,
                });
        }
        for (leader, targets) in fetches.into_values() {
            for target in &targets {
                self.state.mark_busy(&target.tp);
            }
            self.fetching.insert(leader.address.clone());
            let shared = shared.clone();
            self.tasks
                .spawn(async move { Task::Fetch(fetcher::fetch(shared, leader, targets).await) });
        }
        if leaderless {
            self.shared.metadata.mark_stale();
        }
        Ok(())
    }

    /// Applies a finished task's answer.
    fn handle(&mut self, task: Task) {
        let now = Instant::now();
        let backoff = (
            self.shared.config.client.retry_backoff,
            self.shared.config.client.retry_backoff_max,
        );
        match task {
            Task::Metadata(result) => {
                self.refreshing = false;
                if let Err(error) = result {
                    debug!(%error, "metadata refresh failed");
                }
            }
            Task::Reset {
                leader,
                queries,
                result,
            } => {
                let generations: BTreeMap<TopicPartition, u64> =
                    queries.iter().map(|(q, g)| (q.tp.clone(), *g)).collect();
                match result {
                    Ok(answers) => {
                        for (query, answer) in answers {
                            let generation = generations[&query.tp];
                            self.reset_answer(&leader, query, generation, answer, now, backoff);
                        }
                    }
                    Err(error) => {
                        forget_connection(&self.shared, &leader, &error);
                        for (query, generation) in queries {
                            self.partition_failed(
                                &query.tp,
                                generation,
                                error.clone(),
                                is_retriable(&error),
                                now,
                                backoff,
                            );
                        }
                    }
                }
            }
            Task::Fetch(outcome) => {
                self.fetching.remove(&outcome.leader.address);
                match outcome.result {
                    Ok(answers) => {
                        for (target, answer) in answers {
                            self.fetch_answer(&outcome.leader, target, answer, now, backoff);
                        }
                    }
                    Err((targets, error)) => {
                        forget_connection(&self.shared, &outcome.leader, &error);
                        for target in targets {
                            self.partition_failed(
                                &target.tp,
                                target.generation,
                                error.clone(),
                                is_retriable(&error),
                                now,
                                backoff,
                            );
                        }
                    }
                }
            }
        }
    }

    fn reset_answer(
        &mut self,
        leader: &Leader,
        query: OffsetQuery,
        generation: u64,
        answer: OffsetAnswer,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        match answer {
            OffsetAnswer::Found(found) if found.offset >= 0 => {
                self.state.reset_done(&query.tp, generation, found.offset);
            }
            OffsetAnswer::Found(_) => {
                let error = Error::strom(
                    ErrorCode::UnknownServerError,
                    format!("the leader has no offset for {}", query.tp),
                );
                self.partition_failed(&query.tp, generation, error, true, now, backoff);
            }
            OffsetAnswer::Failed {
                error,
                leader: hint,
            } => {
                let retriable =
                    note_partition_error(&self.shared, &query.tp, &error, hint.as_ref(), leader.id);
                self.partition_failed(&query.tp, generation, error, retriable, now, backoff);
            }
        }
    }

    fn fetch_answer(
        &mut self,
        leader: &Leader,
        target: FetchTarget,
        answer: FetchAnswer,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        let FetchTarget {
            tp,
            generation,
            offset,
            ..
        } = target;
        match answer {
            FetchAnswer::Data {
                decoded,
                high_watermark,
            } => {
                self.state
                    .set_high_watermark(&tp, generation, high_watermark);
                if decoded.records.is_empty() && decoded.error.is_none() {
                    if self.state.fetched(&tp, generation, false)
                        && let Some(next) = decoded.next_offset
                    {
                        // Only control batches (or records below the position).
                        self.state.advance(&tp, generation, next, None, true);
                    }
                    return;
                }
                if self.state.fetched(&tp, generation, true) {
                    self.buffered.push_back(Buffered {
                        tp,
                        generation,
                        records: decoded.records.into(),
                        next_offset: decoded.next_offset,
                        error: decoded.error,
                    });
                }
            }
            FetchAnswer::Failed {
                error,
                leader: hint,
                log_start_offset,
                high_watermark,
            } => {
                if error.code() == Some(ErrorCode::OffsetOutOfRange) {
                    if let Some(to) = self.state.reset_out_of_range(&tp, generation, offset) {
                        debug!(partition = %tp, offset, reset = ?to, "fetch position out of range; resetting");
                        return;
                    }
                    let error =
                        out_of_range_error(&tp, offset, log_start_offset, high_watermark, &error);
                    self.partition_failed(&tp, generation, error, false, now, backoff);
                    return;
                }
                let retriable =
                    note_partition_error(&self.shared, &tp, &error, hint.as_ref(), leader.id);
                self.partition_failed(&tp, generation, error, retriable, now, backoff);
            }
        }
    }

    /// A partition's request failed: back off and retry, or hand the error
    /// to `poll`.
    fn partition_failed(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        error: Error,
        retriable: bool,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        if retriable {
            debug!(partition = %tp, %error, "retrying");
            self.state.failed(tp, generation, now, backoff);
        } else if self.state.fetched(tp, generation, true) {
            self.buffered.push_back(Buffered {
                tp: tp.clone(),
                generation,
                records: VecDeque::new(),
                next_offset: None,
                error: Some(error),
            });
        }
    }

    /// Takes up to `max.poll.records` buffered records of current
    /// generations, advancing positions; a buffered error is returned once
    /// no record precedes it.
    fn take_buffered(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.shared.config.max_poll_records;
        let mut out: Vec<ConsumerRecord> = Vec::new();
        while out.len() < max {
            let Some(front) = self.buffered.front_mut() else {
                break;
            };
            if self.state.generation_of(&front.tp) != Some(front.generation) {
                self.buffered.pop_front();
                continue;
            }
            if !front.records.is_empty() {
                let n = (max - out.len()).min(front.records.len());
                let taken: Vec<ConsumerRecord> = front.records.drain(..n).collect();
                let last = taken.last().expect("n > 0");
                let mut next = last.offset + 1;
                let epoch = last.leader_epoch;
                let done = front.records.is_empty();
                if done && let Some(end) = front.next_offset {
                    next = next.max(end);
                }
                let drained = done && front.error.is_none();
                let (tp, generation) = (front.tp.clone(), front.generation);
                self.state.advance(&tp, generation, next, epoch, drained);
                out.extend(taken);
                if drained {
                    self.buffered.pop_front();
                }
                continue;
            }
            if front.error.is_some() && !out.is_empty() {
                break; // the records first; the error on the next poll
            }
            let front = self.buffered.pop_front().expect("front exists");
            self.state.unbuffer(&front.tp, front.generation);
            if let Some(error) = front.error {
                return Err(error);
            }
        }
        Ok(out)
    }

    /// Removes and returns a buffered error of `tp` that no record precedes.
    fn take_error_of(&mut self, tp: &TopicPartition) -> Option<Error> {
        let generation = self.state.generation_of(tp)?;
        let index = self.buffered.iter().position(|b| {
            b.tp == *tp && b.generation == generation && b.records.is_empty() && b.error.is_some()
        })?;
        let buffered = self.buffered.remove(index)?;
        self.state.unbuffer(tp, generation);
        buffered.error
    }
}

/// A consumer task panicked (a bug): its partitions would stay busy.
fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::strom(
        ErrorCode::UnknownServerError,
        format!("a consumer task failed: {e}"),
    )
}

/// OFFSET_OUT_OF_RANGE under `auto.offset.reset = none`, naming the range.
fn out_of_range_error(
    tp: &TopicPartition,
    offset: i64,
    log_start_offset: i64,
    high_watermark: i64,
    broker: &Error,
) -> Error {
    let range = if log_start_offset >= 0 && high_watermark >= 0 {
        format!("valid offsets are {log_start_offset} to {high_watermark}")
    } else {
        format!("the broker said: {}", broker.detail())
    };
    Error::strom(
        ErrorCode::OffsetOutOfRange,
        format!(
            "fetch position {offset} is out of range for partition {tp} and auto.offset.reset \
             is none; {range}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_error_names_the_valid_range() {
        let tp = TopicPartition::new("t", 2);
        let broker = Error::strom(
            ErrorCode::OffsetOutOfRange,
            "offset 99 is out of range [10, 50]",
        );
        let table = [
            (
                10,
                50,
                "fetch position 99 is out of range for partition t-2 and auto.offset.reset is none; valid offsets are 10 to 50",
            ),
            (
                -1,
                -1,
                "fetch position 99 is out of range for partition t-2 and auto.offset.reset is none; the broker said: offset 99 is out of range [10, 50]",
            ),
        ];
        for (start, end, want) in table {
            let error = out_of_range_error(&tp, 99, start, end, &broker);
            assert_eq!(error.code(), Some(ErrorCode::OffsetOutOfRange));
            assert_eq!(error.detail(), want);
        }
    }

    fn record(offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            timestamp_type: strom_log::TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
            leader_epoch: Some(1),
        }
    }

    async fn consumer_with_buffer(max_poll_records: usize) -> (Consumer, TopicPartition, u64) {
        let config = ConsumerConfig {
            max_poll_records,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::connect(config).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        consumer.assign([tp.clone()]);
        consumer.seek(&tp, 10).unwrap();
        let generation = consumer.state.generation_of(&tp).unwrap();
        consumer.state.mark_busy(&tp);
        consumer.state.fetched(&tp, generation, true);
        (consumer, tp, generation)
    }

    #[tokio::test]
    async fn buffered_records_are_returned_in_slices_of_max_poll_records() {
        let (mut consumer, tp, generation) = consumer_with_buffer(3).await;
        consumer.buffered.push_back(Buffered {
            tp: tp.clone(),
            generation,
            records: (10..15).map(record).collect(),
            next_offset: Some(17),
            error: Some(Error::strom(ErrorCode::CorruptMessage, "bad batch at 17")),
        });
        let first: Vec<i64> = consumer
            .take_buffered()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(first, [10, 11, 12]);
        assert_eq!(consumer.state.position(&tp), Some(13));
        let second: Vec<i64> = consumer
            .take_buffered()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(second, [13, 14]);
        assert_eq!(
            consumer.state.position(&tp),
            Some(17),
            "past the control batch"
        );
        let error = consumer.take_buffered().unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::CorruptMessage));
        assert!(consumer.take_buffered().unwrap().is_empty());
        assert_eq!(
            consumer.state.fetchable(Instant::now()).len(),
            1,
            "fetched again"
        );
    }

    #[tokio::test]
    async fn a_seek_drops_buffered_records() {
        let (mut consumer, tp, generation) = consumer_with_buffer(500).await;
        consumer.buffered.push_back(Buffered {
            tp: tp.clone(),
            generation,
            records: (10..12).map(record).collect(),
            next_offset: Some(12),
            error: None,
        });
        consumer.seek(&tp, 100).unwrap();
        assert!(consumer.take_buffered().unwrap().is_empty());
        assert_eq!(consumer.position(&tp).await.unwrap(), 100);
    }
}
