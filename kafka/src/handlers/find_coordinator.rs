//! FindCoordinator: the group or transaction coordinator's lookup (which
//! creates its internal topic on first use), answered with the
//! coordinator's Kafka listener. Batched keys (v4+) are looked up one by
//! one.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use super::{Broker, broker_id, kafka_endpoint, text};
use crate::errors::kafka_code;

/// Kafka's key types.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// Answers one FindCoordinator request.
pub fn answer(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let out = Coordinator::default().with_key(key.clone());
                match find(broker, req.key_type, &key) {
                    Ok((id, host, port)) => out
                        .with_node_id(broker_id(id))
                        .with_host(host)
                        .with_port(port),
                    Err(e) => out
                        .with_node_id(broker_id(-1))
                        .with_port(-1)
                        .with_error_code(kafka_code(e.code))
                        .with_error_message(Some(text(e.message))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let key_type = if version >= 1 { req.key_type } else { GROUP };
    match find(broker, key_type, &req.key) {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(broker_id(id))
            .with_host(host)
            .with_port(port),
        Err(e) => {
            let out = FindCoordinatorResponse::default()
                .with_error_code(kafka_code(e.code))
                .with_node_id(broker_id(-1))
                .with_port(-1);
            if version >= 1 {
                out.with_error_message(Some(text(e.message)))
            } else {
                out
            }
        }
    }
}

/// `(node id, host, port)` of the coordinator of `key`.
fn find(broker: &Broker, key_type: i8, key: &StrBytes) -> Result<(i32, StrBytes, i32), StromError> {
    let unavailable =
        |what: &str| StromError::new(ErrorCode::CoordinatorNotAvailable, what.to_owned());
    let node = match key_type {
        GROUP => match &broker.groups {
            Some(g) => g.find_coordinator(key)?.0,
            None => return Err(unavailable("this broker runs no group coordinator")),
        },
        TRANSACTION => match &broker.transactions {
            Some(t) => t.find_coordinator(key)?.0,
            None => return Err(unavailable("this broker runs no transaction coordinator")),
        },
        other => {
            return Err(StromError::new(
                ErrorCode::InvalidRequest,
                format!("key type {other} is neither 0 (group) nor 1 (transaction)"),
            ));
        }
    };
    broker
        .replicas
        .cache()
        .with_image(|image| kafka_endpoint(image, node))
        .map(|(host, port)| (node, host, port))
        .ok_or_else(|| unavailable(&format!("coordinator broker {node} has no Kafka listener")))
}
