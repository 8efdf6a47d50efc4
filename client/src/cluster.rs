//! Where partitions live, as the producer and consumer see it.
//!
//! * [`ClusterMetadata`] — a pure image: brokers' addresses, each topic's id
//!   and partitions with their leader and leader epoch. Updated from
//!   `MetadataService.Metadata` answers and from the `current_leader` hints
//!   that partition errors carry; an update never moves a partition back to
//!   an older leader epoch.
//! * [`MetadataCache`] — the image plus the topics of interest, refreshed
//!   from any bootstrap node (with the retry loop of [`crate::retry`]);
//!   concurrent refreshes collapse into one.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::metadata_service_client::MetadataServiceClient;
use tokio::time::Instant;

use crate::admin::{TopicId, TopicPartition};
use crate::config::ClientConfig;
use crate::error::{Result, error_code};
use crate::pool::{ChannelPool, MAX_MESSAGE_SIZE};
use crate::retry;

/// A partition's leader, resolved to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leader {
    /// Broker id.
    pub(crate) id: i32,
    /// Leader epoch the leader was elected in.
    pub(crate) epoch: i32,
    /// The broker's client address.
    pub(crate) address: String,
}

/// One partition's leadership as last learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionInfo {
    /// Leader broker id; `None` while offline or unknown.
    leader: Option<i32>,
    leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicInfo {
    id: Option<TopicId>,
    /// Indexed by partition number.
    partitions: Vec<PartitionInfo>,
}

/// The pure image of the cluster's brokers and topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClusterMetadata {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicInfo>,
    /// Requested topics the last answer had an error for.
    topic_errors: HashMap<String, ErrorCode>,
}

impl ClusterMetadata {
    /// Applies a metadata answer: brokers are replaced (the answer lists
    /// them all), topics in the answer replace their entries, except that a
    /// partition already known at a newer leader epoch keeps its leader.
    /// Returns whether it did so for any partition: the answering node's
    /// image is behind (it may be cut off from the controllers).
    pub(crate) fn apply(&mut self, response: pb::MetadataResponse) -> bool {
        let mut behind = false;
        for broker in response.brokers {
            self.brokers.insert(broker.id, broker.address);
        }
        for topic in response.topics {
            match error_code(topic.error_code) {
                ErrorCode::None => {}
                code => {
                    self.topics.remove(&topic.name);
                    self.topic_errors.insert(topic.name, code);
                    continue;
                }
            }
            let count = topic
                .partitions
                .iter()
                .map(|p| p.partition.max(-1) + 1)
                .max()
                .unwrap_or(0) as usize;
            let mut partitions = vec![
                PartitionInfo {
                    leader: None,
                    leader_epoch: -1,
                };
                count
            ];
            for p in &topic.partitions {
                if let Ok(index) = usize::try_from(p.partition) {
                    partitions[index] = PartitionInfo {
                        leader: (p.leader >= 0).then_some(p.leader),
                        leader_epoch: p.leader_epoch,
                    };
                }
            }
            let id = TopicId::from_bytes(&topic.topic_id);
            if let Some(old) = self.topics.get(&topic.name)
                && old.id == id
            {
                for (new, old) in partitions.iter_mut().zip(&old.partitions) {
                    if old.leader_epoch > new.leader_epoch {
                        *new = *old;
                        behind = true;
                    }
                }
            }
            self.topic_errors.remove(&topic.name);
            self.topics.insert(topic.name, TopicInfo { id, partitions });
        }
        behind
    }

    /// Applies a partition error's `current_leader` hint. Returns whether
    /// the partition now has a different leader than `previous_leader`.
    pub(crate) fn apply_leader_hint(
        &mut self,
        tp: &TopicPartition,
        hint: &pb::LeaderIdAndEpoch,
        previous_leader: i32,
    ) -> bool {
        let Some(info) = self
            .topics
            .get_mut(&tp.topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(tp.partition).ok()?))
        else {
            return false;
        };
        if hint.leader_epoch < info.leader_epoch {
            return false;
        }
        if hint.leader_id >= 0 && !hint.leader_address.is_empty() {
            self.brokers
                .insert(hint.leader_id, hint.leader_address.clone());
        }
        info.leader_epoch = hint.leader_epoch;
        info.leader = (hint.leader_id >= 0).then_some(hint.leader_id);
        info.leader.is_some_and(|l| l != previous_leader) && self.leader(tp).is_some()
    }

    /// Whether the topic is known (with at least one partition).
    pub(crate) fn has_topic(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }

    /// The topic's partition count, when known.
    pub(crate) fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics.get(topic).map(|t| t.partitions.len())
    }

    /// The error the last answer gave for `topic`, if any.
    pub(crate) fn topic_error(&self, topic: &str) -> Option<ErrorCode> {
        self.topic_errors.get(topic).copied()
    }

    /// The topic's id, when known.
    pub(crate) fn topic_id(&self, topic: &str) -> Option<TopicId> {
        self.topics.get(topic).and_then(|t| t.id)
    }

    /// The partitions of `topic` that have a leader with a known address.
    pub(crate) fn available_partitions(&self, topic: &str) -> Vec<i32> {
        let Some(info) = self.topics.get(topic) else {
            return Vec::new();
        };
        // Called when the sticky partitioner moves on: no per-partition
        // allocation (this is on the producer's per-record path).
        (0..)
            .zip(&info.partitions)
            .filter(|(_, p)| {
                p.leader
                    .and_then(|id| self.brokers.get(&id))
                    .is_some_and(|a| !a.is_empty())
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// The partition's leader epoch, -1 when unknown.
    pub(crate) fn leader_epoch(&self, tp: &TopicPartition) -> i32 {
        self.partition(tp).map_or(-1, |p| p.leader_epoch)
    }

    /// The partition's leader and its address, when both are known.
    pub(crate) fn leader(&self, tp: &TopicPartition) -> Option<Leader> {
        let info = self.partition(tp)?;
        let id = info.leader?;
        let address = self.brokers.get(&id).filter(|a| !a.is_empty())?;
        Some(Leader {
            id,
            epoch: info.leader_epoch,
            address: address.clone(),
        })
    }

    fn partition(&self, tp: &TopicPartition) -> Option<&PartitionInfo> {
        self.topics
            .get(&tp.topic)?
            .partitions
            .get(usize::try_from(tp.partition).ok()?)
    }
}

/// The image, the topics it should cover, and the refresh bookkeeping.
#[derive(Debug, Default)]
struct CacheState {
    image: ClusterMetadata,
    topics: BTreeSet<String>,
    /// Completed refreshes.
    version: u64,
    /// Bumped by [`MetadataCache::mark_stale`].
    stale_generation: u64,
    /// The stale generation the last completed refresh started at.
    fresh_generation: u64,
    refreshed_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// The next refresh asks another bootstrap node
    /// ([`MetadataCache::distrust_source`]).
    distrusted: bool,
}

/// The shared, refreshable cluster image of one producer or consumer.
#[derive(Debug)]
pub(crate) struct MetadataCache {
    config: ClientConfig,
    pool: Arc<ChannelPool>,
    state: Mutex<CacheState>,
    /// Held during a refresh so concurrent callers wait for it instead of
    /// sending their own request.
    refreshing: tokio::sync::Mutex<()>,
}

impl MetadataCache {
    pub(crate) fn new(config: ClientConfig, pool: Arc<ChannelPool>) -> Self {
        Self {
            config,
            pool,
            state: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().expect("metadata lock is never poisoned")
    }

    /// Reads the image.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&ClusterMetadata) -> R) -> R {
        f(&self.lock().image)
    }

    /// Adds `topic` to the topics the image must cover, as
    /// [`add_topics`](Self::add_topics), and reads its partition count, under
    /// one lock: a producer does both for every record.
    pub(crate) fn add_topic_partition_count(&self, topic: &str) -> (bool, Option<usize>) {
        let mut state = self.lock();
        let added = !state.topics.contains(topic);
        if added {
            state.topics.insert(topic.to_owned());
            state.stale_generation += 1;
        }
        (added, state.image.partition_count(topic))
    }

    /// Adds topics the image must cover; returns whether any was new (the
    /// image is then stale).
    pub(crate) fn add_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut state = self.lock();
        let mut added = false;
        for topic in topics {
            if !state.topics.contains(topic) {
                state.topics.insert(topic.to_owned());
                added = true;
            }
        }
        if added {
            state.stale_generation += 1;
        }
        added
    }

    /// Keeps only `topics` of interest (the consumer's assignment changed).
    pub(crate) fn retain_topics(&self, topics: &BTreeSet<String>) {
        self.lock().topics.retain(|t| topics.contains(t));
    }

    /// Asks for a refresh: a leader moved, a broker failed, a topic is missing.
    pub(crate) fn mark_stale(&self) {
        self.lock().stale_generation += 1;
    }

    /// Asks for a refresh from another bootstrap node: the image names a
    /// leader older than one this client has seen, so the node that answered
    /// last is behind (cut off from the controllers, it keeps its last
    /// image and answers with it for as long as it is cut off).
    pub(crate) fn distrust_source(&self) {
        let mut state = self.lock();
        state.stale_generation += 1;
        state.distrusted = true;
    }

    /// Applies a partition error's leader hint; see
    /// [`ClusterMetadata::apply_leader_hint`].
    pub(crate) fn apply_leader_hint(
        &self,
        tp: &TopicPartition,
        hint: &pb::LeaderIdAndEpoch,
        previous_leader: i32,
    ) -> bool {
        self.lock()
            .image
            .apply_leader_hint(tp, hint, previous_leader)
    }

    /// When the next refresh is due: `None` if the image is fresh and
    /// younger than `max_age`; otherwise the earliest instant allowed by the
    /// retry backoff since the last attempt (`now` if never attempted).
    pub(crate) fn refresh_due(&self, now: Instant, max_age: Duration) -> Option<Instant> {
        let state = self.lock();
        if state.topics.is_empty() {
            return None;
        }
        let stale = state.stale_generation != state.fresh_generation
            || state
                .refreshed_at
                .is_none_or(|at| now.saturating_duration_since(at) >= max_age);
        if !stale {
            return None;
        }
        Some(
            state
                .attempted_at
                .map_or(now, |at| at + self.config.retry_backoff),
        )
    }

    /// Fetches metadata for the topics of interest from a bootstrap node and
    /// applies it. A caller that finds a refresh already running waits for
    /// it, and does not send another if that one started after everything
    /// the caller knows of (its topics, its staleness marks).
    pub(crate) async fn refresh(&self) -> Result<()> {
        let (seen, wanted) = {
            let state = self.lock();
            (state.version, state.stale_generation)
        };
        let _refreshing = self.refreshing.lock().await;
        let (topics, generation) = {
            let mut state = self.lock();
            if state.version != seen && state.fresh_generation >= wanted {
                return Ok(());
            }
            state.attempted_at = Some(Instant::now());
            if std::mem::take(&mut state.distrusted) {
                self.pool.rotate(&self.pool.current());
            }
            (
                state.topics.iter().cloned().collect::<Vec<_>>(),
                state.stale_generation,
            )
        };
        if topics.is_empty() {
            return Ok(());
        }
        let message = pb::MetadataRequest { topics };
        let response = retry::call(&self.config, &self.pool, "metadata", |channel, timeout| {
            let message = message.clone();
            async move {
                let mut request = tonic::Request::new(message);
                request.set_timeout(timeout);
                MetadataServiceClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .metadata(request)
                    .await
            }
        })
        .await?;
        let mut state = self.lock();
        if state.image.apply(response) {
            // Ask another node next time; this answer kept the newer leaders.
            state.distrusted = true;
        }
        state.version += 1;
        state.fresh_generation = generation;
        state.refreshed_at = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(partition: i32, leader: i32, leader_epoch: i32) -> pb::PartitionMetadata {
        pb::PartitionMetadata {
            partition,
            leader,
            leader_epoch,
            ..Default::default()
        }
    }

    fn response(topics: Vec<pb::TopicMetadata>) -> pb::MetadataResponse {
        pb::MetadataResponse {
            brokers: vec![
                pb::BrokerDescription {
                    id: 1,
                    address: "h1:9092".into(),
                    ..Default::default()
                },
                pb::BrokerDescription {
                    id: 2,
                    address: "h2:9092".into(),
                    ..Default::default()
                },
            ],
            topics,
            ..Default::default()
        }
    }

    fn topic(name: &str, partitions: Vec<pb::PartitionMetadata>) -> pb::TopicMetadata {
        pb::TopicMetadata {
            name: name.into(),
            topic_id: vec![7; 16],
            partitions,
            ..Default::default()
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn answer_resolves_leaders_to_addresses() {
        let mut image = ClusterMetadata::default();
        image.apply(response(vec![topic(
            "t",
            vec![partition(1, 2, 4), partition(0, 1, 3), partition(2, -1, 5)],
        )]));
        assert_eq!(image.partition_count("t"), Some(3));
        assert_eq!(
            image.leader(&tp(0)),
            Some(Leader {
                id: 1,
                epoch: 3,
                address: "h1:9092".into()
            })
        );
        assert_eq!(image.leader(&tp(1)).map(|l| l.id), Some(2));
        assert_eq!(image.leader(&tp(2)), None, "offline partition");
        assert_eq!(image.leader(&tp(3)), None, "no such partition");
        assert_eq!(image.leader_epoch(&tp(2)), 5);
        assert_eq!(image.available_partitions("t"), [0, 1]);
        assert!(image.topic_id("t").is_some());
    }

    #[test]
    fn an_older_answer_never_moves_a_leader_back() {
        let mut image = ClusterMetadata::default();
        image.apply(response(vec![topic("t", vec![partition(0, 1, 3)])]));
        let hint = pb::LeaderIdAndEpoch {
            leader_id: 2,
            leader_epoch: 4,
            leader_address: "h2:9092".into(),
        };
        assert!(image.apply_leader_hint(&tp(0), &hint, 1), "moved to 2");
        assert!(
            image.apply(response(vec![topic("t", vec![partition(0, 1, 3)])])),
            "the answer is behind"
        );
        assert_eq!(image.leader(&tp(0)).map(|l| (l.id, l.epoch)), Some((2, 4)));
        assert!(!image.apply(response(vec![topic("t", vec![partition(0, 1, 5)])])));
        assert_eq!(image.leader(&tp(0)).map(|l| (l.id, l.epoch)), Some((1, 5)));
    }

    #[test]
    fn leader_hints_apply_only_when_not_older() {
        let mut image = ClusterMetadata::default();
        image.apply(response(vec![topic("t", vec![partition(0, 1, 3)])]));
        let hint = |id: i32, epoch: i32, address: &str| pb::LeaderIdAndEpoch {
            leader_id: id,
            leader_epoch: epoch,
            leader_address: address.into(),
        };
        // (hint, previous leader, changed?, leader after)
        let table = [
            (hint(2, 2, "h2:9092"), 1, false, Some(1)),
            (hint(1, 3, ""), 1, false, Some(1)),
            (hint(3, 4, "h3:9092"), 1, true, Some(3)),
            (hint(-1, 5, ""), 3, false, None),
        ];
        for (hint, previous, changed, leader) in table {
            assert_eq!(
                image.apply_leader_hint(&tp(0), &hint, previous),
                changed,
                "{hint:?}"
            );
            assert_eq!(image.leader(&tp(0)).map(|l| l.id), leader, "{hint:?}");
        }
        assert!(
            !image.apply_leader_hint(&tp(9), &hint(1, 9, "h1:9092"), 1),
            "a hint for an unknown partition is ignored"
        );
    }

    #[test]
    fn topic_errors_replace_the_topic() {
        let mut image = ClusterMetadata::default();
        image.apply(response(vec![topic("t", vec![partition(0, 1, 3)])]));
        image.apply(response(vec![pb::TopicMetadata {
            name: "t".into(),
            error_code: ErrorCode::UnknownTopicOrPartition as i32,
            ..Default::default()
        }]));
        assert!(!image.has_topic("t"));
        assert_eq!(
            image.topic_error("t"),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        image.apply(response(vec![topic("t", vec![partition(0, 1, 3)])]));
        assert_eq!(image.topic_error("t"), None);
    }

    #[tokio::test]
    async fn refresh_is_due_when_stale_or_old() {
        let cache = MetadataCache::new(
            ClientConfig::default(),
            Arc::new(ChannelPool::new(vec!["a:1".into()], Duration::from_secs(1))),
        );
        let max_age = Duration::from_secs(300);
        let now = Instant::now();
        assert_eq!(
            cache.refresh_due(now, max_age),
            None,
            "no topic of interest"
        );
        assert!(cache.add_topics(["t"]));
        assert!(!cache.add_topics(["t"]));
        assert_eq!(
            cache.refresh_due(now, max_age),
            Some(now),
            "never refreshed"
        );
    }
}
