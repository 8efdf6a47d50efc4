//! `GroupService.ConsumerGroupAssignmentStream`: the coordinator's pushes
//! to one member ([`crate::group::push`]) as a server stream.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use strom_proto::StromError;
use strom_proto::v1::{
    ConsumerGroupAssignmentEvent, ConsumerGroupAssignmentStreamRequest, ErrorCode,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::group::{Coordinator, Push};

/// The stream type of the RPC.
pub(super) type Events =
    Pin<Box<dyn Stream<Item = Result<ConsumerGroupAssignmentEvent, Status>> + Send + 'static>>;

/// Opens the member's channel and streams its events until the member is
/// removed (UNKNOWN_MEMBER_ID), the coordinator unloads the group
/// (NOT_COORDINATOR) or the server shuts down (`closing`: the stream just
/// ends).
pub(super) async fn assignment_stream(
    c: &Coordinator,
    req: ConsumerGroupAssignmentStreamRequest,
    closing: CancellationToken,
) -> Result<Events, StromError> {
    let rx = c.assignment_stream(&req.group_id, &req.member_id).await?;
    let (group, member) = (req.group_id, req.member_id);
    let events = futures::stream::unfold(Some(rx), move |rx| {
        let (group, member) = (group.clone(), member.clone());
        async move {
            let mut rx = rx?;
            let item = next_event(&mut rx, &group, &member).await;
            let more = item.is_ok();
            Some((item.map_err(Status::from), more.then_some(rx)))
        }
    })
    .take_until(closing.cancelled_owned());
    Ok(Box::pin(events))
}

/// The next event of the channel, or the error that ends the stream.
async fn next_event(
    rx: &mut watch::Receiver<Push>,
    group: &str,
    member: &str,
) -> Result<ConsumerGroupAssignmentEvent, StromError> {
    loop {
        let closed = rx.changed().await.is_err();
        let push = *rx.borrow_and_update();
        match push {
            Push::Heartbeat {
                group_epoch,
                assignment_epoch,
                member_epoch,
                ..
            } if !closed => {
                return Ok(ConsumerGroupAssignmentEvent {
                    group_epoch,
                    assignment_epoch,
                    member_epoch,
                });
            }
            Push::Removed => {
                return Err(StromError::new(
                    ErrorCode::UnknownMemberId,
                    format!("member {member:?} left group {group:?} or was removed"),
                ));
            }
            _ if closed || push == Push::Unloaded => {
                return Err(StromError::new(
                    ErrorCode::NotCoordinator,
                    format!("this broker no longer coordinates group {group:?}"),
                ));
            }
            _ => {}
        }
    }
}
