//! Request validation: topic names, partition counts, replication factors,
//! explicit replica assignments and topic configs (whose table is in
//! [`crate::configs::keys`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::apply::first_duplicate;
use crate::error::{Result, bail};
use crate::image::ClusterImage;

pub use crate::configs::{topic_config_names, validate_topic_config};

/// Topics only the brokers' coordinators write: clients cannot produce to
/// them (INVALID_TOPIC_EXCEPTION, as Kafka), listings show them only on
/// request, and metadata marks them `is_internal`.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Whether `name` is one of the [`INTERNAL_TOPICS`].
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Longest valid topic name, as Kafka.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!(InvalidTopicException, "topic name is empty");
    }
    if name == "." || name == ".." {
        bail!(InvalidTopicException, "topic name cannot be {name:?}");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        bail!(
            InvalidTopicException,
            "topic name is {} characters long, the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        );
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!(
            InvalidTopicException,
            "topic name {name:?} contains {c:?}; only ascii letters, digits, '.', '_' and '-' are allowed"
        );
    }
    Ok(())
}

/// Checks a partition count of a new topic: at least 1.
pub fn validate_partition_count(num_partitions: i32) -> Result<()> {
    if num_partitions < 1 {
        bail!(
            InvalidPartitions,
            "number of partitions must be at least 1, got {num_partitions}"
        );
    }
    Ok(())
}

/// Checks a replication factor against the number of alive brokers
/// (registered, unfenced, not in controlled shutdown).
pub fn validate_replication_factor(replication_factor: i32, alive_brokers: usize) -> Result<()> {
    if replication_factor < 1 {
        bail!(
            InvalidReplicationFactor,
            "replication factor must be at least 1, got {replication_factor}"
        );
    }
    if replication_factor as usize > alive_brokers {
        bail!(
            InvalidReplicationFactor,
            "replication factor {replication_factor} is larger than the {alive_brokers} available brokers"
        );
    }
    Ok(())
}

/// Checks a new partition count of an existing topic: only increases.
pub fn validate_partition_increase(topic: &str, current: usize, new_count: i32) -> Result<()> {
    if new_count < 1 {
        bail!(
            InvalidPartitions,
            "number of partitions must be at least 1, got {new_count}"
        );
    }
    let new = new_count as usize;
    if new < current {
        bail!(
            InvalidPartitions,
            "topic {topic} has {current} partitions; partitions can only be added, not removed (asked for {new})"
        );
    }
    if new == current {
        bail!(
            InvalidPartitions,
            "topic {topic} already has {current} partitions"
        );
    }
    Ok(())
}

/// The names that appear more than once in one request (each such topic fails
/// with `INVALID_REQUEST`, as Kafka does).
pub fn duplicate_topic_names<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            dups.insert(n.to_string());
        }
    }
    dups
}

/// Checks an explicit replica assignment: at least one partition; every
/// partition has the same replica count (`expected_rf` when given, e.g. that
/// of the existing partitions), no duplicate replicas, and only registered
/// brokers. Partition `i` of the assignment is partition `first_partition + i`.
/// Returns the replication factor.
pub fn validate_assignment(
    image: &ClusterImage,
    assignment: &[Vec<i32>],
    first_partition: i32,
    expected_rf: Option<usize>,
) -> Result<usize> {
    let Some(first) = assignment.first() else {
        bail!(InvalidReplicaAssignment, "replica assignment is empty");
    };
    let rf = expected_rf.unwrap_or(first.len());
    for (i, replicas) in assignment.iter().enumerate() {
        let p = first_partition + i as i32;
        if replicas.is_empty() {
            bail!(InvalidReplicaAssignment, "partition {p} has no replicas");
        }
        if replicas.len() != rf {
            bail!(
                InvalidReplicaAssignment,
                "partition {p} has {} replicas, inconsistent with the replication factor {rf}",
                replicas.len()
            );
        }
        if let Some(d) = first_duplicate(replicas) {
            bail!(
                InvalidReplicaAssignment,
                "partition {p} lists broker {d} more than once"
            );
        }
        if let Some(b) = replicas.iter().find(|b| image.broker(**b).is_none()) {
            bail!(
                InvalidReplicaAssignment,
                "partition {p} is assigned to broker {b}, which is not registered"
            );
        }
    }
    Ok(rf)
}

/// Checks every config of a topic with [`validate_topic_config`].
pub fn validate_topic_configs(
    configs: &BTreeMap<String, String>,
    replication_factor: usize,
) -> Result<()> {
    for (k, v) in configs {
        validate_topic_config(k, v, replication_factor)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "validation_test.rs"]
mod tests;
