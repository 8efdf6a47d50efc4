//! AlterPartition: a partition leader shrinks or expands its ISR.

use strom_metadata::records::topic_id_from_bytes;
use strom_proto::convert::partition_metadata;
use strom_proto::v1::{AlterPartitionRequest, AlterPartitionResponse, ErrorCode};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn alter_partition_local(
        &self,
        r: AlterPartitionRequest,
    ) -> Result<AlterPartitionResponse> {
        let topic_id = topic_id_from_bytes(&r.topic_id)?;
        let outcome = self
            .ctl
            .decide(|image| {
                let records = strom_metadata::alter_partition(
                    image,
                    r.broker_id,
                    r.broker_epoch,
                    &topic_id,
                    r.partition,
                    r.leader_epoch,
                    r.partition_epoch,
                    &r.new_isr,
                    self.ctl.default_min_isr(image),
                )?;
                Ok((records, ()))
            })
            .await;
        let (error_code, error_message) = match outcome {
            Ok(_) => (ErrorCode::None, String::new()),
            Err(e) => {
                let strom = e.to_strom();
                // Leadership problems are the caller's to retry elsewhere.
                if strom.code == ErrorCode::NotController {
                    return Err(e);
                }
                (strom.code, strom.message)
            }
        };
        let partition = self.ctl.with_image(|image| {
            image
                .partition(&topic_id, r.partition)
                .map(|p| partition_metadata(image, r.partition, p))
        });
        Ok(AlterPartitionResponse {
            error_code: error_code as i32,
            error_message,
            partition,
        })
    }
}
