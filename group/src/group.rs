//! A consumer group's state as replayed from the offsets topic: the group
//! epoch, the target assignment and each member's metadata and current
//! assignment. [`ConsumerGroup::apply`] is the only way it changes.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::assignor::Assignor;
use crate::records::{
    Assignment, CurrentAssignment, MemberMetadata, MemberState, Record, RecordKey, RecordValue,
};
use crate::topics::Topics;

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    /// Subscription and client details.
    pub metadata: MemberMetadata,
    /// Epoch, reconciliation state and owned partitions.
    pub current: CurrentAssignment,
}

impl Member {
    /// Whether the member left with epoch -2 (a static member that will
    /// come back) and still holds its assignment for its successor.
    pub fn is_static_left(&self) -> bool {
        self.current.member_epoch == crate::LEAVE_GROUP_STATIC_MEMBER_EPOCH
    }

    /// The partitions the member holds: assigned or pending revocation.
    pub fn held(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        iter_assignment(&self.current.assigned)
            .chain(iter_assignment(&self.current.pending_revocation))
    }
}

/// The `(topic, partition)` pairs of an assignment.
pub fn iter_assignment(a: &Assignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
}

/// The state of a consumer group (KIP-848's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// No members (committed offsets may remain).
    Empty,
    /// Membership changed; the target assignment is not computed yet.
    Assigning,
    /// Members are moving to the target assignment.
    Reconciling,
    /// Every member runs the target assignment.
    Stable,
}

impl GroupState {
    /// Kafka's display name.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::Stable => "Stable",
        }
    }
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroup {
    /// Group epoch: bumped on every membership, subscription or subscribed
    /// topic metadata change.
    pub epoch: i32,
    /// Hash of the subscribed topics' metadata at the last bump.
    pub metadata_hash: i64,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// Target assignment per member.
    pub target: BTreeMap<String, Assignment>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
}

impl ConsumerGroup {
    /// The group's state.
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.epoch > self.assignment_epoch {
            GroupState::Assigning
        } else if self.members.values().all(|m| {
            m.is_static_left()
                || (m.current.member_epoch == self.assignment_epoch
                    && m.current.state == Some(MemberState::Stable))
        }) {
            GroupState::Stable
        } else {
            GroupState::Reconciling
        }
    }

    /// The member whose `group.instance.id` is `instance_id`.
    pub fn static_member(&self, instance_id: &str) -> Option<(&String, &Member)> {
        self.members
            .iter()
            .find(|(_, m)| m.metadata.instance_id.as_deref() == Some(instance_id))
    }

    /// The assignor the group uses: among the assignors every member
    /// supports, each member votes for the first of its list; the most
    /// votes win, ties go to the earlier one in the list of the member with
    /// the smallest id. `None` if the members have none in common (or an
    /// unknown one only).
    pub fn chosen_assignor(&self) -> Option<Assignor> {
        choose_assignor(
            self.members
                .values()
                .map(|m| m.metadata.assignors.as_slice()),
        )
    }

    /// The topic ids `member` subscribes to that exist in `topics`.
    pub fn subscribed_ids(metadata: &MemberMetadata, topics: &Topics) -> BTreeSet<Uuid> {
        let regex = metadata
            .subscribed_topic_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
        topics
            .iter()
            .filter(|t| {
                metadata.subscribed_topic_names.contains(&t.name)
                    || (!t.name.starts_with("__")
                        && regex.as_ref().is_some_and(|r| r.is_match(&t.name)))
            })
            .map(|t| t.id)
            .collect()
    }

    /// A hash of the metadata of every topic some member subscribes to
    /// (name, id, partition count): when it changes, the group rebalances.
    pub fn subscribed_metadata_hash(&self, topics: &Topics) -> i64 {
        let ids: BTreeSet<Uuid> = self
            .members
            .values()
            .flat_map(|m| Self::subscribed_ids(&m.metadata, topics))
            .collect();
        // FNV-1a, 64 bits: stable across processes and versions.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for t in topics.iter().filter(|t| ids.contains(&t.id)) {
            eat(t.name.as_bytes());
            eat(&[0]);
            eat(t.id.as_bytes());
            eat(&t.partitions.to_be_bytes());
        }
        h as i64
    }

    /// Applies one record of this group. Returns `false` when the record
    /// deletes the group itself (a `GroupMetadata` tombstone).
    pub fn apply(&mut self, record: &Record) -> bool {
        match (&record.key, &record.value) {
            (
                RecordKey::GroupMetadata { .. },
                Some(RecordValue::GroupMetadata {
                    epoch,
                    metadata_hash,
                }),
            ) => {
                self.epoch = *epoch;
                self.metadata_hash = *metadata_hash;
            }
            (RecordKey::GroupMetadata { .. }, None) => return false,
            (RecordKey::MemberMetadata { member, .. }, Some(RecordValue::MemberMetadata(m))) => {
                self.members.entry(member.clone()).or_default().metadata = m.clone();
            }
            (RecordKey::MemberMetadata { member, .. }, None) => {
                self.members.remove(member);
            }
            (
                RecordKey::TargetAssignmentMetadata { .. },
                Some(RecordValue::TargetAssignmentMetadata { assignment_epoch }),
            ) => self.assignment_epoch = *assignment_epoch,
            (RecordKey::TargetAssignmentMetadata { .. }, None) => self.assignment_epoch = 0,
            (
                RecordKey::TargetAssignmentMember { member, .. },
                Some(RecordValue::TargetAssignmentMember(a)),
            ) => {
                self.target.insert(member.clone(), a.clone());
            }
            (RecordKey::TargetAssignmentMember { member, .. }, None) => {
                self.target.remove(member);
            }
            (
                RecordKey::CurrentAssignment { member, .. },
                Some(RecordValue::CurrentAssignment(c)),
            ) => {
                if let Some(m) = self.members.get_mut(member) {
                    m.current = c.clone();
                }
            }
            (RecordKey::CurrentAssignment { member, .. }, None) => {
                if let Some(m) = self.members.get_mut(member) {
                    m.current = CurrentAssignment::default();
                }
            }
            // Offsets and mismatched key/value pairs are not group state
            // (decode never pairs a key with another key's value).
            _ => {}
        }
        true
    }
}

/// See [`ConsumerGroup::chosen_assignor`].
pub fn choose_assignor<'a>(lists: impl Iterator<Item = &'a [String]>) -> Option<Assignor> {
    let parsed: Vec<Vec<Assignor>> = lists
        .map(|l| l.iter().filter_map(|n| Assignor::from_name(n)).collect())
        .collect();
    let first = parsed.first()?;
    let common: Vec<Assignor> = first
        .iter()
        .copied()
        .filter(|a| parsed.iter().all(|l| l.contains(a)))
        .collect();
    let mut votes: BTreeMap<Assignor, usize> = BTreeMap::new();
    for l in &parsed {
        if let Some(a) = l.iter().find(|a| common.contains(a)) {
            *votes.entry(*a).or_default() += 1;
        }
    }
    let best = votes.values().copied().max()?;
    common.into_iter().find(|a| votes.get(a) == Some(&best))
}
