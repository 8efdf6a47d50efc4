//! The cluster image: the state every metadata record is applied to, as
//! KRaft's `MetadataImage`. Read accessors live here; applying records lives
//! in `apply.rs` ([`ClusterImage::apply_batch`]), snapshots in `snapshot.rs`.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::pb;

/// Name of the topic config that allows electing a leader outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// A registered broker, as the image knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerRegistration {
    /// Node id.
    pub id: i32,
    /// Broker epoch of the current registration.
    pub epoch: i64,
    /// Random id of the broker process that registered.
    pub incarnation_id: String,
    /// Where the broker can be reached.
    pub endpoints: Vec<pb::Endpoint>,
    /// Failure domain, when known.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and join no ISR.
    pub fenced: bool,
    /// Brokers shutting down get no new leaderships.
    pub in_controlled_shutdown: bool,
    /// The settings the broker was started with (Kafka names; sensitive
    /// values empty), as it registered them: `DescribeConfigs` shows them
    /// as `STATIC_BROKER_CONFIG`.
    pub static_configs: BTreeMap<String, String>,
}

impl BrokerRegistration {
    /// Alive: unfenced and not in controlled shutdown, so it may lead and join ISRs.
    pub fn is_alive(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// State of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas (a non-empty subset of `replicas`).
    pub isr: Vec<i32>,
    /// Current leader, -1 when none.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of the partition.
    pub partition_epoch: i32,
    /// Eligible leader replicas (Kafka's KIP-966): replicas outside the ISR
    /// that hold every record below the high watermark, because they left
    /// an ISR smaller than `min.insync.replicas` (which freezes the high
    /// watermark). Empty whenever the ISR has `min.insync.replicas` members.
    pub elr: Vec<i32>,
    /// Reassignment (KIP-455): replicas being added. They follow the leader
    /// and join the ISR once caught up; they are in `replicas`.
    pub adding: Vec<i32>,
    /// Reassignment: replicas being removed once every adding replica is in
    /// the ISR; they are in `replicas`, after the target replicas.
    pub removing: Vec<i32>,
}

impl PartitionState {
    /// The preferred leader: the first assigned replica.
    pub fn preferred_leader(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }

    /// The partition has no leader.
    pub fn is_offline(&self) -> bool {
        self.leader == NO_LEADER
    }

    /// Fewer in-sync replicas than assigned ones.
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// A reassignment is in progress (some replica is being added or removed).
    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas the partition will have once its reassignment completes
    /// (all of them when none is in progress), in replica order.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    /// The replicas the partition had before its reassignment started (all
    /// of them when none is in progress), in replica order.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }
}

/// Name of the topic config (and node setting, for topics without it) that
/// acks=all writes, the high watermark and eligible leader replicas follow.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Kafka's default `min.insync.replicas`.
pub const DEFAULT_MIN_INSYNC_REPLICAS: usize = 1;

/// The `min.insync.replicas` that governs eligible leader replicas and the
/// high watermark of `state`: the topic's setting, else `default`, at most
/// the replication factor (a topic of one replica never waits for a
/// second). Controllers and brokers must use the same `default`.
pub fn effective_min_isr(topic: &TopicImage, state: &PartitionState, default: usize) -> usize {
    topic
        .configs
        .get(MIN_INSYNC_REPLICAS)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, state.replicas.len().max(1))
}

/// The `leader` value of a partition without a leader.
pub const NO_LEADER: i32 = -1;

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Topic configs that differ from the defaults.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index, always `0..n`.
    pub partitions: BTreeMap<i32, PartitionState>,
}

impl TopicImage {
    /// One partition.
    pub fn partition(&self, partition: i32) -> Option<&PartitionState> {
        self.partitions.get(&partition)
    }

    /// Whether the topic allows unclean leader election (`unclean.leader.election.enable=true`).
    pub fn unclean_leader_election(&self) -> bool {
        self.configs
            .get(UNCLEAN_LEADER_ELECTION_ENABLE)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The smallest replica count among the partitions (0 for no partitions).
    pub fn min_replication_factor(&self) -> usize {
        self.partitions
            .values()
            .map(|p| p.replicas.len())
            .min()
            .unwrap_or(0)
    }
}

/// The cluster metadata image: brokers, topics, partitions and configs as of
/// one metadata-log offset.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterImage {
    pub(crate) offset: i64,
    pub(crate) cluster_id: Option<String>,
    pub(crate) brokers: BTreeMap<i32, BrokerRegistration>,
    pub(crate) topics: BTreeMap<Uuid, TopicImage>,
    pub(crate) topic_names: BTreeMap<String, Uuid>,
    pub(crate) cluster_configs: BTreeMap<String, String>,
    pub(crate) broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The first producer id not yet handed out (`producer_ids`).
    pub(crate) next_producer_id: i64,
    /// Brokers being decommissioned (see `decommission.rs`).
    pub(crate) decommissioning: BTreeSet<i32>,
    /// Derived: for each broker id, the partitions it is a replica of (and so
    /// possibly in the ISR of, or leader of). Never holds empty sets.
    pub(crate) replica_index: BTreeMap<i32, BTreeSet<(Uuid, i32)>>,
    /// Derived: number of partitions over all topics.
    pub(crate) partition_count: usize,
}

impl Default for ClusterImage {
    fn default() -> Self {
        ClusterImage {
            offset: -1,
            cluster_id: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_names: BTreeMap::new(),
            cluster_configs: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            next_producer_id: 0,
            decommissioning: BTreeSet::new(),
            replica_index: BTreeMap::new(),
            partition_count: 0,
        }
    }
}

impl ClusterImage {
    /// An empty image (offset -1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Offset of the last applied batch (-1 before any).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The first producer id not yet handed out to a broker.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// The cluster id, once a `ClusterRecord` was applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Registered brokers, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// One registered broker.
    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Whether `id` is registered, unfenced and not in controlled shutdown.
    pub fn is_alive(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(BrokerRegistration::is_alive)
    }

    /// Whether `id` is being decommissioned: its replicas move away and it
    /// gets no new ones.
    pub fn is_decommissioning(&self, id: i32) -> bool {
        self.decommissioning.contains(&id)
    }

    /// The brokers being decommissioned, by id.
    pub fn decommissioning(&self) -> impl Iterator<Item = i32> + '_ {
        self.decommissioning.iter().copied()
    }

    /// Alive brokers (see [`ClusterImage::is_alive`]) that are not being
    /// decommissioned, with their racks, by id: where new replicas may go,
    /// the input [`crate::assign_replicas`] expects.
    pub fn alive_brokers(&self) -> Vec<(i32, Option<String>)> {
        self.brokers
            .values()
            .filter(|b| b.is_alive() && !self.decommissioning.contains(&b.id))
            .map(|b| (b.id, b.rack.clone()))
            .collect()
    }

    /// Topics, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topic_names.values().map(|id| &self.topics[id])
    }

    /// Number of topics.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// A topic by name.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_names.get(name).map(|id| &self.topics[id])
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topics.get(id)
    }

    /// One partition of a topic, by topic id.
    pub fn partition(&self, topic_id: &Uuid, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic_id)?.partitions.get(&partition)
    }

    /// Number of partitions over all topics.
    pub fn partition_count(&self) -> usize {
        self.partition_count
    }

    /// Cluster-level configs.
    pub fn cluster_configs(&self) -> &BTreeMap<String, String> {
        &self.cluster_configs
    }

    /// Per-broker configs of `broker_id` (empty when none are set).
    pub fn broker_configs(&self, broker_id: i32) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(&broker_id)
    }

    /// The partitions `broker_id` is a replica of, as (topic id, partition),
    /// in topic-id order. Uses the per-broker index: cost is proportional to
    /// the broker's partitions, not the cluster's.
    pub fn partitions_of_broker(&self, broker_id: i32) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.replica_index
            .get(&broker_id)
            .into_iter()
            .flat_map(|set| set.iter().copied())
    }

    /// Every partition as (topic, partition index, state), topics by name.
    pub fn all_partitions(&self) -> impl Iterator<Item = (&TopicImage, i32, &PartitionState)> {
        self.topics()
            .flat_map(|t| t.partitions.iter().map(move |(p, s)| (t, *p, s)))
    }

    /// Number of partitions `broker_id` currently leads.
    pub fn leader_count(&self, broker_id: i32) -> usize {
        self.partitions_of_broker(broker_id)
            .filter(|(t, p)| self.partition(t, *p).is_some_and(|s| s.leader == broker_id))
            .count()
    }

    /// Replicas of `state` on brokers that are offline: not registered, or
    /// fenced (a broker in controlled shutdown is still online).
    pub fn offline_replicas_of(&self, state: &PartitionState) -> Vec<i32> {
        state
            .replicas
            .iter()
            .copied()
            .filter(|r| self.brokers.get(r).is_none_or(|b| b.fenced))
            .collect()
    }

    // ---- index maintenance, used by apply and undo ----

    pub(crate) fn index_add(&mut self, topic: Uuid, partition: i32, replicas: &[i32]) {
        for r in replicas {
            self.replica_index
                .entry(*r)
                .or_default()
                .insert((topic, partition));
        }
    }

    pub(crate) fn index_remove(&mut self, topic: Uuid, partition: i32, replicas: &[i32]) {
        for r in replicas {
            if let Some(set) = self.replica_index.get_mut(r) {
                set.remove(&(topic, partition));
                if set.is_empty() {
                    self.replica_index.remove(r);
                }
            }
        }
    }
}

/// Replicas of `topic`/`partition` on offline brokers (unregistered or
/// fenced); `None` when the partition does not exist.
pub fn offline_replicas(image: &ClusterImage, topic: &str, partition: i32) -> Option<Vec<i32>> {
    let state = image.topic_by_name(topic)?.partition(partition)?;
    Some(image.offline_replicas_of(state))
}

/// The ISR is smaller than the replica set.
pub fn under_replicated(state: &PartitionState) -> bool {
    state.is_under_replicated()
}

/// The partition has no leader.
pub fn is_offline(state: &PartitionState) -> bool {
    state.is_offline()
}

#[cfg(test)]
#[path = "image_test.rs"]
mod tests;
