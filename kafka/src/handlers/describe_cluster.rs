//! DescribeCluster: the cluster id and the brokers at their Kafka
//! listeners, from this broker's replayed image, as Metadata answers them
//! (a KRaft broker answers DescribeCluster from its image too). The
//! controller named is the answering broker, which forwards admin requests
//! to the quorum (see [`super::metadata`]).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use strom_broker::ReplicaManager;

use super::{broker_id, kafka_endpoint, text};
use crate::errors::UNSUPPORTED_ENDPOINT_TYPE;

/// Kafka's `endpoint_type` for brokers (v1+); 2 (controllers) is for
/// requests sent to a controller's listener, which Strom's Kafka listener
/// is not.
const BROKERS: i8 = 1;
/// Kafka's "authorized operations not requested" sentinel.
const NO_AUTHORIZED_OPERATIONS: i32 = i32::MIN;

/// Answers one DescribeCluster request.
pub fn answer(
    rm: &ReplicaManager,
    req: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let out = DescribeClusterResponse::default()
        .with_cluster_authorized_operations(NO_AUTHORIZED_OPERATIONS);
    let out = if version >= 1 {
        out.with_endpoint_type(BROKERS)
    } else {
        out
    };
    if version >= 1 && req.endpoint_type != BROKERS {
        return out
            .with_error_code(UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(text(format!(
                "endpoint type {} is not served by a broker's Kafka listener",
                req.endpoint_type
            ))));
    }
    rm.cache().with_image(|image| {
        let brokers = image
            .brokers()
            .filter(|b| req.include_fenced_brokers || !b.fenced)
            .filter_map(|b| {
                let (host, port) = kafka_endpoint(image, b.id)?;
                let d = DescribeClusterBroker::default()
                    .with_broker_id(broker_id(b.id))
                    .with_host(host)
                    .with_port(port)
                    .with_rack(b.rack.clone().map(text));
                Some(if version >= 2 {
                    d.with_is_fenced(b.fenced)
                } else {
                    d
                })
            })
            .collect();
        out.with_cluster_id(text(image.cluster_id().unwrap_or_default()))
            .with_controller_id(broker_id(rm.node_id()))
            .with_brokers(brokers)
    })
}
