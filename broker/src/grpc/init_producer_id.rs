//! `BrokerService.InitProducerId`: convert, then call the replica
//! manager's [`init_producer_id`](crate::replica::ReplicaManager::init_producer_id).

use strom_proto::v1::{ErrorCode, InitProducerIdRequest, InitProducerIdResponse};

use crate::replica::ReplicaManager;

/// Handles one InitProducerId request.
pub(crate) async fn init_producer_id(
    rm: &ReplicaManager,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let transactional_id = Some(req.transactional_id.as_str()).filter(|id| !id.is_empty());
    match rm.init_producer_id(transactional_id).await {
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            producer_id,
            producer_epoch: i32::from(producer_epoch),
        },
        Err(e) => InitProducerIdResponse {
            error_code: e.code as i32,
            error_message: e.message,
            producer_id: -1,
            producer_epoch: -1,
        },
    }
}
