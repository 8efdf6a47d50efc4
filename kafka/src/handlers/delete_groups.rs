//! DeleteGroups: the coordinator's `delete_group` (as gRPC's) for each
//! group: NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND for an
//! unknown one.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Broker;
use super::group_util::coordinator;
use crate::errors::kafka_code;

/// Answers one DeleteGroups request.
pub async fn answer(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let code = match coordinator(broker) {
            Ok(c) => c
                .delete_group(id.0.as_str())
                .await
                .err()
                .map_or(0, |e| kafka_code(e.code)),
            Err(e) => kafka_code(e.code),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
