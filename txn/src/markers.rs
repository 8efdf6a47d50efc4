//! Progress of one [`WriteMarkers`] effect: which partitions still need
//! their marker, and what each partition leader's answer means. Pure; the
//! host sends the markers (grouped by leader) and feeds the answers in.
//!
//! As Kafka's `TransactionMarkerRequestCompletionHandler`:
//! * written, or the partition no longer exists
//!   (`UNKNOWN_TOPIC_OR_PARTITION`): done for that partition;
//! * the leader moved or is not ready (`NOT_LEADER_OR_FOLLOWER`,
//!   `NOT_ENOUGH_REPLICAS`, a timeout, ...): retry it, at the new leader;
//! * the partition has a newer producer epoch (`INVALID_PRODUCER_EPOCH`)
//!   or a newer coordinator wrote a marker (`TRANSACTION_COORDINATOR_FENCED`):
//!   this coordinator was overtaken; stop, and do not complete the
//!   transaction (the newer coordinator or epoch finishes it).

use std::collections::BTreeSet;

use crate::coordinator::WriteMarkers;
use crate::records::TopicPartition;

/// What a partition leader answered to a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerAnswer {
    /// The marker is in the partition's log.
    Written,
    /// The partition was deleted: nothing to mark.
    UnknownPartition,
    /// A retriable failure (leader moved, not enough replicas, timeout).
    Retry,
    /// The partition knows a newer producer epoch.
    InvalidProducerEpoch,
    /// A newer coordinator wrote a marker for the producer.
    CoordinatorFenced,
}

/// Where a [`WriteMarkers`] effect stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerStatus {
    /// Partitions remain: send their markers (again).
    Pending,
    /// Every partition is done: call `TxnShard::markers_written`.
    Complete,
    /// Overtaken by a newer epoch or coordinator: drop the effect.
    Abandoned,
}

/// The partitions of one [`WriteMarkers`] still waiting for their marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerProgress {
    markers: WriteMarkers,
    remaining: BTreeSet<TopicPartition>,
    abandoned: bool,
}

impl MarkerProgress {
    /// Every partition of `markers` waits.
    pub fn new(markers: WriteMarkers) -> Self {
        MarkerProgress {
            remaining: markers.partitions.clone(),
            markers,
            abandoned: false,
        }
    }

    /// The effect being carried out.
    pub fn markers(&self) -> &WriteMarkers {
        &self.markers
    }

    /// The partitions whose marker must still be sent.
    pub fn remaining(&self) -> &BTreeSet<TopicPartition> {
        &self.remaining
    }

    /// Records a leader's answer for `partition` (answers for partitions
    /// not waiting, such as duplicates of retried requests, are ignored).
    pub fn answer(&mut self, partition: &TopicPartition, answer: MarkerAnswer) -> MarkerStatus {
        if self.remaining.contains(partition) {
            match answer {
                MarkerAnswer::Written | MarkerAnswer::UnknownPartition => {
                    self.remaining.remove(partition);
                }
                MarkerAnswer::Retry => {}
                MarkerAnswer::InvalidProducerEpoch | MarkerAnswer::CoordinatorFenced => {
                    self.abandoned = true;
                }
            }
        }
        self.status()
    }

    /// Where the effect stands.
    pub fn status(&self) -> MarkerStatus {
        if self.abandoned {
            MarkerStatus::Abandoned
        } else if self.remaining.is_empty() {
            MarkerStatus::Complete
        } else {
            MarkerStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::TxnResult;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_owned(), p)
    }

    fn progress() -> MarkerProgress {
        MarkerProgress::new(WriteMarkers {
            transactional_id: "t".into(),
            producer_id: 1,
            producer_epoch: 2,
            coordinator_epoch: 3,
            result: TxnResult::Commit,
            partitions: [tp("a", 0), tp("a", 1), tp("b", 0)].into(),
        })
    }

    #[test]
    fn answers_drive_the_status() {
        use MarkerAnswer::*;
        use MarkerStatus::*;
        /// (answers in order, status after the last, partitions left)
        type Case = (
            &'static [(&'static str, i32, MarkerAnswer)],
            MarkerStatus,
            usize,
        );
        let cases: &[Case] = &[
            (&[], Pending, 3),
            (
                &[("a", 0, Written), ("a", 1, Written), ("b", 0, Written)],
                Complete,
                0,
            ),
            (
                &[
                    ("a", 0, Written),
                    ("a", 1, UnknownPartition),
                    ("b", 0, Written),
                ],
                Complete,
                0,
            ),
            (
                &[("a", 0, Retry), ("a", 1, Written), ("b", 0, Written)],
                Pending,
                1,
            ),
            (
                &[
                    ("a", 0, Retry),
                    ("a", 0, Written),
                    ("a", 1, Written),
                    ("b", 0, Written),
                ],
                Complete,
                0,
            ),
            (
                &[("a", 0, Written), ("a", 1, InvalidProducerEpoch)],
                Abandoned,
                2,
            ),
            (
                &[
                    ("a", 0, CoordinatorFenced),
                    ("a", 1, Written),
                    ("b", 0, Written),
                ],
                Abandoned,
                1,
            ),
            // A late answer for a partition already done, or not in the
            // transaction, changes nothing.
            (
                &[
                    ("a", 0, Written),
                    ("a", 0, CoordinatorFenced),
                    ("z", 9, Written),
                ],
                Pending,
                2,
            ),
        ];
        for (answers, want, remaining) in cases {
            let mut p = progress();
            let mut status = p.status();
            for (t, part, a) in answers.iter() {
                status = p.answer(&tp(t, *part), *a);
            }
            assert_eq!(status, *want, "{answers:?}");
            assert_eq!(p.status(), *want);
            assert_eq!(p.remaining().len(), *remaining, "{answers:?}");
        }
        assert_eq!(progress().markers().producer_epoch, 2);
    }
}
