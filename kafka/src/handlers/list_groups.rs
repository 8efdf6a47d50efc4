//! ListGroups: the groups this broker coordinates (the coordinator's
//! `list_groups`, as gRPC's), with the classic state names, filtered by
//! state (v4+) and type (v5+: every Strom group is a `consumer` group).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::Broker;
use super::group_util::{classic_state, coordinator};
use crate::errors::kafka_code;

/// The group type of every Strom group (KIP-848's `consumer`).
const GROUP_TYPE: &str = "consumer";

/// Answers one ListGroups request.
pub async fn answer(broker: &Broker, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return ListGroupsResponse::default().with_error_code(kafka_code(e.code)),
    };
    let type_ok = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE));
    let groups = c
        .list_groups()
        .await
        .into_iter()
        .filter(|_| type_ok)
        .filter(|g| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(classic_state(g.state)))
        })
        .map(|g| {
            let mut out = ListedGroup::default()
                .with_group_id(GroupId(super::text(g.group_id)))
                .with_protocol_type(super::text(g.protocol_type));
            if version >= 4 {
                out = out.with_group_state(super::text(classic_state(g.state)));
            }
            if version >= 5 {
                out = out.with_group_type(super::text(GROUP_TYPE));
            }
            out
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
