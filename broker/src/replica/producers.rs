//! What the replica manager reports of producers and transactions:
//! DescribeProducers (the producers a partition leader tracks, with their
//! open transactions) and the figures `/metrics` shows (producer ids
//! tracked, last-stable-offset lag).

use super::PartError;
use super::manager::ReplicaManager;
use super::partition::{ActiveProducer, Role};

/// One led partition whose last stable offset is behind its high
/// watermark: records a `read_committed` consumer cannot read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsoLag {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// High watermark − last stable offset (> 0).
    pub lag: i64,
}

/// The transaction figures of this broker's replicas, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Producer ids tracked by the idempotence state of every hosted
    /// replica (leaders and followers: the memory they hold).
    pub producer_ids: u64,
    /// Led partitions with at least one open transaction.
    pub partitions_with_open_transactions: u64,
    /// Led partitions whose last stable offset lags their high
    /// watermark, largest lag first.
    pub lso_lag: Vec<LsoLag>,
}

impl ReplicaManager {
    /// DescribeProducers of one partition at its leader: every producer
    /// its idempotence state tracks, by id. NOT_LEADER_OR_FOLLOWER off the
    /// leader, UNKNOWN_TOPIC_OR_PARTITION for a partition the image lacks.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ActiveProducer>, PartError> {
        let part = self.partition(topic, partition)?;
        part.check_leader(-1)?;
        Ok(part.active_producers().await)
    }

    /// Producer ids tracked and last-stable-offset lag, read from each
    /// replica's published state (no writer lock taken).
    pub fn producer_stats(&self) -> ProducerStats {
        let mut stats = ProducerStats::default();
        for part in self.hosted() {
            let reader = part.reader();
            stats.producer_ids += reader.producer_count();
            if part.role().0 != Role::Leader {
                continue;
            }
            if reader.first_unstable_offset().is_some() {
                stats.partitions_with_open_transactions += 1;
            }
            let lag = reader.high_watermark() - reader.last_stable_offset();
            if lag > 0 {
                stats.lso_lag.push(LsoLag {
                    topic: part.topic.clone(),
                    partition: part.index,
                    lag,
                });
            }
        }
        stats
            .lso_lag
            .sort_by(|a, b| b.lag.cmp(&a.lag).then_with(|| a.topic.cmp(&b.topic)));
        stats
    }
}
