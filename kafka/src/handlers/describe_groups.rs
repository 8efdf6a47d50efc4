//! DescribeGroups: the coordinator's `describe_group` (as gRPC's) in the
//! classic shape: state names of the classic protocol, the assignor as the
//! protocol, each member's subscription and current assignment encoded as
//! the consumer protocol's messages. An unknown group is described as
//! `Dead` without an error, as Kafka answers before v6.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use strom_proto::v1::ErrorCode;

use super::Broker;
use super::group_util::{by_name, classic_state, coordinator};
use crate::consumer_protocol::{encode_assignment, encode_subscription};
use crate::errors::kafka_code;

/// Answers one DescribeGroups request.
pub async fn answer(
    broker: &Broker,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for id in req.groups {
        groups.push(describe(broker, id, version).await);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

async fn describe(broker: &Broker, id: GroupId, version: i16) -> DescribedGroup {
    let out = DescribedGroup::default().with_group_id(id.clone());
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return out.with_error_code(kafka_code(e.code)),
    };
    let d = match c.describe_group(id.0.as_str()).await {
        Ok(d) => d,
        Err(e) if e.code == ErrorCode::GroupIdNotFound => {
            return out.with_group_state(super::text("Dead"));
        }
        Err(e) => return out.with_error_code(kafka_code(e.code)),
    };
    let topics = c.topics_view();
    let members = d
        .members
        .iter()
        .map(|m| {
            let owned = by_name(&m.current.assigned, &topics);
            let out = DescribedGroupMember::default()
                .with_member_id(super::text(m.member_id.clone()))
                .with_client_id(super::text(m.metadata.client_id.clone()))
                .with_client_host(super::text(m.metadata.client_host.clone()))
                .with_member_metadata(encode_subscription(
                    &m.metadata.subscribed_topic_names,
                    &owned,
                ))
                .with_member_assignment(encode_assignment(&owned));
            if version >= 4 {
                out.with_group_instance_id(m.metadata.instance_id.clone().map(super::text))
            } else {
                out
            }
        })
        .collect();
    out.with_group_state(super::text(classic_state(d.state)))
        .with_protocol_type(super::text(d.protocol_type))
        .with_protocol_data(super::text(
            d.assignor.map(|a| a.name()).unwrap_or_default(),
        ))
        .with_members(members)
}
