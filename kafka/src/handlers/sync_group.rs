//! SyncGroup: a classic member's assignment, from the group's state
//! machine. Assignments a client sends are ignored: the coordinator
//! assigns (see `join_group`).

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use strom_proto::StromError;

use super::Broker;
use super::group_util::{by_name, coordinator};
use crate::consumer_protocol::encode_assignment;
use crate::errors::kafka_code;

/// Answers one SyncGroup request.
pub async fn answer(broker: &Broker, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    match sync(broker, &req).await {
        Ok((protocol_name, assignment)) => {
            let out = SyncGroupResponse::default().with_assignment(assignment);
            if version >= 5 {
                out.with_protocol_type(Some(super::text(strom_group::CONSUMER_PROTOCOL_TYPE)))
                    .with_protocol_name(Some(super::text(protocol_name)))
            } else {
                out
            }
        }
        Err(e) => SyncGroupResponse::default().with_error_code(kafka_code(e.code)),
    }
}

async fn sync(
    broker: &Broker,
    req: &SyncGroupRequest,
) -> Result<(String, bytes::Bytes), StromError> {
    let c = coordinator(broker)?;
    let r = c
        .classic_sync(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id,
            (req.protocol_type.as_deref(), req.protocol_name.as_deref()),
        )
        .await?;
    let assignment = encode_assignment(&by_name(&r.assignment, &c.topics_view()));
    Ok((r.protocol_name, assignment))
}
