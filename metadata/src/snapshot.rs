//! Snapshots: the image written as the records that rebuild it from empty,
//! as KRaft writes its metadata snapshots.

use crate::error::Result;
use crate::image::ClusterImage;
use crate::pb;
use crate::pb::config_resource::Type as ResourceType;
use crate::pb::metadata_record::Record;
use crate::records::{partition_record, record};

impl ClusterImage {
    /// The records that rebuild this image, in an order that applies cleanly:
    /// the cluster id; each broker's registration followed by its unfence and
    /// controlled-shutdown records; cluster and broker configs; then each
    /// topic (with its configs) followed by its partitions in index order.
    pub fn to_snapshot(&self) -> pb::ImageSnapshot {
        let mut records = Vec::with_capacity(
            1 + 3 * self.brokers.len() + self.topics.len() + self.partition_count,
        );
        if let Some(id) = &self.cluster_id {
            records.push(record(Record::Cluster(pb::ClusterRecord {
                cluster_id: id.clone(),
            })));
        }
        for b in self.brokers.values() {
            records.push(record(Record::RegisterBroker(pb::RegisterBrokerRecord {
                broker_id: b.id,
                broker_epoch: b.epoch,
                incarnation_id: b.incarnation_id.clone(),
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone().unwrap_or_default(),
                static_configs: b
                    .static_configs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })));
            if !b.fenced {
                records.push(record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
                    broker_id: b.id,
                    broker_epoch: b.epoch,
                })));
            }
            if b.in_controlled_shutdown {
                records.push(record(Record::BrokerControlledShutdown(
                    pb::BrokerControlledShutdownRecord {
                        broker_id: b.id,
                        broker_epoch: b.epoch,
                    },
                )));
            }
        }
        if self.next_producer_id > 0 {
            records.push(record(Record::ProducerIds(pb::ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            })));
        }
        for id in &self.decommissioning {
            records.push(record(Record::BrokerDecommission(
                pb::BrokerDecommissionRecord {
                    broker_id: *id,
                    decommissioning: true,
                },
            )));
        }
        for (k, v) in &self.cluster_configs {
            records.push(config_record(ResourceType::Cluster, String::new(), k, v));
        }
        for (id, configs) in &self.broker_configs {
            for (k, v) in configs {
                records.push(config_record(ResourceType::Broker, id.to_string(), k, v));
            }
        }
        for t in self.topics() {
            records.push(record(Record::Topic(pb::TopicRecord {
                name: t.name.clone(),
                topic_id: t.id.as_bytes().to_vec(),
                configs: t
                    .configs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })));
            for (p, s) in &t.partitions {
                records.push(partition_record(t.id, *p, s));
            }
        }
        pb::ImageSnapshot {
            offset: self.offset,
            records,
        }
    }

    /// Rebuilds an image from a snapshot; fails if any record does not apply.
    pub fn from_snapshot(s: &pb::ImageSnapshot) -> Result<ClusterImage> {
        let mut image = ClusterImage::default();
        image.apply_records(&s.records)?;
        image.offset = s.offset;
        Ok(image)
    }
}

fn config_record(ty: ResourceType, owner: String, key: &str, value: &str) -> pb::MetadataRecord {
    record(Record::Config(pb::ConfigRecord {
        resource: Some(pb::ConfigResource {
            r#type: ty as i32,
            name: owner,
        }),
        name: key.to_string(),
        value: Some(value.to_string()),
    }))
}

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod tests;
