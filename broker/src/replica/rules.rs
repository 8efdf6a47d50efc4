//! The pure replication rules of a partition, with no I/O: follower
//! progress, ISR shrink and expansion, the high watermark, acks=all
//! completion, fetch divergence and follower truncation. The I/O layer
//! ([`partition`](super::partition), [`fetcher`](super::fetcher)) executes
//! what these decide. Kafka's `Partition` and `AbstractFetcherThread` are
//! the reference; see `docs/replication.md`.

use std::collections::BTreeMap;

/// What the leader knows about one follower's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset); -1 until it
    /// fetched from this leader.
    pub log_end_offset: i64,
    /// Everything below this offset is fsynced on the follower, as its last
    /// fetch reported; -1 until it fetched from this leader.
    pub durable_end_offset: i64,
    /// Last time (ms) the follower was known to have everything the leader
    /// had.
    pub last_caught_up_ms: i64,
    /// Time (ms) of the follower's previous fetch.
    pub last_fetch_ms: i64,
    /// The leader's log end offset at the follower's previous fetch.
    pub last_fetch_leader_leo: i64,
}

impl FollowerProgress {
    /// A follower as a new leader sees it: position unknown, but given a full
    /// `replica.lag.time.max.ms` from `now` to catch up (Kafka resets
    /// `lastCaughtUpTime` on leader change).
    pub fn new_leader_view(now_ms: i64) -> Self {
        Self {
            log_end_offset: -1,
            durable_end_offset: -1,
            last_caught_up_ms: now_ms,
            last_fetch_ms: -1,
            last_fetch_leader_leo: -1,
        }
    }

    /// Applies a fetch at `fetch_offset`, reporting everything below
    /// `durable_offset` fsynced, received at `now_ms` while the leader's log
    /// ends at `leader_leo` (Kafka's `Replica.updateFetchState`): a fetch
    /// reaching the leader's end means caught up now; one reaching the
    /// leader's end as of the previous fetch means caught up then. Being
    /// caught up is about the log end: a follower whose fsyncs lag holds
    /// the high watermark of `write.caching=false` topics but stays in the
    /// ISR.
    pub fn on_fetch(
        &mut self,
        fetch_offset: i64,
        durable_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) {
        if fetch_offset >= leader_leo {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if self.last_fetch_ms >= 0 && fetch_offset >= self.last_fetch_leader_leo {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        // Never above the log end (a truncated follower's stale report).
        self.durable_end_offset = durable_offset.min(fetch_offset);
        self.last_fetch_ms = now_ms;
        self.last_fetch_leader_leo = leader_leo;
    }

    /// The end the high watermark counts for this follower.
    pub fn counted_end(&self, durability: Durability) -> i64 {
        match durability {
            Durability::Cached => self.log_end_offset,
            Durability::Synced { .. } => self.durable_end_offset.min(self.log_end_offset),
        }
    }

    /// Whether the follower counts as caught up: it has the leader's log
    /// end, or it had everything within the last `lag_max_ms`.
    pub fn is_caught_up(&self, leader_leo: i64, now_ms: i64, lag_max_ms: i64) -> bool {
        self.log_end_offset >= leader_leo || now_ms - self.last_caught_up_ms <= lag_max_ms
    }
}

/// The ISR as the leader sees it: the committed one, plus a change sent to
/// the controller and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IsrState {
    /// The ISR committed in the metadata log.
    pub isr: Vec<i32>,
    /// A proposed ISR awaiting the controller (KIP-497).
    pub pending: Option<Vec<i32>>,
}

impl IsrState {
    /// The committed ISR plus members a pending change adds: the high
    /// watermark waits for all of them, so it is safe whichever way the
    /// controller decides (Kafka's `maximalIsr`).
    pub fn maximal(&self) -> Vec<i32> {
        let mut out = self.isr.clone();
        if let Some(p) = &self.pending {
            for r in p {
                if !out.contains(r) {
                    out.push(*r);
                }
            }
        }
        out
    }
}

/// What a record must reach on every ISR member before the high watermark
/// passes it: the topic's `write.caching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `write.caching=true`, the default and Kafka's behaviour: each
    /// member's log (its page cache). A power cut of every member at once
    /// can lose acknowledged records.
    Cached,
    /// `write.caching=false`: each member's disk (fsynced). Followers report
    /// their durable end with every fetch; the leader's own is given.
    Synced {
        /// Everything below this offset is fsynced on the leader.
        leader_durable_end: i64,
    },
}

/// The high watermark a leader may move to: the smallest log end offset over
/// the maximal ISR (the leader's own is `leader_leo`), never backwards; for
/// a [`Durability::Synced`] topic the smallest durable end instead. An ISR
/// member whose position is unknown holds it where it is. With fewer
/// than `min_isr` members (the partition's effective `min.insync.replicas`)
/// it does not move at all (KIP-966): the replicas that left the ISR are
/// eligible leaders because they hold everything below it.
pub fn next_high_watermark(
    current_hw: i64,
    leader_id: i32,
    leader_leo: i64,
    maximal_isr: &[i32],
    followers: &BTreeMap<i32, FollowerProgress>,
    min_isr: usize,
    durability: Durability,
) -> i64 {
    if maximal_isr.len() < min_isr {
        return current_hw;
    }
    let mut hw = match durability {
        Durability::Cached => leader_leo,
        Durability::Synced { leader_durable_end } => leader_durable_end.min(leader_leo),
    };
    for r in maximal_isr {
        if *r == leader_id {
            continue;
        }
        let end = followers.get(r).map_or(-1, |f| f.counted_end(durability));
        hw = hw.min(end);
    }
    hw.max(current_hw)
}

/// ISR members the leader should drop: followers not caught up for longer
/// than `lag_max_ms` (Kafka's `getOutOfSyncReplicas`).
pub fn out_of_sync_replicas(
    leader_id: i32,
    leader_leo: i64,
    isr: &[i32],
    followers: &BTreeMap<i32, FollowerProgress>,
    now_ms: i64,
    lag_max_ms: i64,
) -> Vec<i32> {
    isr.iter()
        .copied()
        .filter(|r| *r != leader_id)
        .filter(|r| match followers.get(r) {
            Some(f) => !f.is_caught_up(leader_leo, now_ms, lag_max_ms),
            // Not tracked: not a replica of ours any more, keep it for the
            // controller to judge.
            None => false,
        })
        .collect()
}

/// Whether a follower outside the ISR may join it: it reached the high
/// watermark and holds everything since the start of the leader's current
/// epoch, so it has every record this leader may have acknowledged
/// (Kafka's `isFollowerInSync` and KIP-101). For a
/// [`Durability::Synced`] topic it must hold them on disk: an ISR member
/// may be elected after every node lost power, so it joins only once its
/// durable end reached the high watermark.
pub fn may_join_isr(
    follower: &FollowerProgress,
    high_watermark: i64,
    leader_epoch_start: i64,
    durability: Durability,
) -> bool {
    let end = follower.counted_end(durability);
    end >= high_watermark && end >= leader_epoch_start
}

/// Result of checking an acks=all produce waiting for `required_offset`
/// (one past its last record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcksAll {
    /// Not replicated enough yet: keep waiting.
    Pending,
    /// Every ISR member has it and the ISR satisfies `min.insync.replicas`.
    Done,
    /// Replicated to the whole ISR, but the ISR shrank below
    /// `min.insync.replicas` (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    DoneBelowMinIsr,
}

/// Kafka's `checkEnoughReplicasReachOffset`.
pub fn acks_all_status(
    high_watermark: i64,
    required_offset: i64,
    maximal_isr_size: usize,
    min_isr: usize,
) -> AcksAll {
    if high_watermark < required_offset {
        AcksAll::Pending
    } else if maximal_isr_size >= min_isr {
        AcksAll::Done
    } else {
        AcksAll::DoneBelowMinIsr
    }
}

/// The leader's answer to a follower fetch carrying `last_fetched_epoch`:
/// `Some((epoch, end_offset))` when the follower's log diverged and it must
/// truncate. `leader_end_for_epoch` is the leader's
/// `end_offset_for_epoch(last_fetched_epoch)`; `leader_log_start` is used when
/// the leader knows no such epoch.
pub fn diverging_epoch(
    fetch_offset: i64,
    last_fetched_epoch: i32,
    leader_end_for_epoch: Option<(i32, i64)>,
    leader_log_start: i64,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    match leader_end_for_epoch {
        Some((epoch, end)) if epoch < last_fetched_epoch || end < fetch_offset => {
            Some((epoch, end))
        }
        Some(_) => None,
        None => Some((-1, leader_log_start)),
    }
}

/// Where a follower truncates to on a diverging epoch from its leader
/// (Kafka's `getOffsetTruncationState`): `follower_end_for_epoch` is its own
/// `end_offset_for_epoch(diverging.epoch)`. Never based on the high
/// watermark (KIP-101, KIP-279).
pub fn truncation_offset(
    diverging: (i32, i64),
    follower_end_for_epoch: Option<(i32, i64)>,
    follower_leo: i64,
) -> i64 {
    let (leader_epoch, leader_end) = diverging;
    if leader_epoch < 0 {
        return leader_end.min(follower_leo);
    }
    match follower_end_for_epoch {
        // The follower knows that epoch: keep what both logs share.
        Some((epoch, end)) if epoch == leader_epoch => end.min(leader_end).min(follower_leo),
        // It does not: cut back to the end of its own largest earlier epoch;
        // the next fetch compares again from there.
        Some((_, end)) => end.min(follower_leo),
        None => leader_end.min(follower_leo),
    }
}

#[cfg(test)]
#[path = "rules_test.rs"]
mod tests;
