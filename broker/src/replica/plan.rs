//! Decide, then do: the pure half of following the metadata image.
//!
//! [`plan`] compares the partitions the image assigns to this broker with
//! the replicas it hosts and says what to do with each — open a log,
//! become leader, become follower, take a newer state at the same epoch,
//! wait, or remove — without any I/O. The replica manager executes the
//! plan (opens in parallel, leadership changes in parallel, fsyncs on the
//! blocking pool). Table-driven tests: `plan_test.rs`.
//!
//! The settings each replica gets come from here too: [`defaults`] lays
//! the live (dynamic) broker settings of the image over the static ones,
//! and [`log_config`] and [`min_isr`] lay a topic's configs over those, so
//! a config change reaches already-open partitions at the next image.

use std::collections::{HashMap, HashSet};

use strom_log::{CleanupPolicy, LogConfig};
use strom_metadata::{ClusterImage, PartitionState, TopicImage, throttle};
use uuid::Uuid;

use super::config::{ReplicationConfig, timestamp_type};
use super::partition::{Keeping, Role, Throttle};

/// A hosted partition: (topic id, partition index).
pub(crate) type Key = (Uuid, i32);

/// One partition assigned to this broker, as the image says.
#[derive(Debug, Clone)]
pub(crate) struct Assigned {
    pub(crate) topic: String,
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) state: PartitionState,
    pub(crate) log: LogConfig,
    /// `min.insync.replicas` and `write.caching`.
    pub(crate) keeping: Keeping,
    /// What of its traffic the replication throttles meter.
    pub(crate) throttle: Throttle,
}

impl Assigned {
    pub(crate) fn key(&self) -> Key {
        (self.topic_id, self.partition)
    }
}

/// Settings the image's topic configs override.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub(crate) log: LogConfig,
    pub(crate) min_insync_replicas: usize,
    /// `log.write.caching`.
    pub(crate) write_caching: bool,
    /// `leader.replication.throttled.rate` (`None`: unthrottled).
    pub(crate) leader_throttled_rate: Option<u64>,
    /// `follower.replication.throttled.rate` (`None`: unthrottled).
    pub(crate) follower_throttled_rate: Option<u64>,
}

/// The broker defaults in force on `node_id`: its static settings with the
/// image's live broker settings laid over them (cluster-wide defaults, then
/// this broker's own; see `strom_metadata::configs::dynamic_broker_configs`).
/// The controller checked every live value; one this broker cannot parse
/// (written by a newer version) leaves the static value and is returned.
pub(crate) fn defaults(
    config: &ReplicationConfig,
    image: &ClusterImage,
    node_id: i32,
) -> (Defaults, Vec<String>) {
    let mut live = config.clone();
    let mut ignored = Vec::new();
    for (k, v) in strom_metadata::configs::dynamic_broker_configs(image, node_id) {
        let mut next = live.clone();
        match next.set(&k, &v) {
            Ok(true) if next.log.validate().is_ok() => live = next,
            _ => ignored.push(k),
        }
    }
    let defaults = Defaults {
        log: live.log,
        min_insync_replicas: strom_metadata::configs::default_min_isr(
            image,
            config.min_insync_replicas,
        ),
        write_caching: live.write_caching,
        leader_throttled_rate: live.leader_throttled_rate,
        follower_throttled_rate: live.follower_throttled_rate,
    };
    (defaults, ignored)
}

/// Kafka's `Long.MAX_VALUE` for the flush settings: never.
const NEVER: u64 = i64::MAX as u64;

/// A topic's log settings: the broker defaults overridden by topic configs.
pub(crate) fn log_config(defaults: &LogConfig, topic: &TopicImage) -> LogConfig {
    let mut c = defaults.clone();
    let get = |k: &str| topic.configs.get(k).and_then(|v| v.parse::<u64>().ok());
    if let Some(v) = get("segment.bytes") {
        c.segment_bytes = v;
    }
    if let Some(v) = get("segment.ms") {
        c.segment_ms = v;
    }
    if let Some(v) = get("max.message.bytes") {
        c.max_message_bytes = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if let Some(v) = get("flush.messages") {
        c.flush_messages = (v != NEVER).then_some(v);
    }
    if let Some(v) = get("flush.ms") {
        c.flush_ms = (v != NEVER).then_some(v);
    }
    if let Some(t) = topic
        .configs
        .get("message.timestamp.type")
        .map(String::as_str)
        .and_then(timestamp_type)
    {
        c.message_timestamp_type = t;
    }
    // Kafka's -1 (any negative value) is unlimited.
    let limit = |k: &str| {
        topic
            .configs
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| u64::try_from(v).ok())
    };
    if let Some(v) = limit("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = limit("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(p) = topic
        .configs
        .get("cleanup.policy")
        .and_then(|v| CleanupPolicy::parse(v))
    {
        c.cleanup_policy = p;
    }
    if let Some(v) = get("delete.retention.ms") {
        c.delete_retention_ms = v;
    }
    if let Some(v) = get("min.compaction.lag.ms") {
        c.min_compaction_lag_ms = v;
    }
    if let Some(v) = get("max.compaction.lag.ms") {
        c.max_compaction_lag_ms = (v != NEVER).then_some(v);
    }
    if let Some(v) = topic
        .configs
        .get("min.cleanable.dirty.ratio")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| (0.0..=1.0).contains(v))
    {
        c.min_cleanable_dirty_ratio = v;
    }
    c
}

/// `min.insync.replicas` of a topic.
pub(crate) fn min_isr(default: usize, topic: &TopicImage) -> usize {
    topic
        .configs
        .get("min.insync.replicas")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
}

/// `write.caching` of a topic: `false` makes acks=all wait for every ISR
/// member's fsync. Values are validated when set; anything else keeps
/// the broker default.
pub(crate) fn write_caching(default: bool, topic: &TopicImage) -> bool {
    match topic.configs.get("write.caching").map(String::as_str) {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        _ => default,
    }
}

/// Every partition the image assigns to `node_id`.
pub(crate) fn assigned(image: &ClusterImage, node_id: i32, defaults: &Defaults) -> Vec<Assigned> {
    image
        .all_partitions()
        .filter(|(_, _, p)| p.replicas.contains(&node_id))
        .map(|(t, partition, p)| Assigned {
            topic: t.name.clone(),
            topic_id: t.id,
            partition,
            state: p.clone(),
            log: log_config(&defaults.log, t),
            keeping: Keeping {
                min_isr: min_isr(defaults.min_insync_replicas, t),
                durable: !write_caching(defaults.write_caching, t),
            },
            throttle: Throttle {
                followers: throttle::leader_throttled_followers(t, partition, p, node_id),
                follower: throttle::follower_throttled(t, partition, p, node_id),
            },
        })
        .collect()
}

/// What a hosted replica is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hosted {
    pub(crate) role: Role,
    pub(crate) leader_epoch: i32,
}

/// What to do with one assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Become leader at the image's leader epoch.
    Leader,
    /// Follow the image's leader (-1: nobody to fetch from yet).
    Follower,
    /// Same role and epoch: take the newer ISR, replicas and min ISR.
    Update,
    /// The image names this broker leader, but this process has not yet
    /// replayed the log up to its registration: the image may predate a
    /// crash that cost this node its unflushed tail, so it takes no
    /// leadership yet (the registration moves those leaderships away).
    Wait,
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// Index into the assigned partitions.
    pub(crate) assigned: usize,
    /// The log must be opened first.
    pub(crate) open: bool,
    pub(crate) transition: Transition,
}

/// Everything to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    /// Hosted replicas the image no longer assigns here: stop them and
    /// delete their logs.
    pub(crate) remove: Vec<Key>,
}

impl Plan {
    /// Steps that change a role (and so take the log lock and may fsync).
    pub(crate) fn role_changes(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.transition, Transition::Leader | Transition::Follower))
            .count()
    }
}

/// What `node_id` must do to host `assigned` as the image says, given what
/// it `hosted` so far and whether it has `registered` (replayed the
/// metadata log up to its registration).
pub(crate) fn plan(
    node_id: i32,
    assigned: &[Assigned],
    hosted: &HashMap<Key, Hosted>,
    registered: bool,
) -> Plan {
    let mut steps = Vec::with_capacity(assigned.len());
    let mut keep = HashSet::with_capacity(assigned.len());
    for (i, a) in assigned.iter().enumerate() {
        keep.insert(a.key());
        let current = hosted.get(&a.key());
        let (role, epoch) = current.map_or((Role::None, -1), |h| (h.role, h.leader_epoch));
        let p = &a.state;
        let transition = if p.leader == node_id {
            if !registered {
                Transition::Wait
            } else if role != Role::Leader || epoch != p.leader_epoch {
                Transition::Leader
            } else {
                Transition::Update
            }
        } else if role != (Role::Follower { leader: p.leader }) || epoch != p.leader_epoch {
            Transition::Follower
        } else {
            Transition::Update
        };
        steps.push(Step {
            assigned: i,
            open: current.is_none(),
            transition,
        });
    }
    let mut remove: Vec<Key> = hosted
        .keys()
        .filter(|k| !keep.contains(k))
        .copied()
        .collect();
    remove.sort();
    Plan { steps, remove }
}
