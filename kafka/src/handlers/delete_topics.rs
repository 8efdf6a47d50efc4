//! DeleteTopics: forwarded to the controller quorum's DeleteTopics (the
//! call `strom topics delete` makes). Topics named by id (v6) are resolved
//! in this broker's image; an unknown id is UNKNOWN_TOPIC_ID.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use strom_proto::v1::{DeleteTopicsRequest as ProtoRequest, ErrorCode};
use uuid::Uuid;

use super::{Broker, text};
use crate::errors::{kafka_code, kafka_code_i32};

/// Answers one DeleteTopics request.
pub async fn answer(
    broker: &Broker,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // (name if known, id as asked)
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        broker.replicas.cache().with_image(|image| {
            req.topics
                .iter()
                .map(|t| match &t.name {
                    Some(name) => (Some(name.0.to_string()), t.topic_id),
                    None => (
                        image.topic_by_id(&t.topic_id).map(|x| x.name.clone()),
                        t.topic_id,
                    ),
                })
                .collect()
        })
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let names: Vec<String> = wanted.iter().filter_map(|(n, _)| n.clone()).collect();
    let answer = if names.is_empty() {
        Ok(Default::default())
    } else {
        let proto = ProtoRequest { names };
        broker
            .controller
            .call(broker.controller_timeout, async |mut c| {
                c.delete_topics(proto.clone()).await
            })
            .await
    };
    let results = wanted
        .into_iter()
        .map(|(name, id)| {
            let (code, message) = match (&name, &answer) {
                (None, _) => (
                    kafka_code(ErrorCode::UnknownTopicId),
                    format!("no topic has id {id}"),
                ),
                (Some(name), Ok(resp)) => resp
                    .topics
                    .iter()
                    .find(|r| &r.name == name)
                    .map_or((0, String::new()), |r| {
                        (kafka_code_i32(r.error_code), r.error_message.clone())
                    }),
                (Some(_), Err(e)) => (kafka_code(e.code), e.message.clone()),
            };
            let mut out = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(text(n))))
                .with_error_code(code);
            if version >= 5 && !message.is_empty() {
                out = out.with_error_message(Some(text(message)));
            }
            if version >= 6 {
                out = out.with_topic_id(id);
            }
            out
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(results)
}
