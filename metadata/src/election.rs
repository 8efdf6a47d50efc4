//! Leader election: the rule every decision uses, the partition-change
//! builder, and the `ElectLeaders` request.
//!
//! The rule: the preferred replica (first in the replica list) when it is
//! alive and in the ISR; otherwise the first alive ISR member in replica
//! order; otherwise the first alive eligible leader replica (KIP-966: out of
//! the ISR, but holding every record below the high watermark), which then
//! becomes the ISR; a replica outside both only when unclean election is
//! allowed, and the ISR then becomes just that replica. Alive means
//! registered, unfenced and not in controlled shutdown.

use uuid::Uuid;

use crate::error::{MetadataError, err};
use crate::image::{ClusterImage, NO_LEADER, PartitionState, TopicImage, effective_min_isr};
use crate::pb;
use crate::pb::metadata_record::Record;
use crate::records::record;

/// Which election an `ElectLeaders` request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// Move leadership to the preferred replica when it is alive and in the ISR.
    Preferred,
    /// Elect a leader for leaderless partitions, outside the ISR if needed.
    Unclean,
}

/// The outcome of an election for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Why no leader was elected, if so.
    pub error: Option<MetadataError>,
    /// The leader after the election (the current one when nothing changed,
    /// -1 when none).
    pub leader: i32,
}

/// Where [`choose_leader`] found the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderSource {
    /// An ISR member.
    Isr,
    /// An eligible leader replica: the ISR becomes `[leader]`, and the ISR
    /// members it replaces become eligible (they hold everything too).
    Elr,
    /// Neither (unclean election): the ISR becomes `[leader]`, records may be lost.
    Unclean,
}

/// A leader chosen by [`choose_leader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderChoice {
    /// The new leader.
    pub leader: i32,
    /// Where it was found.
    pub source: LeaderSource,
}

/// Applies the election rule to a partition whose ISR is `isr` and eligible
/// leader replicas `elr`: the first alive ISR member in replica order (that
/// is the preferred replica when it qualifies); else the first alive ELR
/// member; else, if `allow_unclean`, the first alive replica.
pub fn choose_leader(
    replicas: &[i32],
    isr: &[i32],
    elr: &[i32],
    alive: impl Fn(i32) -> bool,
    allow_unclean: bool,
) -> Option<LeaderChoice> {
    let first =
        |among: &dyn Fn(i32) -> bool| replicas.iter().copied().find(|r| among(*r) && alive(*r));
    if let Some(leader) = first(&|r| isr.contains(&r)) {
        return Some(LeaderChoice {
            leader,
            source: LeaderSource::Isr,
        });
    }
    if let Some(leader) = first(&|r| elr.contains(&r)) {
        return Some(LeaderChoice {
            leader,
            source: LeaderSource::Elr,
        });
    }
    if allow_unclean && let Some(leader) = first(&|_| true) {
        return Some(LeaderChoice {
            leader,
            source: LeaderSource::Unclean,
        });
    }
    None
}

/// The eligible leader replicas after a partition's ISR goes from `cur_isr`
/// to `new_isr` (KIP-966). While the new ISR has `min_isr` members the high
/// watermark may advance past any replica outside it, so none is eligible.
/// Below that the high watermark is frozen: every replica that was eligible
/// or in the ISR, and is not in the new one, holds every record below it.
/// In replica order.
pub fn next_elr(
    replicas: &[i32],
    cur_isr: &[i32],
    cur_elr: &[i32],
    new_isr: &[i32],
    min_isr: usize,
) -> Vec<i32> {
    if new_isr.len() >= min_isr {
        return Vec::new();
    }
    replicas
        .iter()
        .copied()
        .filter(|r| !new_isr.contains(r) && (cur_isr.contains(r) || cur_elr.contains(r)))
        .collect()
}

/// Which brokers count as alive for a decision: those the image says are
/// alive, minus one being fenced or plus one being unfenced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness<'a> {
    pub(crate) image: &'a ClusterImage,
    pub(crate) dead: Option<i32>,
    pub(crate) alive: Option<i32>,
}

impl<'a> Liveness<'a> {
    pub(crate) fn of(image: &'a ClusterImage) -> Self {
        Liveness {
            image,
            dead: None,
            alive: None,
        }
    }

    pub(crate) fn is_alive(&self, b: i32) -> bool {
        if self.dead == Some(b) {
            return false;
        }
        self.alive == Some(b) || self.image.is_alive(b)
    }
}

/// Target ISR, leader and eligible leader replicas of a partition; turned
/// into a minimal `PartitionChangeRecord` by [`change_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) isr: Vec<i32>,
    pub(crate) leader: i32,
    pub(crate) elr: Vec<i32>,
}

impl Target {
    /// `cur` with ISR `isr` and leader `leader`, the ELR following by
    /// [`next_elr`].
    pub(crate) fn new(cur: &PartitionState, isr: Vec<i32>, leader: i32, min_isr: usize) -> Self {
        let elr = next_elr(&cur.replicas, &cur.isr, &cur.elr, &isr, min_isr);
        Target { isr, leader, elr }
    }

    /// `cur` with only the leader moving to `leader` (an ISR member): ISR
    /// and ELR stay.
    pub(crate) fn leader_only(cur: &PartitionState, leader: i32) -> Self {
        Target {
            isr: cur.isr.clone(),
            leader,
            elr: cur.elr.clone(),
        }
    }
}

/// Keeps the current leader when it is alive and in `isr`; otherwise elects
/// by the rule (unclean only if `allow_unclean`). Returns the new ISR,
/// leader and eligible leader replicas; `min_isr` is the partition's
/// effective `min.insync.replicas`.
pub(crate) fn reelect(
    cur: &PartitionState,
    isr: Vec<i32>,
    live: &Liveness<'_>,
    allow_unclean: bool,
    min_isr: usize,
) -> Target {
    if cur.leader != NO_LEADER && live.is_alive(cur.leader) && isr.contains(&cur.leader) {
        return Target::new(cur, isr, cur.leader, min_isr);
    }
    match choose_leader(
        &cur.replicas,
        &isr,
        &cur.elr,
        |b| live.is_alive(b),
        allow_unclean,
    ) {
        Some(LeaderChoice {
            leader,
            source: LeaderSource::Isr,
        }) => Target::new(cur, isr, leader, min_isr),
        Some(LeaderChoice {
            leader,
            source: LeaderSource::Elr,
        }) => {
            // The ISR members it replaces hold everything too: they stay
            // eligible beside the rest of the ELR.
            let mut was = cur.isr.clone();
            was.extend(isr.iter().filter(|r| !cur.isr.contains(r)));
            let elr = next_elr(&cur.replicas, &was, &cur.elr, &[leader], min_isr);
            Target {
                isr: vec![leader],
                leader,
                elr,
            }
        }
        Some(LeaderChoice {
            leader,
            source: LeaderSource::Unclean,
        }) => Target {
            isr: vec![leader],
            leader,
            // The new leader's log is the truth now: nobody else is known
            // to hold what it holds.
            elr: Vec::new(),
        },
        None => Target::new(cur, isr, NO_LEADER, min_isr),
    }
}

/// A `PartitionChangeRecord` moving `cur` to `target`, carrying only what
/// changes; `None` when nothing does.
pub(crate) fn change_record(
    topic_id: Uuid,
    partition: i32,
    cur: &PartitionState,
    target: &Target,
) -> Option<pb::MetadataRecord> {
    let leader = (target.leader != cur.leader).then_some(target.leader);
    let isr = (target.isr != cur.isr).then(|| pb::ReplicaList::of(target.isr.clone()));
    let elr = (target.elr != cur.elr).then(|| pb::ReplicaList::of(target.elr.clone()));
    if leader.is_none() && isr.is_none() && elr.is_none() {
        return None;
    }
    Some(record(Record::PartitionChange(pb::PartitionChangeRecord {
        topic_id: topic_id.as_bytes().to_vec(),
        partition,
        expected_partition_epoch: cur.partition_epoch,
        leader,
        isr,
        replicas: None,
        elr,
        adding_replicas: None,
        removing_replicas: None,
    })))
}

/// Decides an `ElectLeaders` request. `partitions` `None` means every
/// partition; results then list only the partitions where a leader was
/// elected or the election failed for a reason other than
/// `ELECTION_NOT_NEEDED` (as Kafka). With explicit partitions every one gets
/// a result, unknown ones `UNKNOWN_TOPIC_OR_PARTITION`.
///
/// * Preferred: `ELECTION_NOT_NEEDED` when the preferred replica leads;
///   `PREFERRED_LEADER_NOT_AVAILABLE` when it is not alive or not in the ISR;
///   else the preferred replica becomes leader.
/// * Unclean: `ELECTION_NOT_NEEDED` when the partition has a leader;
///   otherwise the rule with unclean allowed (an alive ISR or eligible
///   replica still wins), `ELIGIBLE_LEADERS_NOT_AVAILABLE` when no replica
///   is alive.
///
/// `default_min_isr` is `min.insync.replicas` for topics without the config.
pub fn elect_leaders(
    image: &ClusterImage,
    kind: ElectionKind,
    partitions: Option<&[(String, i32)]>,
    default_min_isr: usize,
) -> (Vec<pb::MetadataRecord>, Vec<ElectionResult>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let live = Liveness::of(image);
    let mut one = |topic: &TopicImage, p: i32, state: &PartitionState, all: bool| {
        let outcome = elect_one(topic, p, state, kind, &live, default_min_isr);
        let (error, leader) = match outcome {
            Ok(target) => {
                let leader = target.leader;
                records.extend(change_record(topic.id, p, state, &target));
                (None, leader)
            }
            Err(e) => (Some(e), state.leader),
        };
        let not_needed = error
            .as_ref()
            .is_some_and(|e| e.code == crate::ErrorKind::ElectionNotNeeded);
        (!(all && not_needed)).then(|| ElectionResult {
            topic: topic.name.clone(),
            partition: p,
            error,
            leader,
        })
    };
    match partitions {
        None => {
            for (topic, p, state) in image.all_partitions() {
                results.extend(one(topic, p, state, true));
            }
        }
        Some(list) => {
            for (name, p) in list {
                match image
                    .topic_by_name(name)
                    .and_then(|t| Some((t, t.partition(*p)?)))
                {
                    Some((topic, state)) => results.extend(one(topic, *p, state, false)),
                    None => results.push(ElectionResult {
                        topic: name.clone(),
                        partition: *p,
                        error: Some(err!(
                            UnknownTopicOrPartition,
                            "partition {name}-{p} does not exist"
                        )),
                        leader: NO_LEADER,
                    }),
                }
            }
        }
    }
    (records, results)
}

fn elect_one(
    topic: &TopicImage,
    p: i32,
    state: &PartitionState,
    kind: ElectionKind,
    live: &Liveness<'_>,
    default_min_isr: usize,
) -> Result<Target, MetadataError> {
    let name = &topic.name;
    match kind {
        ElectionKind::Preferred => {
            let preferred = state.preferred_leader();
            if state.leader == preferred {
                return Err(err!(
                    ElectionNotNeeded,
                    "preferred replica {preferred} already leads {name}-{p}"
                ));
            }
            if !live.is_alive(preferred) || !state.isr.contains(&preferred) {
                return Err(err!(
                    PreferredLeaderNotAvailable,
                    "preferred replica {preferred} of {name}-{p} is not alive or not in the isr"
                ));
            }
            Ok(Target::leader_only(state, preferred))
        }
        ElectionKind::Unclean => {
            if state.leader != NO_LEADER && live.is_alive(state.leader) {
                return Err(err!(
                    ElectionNotNeeded,
                    "{name}-{p} already has leader {}",
                    state.leader
                ));
            }
            let min_isr = effective_min_isr(topic, state, default_min_isr);
            let target = reelect(state, state.isr.clone(), live, true, min_isr);
            if target.leader == NO_LEADER {
                return Err(err!(
                    EligibleLeadersNotAvailable,
                    "no replica of {name}-{p} is alive"
                ));
            }
            Ok(target)
        }
    }
}

#[cfg(test)]
#[path = "election_test.rs"]
mod tests;
