//! JoinGroup: a classic member's join or rejoin, as a heartbeat of the
//! group's state machine (`strom_group::shard::classic`). The coordinator
//! assigns; nobody is made leader, so every member sends an empty
//! SyncGroup and receives its assignment.

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use strom_group::{ClassicJoinRequest, ClassicJoinResponse};
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::Broker;
use super::group_util::{coordinator, new_member_id};
use crate::consumer_protocol::decode_subscription;
use crate::errors::{MEMBER_ID_REQUIRED, kafka_code};

/// Answers one JoinGroup request from `client_id`.
pub async fn answer(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
) -> JoinGroupResponse {
    let member_id = req.member_id.to_string();
    match join(broker, req, version, client_id).await {
        Ok(ClassicJoinResponse::MemberIdRequired { member_id }) => JoinGroupResponse::default()
            .with_error_code(MEMBER_ID_REQUIRED)
            .with_generation_id(-1)
            .with_member_id(super::text(member_id)),
        Ok(ClassicJoinResponse::Joined {
            member_id,
            generation,
            protocol_name,
        }) => {
            let out = JoinGroupResponse::default()
                .with_generation_id(generation)
                .with_protocol_name(Some(super::text(protocol_name)))
                .with_member_id(super::text(member_id));
            if version >= 7 {
                out.with_protocol_type(Some(super::text(strom_group::CONSUMER_PROTOCOL_TYPE)))
            } else {
                out
            }
        }
        Err(e) => JoinGroupResponse::default()
            .with_error_code(kafka_code(e.code))
            .with_generation_id(-1)
            .with_member_id(super::text(member_id)),
    }
}

async fn join(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
) -> Result<ClassicJoinResponse, StromError> {
    let c = coordinator(broker)?;
    // Consumers send the same subscription with every protocol; the first
    // one's is read.
    let subscription = match req.protocols.first() {
        Some(p) => decode_subscription(p.metadata.clone()).map_err(|e| {
            StromError::new(
                ErrorCode::InconsistentGroupProtocol,
                format!("protocol {:?} metadata: {e}", p.name.as_str()),
            )
        })?,
        None => {
            return Err(StromError::new(
                ErrorCode::InconsistentGroupProtocol,
                "no protocols".to_owned(),
            ));
        }
    };
    let rebalance_timeout_ms = if version >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    c.classic_join(ClassicJoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        new_member_id: new_member_id(client_id),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        require_known_member_id: version >= 4,
        protocol_type: req.protocol_type.to_string(),
        protocol_names: req.protocols.iter().map(|p| p.name.to_string()).collect(),
        topics: subscription.topics,
        owned: subscription.owned,
        rack_id: subscription.rack_id,
        client_id: client_id.to_owned(),
        client_host: String::new(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms,
    })
    .await
}
