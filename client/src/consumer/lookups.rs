//! Offset queries of any partition, assigned or not: log start, end, and
//! the first offset at a timestamp (ListOffsets, with retries).

use std::collections::BTreeMap;

use super::{Consumer, OffsetAndTimestamp, offsets};
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

impl Consumer {
    /// The log start offset of each partition (assigned or not).
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.list(partitions, -2).await
    }

    /// The end offset (high watermark; last stable offset under
    /// `read_committed`) of each partition (assigned or not).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.list(partitions, -1).await
    }

    async fn list(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let queries = partitions
            .iter()
            .map(|tp| (tp.clone(), timestamp))
            .collect();
        let found = offsets::list_offsets(&self.shared, queries).await?;
        Ok(found.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
    }

    /// For each partition, the first offset whose record timestamp is at or
    /// after the given one (ms since the epoch), or `None` when no record is
    /// that recent.
    pub async fn offsets_for_times(
        &self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        let queries: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        if let Some((tp, ts)) = queries.iter().find(|(_, ts)| *ts < 0) {
            return Err(Error::InvalidArgument(format!(
                "the timestamp to search for {tp} must not be negative, got {ts}"
            )));
        }
        let found = offsets::list_offsets(&self.shared, queries).await?;
        Ok(found
            .into_iter()
            .map(|(tp, o)| {
                let found = (o.offset >= 0).then_some(OffsetAndTimestamp {
                    offset: o.offset,
                    timestamp: o.timestamp,
                    leader_epoch: o.leader_epoch,
                });
                (tp, found)
            })
            .collect())
    }
}
