//! CreatePartitions: grows a topic's partition count.

use strom_proto::v1::{CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult};

use super::ControllerGrpc;
use crate::error::{ControllerError, Result};

impl ControllerGrpc {
    pub(super) async fn create_partitions_local(
        &self,
        r: CreatePartitionsRequest,
    ) -> Result<CreatePartitionsResponse> {
        let mut results = Vec::with_capacity(r.topics.len());
        for t in &r.topics {
            let mut result = CreatePartitionsResult {
                name: t.name.clone(),
                ..Default::default()
            };
            let assignment = (!t.assignments.is_empty()).then(|| {
                t.assignments
                    .iter()
                    .map(|a| a.replicas.clone())
                    .collect::<Vec<_>>()
            });
            let seed: u64 = rand::random();
            let decide = |image: &strom_metadata::ClusterImage| {
                strom_metadata::create_partitions(
                    image,
                    &t.name,
                    t.count,
                    assignment.as_deref(),
                    seed,
                )
            };
            let outcome = if r.validate_only {
                self.ctl
                    .with_image(decide)
                    .map(|_| ())
                    .map_err(ControllerError::from)
            } else {
                self.ctl
                    .decide(|image| Ok((decide(image)?, ())))
                    .await
                    .map(|_| ())
            };
            match outcome {
                Ok(()) => tracing::info!(topic = %t.name, count = t.count, "created partitions"),
                Err(e) => (result.error_code, result.error_message) = super::item_error(e)?,
            }
            results.push(result);
        }
        Ok(CreatePartitionsResponse { topics: results })
    }
}
