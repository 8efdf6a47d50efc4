//! Applying a finished task's answer: positions found by offset resets,
//! fetched records and high watermarks, and per-partition failures (retried
//! with backoff, reset per `auto.offset.reset`, or handed to `poll`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use strom_proto::v1::ErrorCode;
use tokio::time::Instant;
use tracing::debug;

use super::Consumer;
use super::buffer::Buffered;
use super::fetcher::{FetchAnswer, FetchTarget};
use super::offsets::{OffsetAnswer, OffsetQuery, forget_connection, note_partition_error};
use super::poll::Task;
use crate::admin::TopicPartition;
use crate::cluster::Leader;
use crate::error::Error;
use crate::retry::is_retriable;

impl Consumer {
    /// Applies a finished task's answer.
    pub(super) fn handle(&mut self, task: Task) {
        let now = Instant::now();
        let backoff = (
            self.shared.config.client.retry_backoff,
            self.shared.config.client.retry_backoff_max,
        );
        match task {
            Task::Metadata(result) => {
                self.refreshing = false;
                if let Err(error) = result {
                    debug!(%error, "metadata refresh failed");
                }
            }
            Task::Reset {
                leader,
                queries,
                result,
            } => {
                let generations: BTreeMap<TopicPartition, u64> =
                    queries.iter().map(|(q, g)| (q.tp.clone(), *g)).collect();
                match result {
                    Ok(answers) => {
                        for (query, answer) in answers {
                            let generation = generations[&query.tp];
                            self.reset_answer(&leader, query, generation, answer, now, backoff);
                        }
                    }
                    Err(error) => {
                        forget_connection(&self.shared, &leader, &error);
                        for (query, generation) in queries {
                            self.partition_failed(
                                &query.tp,
                                generation,
                                error.clone(),
                                is_retriable(&error),
                                now,
                                backoff,
                            );
                        }
                    }
                }
            }
            Task::Fetch(outcome) => {
                self.fetching.remove(&outcome.leader.address);
                match outcome.result {
                    Ok(answers) => {
                        for (target, answer) in answers {
                            self.fetch_answer(&outcome.leader, target, answer, now, backoff);
                        }
                    }
                    Err((targets, error)) => {
                        forget_connection(&self.shared, &outcome.leader, &error);
                        for target in targets {
                            self.partition_failed(
                                &target.tp,
                                target.generation,
                                error.clone(),
                                is_retriable(&error),
                                now,
                                backoff,
                            );
                        }
                    }
                }
            }
        }
    }

    fn reset_answer(
        &mut self,
        leader: &Leader,
        query: OffsetQuery,
        generation: u64,
        answer: OffsetAnswer,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        match answer {
            OffsetAnswer::Found(found) if found.offset >= 0 => {
                self.state.reset_done(&query.tp, generation, found.offset);
            }
            OffsetAnswer::Found(_) => {
                let error = Error::strom(
                    ErrorCode::UnknownServerError,
                    format!("the leader has no offset for {}", query.tp),
                );
                self.partition_failed(&query.tp, generation, error, true, now, backoff);
            }
            OffsetAnswer::Failed {
                error,
                leader: hint,
            } => {
                let retriable =
                    note_partition_error(&self.shared, &query.tp, &error, hint.as_ref(), leader.id);
                self.partition_failed(&query.tp, generation, error, retriable, now, backoff);
            }
        }
    }

    fn fetch_answer(
        &mut self,
        leader: &Leader,
        target: FetchTarget,
        answer: FetchAnswer,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        let FetchTarget {
            tp,
            generation,
            offset,
            ..
        } = target;
        match answer {
            FetchAnswer::Data {
                decoded,
                high_watermark,
            } => {
                self.state
                    .set_high_watermark(&tp, generation, high_watermark);
                if decoded.records.is_empty() && decoded.error.is_none() {
                    if self.state.fetched(&tp, generation, false)
                        && let Some(next) = decoded.next_offset
                    {
                        // Only control batches (or records below the position).
                        self.state.advance(&tp, generation, next, None, true);
                    }
                    return;
                }
                if self.state.fetched(&tp, generation, true) {
                    self.buffered.push_back(Buffered {
                        tp,
                        generation,
                        records: decoded.records.into(),
                        next_offset: decoded.next_offset,
                        error: decoded.error,
                    });
                }
            }
            FetchAnswer::Failed {
                error,
                leader: hint,
                log_start_offset,
                high_watermark,
            } => {
                if error.code() == Some(ErrorCode::OffsetOutOfRange) {
                    if let Some(to) = self.state.reset_out_of_range(&tp, generation, offset) {
                        debug!(partition = %tp, offset, reset = ?to, "fetch position out of range; resetting");
                        return;
                    }
                    let error =
                        out_of_range_error(&tp, offset, log_start_offset, high_watermark, &error);
                    self.partition_failed(&tp, generation, error, false, now, backoff);
                    return;
                }
                let retriable =
                    note_partition_error(&self.shared, &tp, &error, hint.as_ref(), leader.id);
                self.partition_failed(&tp, generation, error, retriable, now, backoff);
            }
        }
    }

    /// A partition's request failed: back off and retry, or hand the error
    /// to `poll`.
    fn partition_failed(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        error: Error,
        retriable: bool,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        if retriable {
            debug!(partition = %tp, %error, "retrying");
            self.state.failed(tp, generation, now, backoff);
        } else if self.state.fetched(tp, generation, true) {
            self.buffered.push_back(Buffered {
                tp: tp.clone(),
                generation,
                records: VecDeque::new(),
                next_offset: None,
                error: Some(error),
            });
        }
    }
}

/// OFFSET_OUT_OF_RANGE under `auto.offset.reset = none`, naming the range.
fn out_of_range_error(
    tp: &TopicPartition,
    offset: i64,
    log_start_offset: i64,
    high_watermark: i64,
    broker: &Error,
) -> Error {
    let range = if log_start_offset >= 0 && high_watermark >= 0 {
        format!("valid offsets are {log_start_offset} to {high_watermark}")
    } else {
        format!("the broker said: {}", broker.detail())
    };
    Error::strom(
        ErrorCode::OffsetOutOfRange,
        format!(
            "fetch position {offset} is out of range for partition {tp} and auto.offset.reset \
             is none; {range}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_error_names_the_valid_range() {
        let tp = TopicPartition::new("t", 2);
        let broker = Error::strom(
            ErrorCode::OffsetOutOfRange,
            "offset 99 is out of range [10, 50]",
        );
        let table = [
            (
                10,
                50,
                "fetch position 99 is out of range for partition t-2 and auto.offset.reset is none; valid offsets are 10 to 50",
            ),
            (
                -1,
                -1,
                "fetch position 99 is out of range for partition t-2 and auto.offset.reset is none; the broker said: offset 99 is out of range [10, 50]",
            ),
        ];
        for (start, end, want) in table {
            let error = out_of_range_error(&tp, 99, start, end, &broker);
            assert_eq!(error.code(), Some(ErrorCode::OffsetOutOfRange));
            assert_eq!(error.detail(), want);
        }
    }
}
