//! The idempotent producer's bookkeeping (no I/O): its producer id and,
//! per partition, the epoch and the next sequence number.
//!
//! Sequences are fixed when a batch is first sent and never change while
//! it is retried in the same epoch, so a retry of a batch the broker
//! already wrote is answered with its offsets instead of being written
//! twice. A partition has up to `max.in.flight.requests.per.connection`
//! (at most 5) requests in flight; a retried request carries exactly the
//! batches it carried the first time, and after a failure the returned
//! requests go again one at a time in their first order (the accumulator
//! keeps them together and in order), so sequences reach the broker in
//! order.
//!
//! When sent batches end without a known fate (they expired, ran out of
//! retries, or were refused) the partition starts a new epoch at sequence
//! 0 (KIP-360: an idempotent producer bumps its epoch itself): whatever the
//! broker holds of the old epoch can no longer collide with the next
//! batches. The broker checks epochs per partition, so a bump on one
//! partition does not disturb the others. An epoch that would overflow
//! asks for a new producer id instead.

use std::collections::BTreeMap;

use crate::admin::TopicPartition;

/// A partition's idempotence state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionSequence {
    /// The producer id its sequences belong to.
    producer_id: i64,
    epoch: i16,
    /// The sequence of the next batch's first record.
    next: i32,
}

/// Producer fields of one batch: id, epoch, first sequence.
pub(crate) type ProducerFields = (i64, i16, i32);

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    /// `None` until `InitProducerId` answers (and again after an epoch
    /// overflow).
    producer_id: Option<i64>,
    /// The epoch partitions start at: 0 for an idempotent producer, the
    /// coordinator's for a transactional one.
    epoch: i16,
    /// Transactional: the coordinator owns the epoch (bumped by every
    /// EndTxn, KIP-890); partitions never bump it themselves, a batch of
    /// unknown fate makes the transaction abort instead.
    transactional: bool,
    partitions: BTreeMap<TopicPartition, PartitionSequence>,
}

/// `seq` advanced by `count` records, wrapping at `i32::MAX` to 0 as the
/// broker does.
pub(crate) fn advance(seq: i32, count: i32) -> i32 {
    if seq > i32::MAX - count {
        count - (i32::MAX - seq) - 1
    } else {
        seq + count
    }
}

impl Sequences {
    /// The producer id, once known.
    pub(crate) fn producer_id(&self) -> Option<i64> {
        self.producer_id
    }

    /// `InitProducerId` answered `id`. Partitions start their sequences
    /// for it at epoch 0, sequence 0.
    pub(crate) fn set_producer_id(&mut self, id: i64) {
        self.producer_id = Some(id);
    }

    /// A transactional producer's sequences (see [`Self::set_epoch`]).
    pub(crate) fn transactional() -> Self {
        Self {
            transactional: true,
            ..Self::default()
        }
    }

    /// Transactional: the coordinator gave `id` at `epoch` (by
    /// `InitProducerId` or an EndTxn). Every partition starts again at
    /// sequence 0 in it.
    pub(crate) fn set_epoch(&mut self, id: i64, epoch: i16) {
        self.producer_id = Some(id);
        self.epoch = epoch;
        self.partitions.clear();
    }

    /// The fields of `tp`'s next batch of `count` records, advancing its
    /// sequence; `None` while the producer id is unknown.
    pub(crate) fn assign(&mut self, tp: &TopicPartition, count: i32) -> Option<ProducerFields> {
        let id = self.producer_id?;
        let epoch = self.epoch;
        let state = self
            .partitions
            .entry(tp.clone())
            .or_insert(PartitionSequence {
                producer_id: id,
                epoch,
                next: 0,
            });
        if state.producer_id != id {
            *state = PartitionSequence {
                producer_id: id,
                epoch,
                next: 0,
            };
        }
        let fields = (state.producer_id, state.epoch, state.next);
        state.next = advance(state.next, count);
        Some(fields)
    }

    /// The producer id and epoch `tp`'s next batch gets (`None` while the
    /// producer id is unknown).
    pub(crate) fn current(&self, tp: &TopicPartition) -> Option<(i64, i16)> {
        let id = self.producer_id?;
        Some(match self.partitions.get(tp) {
            Some(state) if state.producer_id == id => (id, state.epoch),
            _ => (id, self.epoch),
        })
    }

    /// `tp`'s sent batches ended without a known fate: its next batch
    /// starts a new epoch at sequence 0 (a new producer id when the epoch
    /// would overflow).
    /// A transactional producer does nothing here (see
    /// [`Self::transactional`]).
    pub(crate) fn bump(&mut self, tp: &TopicPartition) {
        if self.transactional {
            return;
        }
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        if self.producer_id != Some(state.producer_id) {
            // Already moving to a new producer id: it starts afresh.
            return;
        }
        if state.epoch == i16::MAX {
            self.partitions.remove(tp);
            self.producer_id = None;
        } else {
            state.epoch += 1;
            state.next = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn sequences_advance_per_partition_and_restart_on_a_bump() {
        let mut s = Sequences::default();
        assert_eq!(s.assign(&tp(0), 3), None, "no producer id yet");
        s.set_producer_id(7);
        assert_eq!(s.assign(&tp(0), 3), Some((7, 0, 0)));
        assert_eq!(s.assign(&tp(0), 2), Some((7, 0, 3)));
        assert_eq!(s.assign(&tp(1), 1), Some((7, 0, 0)));
        s.bump(&tp(0));
        assert_eq!(s.assign(&tp(0), 1), Some((7, 1, 0)));
        assert_eq!(
            s.assign(&tp(1), 1),
            Some((7, 0, 1)),
            "other partitions go on"
        );
    }

    #[test]
    fn an_epoch_overflow_asks_for_a_new_producer_id() {
        let mut s = Sequences::default();
        s.set_producer_id(7);
        s.assign(&tp(0), 1);
        s.assign(&tp(1), 5);
        for _ in 0..i16::MAX {
            s.bump(&tp(0));
        }
        assert_eq!(s.assign(&tp(0), 1), Some((7, i16::MAX, 0)));
        s.bump(&tp(0));
        assert_eq!(s.producer_id(), None);
        assert_eq!(s.assign(&tp(0), 1), None);
        s.set_producer_id(8);
        assert_eq!(s.assign(&tp(0), 1), Some((8, 0, 0)));
        assert_eq!(
            s.assign(&tp(1), 1),
            Some((8, 0, 0)),
            "every partition restarts"
        );
    }

    #[test]
    fn transactional_sequences_follow_the_coordinators_epoch() {
        let mut s = Sequences::transactional();
        assert_eq!(s.assign(&tp(0), 1), None, "not initialised");
        s.set_epoch(7, 3);
        assert_eq!(s.assign(&tp(0), 2), Some((7, 3, 0)));
        assert_eq!(s.assign(&tp(0), 1), Some((7, 3, 2)));
        s.bump(&tp(0));
        assert_eq!(
            s.assign(&tp(0), 1),
            Some((7, 3, 3)),
            "a transactional producer never bumps its epoch itself"
        );
        // An EndTxn gave the next epoch: every partition restarts at 0.
        s.set_epoch(7, 4);
        assert_eq!(s.current(&tp(0)), Some((7, 4)));
        assert_eq!(s.assign(&tp(0), 1), Some((7, 4, 0)));
        assert_eq!(s.assign(&tp(1), 1), Some((7, 4, 0)));
        // An exhausted epoch: the coordinator moved to a new id at 0.
        s.set_epoch(8, 0);
        assert_eq!(s.assign(&tp(0), 1), Some((8, 0, 0)));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(advance(5, 3), 8);
        assert_eq!(advance(i32::MAX, 1), 0);
        assert_eq!(advance(i32::MAX - 1, 3), 1);
        let mut s = Sequences::default();
        s.set_producer_id(1);
        s.partitions.insert(
            tp(0),
            PartitionSequence {
                producer_id: 1,
                epoch: 0,
                next: i32::MAX - 1,
            },
        );
        assert_eq!(s.assign(&tp(0), 4), Some((1, 0, i32::MAX - 1)));
        assert_eq!(s.assign(&tp(0), 1), Some((1, 0, 2)));
    }
}
