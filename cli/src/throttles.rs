//! The replication throttles of `strom reassign execute --throttle` and
//! `verify`, as kafka-reassign-partitions sets and clears them: the broker
//! rates `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` on every broker a moving
//! partition has now or will have, and the topic configs
//! `leader.replication.throttled.replicas` (the current replicas of each
//! moving partition) and `follower.replication.throttled.replicas` (the
//! replicas being added), computed by `strom_metadata::throttle`.

use std::collections::BTreeSet;

use strom_client::{Admin, AlterConfigOp, ConfigResource, ConfigSource, Error, ErrorCode};
use strom_metadata::throttle::{
    FOLLOWER_THROTTLED_RATE, FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_RATE,
    LEADER_THROTTLED_REPLICAS, PlannedMove, reassignment_throttles,
};

/// The broker-level throttle settings.
pub(crate) const BROKER_KEYS: [&str; 2] = [LEADER_THROTTLED_RATE, FOLLOWER_THROTTLED_RATE];
/// The topic-level throttle configs.
pub(crate) const TOPIC_KEYS: [&str; 2] = [LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS];

/// Checks `--throttle`: a positive number of bytes per second.
pub(crate) fn check_rate(rate: i64) -> Result<u64, Error> {
    u64::try_from(rate).ok().filter(|r| *r > 0).ok_or_else(|| {
        Error::strom(
            ErrorCode::InvalidConfig,
            format!("--throttle must be a positive number of bytes per second, got {rate}"),
        )
    })
}

/// What a resource held at its own level before the throttles were set,
/// to put back if starting the moves fails.
#[derive(Debug)]
pub(crate) struct Saved(Vec<(ConfigResource, Vec<AlterConfigOp>)>);

/// The values `keys` have at `resource`'s own level, as operations that
/// restore them (a delete where the level did not set them).
async fn own_values(
    admin: &Admin,
    resource: &ConfigResource,
    keys: &[&str],
) -> Result<Vec<AlterConfigOp>, Error> {
    let entries = admin.describe_configs(resource).await?;
    let own = match resource {
        ConfigResource::Topic(_) => ConfigSource::DynamicTopicConfig,
        ConfigResource::Broker(_) => ConfigSource::DynamicBrokerConfig,
        ConfigResource::BrokerDefault => ConfigSource::DynamicDefaultBrokerConfig,
    };
    Ok(keys
        .iter()
        .map(|k| {
            match entries
                .iter()
                .find(|e| e.name == *k && e.source == own)
                .and_then(|e| e.value.clone())
            {
                Some(v) => AlterConfigOp::set(*k, v),
                None => AlterConfigOp::delete(*k),
            }
        })
        .collect())
}

/// Sets the throttles of `moves` at `rate` bytes/s; returns what it
/// replaced. The brokers are the moving partitions' current and target
/// replicas.
pub(crate) async fn set(admin: &Admin, moves: &[PlannedMove], rate: u64) -> Result<Saved, Error> {
    let by_topic = reassignment_throttles(moves);
    let brokers: BTreeSet<i32> = moves
        .iter()
        .filter(|m| by_topic.contains_key(&m.topic))
        .flat_map(|m| m.current.iter().chain(&m.target).copied())
        .collect();
    let mut changes: Vec<(ConfigResource, Vec<AlterConfigOp>)> = Vec::new();
    for (topic, (leader, follower)) in &by_topic {
        let mut ops = vec![AlterConfigOp::set(
            LEADER_THROTTLED_REPLICAS,
            leader.to_config(),
        )];
        ops.push(match follower.to_config() {
            v if v.is_empty() => AlterConfigOp::delete(FOLLOWER_THROTTLED_REPLICAS),
            v => AlterConfigOp::set(FOLLOWER_THROTTLED_REPLICAS, v),
        });
        changes.push((ConfigResource::Topic(topic.clone()), ops));
    }
    for b in &brokers {
        changes.push((
            ConfigResource::Broker(*b),
            BROKER_KEYS
                .iter()
                .map(|k| AlterConfigOp::set(*k, rate.to_string()))
                .collect(),
        ));
    }
    // Check every change first, so a refused one changes nothing.
    let mut saved = Vec::with_capacity(changes.len());
    for (resource, ops) in &changes {
        admin
            .incremental_alter_configs(resource, ops.clone(), true)
            .await?;
        let keys: Vec<&str> = match resource {
            ConfigResource::Topic(_) => TOPIC_KEYS.to_vec(),
            _ => BROKER_KEYS.to_vec(),
        };
        saved.push((resource.clone(), own_values(admin, resource, &keys).await?));
    }
    let saved = Saved(saved);
    for (i, (resource, ops)) in changes.into_iter().enumerate() {
        if let Err(e) = admin.incremental_alter_configs(&resource, ops, false).await {
            restore(admin, &Saved(saved.0[..i].to_vec())).await;
            return Err(e);
        }
    }
    Ok(saved)
}

/// Puts back what [`set`] replaced (best effort: the moves were refused,
/// and that error is the one to report).
pub(crate) async fn restore(admin: &Admin, saved: &Saved) {
    for (resource, ops) in &saved.0 {
        if let Err(e) = admin
            .incremental_alter_configs(resource, ops.clone(), false)
            .await
        {
            eprintln!("warning: could not restore the throttle configs of {resource}: {e}");
        }
    }
}

/// What [`clear`] removed.
#[derive(Debug, Default)]
pub(crate) struct Cleared {
    /// Brokers whose throttle rates were cleared (all of them, when no
    /// reassignment is left in the cluster).
    pub(crate) brokers: Vec<i32>,
    /// Topics whose throttled replica lists were cleared.
    pub(crate) topics: Vec<String>,
}

/// Removes the throttles once the moves are done, as
/// kafka-reassign-partitions' verify: the topic-level lists of `topics`,
/// and, when no reassignment is in progress anywhere (another plan's moves
/// keep their throttle), the rates on every broker. Keys not set are left
/// as they are.
pub(crate) async fn clear(
    admin: &Admin,
    topics: &[String],
    any_moving: bool,
) -> Result<Cleared, Error> {
    let mut cleared = Cleared::default();
    for t in topics {
        let resource = ConfigResource::Topic(t.clone());
        let ops = TOPIC_KEYS
            .iter()
            .map(|k| AlterConfigOp::delete(*k))
            .collect();
        admin
            .incremental_alter_configs(&resource, ops, false)
            .await?;
        cleared.topics.push(t.clone());
    }
    if !any_moving {
        let cluster = admin.describe_cluster().await?;
        for b in cluster.brokers {
            let resource = ConfigResource::Broker(b.id);
            let ops = BROKER_KEYS
                .iter()
                .map(|k| AlterConfigOp::delete(*k))
                .collect();
            admin
                .incremental_alter_configs(&resource, ops, false)
                .await?;
            cleared.brokers.push(b.id);
        }
    }
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_must_be_positive() {
        for (rate, ok) in [(1, true), (50_000_000, true), (0, false), (-1, false)] {
            let r = check_rate(rate);
            assert_eq!(r.is_ok(), ok, "{rate}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.code(), Some(ErrorCode::InvalidConfig));
                assert!(e.detail().contains("--throttle"), "{e}");
            }
        }
    }
}
