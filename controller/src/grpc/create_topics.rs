//! CreateTopics: each topic is validated and committed as its own atomic
//! batch (TopicRecord + PartitionRecords), with one result per topic.

use std::collections::BTreeMap;

use strom_metadata::{CreateTopicSpec, ErrorKind, MetadataError, Uuid};
use strom_proto::StromError;
use strom_proto::v1::{
    CreatableTopic, CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse, ErrorCode,
};

use super::ControllerGrpc;
use crate::error::{ControllerError, Result};

fn spec(t: &CreatableTopic) -> Result<CreateTopicSpec, MetadataError> {
    let assignment = if t.assignments.is_empty() {
        None
    } else {
        let mut by_partition: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for a in &t.assignments {
            if by_partition
                .insert(a.partition, a.replicas.clone())
                .is_some()
            {
                return Err(MetadataError::new(
                    ErrorKind::InvalidReplicaAssignment,
                    format!("partition {} is assigned twice", a.partition),
                ));
            }
        }
        let expected: Vec<i32> =
            (0..i32::try_from(by_partition.len()).unwrap_or(i32::MAX)).collect();
        if by_partition.keys().copied().collect::<Vec<_>>() != expected {
            return Err(MetadataError::new(
                ErrorKind::InvalidReplicaAssignment,
                "replica assignment must cover partitions 0..n without gaps",
            ));
        }
        Some(by_partition.into_values().collect())
    };
    // With an explicit assignment the counts come from it (0 means unset).
    let explicit = assignment.is_some();
    let unset = |v: i32| if explicit && v == 0 { -1 } else { v };
    Ok(CreateTopicSpec {
        name: t.name.clone(),
        num_partitions: unset(t.num_partitions),
        replication_factor: unset(t.replication_factor),
        assignment,
        configs: t
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

impl ControllerGrpc {
    pub(super) async fn create_topics_local(
        &self,
        r: CreateTopicsRequest,
    ) -> Result<CreateTopicsResponse> {
        // As Kafka: every copy of a name listed twice is refused, and none
        // is created.
        let duplicates = strom_metadata::validation::duplicate_topic_names(
            r.topics.iter().map(|t| t.name.as_str()),
        );
        let mut results = Vec::with_capacity(r.topics.len());
        for t in &r.topics {
            let mut result = CreateTopicResult {
                name: t.name.clone(),
                ..Default::default()
            };
            if duplicates.contains(&t.name) {
                let e = StromError::new(
                    ErrorCode::InvalidRequest,
                    format!("topic '{}' appears more than once in the request", t.name),
                );
                result.error_code = e.code as i32;
                result.error_message = e.message;
                results.push(result);
                continue;
            }
            let topic_id = Uuid::new_v4();
            let seed: u64 = rand::random();
            let outcome = match spec(t) {
                Err(e) => Err(ControllerError::from(e)),
                Ok(spec) if r.validate_only => self
                    .ctl
                    .with_image(|image| strom_metadata::create_topic(image, &spec, topic_id, seed))
                    .map(|_| ())
                    .map_err(ControllerError::from),
                Ok(spec) => self
                    .ctl
                    .decide(|image| {
                        Ok((
                            strom_metadata::create_topic(image, &spec, topic_id, seed)?,
                            (),
                        ))
                    })
                    .await
                    .map(|_| ()),
            };
            match outcome {
                Ok(()) => {
                    self.ctl.with_image(|image| {
                        if let Some(created) = image.topic_by_id(&topic_id) {
                            result.num_partitions =
                                i32::try_from(created.partitions.len()).unwrap_or(i32::MAX);
                            result.replication_factor =
                                created.partitions.values().next().map_or(0, |p| {
                                    i32::try_from(p.replicas.len()).unwrap_or(i32::MAX)
                                });
                        }
                    });
                    if r.validate_only {
                        result.num_partitions = t.num_partitions;
                        result.replication_factor = t.replication_factor;
                    } else {
                        result.topic_id = topic_id.as_bytes().to_vec();
                        tracing::info!(topic = %t.name, %topic_id, "created topic");
                    }
                }
                Err(e) => (result.error_code, result.error_message) = super::item_error(e)?,
            }
            results.push(result);
        }
        Ok(CreateTopicsResponse { topics: results })
    }
}
