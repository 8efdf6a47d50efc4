//! The partition assignors, as pure functions from the members'
//! subscriptions (and, for the sticky ones, the previous assignment) to a
//! target assignment.
//!
//! * [`range`]: per topic, partitions in order over the subscribed members
//!   sorted by id; the first `partitions % members` take one extra.
//! * [`roundrobin`]: all subscribed partitions, sorted by topic name and
//!   index, dealt over the sorted members (skipping a member not
//!   subscribed to the partition's topic).
//! * [`sticky`]: balanced (partition counts differ by at most one where
//!   subscriptions allow), keeping as much of the previous assignment as
//!   possible. `cooperative-sticky` computes the same target; it differs
//!   only in how members reach it (see `reconcile`).
//!
//! Members are sorted by member id; Strom's member ids start with the
//! client id (`<client.id>-<uuid>`, as Kafka's do), so members sort by
//! client id first.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::records::Assignment;
use crate::topics::Topics;

mod range;
mod roundrobin;
mod sticky;

pub use range::range;
pub use roundrobin::roundrobin;
pub use sticky::sticky;

/// `partition.assignment.strategy` values Strom implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Assignor {
    /// `range` (Kafka's `RangeAssignor`).
    Range,
    /// `roundrobin` (`RoundRobinAssignor`).
    RoundRobin,
    /// `sticky` (`StickyAssignor`).
    Sticky,
    /// `cooperative-sticky` (`CooperativeStickyAssignor`).
    CooperativeSticky,
}

/// Kafka's default `partition.assignment.strategy`.
pub const DEFAULT_ASSIGNORS: &[Assignor] = &[Assignor::Range, Assignor::CooperativeSticky];

impl Assignor {
    /// All assignors.
    pub const ALL: [Assignor; 4] = [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::Sticky,
        Assignor::CooperativeSticky,
    ];

    /// The short name (`range`, `roundrobin`, `sticky`, `cooperative-sticky`).
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Kafka's class name for the assignor.
    pub fn class_name(self) -> &'static str {
        match self {
            Assignor::Range => "org.apache.kafka.clients.consumer.RangeAssignor",
            Assignor::RoundRobin => "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            Assignor::Sticky => "org.apache.kafka.clients.consumer.StickyAssignor",
            Assignor::CooperativeSticky => {
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
            }
        }
    }

    /// Parses a short name or a Kafka class name.
    pub fn from_name(s: &str) -> Option<Assignor> {
        let s = s.trim();
        Assignor::ALL
            .into_iter()
            .find(|a| a.name() == s || a.class_name() == s)
    }

    /// Whether members give up every partition before a new assignment
    /// (Kafka's eager protocol): all but `cooperative-sticky`.
    pub fn is_eager(self) -> bool {
        !matches!(self, Assignor::CooperativeSticky)
    }

    /// Computes the target assignment for `members`.
    pub fn assign(
        self,
        members: &BTreeMap<String, MemberSpec>,
        topics: &Topics,
    ) -> BTreeMap<String, Assignment> {
        let mut out = match self {
            Assignor::Range => range(members, topics),
            Assignor::RoundRobin => roundrobin(members, topics),
            Assignor::Sticky | Assignor::CooperativeSticky => sticky(members, topics),
        };
        for id in members.keys() {
            out.entry(id.clone()).or_default();
        }
        out.retain(|_, a| {
            a.retain(|_, p| !p.is_empty());
            true
        });
        out
    }
}

/// What an assignor knows of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// Ids of the (existing) topics the member subscribes to.
    pub subscribed: BTreeSet<Uuid>,
    /// The member's previous target assignment (used by the sticky ones).
    pub previous: Assignment,
}

/// The subscribed topics of all members, sorted by topic name.
fn subscribed_topics<'a>(
    members: &BTreeMap<String, MemberSpec>,
    topics: &'a Topics,
) -> Vec<&'a crate::topics::TopicInfo> {
    let ids: BTreeSet<Uuid> = members
        .values()
        .flat_map(|m| m.subscribed.iter().copied())
        .collect();
    topics.iter().filter(|t| ids.contains(&t.id)).collect()
}

#[cfg(test)]
#[path = "assignor_test.rs"]
mod tests;
