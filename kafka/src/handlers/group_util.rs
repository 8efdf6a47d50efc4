//! What the group handlers share: the coordinator or
//! COORDINATOR_NOT_AVAILABLE, assignments by topic name, classic state
//! names.

use strom_broker::group::Coordinator;
use strom_group::{Assignment, GroupState, Topics};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::Broker;

/// The broker's group coordinator.
pub(crate) fn coordinator(broker: &Broker) -> Result<&Coordinator, StromError> {
    broker.groups.as_ref().ok_or_else(|| {
        StromError::new(
            ErrorCode::CoordinatorNotAvailable,
            "this broker runs no group coordinator".to_owned(),
        )
    })
}

/// `assignment` by topic name (topics deleted meanwhile are left out).
pub(crate) fn by_name(assignment: &Assignment, topics: &Topics) -> Vec<(String, Vec<i32>)> {
    assignment
        .iter()
        .filter_map(|(id, ps)| {
            topics
                .by_id(id)
                .map(|t| (t.name.clone(), ps.iter().copied().collect()))
        })
        .collect()
}

/// The classic protocol's name of a group state (what Kafka's tools show
/// for a classic group): Assigning reads as PreparingRebalance,
/// Reconciling as CompletingRebalance.
pub(crate) fn classic_state(state: GroupState) -> &'static str {
    match state {
        GroupState::Empty => "Empty",
        GroupState::Assigning => "PreparingRebalance",
        GroupState::Reconciling => "CompletingRebalance",
        GroupState::Stable => "Stable",
    }
}

/// A member id for a new member: `<client.id>-<uuid>`, as Kafka's.
pub(crate) fn new_member_id(client_id: &str) -> String {
    if client_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }
}
