//! `GroupService.FindCoordinator`: a group's coordinator, or a
//! transactional id's (key type TRANSACTION).

use strom_proto::StromError;
use strom_proto::v1::{
    CoordinatorKeyType, ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse,
};

use crate::group::Coordinator;
use crate::txn::TxnCoordinatorRef;

/// Answers with the leader of the key's internal topic partition.
pub(super) fn find_coordinator(
    groups: &Coordinator,
    transactions: Option<&TxnCoordinatorRef>,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, StromError> {
    let key_type = CoordinatorKeyType::try_from(req.key_type).map_err(|_| {
        StromError::new(
            ErrorCode::InvalidRequest,
            format!("unknown coordinator key type {}", req.key_type),
        )
    })?;
    let (node_id, address, partition) = match key_type {
        CoordinatorKeyType::Group => groups.find_coordinator(&req.group_id)?,
        CoordinatorKeyType::Transaction => match transactions {
            Some(t) => t.find_coordinator(&req.group_id)?,
            None => {
                return Err(StromError::new(
                    ErrorCode::UnsupportedVersion,
                    "this broker runs no transaction coordinator",
                ));
            }
        },
    };
    Ok(FindCoordinatorResponse {
        node_id,
        address,
        partition,
    })
}
