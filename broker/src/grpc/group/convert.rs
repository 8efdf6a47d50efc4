//! Protobuf ↔ `strom-group` conversions for `GroupService`. Topic names on
//! the wire, topic ids in the core's assignments: the image translates.

use strom_group::{
    Assignment, CommitEntry, CommitRequest, GroupDescription, GroupListing, HeartbeatRequest,
    Subscription, Topics,
};
use strom_proto::v1 as pb;

/// An assignment as topic names and partitions (unknown ids are left out).
pub fn assignment_to_pb(a: &Assignment, topics: &Topics) -> Vec<pb::TopicPartitions> {
    a.iter()
        .filter_map(|(id, parts)| {
            topics.by_id(id).map(|t| pb::TopicPartitions {
                topic: t.name.clone(),
                partitions: parts.iter().copied().collect(),
            })
        })
        .collect()
}

/// Topic names and partitions as an assignment (unknown topics are left
/// out: a member cannot own a partition of a topic that does not exist).
pub fn assignment_from_pb(tps: &[pb::TopicPartitions], topics: &Topics) -> Assignment {
    let mut a = Assignment::new();
    for tp in tps {
        if let Some(t) = topics.by_name(&tp.topic) {
            a.entry(t.id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    a.retain(|_, p| !p.is_empty());
    a
}

/// A heartbeat request; `new_member_id` is the coordinator's fresh id.
pub fn heartbeat_from_pb(
    req: pb::ConsumerGroupHeartbeatRequest,
    client_host: String,
    new_member_id: String,
    topics: &Topics,
) -> HeartbeatRequest {
    HeartbeatRequest {
        owned: req
            .owned
            .as_ref()
            .map(|o| assignment_from_pb(&o.topics, topics)),
        group_id: req.group_id,
        member_id: req.member_id,
        new_member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id,
        rack_id: req.rack_id,
        client_id: req.client_id,
        client_host,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        session_timeout_ms: req.session_timeout_ms,
        subscription: req.subscription.map(|s| Subscription {
            topic_names: s.topic_names,
            topic_regex: s.topic_regex,
        }),
        assignors: req.assignors_set.then_some(req.assignors),
    }
}

/// An offset commit.
pub fn commit_from_pb(req: pb::OffsetCommitRequest) -> CommitRequest {
    CommitRequest {
        group_id: req.group_id,
        member_id: req.member_id,
        member_epoch: req.member_epoch,
        offsets: req
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partitions.into_iter().map(move |p| CommitEntry {
                    topic: topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata,
                })
            })
            .collect(),
    }
}

/// `(topic, partition)` pairs of a request.
pub fn partitions_from_pb(tps: &[pb::TopicPartitions]) -> Vec<(String, i32)> {
    tps.iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
        .collect()
}

/// A listing entry.
pub fn listing_to_pb(g: GroupListing) -> pb::GroupListing {
    pb::GroupListing {
        group_id: g.group_id,
        state: g.state.name().to_owned(),
        protocol_type: g.protocol_type,
        members: i32::try_from(g.members).unwrap_or(i32::MAX),
    }
}

/// A description.
pub fn description_to_pb(d: GroupDescription, topics: &Topics) -> pb::DescribeGroupResponse {
    pb::DescribeGroupResponse {
        group_id: d.group_id,
        state: d.state.name().to_owned(),
        protocol_type: d.protocol_type,
        assignor: d.assignor.map(|a| a.name().to_owned()).unwrap_or_default(),
        epoch: d.epoch,
        assignment_epoch: d.assignment_epoch,
        members: d
            .members
            .into_iter()
            .map(|m| pb::GroupMember {
                member_id: m.member_id,
                instance_id: m.metadata.instance_id,
                client_id: m.metadata.client_id,
                client_host: m.metadata.client_host,
                member_epoch: m.current.member_epoch,
                state: m
                    .current
                    .state
                    .map(|s| s.name().to_owned())
                    .unwrap_or_default(),
                subscribed_topic_names: m.metadata.subscribed_topic_names,
                subscribed_topic_regex: m.metadata.subscribed_topic_regex,
                assignors: m.metadata.assignors,
                assignment: assignment_to_pb(&m.current.assigned, topics),
                pending_revocation: assignment_to_pb(&m.current.pending_revocation, topics),
                target: assignment_to_pb(&m.target, topics),
            })
            .collect(),
    }
}
