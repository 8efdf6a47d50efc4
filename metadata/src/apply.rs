//! Applying committed record batches to the [`ClusterImage`].
//!
//! A batch is atomic. Each record is checked against the image as the batch's
//! earlier records left it, then applied in place, and the inverse of every
//! mutation is pushed on an undo log. If a record is rejected, the undo log is
//! replayed backwards and the image is exactly as before the batch. Cost is
//! proportional to the batch, never to the image: nothing is cloned.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::{Result, bail, err};
use crate::image::{BrokerRegistration, ClusterImage, NO_LEADER, PartitionState, TopicImage};
use crate::pb;
use crate::pb::config_resource::Type as ResourceType;
use crate::pb::metadata_record::Record;
use crate::records::{kind_name, topic_id_from_bytes};
use crate::validation::validate_topic_name;

/// The inverse of one mutation.
#[derive(Debug)]
enum Undo {
    ClusterId(Option<String>),
    Broker(i32, Option<BrokerRegistration>),
    TopicCreated(Uuid),
    PartitionCreated(Uuid, i32),
    PartitionChanged(Uuid, i32, PartitionState),
    TopicRemoved(Box<TopicImage>),
    TopicConfig(Uuid, String, Option<String>),
    BrokerConfig(i32, String, Option<String>),
    ClusterConfig(String, Option<String>),
    NextProducerId(i64),
    Decommissioning(i32, bool),
}

/// Which config map a `ConfigRecord` addresses.
enum ConfigOwner {
    Topic(Uuid),
    Broker(i32),
    Cluster,
}

impl ClusterImage {
    /// Applies one committed batch atomically.
    ///
    /// Records are checked in order, each against the image as the earlier
    /// records of the batch left it (so a batch may create a topic and then
    /// its partitions). If any record is rejected, nothing of the batch stays
    /// applied and the error names the record. `offset` is the metadata-log
    /// offset of the batch and must be greater than [`ClusterImage::offset`].
    pub fn apply_batch(&mut self, offset: i64, records: &[pb::MetadataRecord]) -> Result<()> {
        if offset <= self.offset {
            bail!(
                InvalidRequest,
                "batch offset {offset} is not after the image offset {}",
                self.offset
            );
        }
        self.apply_records(records)?;
        self.offset = offset;
        Ok(())
    }

    /// Applies `records` atomically without touching the offset.
    pub(crate) fn apply_records(&mut self, records: &[pb::MetadataRecord]) -> Result<()> {
        let mut undo = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            if let Err(mut e) = self.apply_record(rec, &mut undo) {
                self.rollback(undo);
                let what = rec.record.as_ref().map_or("empty", kind_name);
                e.message = format!("record {i} ({what}) of batch rejected: {}", e.message);
                return Err(e);
            }
        }
        Ok(())
    }

    fn apply_record(&mut self, rec: &pb::MetadataRecord, undo: &mut Vec<Undo>) -> Result<()> {
        let Some(r) = &rec.record else {
            bail!(CorruptMessage, "metadata record has no payload");
        };
        match r {
            Record::Cluster(c) => self.apply_cluster(c, undo),
            Record::RegisterBroker(r) => self.apply_register(r, undo),
            Record::FenceBroker(r) => {
                self.change_broker(r.broker_id, r.broker_epoch, undo, |b| b.fenced = true)
            }
            Record::UnfenceBroker(r) => {
                self.change_broker(r.broker_id, r.broker_epoch, undo, |b| b.fenced = false)
            }
            Record::BrokerControlledShutdown(r) => {
                self.change_broker(r.broker_id, r.broker_epoch, undo, |b| {
                    b.in_controlled_shutdown = true
                })
            }
            Record::UnregisterBroker(r) => {
                self.current_broker(r.broker_id, r.broker_epoch)?;
                let prev = self.brokers.remove(&r.broker_id);
                undo.push(Undo::Broker(r.broker_id, prev));
                Ok(())
            }
            Record::Topic(t) => self.apply_topic(t, undo),
            Record::Partition(p) => self.apply_partition(p, undo),
            Record::PartitionChange(c) => self.apply_partition_change(c, undo),
            Record::RemoveTopic(r) => {
                let id = topic_id_from_bytes(&r.topic_id)?;
                let Some(topic) = self.topics.remove(&id) else {
                    bail!(UnknownTopicId, "topic id {id} does not exist");
                };
                self.topic_names.remove(&topic.name);
                for (p, s) in &topic.partitions {
                    self.index_remove(id, *p, &s.replicas);
                }
                self.partition_count -= topic.partitions.len();
                undo.push(Undo::TopicRemoved(Box::new(topic)));
                Ok(())
            }
            Record::Config(c) => self.apply_config(c, undo),
            Record::ProducerIds(r) => {
                if r.next_producer_id <= self.next_producer_id {
                    bail!(
                        InvalidRequest,
                        "next producer id {} does not grow from {}",
                        r.next_producer_id,
                        self.next_producer_id
                    );
                }
                if r.broker_id >= 0 {
                    self.current_broker(r.broker_id, r.broker_epoch)?;
                }
                undo.push(Undo::NextProducerId(self.next_producer_id));
                self.next_producer_id = r.next_producer_id;
                Ok(())
            }
            Record::BrokerDecommission(d) => {
                if d.broker_id < 0 {
                    bail!(CorruptMessage, "broker id {} is negative", d.broker_id);
                }
                let was = if d.decommissioning {
                    !self.decommissioning.insert(d.broker_id)
                } else {
                    self.decommissioning.remove(&d.broker_id)
                };
                undo.push(Undo::Decommissioning(d.broker_id, was));
                Ok(())
            }
        }
    }

    fn apply_cluster(&mut self, c: &pb::ClusterRecord, undo: &mut Vec<Undo>) -> Result<()> {
        if c.cluster_id.is_empty() {
            bail!(CorruptMessage, "cluster id is empty");
        }
        match &self.cluster_id {
            Some(id) if *id == c.cluster_id => Ok(()),
            Some(id) => bail!(
                InvalidRequest,
                "cluster id is already {id}, cannot become {}",
                c.cluster_id
            ),
            None => {
                undo.push(Undo::ClusterId(None));
                self.cluster_id = Some(c.cluster_id.clone());
                Ok(())
            }
        }
    }

    fn apply_register(&mut self, r: &pb::RegisterBrokerRecord, undo: &mut Vec<Undo>) -> Result<()> {
        if r.broker_id < 0 {
            bail!(CorruptMessage, "broker id {} is negative", r.broker_id);
        }
        if let Some(prev) = self.brokers.get(&r.broker_id)
            && r.broker_epoch <= prev.epoch
        {
            bail!(
                StaleBrokerEpoch,
                "broker {} registers with epoch {}, not after its current epoch {}",
                r.broker_id,
                r.broker_epoch,
                prev.epoch
            );
        }
        let reg = BrokerRegistration {
            id: r.broker_id,
            epoch: r.broker_epoch,
            incarnation_id: r.incarnation_id.clone(),
            endpoints: r.endpoints.clone(),
            rack: (!r.rack.is_empty()).then(|| r.rack.clone()),
            fenced: true,
            in_controlled_shutdown: false,
            static_configs: r
                .static_configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let prev = self.brokers.insert(r.broker_id, reg);
        undo.push(Undo::Broker(r.broker_id, prev));
        Ok(())
    }

    /// The registration of `id` if `epoch` is its current epoch.
    fn current_broker(&self, id: i32, epoch: i64) -> Result<&BrokerRegistration> {
        let Some(b) = self.brokers.get(&id) else {
            bail!(BrokerIdNotRegistered, "broker {id} is not registered");
        };
        if b.epoch != epoch {
            bail!(
                StaleBrokerEpoch,
                "broker {id} epoch {epoch} is not its current epoch {}",
                b.epoch
            );
        }
        Ok(b)
    }

    fn change_broker(
        &mut self,
        id: i32,
        epoch: i64,
        undo: &mut Vec<Undo>,
        change: impl FnOnce(&mut BrokerRegistration),
    ) -> Result<()> {
        let prev = self.current_broker(id, epoch)?.clone();
        let b = self.brokers.get_mut(&id).expect("checked just above");
        change(b);
        undo.push(Undo::Broker(id, Some(prev)));
        Ok(())
    }

    fn apply_topic(&mut self, t: &pb::TopicRecord, undo: &mut Vec<Undo>) -> Result<()> {
        validate_topic_name(&t.name)?;
        let id = topic_id_from_bytes(&t.topic_id)?;
        if self.topic_names.contains_key(&t.name) {
            bail!(TopicAlreadyExists, "topic {} already exists", t.name);
        }
        if let Some(other) = self.topics.get(&id) {
            bail!(
                TopicAlreadyExists,
                "topic id {id} is already used by topic {}",
                other.name
            );
        }
        let topic = TopicImage {
            name: t.name.clone(),
            id,
            configs: t
                .configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            partitions: BTreeMap::new(),
        };
        self.topics.insert(id, topic);
        self.topic_names.insert(t.name.clone(), id);
        undo.push(Undo::TopicCreated(id));
        Ok(())
    }

    fn apply_partition(&mut self, p: &pb::PartitionRecord, undo: &mut Vec<Undo>) -> Result<()> {
        let id = topic_id_from_bytes(&p.topic_id)?;
        let Some(topic) = self.topics.get(&id) else {
            bail!(UnknownTopicId, "topic id {id} does not exist");
        };
        let next = topic.partitions.len() as i32;
        if p.partition != next {
            bail!(
                InvalidPartitions,
                "partition {} of topic {} is not the next one ({next})",
                p.partition,
                topic.name
            );
        }
        if p.leader_epoch < 0 || p.partition_epoch < 0 {
            bail!(CorruptMessage, "negative leader or partition epoch");
        }
        let state = PartitionState {
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            elr: p.elr.clone(),
            adding: p.adding_replicas.clone(),
            removing: p.removing_replicas.clone(),
        };
        check_partition_state(&state).map_err(|e| {
            err!(
                InvalidRequest,
                "partition {}-{}: {e}",
                topic.name,
                p.partition
            )
        })?;
        self.index_add(id, p.partition, &state.replicas);
        self.topics
            .get_mut(&id)
            .expect("looked up above")
            .partitions
            .insert(p.partition, state);
        self.partition_count += 1;
        undo.push(Undo::PartitionCreated(id, p.partition));
        Ok(())
    }

    fn apply_partition_change(
        &mut self,
        c: &pb::PartitionChangeRecord,
        undo: &mut Vec<Undo>,
    ) -> Result<()> {
        let id = topic_id_from_bytes(&c.topic_id)?;
        let Some(topic) = self.topics.get(&id) else {
            bail!(UnknownTopicId, "topic id {id} does not exist");
        };
        let Some(cur) = topic.partitions.get(&c.partition) else {
            bail!(
                UnknownTopicOrPartition,
                "partition {}-{} does not exist",
                topic.name,
                c.partition
            );
        };
        if c.expected_partition_epoch != cur.partition_epoch {
            bail!(
                InvalidUpdateVersion,
                "partition {}-{} is at partition epoch {}, the change expected {}",
                topic.name,
                c.partition,
                cur.partition_epoch,
                c.expected_partition_epoch
            );
        }
        let mut next = cur.clone();
        next.partition_epoch = cur
            .partition_epoch
            .checked_add(1)
            .ok_or_else(|| err!(InvalidRequest, "partition epoch overflow"))?;
        if let Some(leader) = c.leader {
            next.leader = leader;
            next.leader_epoch = cur
                .leader_epoch
                .checked_add(1)
                .ok_or_else(|| err!(InvalidRequest, "leader epoch overflow"))?;
        }
        if let Some(isr) = &c.isr {
            next.isr = isr.ids.clone();
        }
        if let Some(replicas) = &c.replicas {
            next.replicas = replicas.ids.clone();
        }
        if let Some(elr) = &c.elr {
            next.elr = elr.ids.clone();
        }
        if let Some(adding) = &c.adding_replicas {
            next.adding = adding.ids.clone();
        }
        if let Some(removing) = &c.removing_replicas {
            next.removing = removing.ids.clone();
        }
        check_partition_state(&next).map_err(|e| {
            err!(
                InvalidRequest,
                "partition {}-{}: {e}",
                topic.name,
                c.partition
            )
        })?;
        let replicas_changed = next.replicas != cur.replicas;
        let prev = std::mem::replace(
            self.topics
                .get_mut(&id)
                .and_then(|t| t.partitions.get_mut(&c.partition))
                .expect("looked up above"),
            next,
        );
        if replicas_changed {
            self.index_remove(id, c.partition, &prev.replicas);
            let now = self.topics[&id].partitions[&c.partition].replicas.clone();
            self.index_add(id, c.partition, &now);
        }
        undo.push(Undo::PartitionChanged(id, c.partition, prev));
        Ok(())
    }

    fn apply_config(&mut self, c: &pb::ConfigRecord, undo: &mut Vec<Undo>) -> Result<()> {
        let Some(res) = &c.resource else {
            bail!(CorruptMessage, "config record has no resource");
        };
        if c.name.is_empty() {
            bail!(CorruptMessage, "config record has an empty name");
        }
        let owner = match ResourceType::try_from(res.r#type) {
            Ok(ResourceType::Topic) => match self.topic_names.get(&res.name) {
                Some(id) => ConfigOwner::Topic(*id),
                None => bail!(UnknownTopicOrPartition, "topic {} does not exist", res.name),
            },
            Ok(ResourceType::Broker) => match res.name.parse::<i32>() {
                Ok(id) if id >= 0 => ConfigOwner::Broker(id),
                _ => bail!(
                    CorruptMessage,
                    "broker config owner {:?} is not a broker id",
                    res.name
                ),
            },
            Ok(ResourceType::Cluster) => ConfigOwner::Cluster,
            Ok(ResourceType::Unspecified) | Err(_) => {
                bail!(
                    CorruptMessage,
                    "config resource type {} is not known",
                    res.r#type
                )
            }
        };
        let key = c.name.clone();
        let value = c.value.clone();
        match owner {
            ConfigOwner::Topic(id) => {
                let map = &mut self
                    .topics
                    .get_mut(&id)
                    .expect("named topic exists")
                    .configs;
                let prev = set_config(map, key.clone(), value);
                undo.push(Undo::TopicConfig(id, key, prev));
            }
            ConfigOwner::Broker(id) => {
                let prev = set_nested_config(&mut self.broker_configs, id, key.clone(), value);
                undo.push(Undo::BrokerConfig(id, key, prev));
            }
            ConfigOwner::Cluster => {
                let prev = set_config(&mut self.cluster_configs, key.clone(), value);
                undo.push(Undo::ClusterConfig(key, prev));
            }
        }
        Ok(())
    }

    fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::ClusterId(prev) => self.cluster_id = prev,
                Undo::Broker(id, Some(prev)) => {
                    self.brokers.insert(id, prev);
                }
                Undo::Broker(id, None) => {
                    self.brokers.remove(&id);
                }
                Undo::TopicCreated(id) => {
                    let t = self.topics.remove(&id).expect("undo of a created topic");
                    self.topic_names.remove(&t.name);
                }
                Undo::PartitionCreated(id, p) => {
                    let s = self
                        .topics
                        .get_mut(&id)
                        .and_then(|t| t.partitions.remove(&p))
                        .expect("undo of a created partition");
                    self.index_remove(id, p, &s.replicas);
                    self.partition_count -= 1;
                }
                Undo::PartitionChanged(id, p, prev) => {
                    let slot = self
                        .topics
                        .get_mut(&id)
                        .and_then(|t| t.partitions.get_mut(&p))
                        .expect("undo of a changed partition");
                    let now = std::mem::replace(slot, prev);
                    let prev_replicas = slot.replicas.clone();
                    if now.replicas != prev_replicas {
                        self.index_remove(id, p, &now.replicas);
                        self.index_add(id, p, &prev_replicas);
                    }
                }
                Undo::TopicRemoved(topic) => {
                    let id = topic.id;
                    for (p, s) in &topic.partitions {
                        self.index_add(id, *p, &s.replicas);
                    }
                    self.partition_count += topic.partitions.len();
                    self.topic_names.insert(topic.name.clone(), id);
                    self.topics.insert(id, *topic);
                }
                Undo::TopicConfig(id, key, prev) => {
                    let map = &mut self
                        .topics
                        .get_mut(&id)
                        .expect("undo of a topic config")
                        .configs;
                    set_config(map, key, prev);
                }
                Undo::BrokerConfig(id, key, prev) => {
                    set_nested_config(&mut self.broker_configs, id, key, prev);
                }
                Undo::ClusterConfig(key, prev) => {
                    set_config(&mut self.cluster_configs, key, prev);
                }
                Undo::NextProducerId(prev) => self.next_producer_id = prev,
                Undo::Decommissioning(id, was) => {
                    if was {
                        self.decommissioning.insert(id);
                    } else {
                        self.decommissioning.remove(&id);
                    }
                }
            }
        }
    }
}

/// Sets (or removes, for `None`) `key`, returning the previous value.
fn set_config(
    map: &mut BTreeMap<String, String>,
    key: String,
    value: Option<String>,
) -> Option<String> {
    match value {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    }
}

/// As [`set_config`] on the map of `owner`, dropping maps that become empty.
fn set_nested_config(
    maps: &mut BTreeMap<i32, BTreeMap<String, String>>,
    owner: i32,
    key: String,
    value: Option<String>,
) -> Option<String> {
    let map = maps.entry(owner).or_default();
    let prev = set_config(map, key, value);
    if map.is_empty() {
        maps.remove(&owner);
    }
    prev
}

/// The invariants every partition state keeps: replicas non-empty, distinct
/// and non-negative; ISR non-empty, distinct and a subset of the replicas;
/// the leader in the ISR or -1.
pub(crate) fn check_partition_state(s: &PartitionState) -> std::result::Result<(), String> {
    if s.replicas.is_empty() {
        return Err("replica list is empty".into());
    }
    if let Some(r) = s.replicas.iter().find(|r| **r < 0) {
        return Err(format!("replica {r} is not a broker id"));
    }
    if let Some(d) = first_duplicate(&s.replicas) {
        return Err(format!("replica {d} appears twice"));
    }
    if s.isr.is_empty() {
        return Err("isr is empty".into());
    }
    if let Some(d) = first_duplicate(&s.isr) {
        return Err(format!("isr member {d} appears twice"));
    }
    if let Some(r) = s.isr.iter().find(|r| !s.replicas.contains(r)) {
        return Err(format!("isr member {r} is not a replica"));
    }
    if s.leader != NO_LEADER && !s.isr.contains(&s.leader) {
        return Err(format!("leader {} is not in the isr", s.leader));
    }
    if let Some(d) = first_duplicate(&s.elr) {
        return Err(format!("eligible leader replica {d} appears twice"));
    }
    if let Some(r) = s.elr.iter().find(|r| !s.replicas.contains(r)) {
        return Err(format!("eligible leader replica {r} is not a replica"));
    }
    if let Some(r) = s.elr.iter().find(|r| s.isr.contains(r)) {
        return Err(format!("eligible leader replica {r} is in the isr"));
    }
    for (what, ids) in [("adding", &s.adding), ("removing", &s.removing)] {
        if let Some(d) = first_duplicate(ids) {
            return Err(format!("{what} replica {d} appears twice"));
        }
        if let Some(r) = ids.iter().find(|r| !s.replicas.contains(r)) {
            return Err(format!("{what} replica {r} is not a replica"));
        }
    }
    if let Some(r) = s.adding.iter().find(|r| s.removing.contains(r)) {
        return Err(format!("replica {r} is both adding and removing"));
    }
    if s.replicas.iter().all(|r| s.removing.contains(r)) {
        return Err("every replica is being removed".into());
    }
    Ok(())
}

/// The first value that occurs twice in `ids` (quadratic: replica lists are short).
pub(crate) fn first_duplicate(ids: &[i32]) -> Option<i32> {
    ids.iter()
        .enumerate()
        .find(|(i, id)| ids[..*i].contains(id))
        .map(|(_, id)| *id)
}

#[cfg(test)]
#[path = "apply_test.rs"]
mod tests;
