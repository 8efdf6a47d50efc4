//! ConsumerGroupHeartbeat (KIP-848): the group coordinator's `heartbeat`,
//! the same call as gRPC's `ConsumerGroupHeartbeat`. Topics are named by
//! id in owned partitions and assignments, as Kafka's.

use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as KafkaAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use strom_group::{Assignment, HeartbeatRequest, HeartbeatResponse, Subscription};
use strom_proto::StromError;

use super::Broker;
use super::group_util::{coordinator, new_member_id};
use crate::errors::kafka_code;

/// Answers one ConsumerGroupHeartbeat request from `client_id`.
pub async fn answer(
    broker: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: &str,
) -> ConsumerGroupHeartbeatResponse {
    match heartbeat(broker, req, version, client_id).await {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(super::text(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
            .with_assignment(Some(
                KafkaAssignment::default().with_topic_partitions(
                    r.assignment
                        .iter()
                        .map(|(id, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(*id)
                                .with_partitions(ps.iter().copied().collect())
                        })
                        .collect(),
                ),
            )),
        Err(e) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(kafka_code(e.code))
            .with_error_message(Some(super::text(e.message))),
    }
}

async fn heartbeat(
    broker: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: &str,
) -> Result<HeartbeatResponse, StromError> {
    let c = coordinator(broker)?;
    let topics = c.topics_view();
    let regex = if version >= 1 {
        req.subscribed_topic_regex.map(|r| r.to_string())
    } else {
        None
    };
    let subscription = match (&req.subscribed_topic_names, &regex) {
        (None, None) => None,
        (names, regex) => Some(Subscription {
            topic_names: names.iter().flatten().map(|n| n.0.to_string()).collect(),
            topic_regex: regex.clone(),
        }),
    };
    let owned = req.topic_partitions.map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            if topics.by_id(&tp.topic_id).is_some() {
                a.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
        }
        a.retain(|_, ps| !ps.is_empty());
        a
    });
    c.heartbeat(HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        new_member_id: new_member_id(client_id),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|i| i.to_string()),
        rack_id: req.rack_id.map(|r| r.to_string()),
        client_id: client_id.to_owned(),
        client_host: String::new(),
        rebalance_timeout_ms: (req.rebalance_timeout_ms >= 0).then_some(req.rebalance_timeout_ms),
        session_timeout_ms: None,
        subscription,
        assignors: req.server_assignor.map(|a| vec![a.to_string()]),
        owned,
    })
    .await
}
