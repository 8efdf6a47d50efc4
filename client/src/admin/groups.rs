//! Consumer groups, as kafka-consumer-groups sees them: list (every
//! broker's coordinated groups), describe, committed offsets, delete. Each
//! group call goes to the group's coordinator, found with
//! `FindCoordinator` and found again on NOT_COORDINATOR or while it loads.

use std::time::{Duration, Instant};

use serde::Serialize;
use strom_proto::v1 as pb;
use strom_proto::v1::group_service_client::GroupServiceClient;
use tonic::transport::Channel;

use super::{Admin, request};
use crate::error::{Error, Result};
use crate::pool::MAX_MESSAGE_SIZE as MAX_RESPONSE;
use crate::retry::{self, Backoff};

/// A group in `strom groups list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupListing {
    /// Group id.
    pub group: String,
    /// Empty, Assigning, Reconciling or Stable.
    pub state: String,
    /// `consumer`, or empty for a group with only committed offsets.
    pub protocol_type: String,
    /// Member count.
    pub members: i32,
}

/// Partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupTopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// A member in a group description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The member's address as the coordinator saw it.
    pub host: String,
    /// Member epoch.
    #[serde(skip)]
    pub member_epoch: i32,
    /// Reconciliation state.
    #[serde(skip)]
    pub state: String,
    /// Partitions the member owns.
    pub assignment: Vec<GroupTopicPartitions>,
}

/// A group as `strom groups describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// State.
    pub state: String,
    /// The assignor in use (empty without members).
    pub assignor: String,
    /// Group epoch.
    pub epoch: i32,
    /// Members.
    pub members: Vec<GroupMemberDescription>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The next offset the group consumes.
    pub offset: i64,
}

fn tps(v: Vec<pb::TopicPartitions>) -> Vec<GroupTopicPartitions> {
    v.into_iter()
        .map(|t| GroupTopicPartitions {
            topic: t.topic,
            partitions: t.partitions,
        })
        .collect()
}

impl Admin {
    /// Calls `GroupService` on `group`'s coordinator, finding it again
    /// while the call fails with a retriable error, until the request
    /// timeout.
    async fn coordinator<T, F, Fut>(&self, group: &str, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut(GroupServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.request_timeout;
        let mut backoff = Backoff::new(inner.config.retry_backoff, inner.config.retry_backoff_max);
        loop {
            let find = pb::FindCoordinatorRequest {
                group_id: group.to_owned(),
                key_type: pb::CoordinatorKeyType::Group as i32,
            };
            let found = retry::call(&inner.config, &inner.pool, "find coordinator", |ch, t| {
                let find = find.clone();
                async move {
                    GroupServiceClient::new(ch)
                        .find_coordinator(request(find, t))
                        .await
                }
            })
            .await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let channel = inner.pool.channel(&found.address)?;
            let client = GroupServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
            let error = match tokio::time::timeout(remaining, f(client, remaining)).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(status)) => Error::from_status(&found.address, status),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("{what} for group {group:?} timed out"),
                    });
                }
            };
            if !retry::is_retriable(&error) || Instant::now() >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Every group of the cluster: each broker lists the groups it
    /// coordinates. Sorted by group id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let cluster = self.describe_cluster().await?;
        let mut out = Vec::new();
        for b in cluster.brokers {
            let channel = self.inner.pool.channel(&b.address)?;
            let timeout = self.inner.config.request_timeout;
            let r = GroupServiceClient::new(channel)
                .max_decoding_message_size(MAX_RESPONSE)
                .list_groups(request(pb::ListGroupsRequest {}, timeout))
                .await;
            match r {
                Ok(r) => out.extend(r.into_inner().groups.into_iter().map(|g| GroupListing {
                    group: g.group_id,
                    state: g.state,
                    protocol_type: g.protocol_type,
                    members: g.members,
                })),
                // A broker that is down coordinates nothing now; its
                // partitions' new leaders answer for its groups.
                Err(status) => {
                    let e = Error::from_status(&b.address, status);
                    if !retry::is_retriable(&e) {
                        return Err(e);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out.dedup_by(|a, b| a.group == b.group);
        Ok(out)
    }

    /// One group's state, assignor, epoch and members (GROUP_ID_NOT_FOUND
    /// for an unknown group).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let req = pb::DescribeGroupRequest {
            group_id: group.to_owned(),
        };
        let d = self
            .coordinator(group, "describe group", |mut c, t| {
                let req = req.clone();
                async move { c.describe_group(request(req, t)).await }
            })
            .await?;
        Ok(GroupDescription {
            group: d.group_id,
            state: d.state,
            assignor: d.assignor,
            epoch: d.epoch,
            members: d
                .members
                .into_iter()
                .map(|m| GroupMemberDescription {
                    member_id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    host: m.client_host,
                    member_epoch: m.member_epoch,
                    state: m.state,
                    assignment: tps(m.assignment),
                })
                .collect(),
        })
    }

    /// The group's committed offsets, sorted by topic and partition.
    pub async fn list_group_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        let req = pb::OffsetFetchRequest {
            group_id: group.to_owned(),
            topics: Vec::new(),
            require_stable: false,
        };
        let r = self
            .coordinator(group, "fetch offsets", |mut c, t| {
                let req = req.clone();
                async move { c.offset_fetch(request(req, t)).await }
            })
            .await?;
        let mut out: Vec<CommittedOffset> = r
            .partitions
            .into_iter()
            .filter(|p| p.offset >= 0)
            .map(|p| CommittedOffset {
                topic: p.topic,
                partition: p.partition,
                offset: p.offset,
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Deletes a group without members (NON_EMPTY_GROUP otherwise).
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let req = pb::DeleteGroupRequest {
            group_id: group.to_owned(),
        };
        self.coordinator(group, "delete group", |mut c, t| {
            let req = req.clone();
            async move { c.delete_group(request(req, t)).await }
        })
        .await
        .map(|_| ())
    }

    /// Commits `offsets` for `group` without a member (as
    /// kafka-consumer-groups' reset does); the coordinator refuses it while
    /// the group has members (UNKNOWN_MEMBER_ID).
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        let mut topics: Vec<pb::OffsetCommitTopic> = Vec::new();
        for o in offsets {
            let partition = pb::OffsetCommitPartition {
                partition: o.partition,
                offset: o.offset,
                leader_epoch: -1,
                metadata: String::new(),
            };
            match topics.iter_mut().find(|t| t.topic == o.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(pb::OffsetCommitTopic {
                    topic: o.topic.clone(),
                    partitions: vec![partition],
                }),
            }
        }
        let req = pb::OffsetCommitRequest {
            group_id: group.to_owned(),
            member_id: String::new(),
            member_epoch: -1,
            topics,
        };
        self.coordinator(group, "alter offsets", |mut c, t| {
            let req = req.clone();
            async move { c.offset_commit(request(req, t)).await }
        })
        .await
        .map(|_| ())
    }

    /// Deletes the group's committed offsets of `partitions`
    /// (GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to the topic).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        let mut topics: Vec<pb::TopicPartitions> = Vec::new();
        for (topic, p) in partitions {
            match topics.iter_mut().find(|t| &t.topic == topic) {
                Some(t) => t.partitions.push(*p),
                None => topics.push(pb::TopicPartitions {
                    topic: topic.clone(),
                    partitions: vec![*p],
                }),
            }
        }
        let req = pb::OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics,
        };
        self.coordinator(group, "delete offsets", |mut c, t| {
            let req = req.clone();
            async move { c.offset_delete(request(req, t)).await }
        })
        .await
        .map(|_| ())
    }
}
