//! AlterPartitionReassignments: start, replace or cancel reassignments
//! (KIP-455), all of the request checked before anything changes.

use strom_metadata::ReassignmentSpec;
use strom_proto::StromError;
use strom_proto::v1::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ErrorCode,
    ReassignablePartitionResult,
};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn alter_partition_reassignments_local(
        &self,
        r: AlterPartitionReassignmentsRequest,
    ) -> Result<AlterPartitionReassignmentsResponse> {
        let specs: Vec<ReassignmentSpec> = r
            .partitions
            .into_iter()
            .map(|p| ReassignmentSpec {
                topic: p.topic,
                partition: p.partition,
                replicas: p.replicas.map(|l| l.ids),
            })
            .collect();
        let (outcomes, offset) = self
            .ctl
            .decide(|image| {
                let min_isr = self.ctl.default_min_isr(image);
                strom_metadata::alter_reassignments(image, &specs, min_isr)
            })
            .await?;
        if let Some(offset) = offset {
            tracing::info!(
                offset,
                partitions = specs.len(),
                "altered partition reassignments"
            );
        }
        let results = outcomes
            .into_iter()
            .map(|o| {
                let (code, message) = match &o.error {
                    None => (ErrorCode::None, String::new()),
                    Some(e) => {
                        let s = StromError::from(e);
                        (s.code, s.message)
                    }
                };
                ReassignablePartitionResult {
                    topic: o.topic,
                    partition: o.partition,
                    error_code: code as i32,
                    error_message: message,
                }
            })
            .collect();
        Ok(AlterPartitionReassignmentsResponse { results })
    }
}
