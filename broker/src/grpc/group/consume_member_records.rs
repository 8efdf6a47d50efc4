//! `GroupService.ConsumeMemberRecords`: the I/O is in
//! [`crate::group::member_read`]; a request another broker forwarded
//! carries [`FORWARDED`] and is not forwarded again.

use strom_proto::StromError;
use strom_proto::v1::{ConsumeMemberRecordsRequest, ConsumeMemberRecordsResponse};

use crate::group::Coordinator;
use crate::group::peers::FORWARDED;

pub(super) async fn consume_member_records(
    c: &Coordinator,
    req: tonic::Request<ConsumeMemberRecordsRequest>,
) -> Result<ConsumeMemberRecordsResponse, StromError> {
    let forwarded = req.metadata().contains_key(FORWARDED);
    crate::group::member_read::consume_member_records(c, req.into_inner(), forwarded).await
}
