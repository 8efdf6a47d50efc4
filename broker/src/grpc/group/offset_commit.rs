//! `GroupService.OffsetCommit`.

use strom_proto::StromError;
use strom_proto::v1::{OffsetCommitRequest, OffsetCommitResponse};

use super::convert::commit_from_pb;
use crate::group::Coordinator;

/// Commits, answering once the ISR has the commit.
pub(super) async fn offset_commit(
    c: &Coordinator,
    req: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, StromError> {
    c.commit_offsets(commit_from_pb(req)).await?;
    Ok(OffsetCommitResponse {})
}
