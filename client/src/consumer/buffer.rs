//! Fetched records (or an error) waiting for `poll`, handed out at most
//! `max.poll.records` at a time and dropped when their partition was
//! sought or unassigned meanwhile (its generation changed).

use std::collections::VecDeque;

use super::{Consumer, ConsumerRecord};
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

/// Records (or an error) fetched for one partition, waiting for `poll`.
#[derive(Debug)]
pub(super) struct Buffered {
    pub(super) tp: TopicPartition,
    pub(super) generation: u64,
    pub(super) records: VecDeque<ConsumerRecord>,
    /// Where the partition continues once the records are returned.
    pub(super) next_offset: Option<i64>,
    /// Surfaces from `poll` after the records.
    pub(super) error: Option<Error>,
}

impl Consumer {
    /// Takes up to `max.poll.records` buffered records of current
    /// generations, advancing positions; a buffered error is returned once
    /// no record precedes it.
    pub(super) fn take_buffered(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.shared.config.max_poll_records;
        let mut out: Vec<ConsumerRecord> = Vec::new();
        while out.len() < max {
            let Some(front) = self.buffered.front_mut() else {
                break;
            };
            if self.state.generation_of(&front.tp) != Some(front.generation) {
                self.buffered.pop_front();
                continue;
            }
            if !front.records.is_empty() {
                let n = (max - out.len()).min(front.records.len());
                let taken: Vec<ConsumerRecord> = front.records.drain(..n).collect();
                let last = taken.last().expect("n > 0");
                let mut next = last.offset + 1;
                let epoch = last.leader_epoch;
                let done = front.records.is_empty();
                if done && let Some(end) = front.next_offset {
                    next = next.max(end);
                }
                let drained = done && front.error.is_none();
                let (tp, generation) = (front.tp.clone(), front.generation);
                self.state.advance(&tp, generation, next, epoch, drained);
                out.extend(taken);
                if drained {
                    self.buffered.pop_front();
                }
                continue;
            }
            if front.error.is_some() && !out.is_empty() {
                break; // the records first; the error on the next poll
            }
            let front = self.buffered.pop_front().expect("front exists");
            self.state.unbuffer(&front.tp, front.generation);
            if let Some(error) = front.error {
                return Err(error);
            }
        }
        Ok(out)
    }

    /// Removes and returns a buffered error of `tp` that no record precedes.
    pub(super) fn take_error_of(&mut self, tp: &TopicPartition) -> Option<Error> {
        let generation = self.state.generation_of(tp)?;
        let index = self.buffered.iter().position(|b| {
            b.tp == *tp && b.generation == generation && b.records.is_empty() && b.error.is_some()
        })?;
        let buffered = self.buffered.remove(index)?;
        self.state.unbuffer(tp, generation);
        buffered.error
    }
}

#[cfg(test)]
mod tests {
    use strom_proto::v1::ErrorCode;
    use tokio::time::Instant;

    use super::*;
    use crate::consumer::ConsumerConfig;

    fn record(offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            timestamp_type: strom_log::TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
            leader_epoch: Some(1),
        }
    }

    async fn consumer_with_buffer(max_poll_records: usize) -> (Consumer, TopicPartition, u64) {
        let config = ConsumerConfig {
            max_poll_records,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::connect(config).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        consumer.assign([tp.clone()]);
        consumer.seek(&tp, 10).unwrap();
        let generation = consumer.state.generation_of(&tp).unwrap();
        consumer.state.mark_busy(&tp);
        consumer.state.fetched(&tp, generation, true);
        (consumer, tp, generation)
    }

    #[tokio::test]
    async fn buffered_records_are_returned_in_slices_of_max_poll_records() {
        let (mut consumer, tp, generation) = consumer_with_buffer(3).await;
        consumer.buffered.push_back(Buffered {
            tp: tp.clone(),
            generation,
            records: (10..15).map(record).collect(),
            next_offset: Some(17),
            error: Some(Error::strom(ErrorCode::CorruptMessage, "bad batch at 17")),
        });
        let first: Vec<i64> = consumer
            .take_buffered()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(first, [10, 11, 12]);
        assert_eq!(consumer.state.position(&tp), Some(13));
        let second: Vec<i64> = consumer
            .take_buffered()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(second, [13, 14]);
        assert_eq!(
            consumer.state.position(&tp),
            Some(17),
            "past the control batch"
        );
        let error = consumer.take_buffered().unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::CorruptMessage));
        assert!(consumer.take_buffered().unwrap().is_empty());
        assert_eq!(
            consumer.state.fetchable(Instant::now()).len(),
            1,
            "fetched again"
        );
    }

    #[tokio::test]
    async fn a_seek_drops_buffered_records() {
        let (mut consumer, tp, generation) = consumer_with_buffer(500).await;
        consumer.buffered.push_back(Buffered {
            tp: tp.clone(),
            generation,
            records: (10..12).map(record).collect(),
            next_offset: Some(12),
            error: None,
        });
        consumer.seek(&tp, 100).unwrap();
        assert!(consumer.take_buffered().unwrap().is_empty());
        assert_eq!(consumer.position(&tp).await.unwrap(), 100);
    }
}
