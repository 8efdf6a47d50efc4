//! `GroupService.ConsumerGroupHeartbeat`.

use strom_proto::StromError;
use strom_proto::v1::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::convert::{assignment_to_pb, heartbeat_from_pb};
use crate::group::Coordinator;

/// Converts, runs the heartbeat through the group's shard, converts back.
/// A joining member without an id gets `<client.id>-<uuid>`, as in Kafka.
pub(super) async fn heartbeat(
    c: &Coordinator,
    req: ConsumerGroupHeartbeatRequest,
    client_host: String,
) -> Result<ConsumerGroupHeartbeatResponse, StromError> {
    let topics = c.topics_view();
    let new_member_id = if req.client_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        format!("{}-{}", req.client_id, uuid::Uuid::new_v4())
    };
    let req = heartbeat_from_pb(req, client_host, new_member_id, &topics);
    let resp = c.heartbeat(req).await?;
    Ok(ConsumerGroupHeartbeatResponse {
        member_id: resp.member_id,
        member_epoch: resp.member_epoch,
        heartbeat_interval_ms: resp.heartbeat_interval_ms,
        assignment: assignment_to_pb(&resp.assignment, &c.topics_view()),
    })
}
