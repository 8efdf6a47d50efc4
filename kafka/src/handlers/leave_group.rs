//! LeaveGroup: each member leaves through the group's state machine (a
//! leave heartbeat). v0-v2 name one member; v3+ a batch, each with its own
//! error (the top-level error is for the coordinator only).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use strom_group::ClassicLeave;

use super::Broker;
use super::group_util::coordinator;
use crate::errors::kafka_code;

/// Answers one LeaveGroup request.
pub async fn answer(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return LeaveGroupResponse::default().with_error_code(kafka_code(e.code)),
    };
    let group_id = req.group_id.0.as_str();
    if version < 3 {
        let r = c
            .classic_leave(
                group_id,
                ClassicLeave {
                    member_id: req.member_id.to_string(),
                    instance_id: None,
                },
            )
            .await;
        return LeaveGroupResponse::default()
            .with_error_code(r.err().map_or(0, |e| kafka_code(e.code)));
    }
    let mut members = Vec::with_capacity(req.members.len());
    for m in req.members {
        let r = c
            .classic_leave(
                group_id,
                ClassicLeave {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                },
            )
            .await;
        members.push(
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(r.err().map_or(0, |e| kafka_code(e.code))),
        );
    }
    LeaveGroupResponse::default().with_members(members)
}
