//! ListPartitionReassignments: the reassignments in progress, with the
//! sizes of the leader's and the new replicas' logs as last reported.

use strom_proto::v1::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    OngoingPartitionReassignment,
};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) fn list_partition_reassignments_local(
        &self,
        r: ListPartitionReassignmentsRequest,
    ) -> Result<ListPartitionReassignmentsResponse> {
        let filter: Option<Vec<(String, i32)>> = (!r.partitions.is_empty()).then(|| {
            r.partitions
                .into_iter()
                .map(|p| (p.topic, p.partition))
                .collect()
        });
        let sizes = &self.ctl.inner().sizes;
        let reassignments = self.ctl.with_image(|image| {
            strom_metadata::reassignments(image, filter.as_deref())
                .map(|(topic, p, s)| {
                    let size = |b: i32| sizes.get(b, topic.id, p).unwrap_or(-1);
                    OngoingPartitionReassignment {
                        topic: topic.name.clone(),
                        partition: p,
                        replicas: s.replicas.clone(),
                        adding_replicas: s.adding.clone(),
                        removing_replicas: s.removing.clone(),
                        isr: s.isr.clone(),
                        leader: s.leader,
                        leader_bytes: size(s.leader),
                        adding_bytes: s.adding.iter().map(|b| size(*b)).collect(),
                    }
                })
                .collect()
        });
        Ok(ListPartitionReassignmentsResponse { reassignments })
    }
}
