//! Committed offsets: `commit_sync`, `commit_async`, `committed` and auto
//! commit. A commit carries the member id and epoch of a joined member, so
//! the coordinator refuses a zombie's (STALE_MEMBER_EPOCH,
//! FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID); a consumer that assigns
//! partitions itself commits with none, which the coordinator accepts
//! while the group has no members. Commits are sent in the order they were
//! issued (`commit_order`): a later commit is never overwritten by an
//! earlier one.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::group::GroupShared;
use super::{Consumer, Shared};
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

/// A committed offset (Kafka's `OffsetAndMetadata`): the next offset the
/// group consumes from a partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, when known.
    pub leader_epoch: Option<i32>,
    /// Free text kept with the offset (`offset.metadata.max.bytes` bounds it).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }
}

/// What a transactional producer needs of a consumer's group to commit
/// its offsets inside a transaction (Kafka's `ConsumerGroupMetadata`), from
/// [`Consumer::group_metadata`]: the coordinator checks the member id and
/// epoch as for a plain commit, so a zombie member cannot commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The member's epoch (Kafka's generation id), -1 outside the group.
    pub generation_id: i32,
    /// The member id, empty outside the group.
    pub member_id: String,
}

impl ConsumerGroupMetadata {
    /// A group's metadata for a producer that is not one of its members
    /// (offsets of a manually assigned consumer).
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
        }
    }
}

/// The answer of [`Consumer::commit_async`]: resolves when the commit is
/// acknowledged or failed. The commit proceeds whether or not it is awaited.
#[derive(Debug)]
pub struct CommitFuture(JoinHandle<Result<()>>);

impl Future for CommitFuture {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(Error::strom(
                    ErrorCode::UnknownServerError,
                    format!("the commit task failed: {e}"),
                ))
            })
        })
    }
}

fn group_of(shared: &Shared) -> Result<&GroupShared> {
    shared.group.as_ref().ok_or_else(|| {
        Error::strom(
            ErrorCode::InvalidGroupId,
            "committed offsets need a group.id in the consumer config",
        )
    })
}

/// The OffsetCommit request's topics.
fn commit_topics(
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Vec<pb::OffsetCommitTopic> {
    let mut topics: Vec<pb::OffsetCommitTopic> = Vec::new();
    for (tp, o) in offsets {
        let partition = pb::OffsetCommitPartition {
            partition: tp.partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch.unwrap_or(-1),
            metadata: o.metadata.clone(),
        };
        match topics.last_mut() {
            Some(t) if t.topic == tp.topic => t.partitions.push(partition),
            _ => topics.push(pb::OffsetCommitTopic {
                topic: tp.topic.clone(),
                partitions: vec![partition],
            }),
        }
    }
    topics
}

/// Commits `offsets` under the member's current id and epoch, finding the
/// coordinator again as needed, until the request timeout. A commit refused
/// with STALE_MEMBER_EPOCH is sent again only when the member's epoch
/// moved on meanwhile (the heartbeat task got a newer one).
pub(super) async fn commit(
    shared: &Shared,
    offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Result<()> {
    let group = group_of(shared)?;
    if offsets.is_empty() {
        return Ok(());
    }
    if let Some((tp, o)) = offsets.iter().find(|(_, o)| o.offset < 0) {
        return Err(Error::InvalidArgument(format!(
            "cannot commit a negative offset ({}) for {tp}",
            o.offset
        )));
    }
    let topics = commit_topics(&offsets);
    let mut sent = group.commit_identity();
    loop {
        let req = pb::OffsetCommitRequest {
            group_id: group.group_id.clone(),
            member_id: sent.0.clone(),
            member_epoch: sent.1,
            topics: topics.clone(),
        };
        let result = group
            .call(
                shared,
                "offset commit",
                |mut c, t| {
                    let req = req.clone();
                    async move { c.offset_commit(super::group::request(req, t)).await }
                },
                |_| false,
            )
            .await;
        match result {
            Ok(_) => {
                debug!(group = %group.group_id, partitions = offsets.len(), "committed");
                return Ok(());
            }
            Err(e) if e.code() == Some(ErrorCode::StaleMemberEpoch) => {
                let now = group.commit_identity();
                if now == sent || now.1 < 0 {
                    return Err(e);
                }
                sent = now;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Consumer {
    /// `offsets`' commit, in its turn: it sends once every commit issued
    /// before it finished. The turn is taken now, not when the future is
    /// first polled.
    fn ordered_commit(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let turn = self.commit_order.next();
        let shared = self.shared.clone();
        async move { turn.run(commit(&shared, offsets)).await }
    }

    /// The positions of the assigned partitions that have one.
    pub(super) fn positions_to_commit(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.state
            .positions()
            .into_iter()
            .map(|(tp, offset, leader_epoch)| {
                (
                    tp,
                    OffsetAndMetadata {
                        offset,
                        leader_epoch,
                        metadata: String::new(),
                    },
                )
            })
            .collect()
    }

    /// The group's id and this member's id and epoch, for
    /// `Producer::send_offsets_to_transaction` (INVALID_GROUP_ID without a
    /// `group.id`).
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata> {
        let group = group_of(&self.shared)?;
        let (member_id, generation_id) = group.commit_identity();
        Ok(ConsumerGroupMetadata {
            group_id: group.group_id.clone(),
            generation_id,
            member_id,
        })
    }

    /// The next offset of every assigned partition with a position, as
    /// [`Self::commit_sync`] would commit them: what a consume-transform-
    /// produce loop passes to `Producer::send_offsets_to_transaction`.
    pub fn consumed_offsets(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.positions_to_commit()
    }

    /// Commits the positions of every assigned partition (the offsets
    /// after the records `poll` returned), waiting for the coordinator's
    /// acknowledgement (bounded by `request.timeout.ms`).
    ///
    /// Errors: INVALID_GROUP_ID without a `group.id`; STALE_MEMBER_EPOCH,
    /// FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID when the member no longer
    /// owns its partitions (a rebalance moved on without it); UNKNOWN_MEMBER_ID
    /// for a consumer that assigns partitions itself while the group has
    /// members.
    pub async fn commit_sync(&mut self) -> Result<()> {
        let offsets = self.positions_to_commit();
        self.commit_sync_offsets(offsets).await
    }

    /// Commits these offsets (the next offset to consume per partition).
    pub async fn commit_sync_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        self.ordered_commit(offsets).await
    }

    /// Commits the positions of every assigned partition in the
    /// background; the returned future resolves with the outcome (it need
    /// not be awaited). Commits are sent in the order they were issued, one
    /// at a time, so an earlier commit never overwrites a later one.
    pub fn commit_async(&mut self) -> CommitFuture {
        let offsets = self.positions_to_commit();
        self.commit_async_offsets(offsets)
    }

    /// Commits these offsets in the background, as [`Consumer::commit_async`].
    pub fn commit_async_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> CommitFuture {
        CommitFuture(tokio::spawn(self.ordered_commit(offsets)))
    }

    /// Commits the positions in the background and calls `callback` with
    /// the offsets and the outcome (Kafka's `OffsetCommitCallback`).
    pub fn commit_async_with<F>(&mut self, callback: F)
    where
        F: FnOnce(&BTreeMap<TopicPartition, OffsetAndMetadata>, Result<()>) + Send + 'static,
    {
        let offsets = self.positions_to_commit();
        let committing = self.ordered_commit(offsets.clone());
        tokio::spawn(async move {
            let result = committing.await;
            callback(&offsets, result);
        });
    }

    /// The group's committed offsets of `partitions` (`None`: nothing
    /// committed), bounded by `request.timeout.ms`.
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
        fetch_committed(&self.shared, partitions).await
    }

    /// Auto commit: starts a background commit of the positions when
    /// `auto.commit.interval.ms` passed since the last one (one at a time).
    pub(super) fn maybe_auto_commit(&mut self, now: Instant) {
        if !self.auto_commit_enabled() || now < self.next_auto_commit {
            return;
        }
        if let Some(task) = &self.auto_commit
            && !task.is_finished()
        {
            return;
        }
        self.next_auto_commit = now + self.shared.config.auto_commit_interval;
        let offsets = self.positions_to_commit();
        if offsets.is_empty() {
            return;
        }
        let committing = self.ordered_commit(offsets);
        self.auto_commit = Some(tokio::spawn(async move {
            let result = committing.await;
            if let Err(error) = &result {
                warn!(%error, "auto commit failed");
            }
            result
        }));
    }

    pub(super) fn auto_commit_enabled(&self) -> bool {
        self.shared.group.is_some() && self.shared.config.enable_auto_commit
    }

    /// Auto commit before revocation and on close: waits for a background
    /// auto commit, then commits `offsets` and waits. Failures are logged
    /// (as Kafka does) and returned.
    pub(super) async fn auto_commit_now(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        if !self.auto_commit_enabled() {
            return Ok(());
        }
        // Sent after the background auto commit (commit order); its
        // outcome was logged by its task.
        self.auto_commit = None;
        let result = self.ordered_commit(offsets).await;
        if let Err(error) = &result {
            warn!(%error, "auto commit failed");
        }
        result
    }
}

/// OffsetFetch of `partitions`.
pub(super) async fn fetch_committed(
    shared: &Arc<Shared>,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let group = group_of(shared)?;
    let mut out: BTreeMap<TopicPartition, Option<OffsetAndMetadata>> =
        partitions.iter().map(|tp| (tp.clone(), None)).collect();
    if partitions.is_empty() {
        return Ok(out);
    }
    let set = out.keys().cloned().collect();
    let req = pb::OffsetFetchRequest {
        group_id: group.group_id.clone(),
        topics: super::group::to_wire(&set),
        require_stable: true,
    };
    let r = group
        .call(
            shared,
            "offset fetch",
            |mut c, t| {
                let req = req.clone();
                async move { c.offset_fetch(super::group::request(req, t)).await }
            },
            |_| false,
        )
        .await?;
    for p in r.partitions {
        let tp = TopicPartition::new(p.topic, p.partition);
        if p.offset >= 0
            && let Some(slot) = out.get_mut(&tp)
        {
            *slot = Some(OffsetAndMetadata {
                offset: p.offset,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                metadata: p.metadata,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_requests_group_partitions_by_topic() {
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [
            (TopicPartition::new("a", 1), OffsetAndMetadata::new(10)),
            (
                TopicPartition::new("a", 0),
                OffsetAndMetadata {
                    offset: 5,
                    leader_epoch: Some(3),
                    metadata: "m".into(),
                },
            ),
            (TopicPartition::new("b", 0), OffsetAndMetadata::new(0)),
        ]
        .into_iter()
        .collect();
        type Row = (i32, i64, i32, String);
        let topics = commit_topics(&offsets);
        let got: Vec<(String, Vec<Row>)> = topics
            .into_iter()
            .map(|t| {
                (
                    t.topic,
                    t.partitions
                        .into_iter()
                        .map(|p| (p.partition, p.offset, p.leader_epoch, p.metadata))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a".to_owned(),
                    vec![(0, 5, 3, "m".to_owned()), (1, 10, -1, String::new())]
                ),
                ("b".to_owned(), vec![(0, 0, -1, String::new())]),
            ]
        );
    }
}
