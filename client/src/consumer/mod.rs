//! The consumer: [`Consumer`], like Kafka's `KafkaConsumer`: manual
//! assignment, or group membership (`subscribe`, KIP-848 against
//! `ConsumerGroupHeartbeat`), with committed offsets.
//!
//! [`Consumer`]'s methods are split by concern:
//! * `assignment` — assign, seek, positions and lag.
//! * `lookups` — offset queries of any partition (ListOffsets on demand).
//! * `poll` — the poll loop: starting metadata refreshes, offset resets and
//!   fetches as background tasks, and waiting for them.
//! * `rebalance` — subscribe, unsubscribe, close, and applying the
//!   heartbeat task's assignments in `poll` (revoke, then assign) with the
//!   [`RebalanceListener`] callbacks.
//! * `commit` — `commit_sync`, `commit_async`, `committed`, auto commit.
//! * `commit_order` — commits sent one after another, in issue order.
//! * `answers` — applying a finished task's answer to the partitions'
//!   state (retry with backoff, reset, or buffer records and errors).
//! * `buffer` — fetched records waiting for `poll`, handed out at most
//!   `max.poll.records` at a time.
//!
//! Its building blocks:
//! * `config` — [`ConsumerConfig`], [`OffsetReset`], [`IsolationLevel`].
//! * `record` — [`ConsumerRecord`], [`OffsetAndTimestamp`].
//! * `state` — the assignment and each partition's position, pending
//!   resets, backoff and generation (pure).
//! * `fetcher` — fetch requests per leader and their answers.
//! * `decode` — record batches to records (pure).
//! * `offsets` — ListOffsets, once or with retries.
//! * `group` — the coordinator link and the heartbeat task.
//! * `push` — the coordinator's pushed assignment stream, which wakes the
//!   heartbeat task at once.
//!
//! All network work runs in tasks the consumer owns: metadata refreshes,
//! offset lookups for partitions without a position, and one fetch per
//! leader broker at a time. [`Consumer::poll`] starts what is needed,
//! returns buffered records, and otherwise waits for the next answer, so
//! fetching continues (prefetch) between polls. Dropping the consumer
//! stops them.

mod answers;
mod assignment;
mod buffer;
mod commit;
mod commit_order;
mod config;
mod decode;
mod fetcher;
mod group;
mod lookups;
mod offsets;
mod poll;
mod push;
mod rebalance;
mod record;
mod state;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use strom_proto::FetchSession;
use tokio::task::JoinSet;

use self::buffer::Buffered;
pub use self::commit::{CommitFuture, ConsumerGroupMetadata, OffsetAndMetadata};
use self::commit_order::CommitOrder;
pub use self::config::{ASSIGNORS, ConsumerConfig, IsolationLevel, OffsetReset};
use self::group::{GroupShared, HeartbeatTask};
use self::poll::Task;
pub use self::rebalance::{ListenerFuture, RebalanceListener};
pub use self::record::{ConsumerRecord, OffsetAndTimestamp};
use self::state::SubscriptionState;
use crate::cluster::MetadataCache;
use crate::config::Properties;
use crate::error::Result;
use crate::pool::ChannelPool;

/// What the consumer's tasks share.
#[derive(Debug)]
struct Shared {
    config: ConsumerConfig,
    pool: Arc<ChannelPool>,
    metadata: MetadataCache,
    /// Fetch sessions between rounds, by leader address.
    sessions: Mutex<HashMap<String, FetchSession>>,
    /// Membership and commits; `None` without a `group.id`.
    group: Option<GroupShared>,
}

/// A consumer of assigned partitions, or a member of a consumer group.
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
///
/// As a group member (`group.id` set; positions of new partitions come
/// from the group's committed offsets, auto commit is on by default):
///
/// ```no_run
/// # async fn demo() -> strom_client::Result<()> {
/// use std::time::Duration;
/// use strom_client::{Consumer, ConsumerConfig, Properties};
///
/// let config = ConsumerConfig::from_properties([
///     "bootstrap.servers=127.0.0.1:9092",
///     "group.id=billing",
/// ])?;
/// let mut consumer = Consumer::connect(config).await?;
/// consumer.subscribe(["orders"]).await?;
/// for _ in 0..10 {
///     for record in consumer.poll(Duration::from_secs(1)).await? {
///         println!("{}-{}@{}", record.topic, record.partition, record.offset);
///     }
/// }
/// consumer.close().await?; // final commit, leaves the group at once
/// # Ok(())
/// # }
/// ```
pub struct Consumer {
    shared: Arc<Shared>,
    state: SubscriptionState,
    tasks: JoinSet<Task>,
    /// Leader addresses with a fetch in flight.
    fetching: HashSet<String>,
    refreshing: bool,
    buffered: VecDeque<Buffered>,
    /// The heartbeat task while subscribed.
    heartbeat: Option<HeartbeatTask>,
    listener: Option<Box<dyn RebalanceListener>>,
    next_auto_commit: tokio::time::Instant,
    auto_commit: Option<tokio::task::JoinHandle<Result<()>>>,
    /// Every commit (sync, async, auto) waits for the one issued before.
    commit_order: CommitOrder,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("shared", &self.shared)
            .field("state", &self.state)
            .field("subscribed", &self.heartbeat.is_some())
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
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
            next_auto_commit: tokio::time::Instant::now() + config.auto_commit_interval,
            shared: Arc::new(Shared {
                pool,
                metadata,
                sessions: Mutex::default(),
                group: config.group_id.clone().map(GroupShared::new),
                config,
            }),
            tasks: JoinSet::new(),
            fetching: HashSet::new(),
            refreshing: false,
            buffered: VecDeque::new(),
            heartbeat: None,
            listener: None,
            auto_commit: None,
            commit_order: CommitOrder::default(),
        })
    }

    /// The config this consumer was created with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }
}
