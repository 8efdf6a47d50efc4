//! Topic decisions: create (one or many), delete, add partitions, alter configs.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::election::{Target, change_record};
use crate::error::{Result, bail, err};
use crate::image::{ClusterImage, MIN_INSYNC_REPLICAS, PartitionState, TopicImage};
use crate::pb;
use crate::pb::config_resource::Type as ResourceType;
use crate::pb::metadata_record::Record;
use crate::placement::{BrokerLoad, assign_replicas, broker_loads};
use crate::records::{partition_record, record};
use crate::validation::{
    duplicate_topic_names, validate_assignment, validate_partition_count,
    validate_partition_increase, validate_replication_factor, validate_topic_config,
    validate_topic_configs, validate_topic_name,
};

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions; with an explicit assignment, -1 or its length.
    pub num_partitions: i32,
    /// Replication factor; with an explicit assignment, -1 or its replica count.
    pub replication_factor: i32,
    /// Explicit replicas per partition (partition `i` is entry `i`).
    pub assignment: Option<Vec<Vec<i32>>>,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

/// Decides creating one topic: a `TopicRecord` and a `PartitionRecord` per
/// partition.
///
/// Without an assignment the replicas are placed by [`assign_replicas`] over
/// the alive brokers, considering the cluster's current load; the ISR is all
/// replicas and the leader the first. With an explicit assignment, replicas
/// may be fenced: the ISR is the alive replicas (at least one per partition,
/// else `INVALID_REPLICA_ASSIGNMENT`) and the leader the first ISR member in
/// replica order. Epochs start at 0.
pub fn create_topic(
    image: &ClusterImage,
    spec: &CreateTopicSpec,
    topic_id: Uuid,
    seed: u64,
) -> Result<Vec<pb::MetadataRecord>> {
    let mut loads = broker_loads(image);
    create_topic_with_load(image, spec, topic_id, seed, &mut loads)
}

/// Decides a `CreateTopics` request: one result per topic, in order. Topics
/// named more than once fail with `INVALID_REQUEST`; placement of each topic
/// counts the replicas placed for the topics before it.
pub fn create_topics(
    image: &ClusterImage,
    topics: &[(CreateTopicSpec, Uuid)],
    seed: u64,
) -> Vec<Result<Vec<pb::MetadataRecord>>> {
    let dups = duplicate_topic_names(topics.iter().map(|(s, _)| s.name.as_str()));
    let mut loads = broker_loads(image);
    topics
        .iter()
        .enumerate()
        .map(|(i, (spec, id))| {
            if dups.contains(&spec.name) {
                bail!(
                    InvalidRequest,
                    "topic {} appears more than once in the request",
                    spec.name
                );
            }
            if topics[..i].iter().any(|(_, other)| other == id) {
                bail!(
                    InvalidRequest,
                    "topic id {id} appears more than once in the request"
                );
            }
            create_topic_with_load(image, spec, *id, seed.wrapping_add(i as u64), &mut loads)
        })
        .collect()
}

fn create_topic_with_load(
    image: &ClusterImage,
    spec: &CreateTopicSpec,
    topic_id: Uuid,
    seed: u64,
    loads: &mut BTreeMap<i32, BrokerLoad>,
) -> Result<Vec<pb::MetadataRecord>> {
    validate_topic_name(&spec.name)?;
    if image.topic_by_name(&spec.name).is_some() {
        bail!(TopicAlreadyExists, "topic {} already exists", spec.name);
    }
    if topic_id.is_nil() {
        bail!(InvalidRequest, "topic id is the nil uuid");
    }
    if let Some(t) = image.topic_by_id(&topic_id) {
        bail!(
            TopicAlreadyExists,
            "topic id {topic_id} is already used by {}",
            t.name
        );
    }
    let states = match &spec.assignment {
        Some(assignment) => {
            let rf = validate_assignment(image, assignment, 0, None)?;
            if spec.num_partitions != -1 && spec.num_partitions as usize != assignment.len() {
                bail!(
                    InvalidRequest,
                    "number of partitions {} contradicts the assignment of {} partitions",
                    spec.num_partitions,
                    assignment.len()
                );
            }
            if spec.replication_factor != -1 && spec.replication_factor as usize != rf {
                bail!(
                    InvalidRequest,
                    "replication factor {} contradicts the assignment with {rf} replicas",
                    spec.replication_factor
                );
            }
            validate_topic_configs(&spec.configs, rf)?;
            states_for_assignment(image, assignment, 0)?
        }
        None => {
            validate_partition_count(spec.num_partitions)?;
            let alive = image.alive_brokers();
            validate_replication_factor(spec.replication_factor, alive.len())?;
            validate_topic_configs(&spec.configs, spec.replication_factor as usize)?;
            let assignment = assign_replicas(
                &alive,
                spec.num_partitions,
                spec.replication_factor,
                0,
                loads,
                seed,
            )?;
            assignment.into_iter().map(new_state).collect()
        }
    };
    add_load(loads, &states);
    let mut records = Vec::with_capacity(1 + states.len());
    records.push(record(Record::Topic(pb::TopicRecord {
        name: spec.name.clone(),
        topic_id: topic_id.as_bytes().to_vec(),
        configs: spec
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })));
    records.extend(
        states
            .iter()
            .enumerate()
            .map(|(p, s)| partition_record(topic_id, p as i32, s)),
    );
    Ok(records)
}

/// A new partition on placed (alive) replicas: ISR all, the first leads.
fn new_state(replicas: Vec<i32>) -> PartitionState {
    PartitionState {
        isr: replicas.clone(),
        leader: replicas[0],
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
        elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

/// New partitions on explicitly assigned replicas: ISR = alive replicas.
fn states_for_assignment(
    image: &ClusterImage,
    assignment: &[Vec<i32>],
    first_partition: i32,
) -> Result<Vec<PartitionState>> {
    assignment
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|r| image.is_alive(*r))
                .collect();
            let Some(&leader) = isr.first() else {
                bail!(
                    InvalidReplicaAssignment,
                    "all replicas of partition {} are fenced or shutting down",
                    first_partition + i as i32
                );
            };
            Ok(PartitionState {
                replicas: replicas.clone(),
                isr,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
                elr: Vec::new(),
                adding: Vec::new(),
                removing: Vec::new(),
            })
        })
        .collect()
}

fn add_load(loads: &mut BTreeMap<i32, BrokerLoad>, states: &[PartitionState]) {
    for s in states {
        for (i, r) in s.replicas.iter().enumerate() {
            let l = loads.entry(*r).or_default();
            l.replicas += 1;
            if i == 0 {
                l.leaders += 1;
            }
        }
    }
}

/// Decides deleting a topic: a `RemoveTopicRecord`.
pub fn delete_topic(image: &ClusterImage, name: &str) -> Result<Vec<pb::MetadataRecord>> {
    let Some(t) = image.topic_by_name(name) else {
        bail!(UnknownTopicOrPartition, "topic {name} does not exist");
    };
    Ok(vec![record(Record::RemoveTopic(pb::RemoveTopicRecord {
        topic_id: t.id.as_bytes().to_vec(),
    }))])
}

/// Decides growing topic `name` to `new_count` partitions: a
/// `PartitionRecord` per new partition. An explicit `assignment` lists the
/// new partitions only, with the topic's replication factor; otherwise
/// placement is as for [`create_topic`].
pub fn create_partitions(
    image: &ClusterImage,
    name: &str,
    new_count: i32,
    assignment: Option<&[Vec<i32>]>,
    seed: u64,
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(topic) = image.topic_by_name(name) else {
        bail!(UnknownTopicOrPartition, "topic {name} does not exist");
    };
    let current = topic.partitions.len();
    validate_partition_increase(name, current, new_count)?;
    let added = new_count as usize - current;
    let rf = topic
        .partitions
        .get(&0)
        .map(|p| p.replicas.len())
        .ok_or_else(|| err!(InvalidRequest, "topic {name} has no partitions"))?;
    let first = current as i32;
    let states = match assignment {
        Some(a) => {
            if a.len() != added {
                bail!(
                    InvalidReplicaAssignment,
                    "assignment lists {} partitions, {added} are being added",
                    a.len()
                );
            }
            validate_assignment(image, a, first, Some(rf))?;
            states_for_assignment(image, a, first)?
        }
        None => {
            let alive = image.alive_brokers();
            validate_replication_factor(rf as i32, alive.len())?;
            let loads = broker_loads(image);
            assign_replicas(&alive, added as i32, rf as i32, first, &loads, seed)?
                .into_iter()
                .map(new_state)
                .collect()
        }
    };
    Ok(states
        .iter()
        .enumerate()
        .map(|(i, s)| partition_record(topic.id, first + i as i32, s))
        .collect())
}

/// Decides changing configs of topic `name`: one `ConfigRecord` per entry,
/// `None` deleting the key (back to the default). Values are validated
/// against the topic's smallest replication factor. A change of
/// `min.insync.replicas` also empties every eligible leader replica list of
/// the topic, in the same batch (as KRaft does): they were computed against
/// the old value, and a lower one may let the high watermark pass them.
pub fn alter_topic_configs(
    image: &ClusterImage,
    name: &str,
    changes: &[(String, Option<String>)],
) -> Result<Vec<pb::MetadataRecord>> {
    let Some(topic) = image.topic_by_name(name) else {
        bail!(UnknownTopicOrPartition, "topic {name} does not exist");
    };
    let rf = topic.min_replication_factor();
    let mut records = changes
        .iter()
        .map(|(k, v)| {
            match v {
                Some(v) => validate_topic_config(k, v, rf)?,
                None => validate_topic_config_name(k)?,
            }
            Ok(record(Record::Config(pb::ConfigRecord {
                resource: Some(pb::ConfigResource {
                    r#type: ResourceType::Topic as i32,
                    name: name.to_string(),
                }),
                name: k.clone(),
                value: v.clone(),
            })))
        })
        .collect::<Result<Vec<_>>>()?;
    if changes.iter().any(|(k, _)| k == MIN_INSYNC_REPLICAS) {
        records.extend(clear_elr(topic));
    }
    Ok(records)
}

/// Changes emptying every eligible leader replica list of `topic`: they
/// were computed against a `min.insync.replicas` that no longer holds, and
/// a lower one may let the high watermark pass them.
pub(crate) fn clear_elr(topic: &TopicImage) -> Vec<pb::MetadataRecord> {
    let mut records = Vec::new();
    for (p, cur) in topic.partitions.iter().filter(|(_, s)| !s.elr.is_empty()) {
        let target = Target {
            elr: Vec::new(),
            ..Target::leader_only(cur, cur.leader)
        };
        records.extend(change_record(topic.id, *p, cur, &target));
    }
    records
}

fn validate_topic_config_name(name: &str) -> Result<()> {
    if crate::configs::topic_config(name).is_some() {
        Ok(())
    } else {
        bail!(InvalidConfig, "unknown topic config {name:?}")
    }
}

#[cfg(test)]
#[path = "topics_test.rs"]
mod tests;
