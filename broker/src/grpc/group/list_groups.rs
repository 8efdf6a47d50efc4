//! `GroupService.ListGroups`.

use strom_proto::v1::ListGroupsResponse;

use super::convert::listing_to_pb;
use crate::group::Coordinator;

/// The groups this broker coordinates (a client asks every broker).
pub(super) async fn list_groups(c: &Coordinator) -> ListGroupsResponse {
    ListGroupsResponse {
        groups: c
            .list_groups()
            .await
            .into_iter()
            .map(listing_to_pb)
            .collect(),
    }
}
