//! The hook through which a component learns that this broker became
//! leader or follower of a partition, or stopped hosting it: the group and
//! transaction coordinators load their state when they lead a partition of
//! their internal topic and unload it when they do not (Kafka's
//! `onElection` / `onResignation`).

use uuid::Uuid;

/// A partition's new role on this broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipRole {
    /// This broker leads the partition at the change's epoch.
    Leader,
    /// This broker follows `leader` (-1: no leader yet).
    Follower {
        /// The leader's broker id.
        leader: i32,
    },
    /// The replica is no longer hosted here (topic deleted, replica moved).
    Removed,
}

/// A role change, reported after it took effect: a leader is ready to
/// append when its listeners hear of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadershipChange {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch of the new role (-1 for [`LeadershipRole::Removed`]).
    pub leader_epoch: i32,
    /// The new role.
    pub role: LeadershipRole,
}

/// Learns of role changes. Called on the replica manager's task for each
/// change in turn: keep it short (hand longer work, such as loading a
/// coordinator's state from the log, to a task of your own).
pub trait LeadershipListener: Send + Sync + std::fmt::Debug {
    /// `change` took effect.
    fn on_change(&self, change: &LeadershipChange);
}
