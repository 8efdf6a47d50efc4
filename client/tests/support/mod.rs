//! What the producer's and consumer's tests share: a cluster of real
//! brokers in this process ([`GrpcCluster`]: the real replica core behind
//! the real gRPC services), client configs pointed at it, and helpers to
//! produce, consume and read what a broker stored.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::ops::Deref;
use std::time::Duration;

use strom_broker::ReplicationConfig;
use strom_broker::testkit::grpc::settled;
use strom_broker::testkit::{Cluster, ClusterConfig, GrpcCluster};
use strom_client::{
    Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use strom_log::RecordBatch;

/// A running cluster and the directory of its logs.
#[derive(Debug)]
pub struct Brokers {
    // Declared first: dropped (stopped) before the directory goes.
    cluster: GrpcCluster,
    _dir: tempfile::TempDir,
}

impl Deref for Brokers {
    type Target = GrpcCluster;

    fn deref(&self) -> &GrpcCluster {
        &self.cluster
    }
}

impl Brokers {
    /// Stops every broker and waits for their tasks.
    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

/// Starts `brokers` brokers (ids `1..=brokers`) whose topics default to
/// `min.insync.replicas = min_isr`.
pub async fn start(brokers: i32, min_isr: usize) -> Brokers {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let defaults = ClusterConfig::default();
    let config = ClusterConfig {
        brokers,
        min_insync_replicas: min_isr,
        replication: ReplicationConfig {
            min_insync_replicas: min_isr,
            ..defaults.replication
        },
        max_metadata_delay: Duration::from_millis(10),
        ..defaults
    };
    let cluster = GrpcCluster::start(config, dir.path(), 7)
        .await
        .expect("start the cluster");
    Brokers { cluster, _dir: dir }
}

/// A producer config for `cluster` with quick retries.
pub fn producer_config(cluster: &GrpcCluster) -> ProducerConfig {
    producer_config_at(&cluster.bootstrap())
}

/// A producer config with quick retries that learns metadata from
/// `bootstrap` only.
pub fn producer_config_at(bootstrap: &str) -> ProducerConfig {
    let mut config = ProducerConfig::new(bootstrap).expect("a valid config");
    config.client.retry_backoff = Duration::from_millis(1);
    config.client.retry_backoff_max = Duration::from_millis(5);
    config
}

/// A consumer config for `cluster` with quick retries and short polls.
pub fn consumer_config(cluster: &GrpcCluster, reset: OffsetReset) -> ConsumerConfig {
    consumer_config_at(&cluster.bootstrap(), reset)
}

/// A consumer config with quick retries and short polls that learns
/// metadata from `bootstrap` only.
pub fn consumer_config_at(bootstrap: &str, reset: OffsetReset) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap).expect("a valid config");
    config.client.retry_backoff = Duration::from_millis(1);
    config.client.retry_backoff_max = Duration::from_millis(5);
    config.fetch_max_wait = Duration::from_millis(10);
    config.auto_offset_reset = reset;
    config
}

/// Sends `values` to `tp` one after another; returns the offsets.
pub async fn produce(
    producer: &Producer,
    tp: &TopicPartition,
    values: &[String],
) -> Vec<strom_client::Result<i64>> {
    let mut deliveries = Vec::new();
    for value in values {
        let record = ProducerRecord::new(tp.topic.clone())
            .partition(tp.partition)
            .value(value.clone());
        deliveries.push(producer.send(record).await.expect("record queued"));
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.map(|m| m.offset));
    }
    offsets
}

/// `value-0`, `value-1`, …
pub fn values(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("value-{i}")).collect()
}

/// Reads until `n` records arrived (a bounded number of polls).
pub async fn consume(consumer: &mut Consumer, n: usize) -> Vec<(i64, String)> {
    let mut records = Vec::new();
    for _ in 0..500 {
        if records.len() >= n {
            break;
        }
        for r in consumer
            .poll(Duration::from_millis(50))
            .await
            .expect("poll")
        {
            let value = r.value.expect("a value");
            records.push((r.offset, String::from_utf8(value.to_vec()).expect("utf-8")));
        }
    }
    records
}

/// Every value broker `broker` stores for `tp`, in offset order.
pub async fn stored_values(cluster: &GrpcCluster, broker: i32, tp: &TopicPartition) -> Vec<String> {
    let batches = cluster
        .lock()
        .await
        .batches(broker, &tp.topic, tp.partition);
    batches
        .into_iter()
        .flat_map(|b| {
            RecordBatch::from_bytes(b)
                .expect("a stored batch")
                .records()
                .expect("its records")
        })
        .filter_map(|r| r.value)
        .map(|v| String::from_utf8(v.to_vec()).expect("utf-8"))
        .collect()
}

/// The other broker of a two-broker cluster.
pub fn other(id: i32) -> i32 {
    3 - id
}

/// The broker of a three-broker cluster outside `replicas` (two of them).
pub fn outside(replicas: &[i32]) -> i32 {
    (1..=3)
        .find(|id| !replicas.contains(id))
        .expect("a broker without a replica")
}

/// Whether the controller names `leader` leader of `topic`-`partition`
/// with `isr` members in sync, and the brokers are in step with it.
pub fn led_by(c: &Cluster, topic: &str, partition: i32, leader: i32, isr: usize) -> bool {
    let state = c.controller().with_image(|i| {
        i.topic_by_name(topic)
            .and_then(|t| t.partition(partition))
            .map(|p| (p.leader, p.isr.len()))
    });
    state == Some((leader, isr)) && settled(c)
}
