//! `Admin::alter_partition_reassignments` and
//! `Admin::list_partition_reassignments`: Kafka's KIP-455 admin calls, and
//! `Admin::alter_broker_decommission` and `Admin::unregister_broker`, sent
//! to the active controller.

use serde::Serialize;
use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;

use super::{Admin, TopicPartition, request};
use crate::error::{Result, error_code};

/// A reassignment in progress (Kafka's `PartitionReassignment`), with how
/// far its new replicas got. JSON: `{"topic", "partition", "replicas",
/// "adding_replicas", "removing_replicas", "isr", "leader", "leader_bytes",
/// "adding_bytes"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Every replica: the target ones first, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, -1 when none.
    pub leader: i32,
    /// Size of the leader's log in bytes, when its broker reported it.
    pub leader_bytes: Option<u64>,
    /// Size of each adding replica's log in bytes (in `adding_replicas`
    /// order), when reported.
    pub adding_bytes: Vec<Option<u64>>,
}

impl PartitionReassignment {
    /// The target replicas: every replica not being removed.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// Bytes the adding replicas hold so far and still lack, summed over
    /// them (each counted up to the leader's size); `None` until the sizes
    /// are reported.
    pub fn progress_bytes(&self) -> Option<(u64, u64)> {
        let leader = self.leader_bytes?;
        let mut copied = 0u64;
        let mut remaining = 0u64;
        for b in &self.adding_bytes {
            let have = (*b)?.min(leader);
            copied += have;
            remaining += leader - have;
        }
        Some((copied, remaining))
    }
}

/// One partition's answer to `alter_partition_reassignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReassignmentResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// NO_REASSIGNMENT_IN_PROGRESS for a cancel of a partition that is not
    /// moving; `None` when accepted.
    #[serde(with = "super::types::error_code_name")]
    pub error: Option<ErrorCode>,
    /// Why, when `error` is set.
    pub error_message: String,
}

impl From<pb::OngoingPartitionReassignment> for PartitionReassignment {
    fn from(r: pb::OngoingPartitionReassignment) -> Self {
        let size = |b: i64| u64::try_from(b).ok();
        PartitionReassignment {
            topic: r.topic,
            partition: r.partition,
            replicas: r.replicas,
            adding_replicas: r.adding_replicas,
            removing_replicas: r.removing_replicas,
            isr: r.isr,
            leader: r.leader,
            leader_bytes: size(r.leader_bytes),
            adding_bytes: r.adding_bytes.into_iter().map(size).collect(),
        }
    }
}

impl From<pb::ReassignablePartitionResult> for ReassignmentResult {
    fn from(r: pb::ReassignablePartitionResult) -> Self {
        let code = error_code(r.error_code);
        ReassignmentResult {
            topic: r.topic,
            partition: r.partition,
            error: (code != ErrorCode::None).then_some(code),
            error_message: r.error_message,
        }
    }
}

impl Admin {
    /// Starts (or replaces) the reassignment of each partition to its target
    /// replicas (the first is the preferred leader), or cancels it when the
    /// target is `None` (Kafka's `alterPartitionReassignments`). The
    /// request is checked as a whole: an unknown topic or partition
    /// (UNKNOWN_TOPIC_OR_PARTITION), a partition listed twice
    /// (INVALID_REQUEST), an empty replica list, a replica listed twice, an
    /// unknown broker or a new replica on a fenced broker
    /// (INVALID_REPLICA_ASSIGNMENT) fails the call and changes nothing.
    /// Results are in request order.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<(TopicPartition, Option<Vec<i32>>)>,
    ) -> Result<Vec<ReassignmentResult>> {
        if reassignments.is_empty() {
            return Ok(Vec::new());
        }
        let message = pb::AlterPartitionReassignmentsRequest {
            partitions: reassignments
                .into_iter()
                .map(|(tp, replicas)| pb::ReassignablePartition {
                    topic: tp.topic,
                    partition: tp.partition,
                    replicas: replicas.map(|ids| pb::TargetReplicas { ids }),
                })
                .collect(),
        };
        let response = self
            .controller("alter partition reassignments", |mut c, timeout| {
                let message = message.clone();
                async move {
                    c.alter_partition_reassignments(request(message, timeout))
                        .await
                }
            })
            .await?;
        Ok(response.results.into_iter().map(Into::into).collect())
    }

    /// Starts decommissioning `broker_id` (`decommission` true): every
    /// replica moves off it, its leaderships first, a few at a time; or
    /// stops a pending decommission (false). Returns the replicas and
    /// leaderships still on the broker. Fails with BROKER_ID_NOT_REGISTERED
    /// for an unknown broker, and with INVALID_REPLICATION_FACTOR, naming
    /// the topics, when too few live brokers would remain for a topic.
    pub async fn alter_broker_decommission(
        &self,
        broker_id: i32,
        decommission: bool,
    ) -> Result<(u32, u32)> {
        let message = pb::AlterBrokerDecommissionRequest {
            broker_id,
            decommission,
        };
        let response = self
            .controller("alter broker decommission", |mut c, timeout| async move {
                c.alter_broker_decommission(request(message, timeout)).await
            })
            .await?;
        Ok((
            u32::try_from(response.remaining_replicas).unwrap_or(0),
            u32::try_from(response.remaining_leaders).unwrap_or(0),
        ))
    }

    /// Removes `broker_id` from the cluster (Kafka's KIP-631
    /// UnregisterBroker) once it is stopped and holds no replica. Fails with
    /// BROKER_ID_NOT_REGISTERED for an unknown broker, and with
    /// INVALID_REQUEST, naming why, while it is alive (unfenced) or still
    /// hosts replicas.
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<()> {
        let message = pb::UnregisterBrokerRequest { broker_id };
        self.controller("unregister broker", |mut c, timeout| async move {
            c.unregister_broker(request(message, timeout)).await
        })
        .await?;
        Ok(())
    }

    /// The reassignments in progress among `partitions` (all when `None`),
    /// sorted by topic and partition (Kafka's `listPartitionReassignments`).
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<PartitionReassignment>> {
        if partitions.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let message = pb::ListPartitionReassignmentsRequest {
            partitions: partitions
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let response = self
            .controller("list partition reassignments", |mut c, timeout| {
                let message = message.clone();
                async move {
                    c.list_partition_reassignments(request(message, timeout))
                        .await
                }
            })
            .await?;
        let mut list: Vec<PartitionReassignment> =
            response.reassignments.into_iter().map(Into::into).collect();
        list.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving(leader: Option<u64>, adding: Vec<Option<u64>>) -> PartitionReassignment {
        PartitionReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![4, 5, 1, 2],
            adding_replicas: vec![4, 5],
            removing_replicas: vec![1, 2],
            isr: vec![1, 2],
            leader: 1,
            leader_bytes: leader,
            adding_bytes: adding,
        }
    }

    #[test]
    fn progress_counts_bytes_before_a_replica_completes() {
        let cases = [
            (moving(Some(100), vec![Some(40), Some(0)]), Some((40, 160))),
            (
                moving(Some(100), vec![Some(150), Some(100)]),
                Some((200, 0)),
            ),
            (moving(None, vec![Some(1), Some(1)]), None),
            (moving(Some(100), vec![Some(1), None]), None),
        ];
        for (r, want) in cases {
            assert_eq!(r.progress_bytes(), want, "{r:?}");
        }
        assert_eq!(moving(None, vec![]).target_replicas(), vec![4, 5]);
    }
}
