//! OffsetFetch: the group coordinator's `fetch_offsets`, the same call as
//! gRPC's. v1-v7 ask for one group, v8 for several; no topics (v2+) means
//! every committed offset; `require_stable` (v7+) answers
//! UNSTABLE_OFFSET_COMMIT while a transactional commit is pending.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use strom_group::shard::FetchedOffset;
use strom_proto::StromError;

use super::Broker;
use super::group_util::coordinator;
use crate::errors::kafka_code;

/// Answers one OffsetFetch request.
pub async fn answer(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.to_string();
                        t.partition_indexes
                            .into_iter()
                            .map(move |p| (name.clone(), p))
                    })
                    .collect::<Vec<_>>()
            });
            let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(
                match fetch(broker, g.group_id.0.as_str(), wanted, req.require_stable).await {
                    Ok(offsets) => out.with_topics(group_topics(offsets)),
                    Err(e) => out.with_error_code(kafka_code(e.code)),
                },
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes.iter().map(move |p| (name.clone(), *p))
            })
            .collect::<Vec<_>>()
    });
    let require_stable = version >= 7 && req.require_stable;
    match fetch(
        broker,
        req.group_id.0.as_str(),
        wanted.clone(),
        require_stable,
    )
    .await
    {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(topics(offsets, version)),
        Err(e) if version >= 2 => {
            OffsetFetchResponse::default().with_error_code(kafka_code(e.code))
        }
        Err(e) => {
            // v1 has no top-level error: every partition carries it.
            let failed = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|k| (k, None))
                .collect();
            let mut out = topics(failed, version);
            for t in &mut out {
                for p in &mut t.partitions {
                    p.error_code = kafka_code(e.code);
                }
            }
            OffsetFetchResponse::default().with_topics(out)
        }
    }
}

async fn fetch(
    broker: &Broker,
    group_id: &str,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> Result<Vec<FetchedOffset>, StromError> {
    coordinator(broker)?
        .fetch_offsets(group_id, wanted, require_stable)
        .await
}

/// Offsets grouped by topic, in first-seen order.
fn grouped(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for o in offsets {
        let topic = o.0.0.clone();
        match out.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, v)) => v.push(o),
            None => out.push((topic, vec![o])),
        }
    }
    out
}

fn topics(offsets: Vec<FetchedOffset>, version: i16) -> Vec<OffsetFetchResponseTopic> {
    grouped(offsets)
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|((_, p), v)| {
                    let out = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(v.as_ref().map_or(-1, |v| v.offset))
                        .with_metadata(Some(super::text(
                            v.as_ref().map(|v| v.metadata.clone()).unwrap_or_default(),
                        )));
                    if version >= 5 {
                        out.with_committed_leader_epoch(v.as_ref().map_or(-1, |v| v.leader_epoch))
                    } else {
                        out
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(super::text(topic)))
                .with_partitions(partitions)
        })
        .collect()
}

fn group_topics(offsets: Vec<FetchedOffset>) -> Vec<OffsetFetchResponseTopics> {
    grouped(offsets)
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|((_, p), v)| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(p)
                        .with_committed_offset(v.as_ref().map_or(-1, |v| v.offset))
                        .with_committed_leader_epoch(v.as_ref().map_or(-1, |v| v.leader_epoch))
                        .with_metadata(Some(super::text(
                            v.as_ref().map(|v| v.metadata.clone()).unwrap_or_default(),
                        )))
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(super::text(topic)))
                .with_partitions(partitions)
        })
        .collect()
}
