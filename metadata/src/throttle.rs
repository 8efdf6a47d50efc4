//! Replication throttles, as Kafka's (KIP-73) with KIP-542's fix: which
//! replicas a broker throttles, from the topic configs
//! `leader.replication.throttled.replicas` and
//! `follower.replication.throttled.replicas`, and the values
//! `reassign execute --throttle` writes into them.
//!
//! A config lists `partition:broker` pairs (or `*`, every replica): on the
//! leader side the broker named is the one served from (the leader), on the
//! follower side the one fetching. Unlike Kafka, a listed replica is
//! throttled only while it is being *added* by a reassignment and is not in
//! the ISR: a follower catching up after a restart (in the replica set
//! before the move, or after it) is never slowed down, even under `*` —
//! KIP-542's complaint. The byte rates are the broker settings
//! `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate`; the broker enforces them with a
//! token bucket per side (`broker/src/replica/quota.rs`).
//!
//! Pure: configs and partition states in, decisions out. Tests:
//! `throttle_test.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::image::{PartitionState, TopicImage};

/// Broker setting: bytes/s of throttled replicas' traffic a leader serves.
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// Broker setting: bytes/s of throttled replicas' traffic a follower fetches.
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";
/// Topic config: the `partition:broker` replicas whose leader (the broker
/// named) throttles the moving followers it serves.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config: the `partition:broker` replicas whose follower (the broker
/// named) throttles its own fetches while it is being added.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// A parsed `*.replication.throttled.replicas` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ThrottledReplicas {
    /// Empty: nothing throttled.
    #[default]
    None,
    /// `*`: every replica of the topic.
    All,
    /// `partition:broker` pairs.
    Listed(BTreeSet<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Parses Kafka's format: `*`, or comma-separated `partition:broker`
    /// pairs of non-negative integers (whitespace around items and empty
    /// items allowed, as Kafka's `ThrottledReplicaListValidator`). The
    /// error says what is wrong.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value == "*" {
            return Ok(ThrottledReplicas::All);
        }
        let mut pairs = BTreeSet::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let pair = item.split_once(':').and_then(|(p, b)| {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
                if !digits(p) || !digits(b) {
                    return None;
                }
                Some((p.parse::<i32>().ok()?, b.parse::<i32>().ok()?))
            });
            match pair {
                Some(pair) => {
                    pairs.insert(pair);
                }
                None => {
                    return Err(format!(
                        "item {item:?} is not partition:broker (expected \"*\" or a list like 0:101,1:102)"
                    ));
                }
            }
        }
        Ok(if pairs.is_empty() {
            ThrottledReplicas::None
        } else {
            ThrottledReplicas::Listed(pairs)
        })
    }

    /// The replica of `partition` on `broker` is listed.
    pub fn contains(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }

    /// Kafka's text form: `*`, or `0:101,0:102,1:101` sorted.
    pub fn to_config(&self) -> String {
        match self {
            ThrottledReplicas::None => String::new(),
            ThrottledReplicas::All => "*".to_owned(),
            ThrottledReplicas::Listed(pairs) => pairs
                .iter()
                .map(|(p, b)| format!("{p}:{b}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The topic's value of `key`, parsed; an unparsable value (the controller
/// checks every value, so only one written by a newer version) throttles
/// nothing.
fn listed(topic: &TopicImage, key: &str) -> ThrottledReplicas {
    topic
        .configs
        .get(key)
        .and_then(|v| ThrottledReplicas::parse(v).ok())
        .unwrap_or_default()
}

/// The replicas being added to `state` that are not in its ISR: the only
/// ones a throttle ever applies to.
fn moving_out_of_sync(state: &PartitionState) -> impl Iterator<Item = i32> + '_ {
    state
        .adding
        .iter()
        .copied()
        .filter(|r| !state.isr.contains(r))
}

/// The followers whose fetches `node_id`, as leader of `partition` of
/// `topic`, serves under its leader throttle: the partition is listed for
/// `node_id` in `leader.replication.throttled.replicas`, and the follower
/// is being added and is out of the ISR.
pub fn leader_throttled_followers(
    topic: &TopicImage,
    partition: i32,
    state: &PartitionState,
    node_id: i32,
) -> Vec<i32> {
    if !listed(topic, LEADER_THROTTLED_REPLICAS).contains(partition, node_id) {
        return Vec::new();
    }
    moving_out_of_sync(state)
        .filter(|r| *r != node_id)
        .collect()
}

/// `node_id`'s fetches of `partition` of `topic` count against its
/// follower throttle: listed for `node_id` in
/// `follower.replication.throttled.replicas`, and `node_id` is being added
/// and is out of the ISR.
pub fn follower_throttled(
    topic: &TopicImage,
    partition: i32,
    state: &PartitionState,
    node_id: i32,
) -> bool {
    listed(topic, FOLLOWER_THROTTLED_REPLICAS).contains(partition, node_id)
        && moving_out_of_sync(state).any(|r| r == node_id)
}

/// One partition of a plan: its replicas now and the ones wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Replicas now (before the move).
    pub current: Vec<i32>,
    /// Replicas wanted.
    pub target: Vec<i32>,
}

/// Replica pairs (partition, broker).
type Pairs = BTreeSet<(i32, i32)>;

/// The topic throttle configs a throttled plan writes, by topic, as
/// kafka-reassign-partitions computes them: the leader side lists every
/// current replica of each moving partition (any may lead while it moves),
/// the follower side each replica being added. Partitions whose replica
/// set does not change are left out; topics with none are absent.
pub fn reassignment_throttles(
    moves: &[PlannedMove],
) -> BTreeMap<String, (ThrottledReplicas, ThrottledReplicas)> {
    let mut out: BTreeMap<String, (Pairs, Pairs)> = BTreeMap::new();
    for m in moves {
        let adding: Vec<i32> = m
            .target
            .iter()
            .copied()
            .filter(|r| !m.current.contains(r))
            .collect();
        let removing = m.current.iter().any(|r| !m.target.contains(r));
        if adding.is_empty() && !removing {
            continue;
        }
        let (leader, follower) = out.entry(m.topic.clone()).or_default();
        leader.extend(m.current.iter().map(|b| (m.partition, *b)));
        follower.extend(adding.iter().map(|b| (m.partition, *b)));
    }
    out.into_iter()
        .map(|(topic, (leader, follower))| {
            let wrap = |s: Pairs| {
                if s.is_empty() {
                    ThrottledReplicas::None
                } else {
                    ThrottledReplicas::Listed(s)
                }
            };
            (topic, (wrap(leader), wrap(follower)))
        })
        .collect()
}

#[cfg(test)]
#[path = "throttle_test.rs"]
mod tests;
