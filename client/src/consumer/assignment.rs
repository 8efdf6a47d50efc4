//! Which partitions the consumer reads and where: assignment, seeks,
//! positions and lag.

use tokio::time::Instant;

use super::Consumer;
use super::state::ResetTo;
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

impl Consumer {
    /// Reads exactly these partitions from now on (replacing the previous
    /// assignment; an empty list stops reading). Partitions kept keep their
    /// position; new ones start per `auto.offset.reset` unless sought.
    /// A subscribed consumer leaves its group first (in the background,
    /// without commit or callbacks: call [`Consumer::unsubscribe`] for
    /// those).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.leave_in_background();
        self.set_partitions(partitions);
    }

    /// Replaces the assignment and the topics whose metadata is kept.
    pub(super) fn set_partitions(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.state.assign(partitions);
        let topics = self.state.topics();
        self.shared.metadata.retain_topics(&topics);
        self.shared
            .metadata
            .add_topics(topics.iter().map(String::as_str));
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state.assignment()
    }

    /// Continues `tp` at `offset` on the next poll. Records already
    /// fetched for it are dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.state.seek(tp, offset)
    }

    /// Continues these partitions (all assigned ones when empty) at their
    /// log start offset, looked up on the next poll.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.reset(partitions, ResetTo::Earliest)
    }

    /// Continues these partitions (all assigned ones when empty) at their
    /// end (high watermark), looked up on the next poll: only records
    /// written from then on are read.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.reset(partitions, ResetTo::Latest)
    }

    fn reset(&mut self, partitions: &[TopicPartition], to: ResetTo) -> Result<()> {
        let partitions = if partitions.is_empty() {
            self.state.assignment()
        } else {
            partitions.to_vec()
        };
        for tp in &partitions {
            self.state.request_reset(tp, to)?;
        }
        Ok(())
    }

    /// Continues `tp` at the first record whose timestamp is at or after
    /// `timestamp` (ms since the epoch), looked up now; at the end of the
    /// partition when no record is that recent.
    pub async fn seek_to_timestamp(&mut self, tp: &TopicPartition, timestamp: i64) -> Result<()> {
        if !self.state.is_assigned(tp) {
            return Err(Error::InvalidArgument(format!(
                "no current assignment for partition {tp}"
            )));
        }
        let found = self.offsets_for_times([(tp.clone(), timestamp)]).await?;
        match found.get(tp).copied().flatten() {
            Some(found) => self.state.seek(tp, found.offset),
            None => self.state.request_reset(tp, ResetTo::Latest),
        }
    }

    /// The offset of the next record `poll` returns for `tp`, looking it up
    /// first if needed (bounded by `request.timeout.ms`).
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        if !self.state.is_assigned(tp) {
            return Err(Error::InvalidArgument(format!(
                "no current assignment for partition {tp}"
            )));
        }
        let timeout = self.shared.config.client.request_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(position) = self.state.position(tp) {
                return Ok(position);
            }
            if let Some(error) = self.take_error_of(tp) {
                return Err(error);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "the position of {tp} could not be determined within {} ms",
                        timeout.as_millis()
                    ),
                });
            }
            self.step(deadline).await?;
        }
    }

    /// How far the position of `tp` is behind the partition's high
    /// watermark, as of the last fetch answer (Kafka's `currentLag`).
    pub fn current_lag(&self, tp: &TopicPartition) -> Option<i64> {
        self.state.lag(tp)
    }
}
