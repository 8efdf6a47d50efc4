//! Heartbeat: a classic member's session, and REBALANCE_IN_PROGRESS when
//! the group's state machine has something new for it.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use strom_group::ClassicHeartbeatResponse;

use super::Broker;
use super::group_util::coordinator;
use crate::errors::{REBALANCE_IN_PROGRESS, kafka_code};

/// Answers one Heartbeat request.
pub async fn answer(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    let c = match coordinator(broker) {
        Ok(c) => c,
        Err(e) => return HeartbeatResponse::default().with_error_code(kafka_code(e.code)),
    };
    let r = c
        .classic_heartbeat(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
        .await;
    let code = match r {
        Ok(ClassicHeartbeatResponse::Ok) => 0,
        Ok(ClassicHeartbeatResponse::RebalanceInProgress) => REBALANCE_IN_PROGRESS,
        Err(e) => kafka_code(e.code),
    };
    HeartbeatResponse::default().with_error_code(code)
}
