//! Test fixtures shared by the unit tests: a cluster built through records.

use uuid::Uuid;

use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;
use crate::{ClusterImage, CreateTopicSpec, PartitionState, Result};

/// An image built by applying records, one batch per call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    pub(crate) image: ClusterImage,
}

/// A deterministic topic id per name.
pub(crate) fn tid(name: &str) -> Uuid {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in name.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    Uuid::from_u128(h | 1)
}

impl Cluster {
    /// Brokers `ids`, registered (epoch 10 + id) and unfenced, without racks.
    pub(crate) fn with_brokers(ids: &[i32]) -> Self {
        let mut c = Cluster::default();
        for &id in ids {
            c.add_broker(id, None);
        }
        c
    }

    /// Brokers `(id, rack)`, registered and unfenced.
    pub(crate) fn with_racks(brokers: &[(i32, &str)]) -> Self {
        let mut c = Cluster::default();
        for &(id, rack) in brokers {
            c.add_broker(id, Some(rack));
        }
        c
    }

    pub(crate) fn add_broker(&mut self, id: i32, rack: Option<&str>) {
        let epoch = 10 + i64::from(id);
        self.apply(vec![
            record(Record::RegisterBroker(pb::RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: epoch,
                incarnation_id: format!("inc-{id}"),
                endpoints: vec![pb::Endpoint {
                    name: "client".into(),
                    host: format!("b{id}"),
                    port: 9092,
                }],
                rack: rack.unwrap_or_default().into(),
                static_configs: Default::default(),
            })),
            record(Record::UnfenceBroker(pb::UnfenceBrokerRecord {
                broker_id: id,
                broker_epoch: epoch,
            })),
        ])
        .expect("register broker");
    }

    /// Applies `records` as the next batch.
    pub(crate) fn try_apply(&mut self, records: Vec<pb::MetadataRecord>) -> Result<()> {
        let offset = self.image.offset() + 1;
        self.image.apply_batch(offset, &records)
    }

    pub(crate) fn apply(&mut self, records: Vec<pb::MetadataRecord>) -> Result<()> {
        self.try_apply(records)
    }

    /// Creates `name` with an explicit assignment (ISR = alive replicas).
    pub(crate) fn topic(&mut self, name: &str, assignment: &[&[i32]]) -> Uuid {
        let spec = CreateTopicSpec {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignment: Some(assignment.iter().map(|a| a.to_vec()).collect()),
            configs: Default::default(),
        };
        let recs = crate::create_topic(&self.image, &spec, tid(name), 0).expect("create topic");
        self.apply(recs).expect("apply topic");
        tid(name)
    }

    /// Creates `name` straight from records (any replica counts): ISR all
    /// replicas, the first leads.
    pub(crate) fn raw_topic(&mut self, name: &str, assignment: &[&[i32]]) -> Uuid {
        let id = tid(name);
        let mut recs = vec![record(Record::Topic(pb::TopicRecord {
            name: name.into(),
            topic_id: id.as_bytes().to_vec(),
            configs: Default::default(),
        }))];
        for (p, replicas) in assignment.iter().enumerate() {
            let state = PartitionState {
                replicas: replicas.to_vec(),
                isr: replicas.to_vec(),
                leader: replicas[0],
                leader_epoch: 0,
                partition_epoch: 0,
                elr: Vec::new(),
                adding: Vec::new(),
                removing: Vec::new(),
            };
            recs.push(crate::records::partition_record(id, p as i32, &state));
        }
        self.apply(recs).expect("apply raw topic");
        id
    }

    /// Sets a topic config.
    pub(crate) fn config(&mut self, topic: &str, key: &str, value: &str) {
        let recs = crate::alter_topic_configs(
            &self.image,
            topic,
            &[(key.to_string(), Some(value.to_string()))],
        )
        .expect("alter config");
        self.apply(recs).expect("apply config");
    }

    /// Forces a partition's ISR and leader (through a change record).
    pub(crate) fn set(&mut self, topic: &str, p: i32, isr: &[i32], leader: i32) {
        let cur = self.state(topic, p);
        self.apply(vec![record(Record::PartitionChange(
            pb::PartitionChangeRecord {
                topic_id: tid(topic).as_bytes().to_vec(),
                partition: p,
                expected_partition_epoch: cur.partition_epoch,
                leader: (leader != cur.leader).then_some(leader),
                isr: Some(pb::ReplicaList::of(isr.to_vec())),
                replicas: None,
                elr: None,
                adding_replicas: None,
                removing_replicas: None,
            },
        ))])
        .expect("set partition");
    }

    /// Fences a broker directly (flag only, no partition changes).
    pub(crate) fn fence_flag(&mut self, id: i32) {
        let epoch = self.image.broker(id).expect("registered").epoch;
        self.apply(vec![record(Record::FenceBroker(pb::FenceBrokerRecord {
            broker_id: id,
            broker_epoch: epoch,
        }))])
        .expect("fence");
    }

    /// Marks a broker in controlled shutdown directly (flag only).
    pub(crate) fn shutdown_flag(&mut self, id: i32) {
        let epoch = self.image.broker(id).expect("registered").epoch;
        self.apply(vec![record(Record::BrokerControlledShutdown(
            pb::BrokerControlledShutdownRecord {
                broker_id: id,
                broker_epoch: epoch,
            },
        ))])
        .expect("controlled shutdown");
    }

    pub(crate) fn state(&self, topic: &str, p: i32) -> PartitionState {
        self.image
            .topic_by_name(topic)
            .and_then(|t| t.partition(p))
            .cloned()
            .expect("partition exists")
    }
}

/// A decoded partition change: (topic id, partition, leader, isr).
pub(crate) type Change = (Uuid, i32, Option<i32>, Option<Vec<i32>>);

/// The partition changes among `records`, decoded for assertions.
pub(crate) fn changes(records: &[pb::MetadataRecord]) -> Vec<Change> {
    records
        .iter()
        .filter_map(|r| match &r.record {
            Some(Record::PartitionChange(c)) => Some((
                Uuid::from_slice(&c.topic_id).expect("16 bytes"),
                c.partition,
                c.leader,
                c.isr.as_ref().map(|l| l.ids.clone()),
            )),
            _ => None,
        })
        .collect()
}

/// The payload kinds of `records`, e.g. `["fence broker", "partition change"]`.
pub(crate) fn kinds(records: &[pb::MetadataRecord]) -> Vec<&'static str> {
    records
        .iter()
        .map(|r| crate::records::kind_name(r.record.as_ref().expect("payload")))
        .collect()
}
