//! AllocateProducerIds: a broker takes the next block of producer ids.

use strom_metadata::producer_ids::allocate_producer_ids;
use strom_proto::v1::{AllocateProducerIdsRequest, AllocateProducerIdsResponse};

use super::ControllerGrpc;
use crate::error::Result;

impl ControllerGrpc {
    pub(super) async fn allocate_producer_ids_local(
        &self,
        r: AllocateProducerIdsRequest,
    ) -> Result<AllocateProducerIdsResponse> {
        let (block, _) = self
            .ctl
            .decide(|image| {
                let (block, record) = allocate_producer_ids(image, r.broker_id, r.broker_epoch)?;
                Ok((vec![record], block))
            })
            .await?;
        tracing::debug!(
            broker = r.broker_id,
            first = block.first,
            len = block.len,
            "allocated producer ids"
        );
        Ok(AllocateProducerIdsResponse {
            producer_id_start: block.first,
            producer_id_len: i32::try_from(block.len).unwrap_or(i32::MAX),
        })
    }
}
