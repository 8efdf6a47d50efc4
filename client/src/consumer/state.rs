//! The consumer's assigned partitions and, per partition, where it reads
//! next and what it is waiting for. Pure: the consumer asks it what to
//! fetch or look up, and tells it what came back.
//!
//! Every seek gives the partition a new *generation*; answers to requests
//! sent under an older generation (and records buffered from them) are
//! discarded, so a seek takes effect at once even with a fetch in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::config::OffsetReset;
use crate::admin::TopicPartition;
use crate::error::{Error, Result};
use crate::retry::Backoff;

/// Where an offset lookup resets a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetTo {
    /// The log start offset.
    Earliest,
    /// The high watermark (or last stable offset).
    Latest,
}

impl ResetTo {
    /// The ListOffsets timestamp that asks for it.
    pub(crate) fn timestamp(self) -> i64 {
        match self {
            ResetTo::Earliest => -2,
            ResetTo::Latest => -1,
        }
    }

    fn from_policy(policy: OffsetReset) -> Option<Self> {
        match policy {
            OffsetReset::Earliest => Some(ResetTo::Earliest),
            OffsetReset::Latest => Some(ResetTo::Latest),
            OffsetReset::None => None,
        }
    }
}

/// One assigned partition.
#[derive(Debug, Clone, Default)]
struct PartitionState {
    /// The offset of the next record to return; `None` until reset.
    position: Option<i64>,
    /// An explicit reset asked for (seek to beginning or end).
    reset: Option<ResetTo>,
    generation: u64,
    /// A fetch or an offset lookup for it is in flight.
    busy: bool,
    /// Fetched records wait to be returned by `poll`.
    buffered: bool,
    /// Backoff after a failed fetch or lookup.
    retry_at: Option<Instant>,
    /// Consecutive failures, for the exponential backoff.
    failures: u32,
    /// Leader epoch of the last returned record.
    leader_epoch: Option<i32>,
    /// High watermark of the last fetch answer.
    high_watermark: Option<i64>,
}

/// A partition to fetch, as of its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    pub(crate) tp: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) generation: u64,
    /// The leader epoch of the record before `offset` (the last one
    /// returned, or the committed offset's): no leader older than it can
    /// serve the position (KIP-320).
    pub(crate) min_leader_epoch: Option<i32>,
}

/// A partition whose position must be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingReset {
    pub(crate) tp: TopicPartition,
    pub(crate) to: ResetTo,
    pub(crate) generation: u64,
}

/// The assignment and its positions.
#[derive(Debug)]
pub(crate) struct SubscriptionState {
    partitions: BTreeMap<TopicPartition, PartitionState>,
    policy: OffsetReset,
    next_generation: u64,
}

impl SubscriptionState {
    pub(crate) fn new(policy: OffsetReset) -> Self {
        Self {
            partitions: BTreeMap::new(),
            policy,
            next_generation: 1,
        }
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Replaces the assignment; partitions kept keep their state.
    pub(crate) fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in partitions {
            let state = match self.partitions.remove(&tp) {
                Some(state) => state,
                None => PartitionState {
                    generation: self.generation(),
                    ..PartitionState::default()
                },
            };
            next.insert(tp, state);
        }
        self.partitions = next;
    }

    /// The assigned partitions, sorted.
    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// The assigned topics.
    pub(crate) fn topics(&self) -> BTreeSet<String> {
        self.partitions.keys().map(|tp| tp.topic.clone()).collect()
    }

    fn get_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState> {
        self.partitions.get_mut(tp).ok_or_else(|| {
            Error::InvalidArgument(format!("no current assignment for partition {tp}"))
        })
    }

    /// Whether `tp` is assigned.
    pub(crate) fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    /// Moves `tp` to `offset`.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::InvalidArgument(format!(
                "seek offset must not be negative, got {offset} for {tp}"
            )));
        }
        let generation = self.generation();
        let state = self.get_mut(tp)?;
        *state = PartitionState {
            position: Some(offset),
            generation,
            leader_epoch: state.leader_epoch,
            high_watermark: state.high_watermark,
            ..PartitionState::default()
        };
        Ok(())
    }

    /// Moves `tp` to a committed offset whose last consumed record had
    /// `leader_epoch`: fetches then go only to a leader at that epoch or a
    /// later one, never to a stale one whose log may end below `offset`
    /// (which would answer OFFSET_OUT_OF_RANGE and reset the position).
    pub(crate) fn seek_committed(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        leader_epoch: Option<i32>,
    ) -> Result<()> {
        self.seek(tp, offset)?;
        let state = self.get_mut(tp)?;
        state.leader_epoch = state.leader_epoch.max(leader_epoch.filter(|e| *e >= 0));
        Ok(())
    }

    /// Moves `tp` to its beginning or end, looked up on the next poll.
    pub(crate) fn request_reset(&mut self, tp: &TopicPartition, to: ResetTo) -> Result<()> {
        let generation = self.generation();
        let state = self.get_mut(tp)?;
        *state = PartitionState {
            reset: Some(to),
            generation,
            ..PartitionState::default()
        };
        Ok(())
    }

    /// After OFFSET_OUT_OF_RANGE at `offset`: resets by `auto.offset.reset`
    /// and returns where to, or `None` under the `none` policy (or when the
    /// answer is stale).
    pub(crate) fn reset_out_of_range(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        offset: i64,
    ) -> Option<ResetTo> {
        let to = ResetTo::from_policy(self.policy)?;
        let state = self.partitions.get(tp)?;
        if state.generation != generation || state.position != Some(offset) {
            return None;
        }
        self.request_reset(tp, to).ok()?;
        Some(to)
    }

    /// The position of `tp`, if known.
    pub(crate) fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.position)
    }

    /// Every partition with a position: `(partition, position, leader
    /// epoch of the last returned record)`.
    pub(crate) fn positions(&self) -> Vec<(TopicPartition, i64, Option<i32>)> {
        self.partitions
            .iter()
            .filter_map(|(tp, s)| Some((tp.clone(), s.position?, s.leader_epoch)))
            .collect()
    }

    /// The current generation of `tp`.
    pub(crate) fn generation_of(&self, tp: &TopicPartition) -> Option<u64> {
        self.partitions.get(tp).map(|s| s.generation)
    }

    fn waiting(state: &PartitionState, now: Instant) -> bool {
        state.busy || state.retry_at.is_some_and(|at| at > now)
    }

    /// Partitions without a position that may be looked up now. Partitions
    /// the `none` policy leaves without one are returned as errors.
    pub(crate) fn pending_resets(&self, now: Instant) -> Result<Vec<PendingReset>> {
        let mut resets = Vec::new();
        let mut undefined = Vec::new();
        for (tp, state) in &self.partitions {
            if state.position.is_some() || state.buffered || Self::waiting(state, now) {
                continue;
            }
            match state.reset.or(ResetTo::from_policy(self.policy)) {
                Some(to) => resets.push(PendingReset {
                    tp: tp.clone(),
                    to,
                    generation: state.generation,
                }),
                None => undefined.push(tp.to_string()),
            }
        }
        if !undefined.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "undefined offset with no reset policy for partitions: {}; seek first or set \
                 auto.offset.reset",
                undefined.join(", ")
            )));
        }
        Ok(resets)
    }

    /// Partitions with a position, nothing buffered and nothing in flight.
    pub(crate) fn fetchable(&self, now: Instant) -> Vec<FetchPosition> {
        self.partitions
            .iter()
            .filter(|(_, s)| !s.buffered && !Self::waiting(s, now))
            .filter_map(|(tp, s)| {
                Some(FetchPosition {
                    tp: tp.clone(),
                    offset: s.position?,
                    generation: s.generation,
                    min_leader_epoch: s.leader_epoch,
                })
            })
            .collect()
    }

    /// A fetch or lookup for `tp` was sent.
    pub(crate) fn mark_busy(&mut self, tp: &TopicPartition) {
        if let Some(state) = self.partitions.get_mut(tp) {
            state.busy = true;
        }
    }

    /// The state of `tp` if `generation` is still current.
    fn current(&mut self, tp: &TopicPartition, generation: u64) -> Option<&mut PartitionState> {
        self.partitions
            .get_mut(tp)
            .filter(|s| s.generation == generation)
    }

    /// A lookup answered: `tp` starts at `offset`. Returns whether it applied.
    pub(crate) fn reset_done(&mut self, tp: &TopicPartition, generation: u64, offset: i64) -> bool {
        let Some(state) = self.current(tp, generation) else {
            return false;
        };
        state.busy = false;
        state.failures = 0;
        state.retry_at = None;
        state.reset = None;
        state.position = Some(offset);
        true
    }

    /// A fetch answered with data (`buffered`: records wait for `poll`).
    /// Returns whether the answer is current.
    pub(crate) fn fetched(&mut self, tp: &TopicPartition, generation: u64, buffered: bool) -> bool {
        let Some(state) = self.current(tp, generation) else {
            return false;
        };
        state.busy = false;
        state.failures = 0;
        state.retry_at = None;
        state.buffered = buffered;
        true
    }

    /// A fetch or lookup failed retriably: back off exponentially.
    pub(crate) fn failed(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        now: Instant,
        backoff: (Duration, Duration),
    ) {
        if let Some(state) = self.current(tp, generation) {
            state.busy = false;
            state.failures = state.failures.saturating_add(1);
            state.retry_at =
                Some(now + Backoff::delay_for_attempt(backoff.0, backoff.1, state.failures));
        }
    }

    /// `poll` returned records of `tp` up to `next` (exclusive);
    /// `drained`: nothing of that fetch remains buffered.
    pub(crate) fn advance(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        next: i64,
        leader_epoch: Option<i32>,
        drained: bool,
    ) {
        if let Some(state) = self.current(tp, generation) {
            state.position = Some(state.position.map_or(next, |p| p.max(next)));
            if leader_epoch.is_some() {
                state.leader_epoch = leader_epoch;
            }
            if drained {
                state.buffered = false;
            }
        }
    }

    /// A buffered error of `tp` was returned by `poll`: it may be fetched
    /// (or looked up) again.
    pub(crate) fn unbuffer(&mut self, tp: &TopicPartition, generation: u64) {
        if let Some(state) = self.current(tp, generation) {
            state.buffered = false;
        }
    }

    /// Records the high watermark a fetch of `tp` reported.
    pub(crate) fn set_high_watermark(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        high_watermark: i64,
    ) {
        if let Some(state) = self.current(tp, generation)
            && high_watermark >= 0
        {
            state.high_watermark = Some(high_watermark);
        }
    }

    /// Records between the position of `tp` and its last known high
    /// watermark.
    pub(crate) fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let state = self.partitions.get(tp)?;
        Some((state.high_watermark? - state.position?).max(0))
    }

    /// The earliest end of a backoff still ahead.
    pub(crate) fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.partitions
            .values()
            .filter(|s| !s.busy)
            .filter_map(|s| s.retry_at)
            .filter(|at| *at > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn offsets(fetchable: &[FetchPosition]) -> Vec<(i32, i64)> {
        fetchable
            .iter()
            .map(|f| (f.tp.partition, f.offset))
            .collect()
    }

    #[test]
    fn new_partitions_reset_by_policy_and_seeks_override_it() {
        let now = Instant::now();
        let mut state = SubscriptionState::new(OffsetReset::Latest);
        state.assign([tp(0), tp(1), tp(2)]);
        state.seek(&tp(1), 42).unwrap();
        state.request_reset(&tp(2), ResetTo::Earliest).unwrap();
        let resets: Vec<(i32, ResetTo)> = state
            .pending_resets(now)
            .unwrap()
            .iter()
            .map(|r| (r.tp.partition, r.to))
            .collect();
        assert_eq!(resets, [(0, ResetTo::Latest), (2, ResetTo::Earliest)]);
        assert_eq!(offsets(&state.fetchable(now)), [(1, 42)]);
        assert!(state.seek(&tp(9), 1).is_err(), "not assigned");
        assert!(state.seek(&tp(1), -1).is_err());
    }

    #[test]
    fn policy_none_leaves_unpositioned_partitions_as_an_error() {
        let mut state = SubscriptionState::new(OffsetReset::None);
        state.assign([tp(0), tp(1)]);
        state.seek(&tp(1), 5).unwrap();
        let error = state.pending_resets(Instant::now()).unwrap_err();
        assert!(error.to_string().contains("partitions: t-0;"), "{error}");
        state.seek(&tp(0), 0).unwrap();
        assert!(state.pending_resets(Instant::now()).unwrap().is_empty());
    }

    #[test]
    fn answers_from_before_a_seek_are_discarded() {
        let now = Instant::now();
        let mut state = SubscriptionState::new(OffsetReset::Earliest);
        state.assign([tp(0)]);
        state.seek(&tp(0), 10).unwrap();
        let sent = state.fetchable(now).remove(0);
        state.mark_busy(&tp(0));
        assert!(state.fetchable(now).is_empty(), "one fetch at a time");
        state.seek(&tp(0), 50).unwrap();
        assert!(
            !state.fetched(&tp(0), sent.generation, true),
            "stale answer"
        );
        assert_eq!(offsets(&state.fetchable(now)), [(0, 50)]);
    }

    #[test]
    fn buffered_partitions_are_not_fetched_until_drained() {
        let now = Instant::now();
        let mut state = SubscriptionState::new(OffsetReset::Earliest);
        state.assign([tp(0)]);
        state.seek(&tp(0), 0).unwrap();
        let generation = state.generation_of(&tp(0)).unwrap();
        state.mark_busy(&tp(0));
        assert!(state.fetched(&tp(0), generation, true));
        assert!(state.fetchable(now).is_empty());
        state.advance(&tp(0), generation, 7, Some(3), false);
        assert!(state.fetchable(now).is_empty(), "records remain");
        state.advance(&tp(0), generation, 9, None, true);
        assert_eq!(offsets(&state.fetchable(now)), [(0, 9)]);
        assert_eq!(state.lag(&tp(0)), None, "no high watermark yet");
        state.set_high_watermark(&tp(0), generation, 15);
        assert_eq!(state.lag(&tp(0)), Some(6));
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets_it() {
        let now = Instant::now();
        let mut state = SubscriptionState::new(OffsetReset::Earliest);
        state.assign([tp(0)]);
        state.seek(&tp(0), 0).unwrap();
        let generation = state.generation_of(&tp(0)).unwrap();
        for (failure, wait_ms) in [(1, 100), (2, 200), (3, 400)] {
            state.mark_busy(&tp(0));
            state.failed(&tp(0), generation, now, BACKOFF);
            assert_eq!(
                state.next_retry(now),
                Some(now + Duration::from_millis(wait_ms)),
                "failure {failure}"
            );
            assert!(state.fetchable(now).is_empty());
        }
        let later = now + Duration::from_millis(400);
        assert_eq!(state.fetchable(later).len(), 1);
        state.mark_busy(&tp(0));
        state.fetched(&tp(0), generation, false);
        state.mark_busy(&tp(0));
        state.failed(&tp(0), generation, later, BACKOFF);
        assert_eq!(
            state.next_retry(later),
            Some(later + Duration::from_millis(100))
        );
    }

    #[test]
    fn out_of_range_resets_by_policy_only_for_the_current_position() {
        // (policy, fetched at, reset)
        let table = [
            (OffsetReset::Earliest, 5, Some(ResetTo::Earliest)),
            (OffsetReset::Latest, 5, Some(ResetTo::Latest)),
            (OffsetReset::None, 5, None),
            (OffsetReset::Earliest, 4, None),
        ];
        for (policy, at, want) in table {
            let mut state = SubscriptionState::new(policy);
            state.assign([tp(0)]);
            state.seek(&tp(0), 5).unwrap();
            let generation = state.generation_of(&tp(0)).unwrap();
            assert_eq!(
                state.reset_out_of_range(&tp(0), generation, at),
                want,
                "{policy}"
            );
            assert_eq!(state.position(&tp(0)).is_none(), want.is_some());
        }
    }

    #[test]
    fn a_committed_offset_bounds_the_leader_epoch_of_its_fetches() {
        let now = Instant::now();
        let mut state = SubscriptionState::new(OffsetReset::Earliest);
        state.assign([tp(0), tp(1), tp(2)]);
        // (partition, committed offset, its epoch, the epoch fetches need)
        let table = [
            (0, 271, Some(4), Some(4)),
            (1, 9, None, None),
            (2, 3, Some(-1), None),
        ];
        for (p, offset, epoch, _) in table {
            state.seek_committed(&tp(p), offset, epoch).unwrap();
        }
        let got: Vec<(i32, i64, Option<i32>)> = state
            .fetchable(now)
            .iter()
            .map(|f| (f.tp.partition, f.offset, f.min_leader_epoch))
            .collect();
        let want: Vec<(i32, i64, Option<i32>)> =
            table.iter().map(|(p, o, _, w)| (*p, *o, *w)).collect();
        assert_eq!(got, want);
        // Records read since raise the bound; a later committed seek never
        // lowers it.
        let generation = state.generation_of(&tp(0)).unwrap();
        state.mark_busy(&tp(0));
        state.fetched(&tp(0), generation, true);
        state.advance(&tp(0), generation, 280, Some(6), true);
        state.seek_committed(&tp(0), 271, Some(4)).unwrap();
        assert_eq!(state.fetchable(now)[0].min_leader_epoch, Some(6));
        assert_eq!(state.positions()[0], (tp(0), 271, Some(6)));
        assert!(
            state.seek_committed(&tp(7), 1, Some(1)).is_err(),
            "not assigned"
        );
    }

    #[test]
    fn reassigning_keeps_positions_of_kept_partitions() {
        let mut state = SubscriptionState::new(OffsetReset::Latest);
        state.assign([tp(0), tp(1)]);
        state.seek(&tp(0), 3).unwrap();
        state.assign([tp(0), tp(2)]);
        assert_eq!(state.assignment(), [tp(0), tp(2)]);
        assert_eq!(state.position(&tp(0)), Some(3));
        assert!(!state.is_assigned(&tp(1)));
        assert_eq!(state.topics().into_iter().collect::<Vec<_>>(), ["t"]);
    }
}
