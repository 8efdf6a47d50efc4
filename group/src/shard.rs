//! One `__consumer_offsets` partition's groups and offsets: a [`Shard`].
//!
//! State changes only through [`Shard::replay`]. The request functions
//! (`heartbeat`, `commit_offsets`, `delete_offsets`, `delete_group`,
//! `expire`, `expire_offsets`) read the state and return the records to
//! write, plus the answer to give once they are committed; they never
//! change replayed state. They do update soft state that is not in the log
//! (session deadlines), as Kafka's coordinator does.
//!
//! The host's contract: decisions of one shard are taken one at a time,
//! and the records of a decision are replayed before the next decision is
//! taken (either after the append commits, or at once with the shard
//! reloaded from the log if the append fails). A broker that loads a shard
//! replays the partition from its start, then calls
//! [`Shard::start_sessions`].

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::assignor::{Assignor, MemberSpec};
use crate::config::{GroupConfig, MAX_GROUP_ID_BYTES, MAX_MEMBER_ID_BYTES};
use crate::error::{ErrorKind, GroupError, Result, bail};
use crate::group::{ConsumerGroup, GroupState, Member, iter_assignment};
use crate::reconcile::reconcile;
use crate::records::{
    Assignment, CurrentAssignment, MemberMetadata, OffsetCommitValue, Record, RecordKey,
    RecordValue,
};
use crate::topics::Topics;
use crate::{JOIN_GROUP_MEMBER_EPOCH, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};

/// A member's subscription: topic names and/or a regex (full match).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Topic names.
    pub topic_names: Vec<String>,
    /// A regex over topic names (internal topics never match).
    pub topic_regex: Option<String>,
}

/// A heartbeat (KIP-848's `ConsumerGroupHeartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; on a join (epoch 0) with an empty id, the host supplies a
    /// fresh one in `new_member_id`.
    pub member_id: String,
    /// A fresh member id for a join without one (`<client.id>-<uuid>`).
    pub new_member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member to leave for a
    /// restart, otherwise the member's current epoch.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// `max.poll.interval.ms`; required on join, `None` = unchanged.
    pub rebalance_timeout_ms: Option<i32>,
    /// `session.timeout.ms`; `None` = unchanged (default on join).
    pub session_timeout_ms: Option<i32>,
    /// The subscription; required on join, `None` = unchanged.
    pub subscription: Option<Subscription>,
    /// `partition.assignment.strategy`; `None` = unchanged (Kafka's default
    /// on join).
    pub assignors: Option<Vec<String>>,
    /// The partitions the member owns now; `None` = not reported.
    pub owned: Option<Assignment>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// The member's id.
    pub member_id: String,
    /// The epoch to send next (-1 or -2 after a leave).
    pub member_epoch: i32,
    /// How soon to heartbeat again.
    pub heartbeat_interval_ms: i32,
    /// The partitions the member may own now; what it owns beyond them it
    /// must revoke and report.
    pub assignment: Assignment,
}

/// A decision: the records to write and the answer to give once they
/// are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<T> {
    /// Records to append, in order.
    pub records: Vec<Record>,
    /// The answer.
    pub response: T,
}

/// One offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
}

/// An `OffsetCommit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty for a consumer that assigns partitions itself.
    pub member_id: String,
    /// The member's epoch; -1 with an empty member id.
    pub member_epoch: i32,
    /// Offsets.
    pub offsets: Vec<CommitEntry>,
}

/// A partition of a fetch and its committed offset, if any.
pub type FetchedOffset = ((String, i32), Option<OffsetCommitValue>);

/// A group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// `consumer` for a consumer group, empty for a group with only
    /// committed offsets.
    pub protocol_type: String,
    /// Member count.
    pub members: usize,
}

/// A member in a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Metadata (instance id, client id, host, subscription, assignors).
    pub metadata: MemberMetadata,
    /// Epoch, state and owned partitions.
    pub current: CurrentAssignment,
    /// Target assignment.
    pub target: Assignment,
}

/// A group's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// See [`GroupListing::protocol_type`].
    pub protocol_type: String,
    /// The assignor in use, if the group has members.
    pub assignor: Option<Assignor>,
    /// Group epoch.
    pub epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// Members, by id.
    pub members: Vec<MemberDescription>,
}

/// Soft state of a member: not in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timers {
    session_deadline_ms: i64,
    /// Set while the member must revoke: it is removed if it has not by then.
    revocation_deadline_ms: Option<i64>,
}

/// The groups and offsets of one offsets-topic partition.
#[derive(Debug, Clone, Default)]
pub struct Shard {
    config: GroupConfig,
    groups: BTreeMap<String, ConsumerGroup>,
    offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetCommitValue>>,
    timers: BTreeMap<(String, String), Timers>,
    /// Records replayed so far: the log position of what is replayed next
    /// (deterministic for a given log).
    replayed: u64,
    /// Log position of each committed offset, by (group, topic, partition).
    committed_at: BTreeMap<OffsetKey, u64>,
    /// Transactional offsets awaiting their producer's marker, by producer
    /// id: log position and value.
    pending: BTreeMap<i64, BTreeMap<OffsetKey, (u64, OffsetCommitValue)>>,
    /// Classic-protocol soft state (see [`classic`]).
    classic: classic::ClassicState,
}

/// (group, topic, partition) of a committed offset.
type OffsetKey = (String, String, i32);

/// A `TxnOffsetCommit`: offsets committed inside a transaction. They
/// become visible when the producer's COMMIT marker reaches the offsets
/// partition, and are dropped at an ABORT marker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnCommitRequest {
    /// The offsets, with the group, member id and epoch checked as for
    /// `OffsetCommit` (Kafka's TxnOffsetCommit v3+ sends the member's).
    pub commit: CommitRequest,
    /// The transactional producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
}

/// Records of a decision, applied to a scratch copy of the group as they are
/// emitted, so later steps of the same decision see earlier ones.
struct Emitter {
    group_id: String,
    group: ConsumerGroup,
    records: Vec<Record>,
}

impl Emitter {
    fn emit(&mut self, record: Record) {
        self.group.apply(&record);
        self.records.push(record);
    }
    fn bump_epoch(&mut self, metadata_hash: i64) {
        let epoch = self.group.epoch + 1;
        self.emit(Record::put(
            RecordKey::GroupMetadata {
                group: self.group_id.clone(),
            },
            RecordValue::GroupMetadata {
                epoch,
                metadata_hash,
            },
        ));
    }
    fn member_key(&self, member: &str) -> (String, String) {
        (self.group_id.clone(), member.to_owned())
    }
    fn put_metadata(&mut self, member: &str, m: MemberMetadata) {
        let (group, member) = self.member_key(member);
        self.emit(Record::put(
            RecordKey::MemberMetadata { group, member },
            RecordValue::MemberMetadata(m),
        ));
    }
    fn put_current(&mut self, member: &str, c: CurrentAssignment) {
        let (group, member) = self.member_key(member);
        self.emit(Record::put(
            RecordKey::CurrentAssignment { group, member },
            RecordValue::CurrentAssignment(c),
        ));
    }
    fn put_target(&mut self, member: &str, a: Assignment) {
        let (group, member) = self.member_key(member);
        self.emit(Record::put(
            RecordKey::TargetAssignmentMember { group, member },
            RecordValue::TargetAssignmentMember(a),
        ));
    }
    /// Removes a member: its current assignment, target and metadata.
    fn remove_member(&mut self, member: &str) {
        let (group, member) = self.member_key(member);
        self.emit(Record::tombstone(RecordKey::CurrentAssignment {
            group: group.clone(),
            member: member.clone(),
        }));
        self.emit(Record::tombstone(RecordKey::TargetAssignmentMember {
            group: group.clone(),
            member: member.clone(),
        }));
        self.emit(Record::tombstone(RecordKey::MemberMetadata {
            group,
            member,
        }));
    }
}

/// Checks a group id: non-empty, at most [`MAX_GROUP_ID_BYTES`].
pub fn validate_group_id(group_id: &str) -> Result<()> {
    if group_id.is_empty() {
        bail!(InvalidGroupId, "group id is empty");
    }
    if group_id.len() > MAX_GROUP_ID_BYTES {
        bail!(
            InvalidGroupId,
            "group id is {} bytes, longer than {MAX_GROUP_ID_BYTES}",
            group_id.len()
        );
    }
    Ok(())
}

fn validate_member_fields(req: &HeartbeatRequest) -> Result<()> {
    for (what, v) in [
        ("member id", Some(req.member_id.as_str())),
        ("new member id", Some(req.new_member_id.as_str())),
        ("instance id", req.instance_id.as_deref()),
        ("client id", Some(req.client_id.as_str())),
        ("rack id", req.rack_id.as_deref()),
    ] {
        if v.is_some_and(|v| v.len() > MAX_MEMBER_ID_BYTES) {
            bail!(
                InvalidRequest,
                "{what} is longer than {MAX_MEMBER_ID_BYTES} bytes"
            );
        }
    }
    if req.instance_id.as_deref() == Some("") {
        bail!(InvalidRequest, "group.instance.id is empty");
    }
    if let Some(Some(r)) = req.subscription.as_ref().map(|s| s.topic_regex.as_deref())
        && let Err(e) = regex::Regex::new(r)
    {
        bail!(InvalidRequest, "subscription regex {r:?} is invalid: {e}");
    }
    if req.rebalance_timeout_ms.is_some_and(|t| t <= 0) {
        bail!(InvalidRequest, "max.poll.interval.ms must be positive");
    }
    Ok(())
}

impl Shard {
    /// An empty shard.
    pub fn new(config: GroupConfig) -> Self {
        Shard {
            config,
            ..Shard::default()
        }
    }

    /// The coordinator settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Applies committed records, in log order.
    pub fn replay<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) {
        for record in records {
            self.replay_one(record);
        }
    }

    /// Applies the committed records of a transactional batch of
    /// `producer_id` (`TxnOffsetCommit`s): held as pending until
    /// [`replay_marker`](Self::replay_marker). Other records are not
    /// written transactionally and are ignored.
    pub fn replay_transactional<'a>(
        &mut self,
        producer_id: i64,
        records: impl IntoIterator<Item = &'a Record>,
    ) {
        for record in records {
            let at = self.replayed;
            self.replayed += 1;
            if let (
                RecordKey::OffsetCommit {
                    group,
                    topic,
                    partition,
                },
                Some(RecordValue::OffsetCommit(v)),
            ) = (&record.key, &record.value)
            {
                self.pending
                    .entry(producer_id)
                    .or_default()
                    .insert((group.clone(), topic.clone(), *partition), (at, v.clone()));
            }
        }
    }

    /// Applies a transaction marker of `producer_id` in the offsets
    /// partition: at COMMIT its pending offsets become committed (each
    /// unless a later non-transactional commit of the same partition is
    /// already in the log, as Kafka), at ABORT they are dropped.
    pub fn replay_marker(&mut self, producer_id: i64, commit: bool) {
        self.replayed += 1;
        let Some(pending) = self.pending.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for ((group, topic, partition), (at, value)) in pending {
            let key = (group, topic, partition);
            if self.committed_at.get(&key).is_some_and(|c| *c > at) {
                continue;
            }
            self.offsets
                .entry(key.0.clone())
                .or_default()
                .insert((key.1.clone(), key.2), value);
            self.committed_at.insert(key, at);
        }
    }

    /// Whether `group_id` has transactional offsets awaiting a marker (for
    /// `partition` if given): an `OffsetFetch` with `require_stable`
    /// answers `UNSTABLE_OFFSET_COMMIT` for those.
    pub fn has_pending_offsets(&self, group_id: &str, partition: Option<(&str, i32)>) -> bool {
        self.pending
            .values()
            .flat_map(|p| p.keys())
            .any(|(g, t, p)| {
                g == group_id && partition.is_none_or(|(topic, part)| t == topic && *p == part)
            })
    }

    fn replay_one(&mut self, record: &Record) {
        let group_id = record.key.group().to_owned();
        let at = self.replayed;
        self.replayed += 1;
        match (&record.key, &record.value) {
            (
                RecordKey::OffsetCommit {
                    topic, partition, ..
                },
                Some(RecordValue::OffsetCommit(v)),
            ) => {
                self.offsets
                    .entry(group_id.clone())
                    .or_default()
                    .insert((topic.clone(), *partition), v.clone());
                self.committed_at
                    .insert((group_id, topic.clone(), *partition), at);
            }
            (
                RecordKey::OffsetCommit {
                    topic, partition, ..
                },
                None,
            ) => {
                self.committed_at
                    .remove(&(group_id.clone(), topic.clone(), *partition));
                if let Some(o) = self.offsets.get_mut(&group_id) {
                    o.remove(&(topic.clone(), *partition));
                    if o.is_empty() {
                        self.offsets.remove(&group_id);
                    }
                }
            }
            _ => {
                let group = self.groups.entry(group_id.clone()).or_default();
                if !group.apply(record) {
                    self.groups.remove(&group_id);
                }
                // Timers of removed members are dropped by `expire` when
                // they fire: a decision may remove and re-add a member id,
                // and its new timer must survive the replay.
            }
        }
    }

    /// Gives every member a fresh session from `now_ms` (after loading).
    pub fn start_sessions(&mut self, now_ms: i64) {
        self.timers.clear();
        for (gid, g) in &self.groups {
            for (mid, m) in &g.members {
                self.timers.insert(
                    (gid.clone(), mid.clone()),
                    Timers {
                        session_deadline_ms: now_ms + i64::from(m.metadata.session_timeout_ms),
                        revocation_deadline_ms: None,
                    },
                );
            }
        }
    }

    /// The consumer group `group_id`, if it has one.
    pub fn group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id)
    }

    /// The members of `group_id` that should heartbeat now
    /// ([`crate::wake::members_to_wake`]); none for an unknown group.
    pub fn members_to_wake(&self, group_id: &str) -> BTreeSet<String> {
        self.groups
            .get(group_id)
            .map(crate::wake::members_to_wake)
            .unwrap_or_default()
    }

    /// Per group, the members to wake because the subscribed topics'
    /// metadata changed ([`crate::wake::members_to_wake_for_metadata`]).
    pub fn members_to_wake_for_metadata(&self, topics: &Topics) -> Vec<(String, BTreeSet<String>)> {
        self.groups
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    crate::wake::members_to_wake_for_metadata(g, topics),
                )
            })
            .filter(|(_, m)| !m.is_empty())
            .collect()
    }

    /// Committed offsets of `group_id`.
    pub fn offsets(&self, group_id: &str) -> Option<&BTreeMap<(String, i32), OffsetCommitValue>> {
        self.offsets.get(group_id)
    }

    /// Every group's committed offsets (transactional offsets still
    /// pending are not committed yet).
    pub fn committed_offsets(&self) -> Vec<crate::lag::CommittedOffset> {
        self.offsets
            .iter()
            .flat_map(|(group_id, offsets)| {
                offsets
                    .iter()
                    .map(|((topic, partition), v)| crate::lag::CommittedOffset {
                        group_id: group_id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        offset: v.offset,
                    })
            })
            .collect()
    }

    /// Processes a heartbeat at `now_ms` against the cluster's `topics`.
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<Decision<HeartbeatResponse>> {
        self.heartbeat_with(req, topics, now_ms, false)
    }

    /// [`heartbeat`](Self::heartbeat); with `settle`, the member's
    /// reconciliation runs to a fixpoint against its `owned` report (a
    /// classic member that reports owning nothing of what it must revoke
    /// moves on in the same request: it has no later heartbeat that
    /// reports it).
    fn heartbeat_with(
        &mut self,
        req: &HeartbeatRequest,
        topics: &Topics,
        now_ms: i64,
        settle: bool,
    ) -> Result<Decision<HeartbeatResponse>> {
        validate_group_id(&req.group_id)?;
        validate_member_fields(req)?;
        if let Some(t) = req.session_timeout_ms
            && !(self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms)
                .contains(&t)
        {
            bail!(
                InvalidSessionTimeout,
                "session.timeout.ms {t} is outside the broker's bounds [{}, {}]",
                self.config.min_session_timeout_ms,
                self.config.max_session_timeout_ms
            );
        }
        if let Some(list) = &req.assignors {
            if list.is_empty() {
                bail!(
                    InconsistentGroupProtocol,
                    "partition.assignment.strategy is empty"
                );
            }
            if let Some(bad) = list.iter().find(|n| Assignor::from_name(n).is_none()) {
                bail!(
                    InconsistentGroupProtocol,
                    "unknown partition.assignment.strategy {bad:?}"
                );
            }
        }
        let group = self.groups.get(&req.group_id).cloned().unwrap_or_default();
        let mut e = Emitter {
            group_id: req.group_id.clone(),
            group,
            records: Vec::new(),
        };
        match req.member_epoch {
            LEAVE_GROUP_MEMBER_EPOCH | LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                return self.leave(e, req, topics);
            }
            JOIN_GROUP_MEMBER_EPOCH => self.join(&mut e, req)?,
            epoch if epoch > 0 => self.check_epoch(&e.group, req, epoch)?,
            epoch => bail!(InvalidRequest, "member epoch {epoch} is invalid"),
        }
        let member_id = self.resolved_member_id(&e.group, req);
        self.update_metadata(&mut e, &member_id, req)?;
        self.maybe_bump_for_metadata(&mut e, topics);
        self.maybe_compute_target(&mut e, topics);
        let held_by_others: BTreeSet<(Uuid, i32)> = e
            .group
            .members
            .iter()
            .filter(|(id, _)| **id != member_id)
            .flat_map(|(_, m)| m.held())
            .collect();
        let member = e.group.members.get(&member_id).cloned().unwrap_or_default();
        let eager = e.group.chosen_assignor().is_some_and(Assignor::is_eager);
        let target = e.group.target.get(&member_id).cloned().unwrap_or_default();
        let mut next = reconcile(
            &member.current,
            &target,
            e.group.assignment_epoch,
            eager,
            req.owned.as_ref(),
            &held_by_others,
        );
        // Revoke, then advance: at most two more steps reach the fixpoint.
        for _ in 0..2 {
            if !settle || req.owned.is_none() {
                break;
            }
            let again = reconcile(
                &next,
                &target,
                e.group.assignment_epoch,
                eager,
                req.owned.as_ref(),
                &held_by_others,
            );
            if again == next {
                break;
            }
            next = again;
        }
        if next != member.current {
            e.put_current(&member_id, next.clone());
        }
        let session = req
            .session_timeout_ms
            .unwrap_or(member.metadata.session_timeout_ms);
        let revocation_deadline_ms = if next.pending_revocation.is_empty() {
            None
        } else {
            let since = self
                .timers
                .get(&(req.group_id.clone(), member_id.clone()))
                .and_then(|t| t.revocation_deadline_ms);
            Some(since.unwrap_or(now_ms + i64::from(member.metadata.rebalance_timeout_ms)))
        };
        self.timers.insert(
            (req.group_id.clone(), member_id.clone()),
            Timers {
                session_deadline_ms: now_ms + i64::from(session),
                revocation_deadline_ms,
            },
        );
        Ok(Decision {
            records: e.records,
            response: HeartbeatResponse {
                member_id,
                member_epoch: next.member_epoch,
                heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                assignment: next.assigned,
            },
        })
    }

    fn resolved_member_id(&self, group: &ConsumerGroup, req: &HeartbeatRequest) -> String {
        if req.member_epoch == JOIN_GROUP_MEMBER_EPOCH {
            if let Some(iid) = &req.instance_id
                && let Some((id, _)) = group.static_member(iid)
            {
                return id.clone();
            }
            if req.member_id.is_empty() {
                return req.new_member_id.clone();
            }
        }
        req.member_id.clone()
    }

    /// A join: a new member, a rejoin under the same id (reset), or a static
    /// member taking over its instance id's assignment.
    fn join(&self, e: &mut Emitter, req: &HeartbeatRequest) -> Result<()> {
        if req.member_id.is_empty() && req.new_member_id.is_empty() {
            bail!(InvalidRequest, "a join needs a member id");
        }
        if req.subscription.is_none() {
            bail!(InvalidRequest, "a join needs a subscription");
        }
        let new_id = if req.member_id.is_empty() {
            req.new_member_id.clone()
        } else {
            req.member_id.clone()
        };
        if let Some(iid) = &req.instance_id
            && let Some((old_id, old)) = e.group.static_member(iid)
        {
            let (old_id, old) = (old_id.clone(), old.clone());
            if old_id == new_id {
                return Ok(());
            }
            // The new incarnation takes the old one's place: same target,
            // same partitions, same epoch; no rebalance. A live old
            // incarnation is fenced (FENCED_INSTANCE_ID on its next call).
            let target = e.group.target.get(&old_id).cloned().unwrap_or_default();
            let mut current = old.current.clone();
            if old.is_static_left() {
                current.member_epoch = current.previous_member_epoch;
            }
            e.remove_member(&old_id);
            e.put_metadata(&new_id, old.metadata.clone());
            e.put_target(&new_id, target);
            e.put_current(&new_id, current);
            return Ok(());
        }
        if e.group.members.contains_key(&new_id) {
            // A member that lost its state rejoins: it starts over.
            e.remove_member(&new_id);
            let hash = e.group.metadata_hash;
            e.bump_epoch(hash);
        }
        Ok(())
    }

    fn check_epoch(&self, group: &ConsumerGroup, req: &HeartbeatRequest, epoch: i32) -> Result<()> {
        let Some(member) = group.members.get(&req.member_id) else {
            if let Some(iid) = &req.instance_id
                && group.static_member(iid).is_some()
            {
                bail!(
                    FencedInstanceId,
                    "instance id {iid:?} is now held by another member of group {:?}",
                    req.group_id
                );
            }
            bail!(
                UnknownMemberId,
                "member {:?} is not in group {:?}",
                req.member_id,
                req.group_id
            );
        };
        let c = &member.current;
        if epoch == c.member_epoch {
            return Ok(());
        }
        let owned_within = req.owned.as_ref().is_none_or(|o| {
            iter_assignment(o).all(|(t, p)| c.assigned.get(&t).is_some_and(|s| s.contains(&p)))
        });
        if epoch == c.previous_member_epoch && owned_within {
            return Ok(());
        }
        bail!(
            FencedMemberEpoch,
            "member {:?} sent epoch {epoch}, its epoch is {}",
            req.member_id,
            c.member_epoch
        )
    }

    fn update_metadata(
        &self,
        e: &mut Emitter,
        member_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<()> {
        let existing = e.group.members.get(member_id).map(|m| m.metadata.clone());
        let is_new = existing.is_none();
        let old = existing.unwrap_or_else(|| MemberMetadata {
            rebalance_timeout_ms: crate::config::DEFAULT_REBALANCE_TIMEOUT_MS,
            session_timeout_ms: crate::config::DEFAULT_SESSION_TIMEOUT_MS,
            assignors: crate::assignor::DEFAULT_ASSIGNORS
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
            ..MemberMetadata::default()
        });
        let mut m = old.clone();
        if req.instance_id.is_some() {
            m.instance_id = req.instance_id.clone();
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if !req.client_id.is_empty() {
            m.client_id = req.client_id.clone();
        }
        if !req.client_host.is_empty() {
            m.client_host = req.client_host.clone();
        }
        if let Some(s) = &req.subscription {
            let mut names = s.topic_names.clone();
            names.sort();
            names.dedup();
            m.subscribed_topic_names = names;
            m.subscribed_topic_regex = s.topic_regex.clone();
        }
        if let Some(t) = req.rebalance_timeout_ms {
            m.rebalance_timeout_ms = t;
        }
        if let Some(t) = req.session_timeout_ms {
            m.session_timeout_ms = t;
        }
        if let Some(a) = &req.assignors {
            m.assignors = a
                .iter()
                .filter_map(|n| Assignor::from_name(n))
                .map(|a| a.name().to_owned())
                .collect();
        }
        if !is_new && m == old {
            return Ok(());
        }
        // The group must still have an assignor every member supports.
        let others = e
            .group
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id)
            .map(|(_, o)| o.metadata.assignors.as_slice());
        if crate::group::choose_assignor(others.chain(std::iter::once(m.assignors.as_slice())))
            .is_none()
        {
            bail!(
                InconsistentGroupProtocol,
                "assignors {:?} have none in common with the members of group {:?}",
                m.assignors,
                req.group_id
            );
        }
        let assignment_relevant = is_new
            || m.subscribed_topic_names != old.subscribed_topic_names
            || m.subscribed_topic_regex != old.subscribed_topic_regex
            || m.assignors != old.assignors;
        e.put_metadata(member_id, m);
        if assignment_relevant {
            let hash = e.group.metadata_hash;
            e.bump_epoch(hash);
        }
        Ok(())
    }

    /// Bumps the group epoch when the subscribed topics changed (created,
    /// deleted, partitions added, a regex now matching a new topic).
    fn maybe_bump_for_metadata(&self, e: &mut Emitter, topics: &Topics) {
        let hash = e.group.subscribed_metadata_hash(topics);
        if hash != e.group.metadata_hash {
            e.bump_epoch(hash);
        }
    }

    fn maybe_compute_target(&self, e: &mut Emitter, topics: &Topics) {
        if e.group.epoch <= e.group.assignment_epoch || e.group.members.is_empty() {
            return;
        }
        let Some(assignor) = e.group.chosen_assignor() else {
            return;
        };
        let specs: BTreeMap<String, MemberSpec> = e
            .group
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    MemberSpec {
                        subscribed: ConsumerGroup::subscribed_ids(&m.metadata, topics),
                        previous: e.group.target.get(id).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect();
        let target = assignor.assign(&specs, topics);
        for (id, a) in target {
            if e.group.target.get(&id) != Some(&a) {
                e.put_target(&id, a);
            }
        }
        let assignment_epoch = e.group.epoch;
        e.emit(Record::put(
            RecordKey::TargetAssignmentMetadata {
                group: e.group_id.clone(),
            },
            RecordValue::TargetAssignmentMetadata { assignment_epoch },
        ));
    }

    fn leave(
        &mut self,
        mut e: Emitter,
        req: &HeartbeatRequest,
        topics: &Topics,
    ) -> Result<Decision<HeartbeatResponse>> {
        let Some(member) = e.group.members.get(&req.member_id).cloned() else {
            bail!(
                UnknownMemberId,
                "member {:?} is not in group {:?}",
                req.member_id,
                req.group_id
            );
        };
        let static_leave = req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
            && member.metadata.instance_id.is_some();
        if static_leave {
            // Keep the assignment for the next incarnation; the session
            // timer keeps running and removes the member if it does not
            // come back in time.
            let mut c = member.current.clone();
            c.previous_member_epoch = c.member_epoch;
            c.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            e.put_current(&req.member_id, c);
        } else {
            e.remove_member(&req.member_id);
            let hash = e.group.subscribed_metadata_hash(topics);
            e.bump_epoch(hash);
            self.timers
                .remove(&(req.group_id.clone(), req.member_id.clone()));
        }
        Ok(Decision {
            records: e.records,
            response: HeartbeatResponse {
                member_id: req.member_id.clone(),
                member_epoch: if static_leave {
                    LEAVE_GROUP_STATIC_MEMBER_EPOCH
                } else {
                    LEAVE_GROUP_MEMBER_EPOCH
                },
                heartbeat_interval_ms: 0,
                assignment: Assignment::new(),
            },
        })
    }

    /// Removes members whose session expired or who did not revoke within
    /// their rebalance timeout. Returns the records; the timers of the
    /// removed members are dropped at once so a second call does not
    /// decide the same removal again.
    pub fn expire(&mut self, topics: &Topics, now_ms: i64) -> Vec<Record> {
        let expired: Vec<(String, String)> = self
            .timers
            .iter()
            .filter(|(_, t)| {
                t.session_deadline_ms <= now_ms
                    || t.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut records = Vec::new();
        let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
        self.classic.expire(now_ms);
        for (g, m) in expired {
            self.classic.forget(&g, &m);
            self.timers.remove(&(g.clone(), m.clone()));
            by_group.entry(g).or_default().push(m);
        }
        for (gid, members) in by_group {
            let Some(group) = self.groups.get(&gid) else {
                continue;
            };
            let mut e = Emitter {
                group_id: gid,
                group: group.clone(),
                records: Vec::new(),
            };
            let mut removed = false;
            for m in members {
                if e.group.members.contains_key(&m) {
                    e.remove_member(&m);
                    removed = true;
                }
            }
            if removed {
                let hash = e.group.subscribed_metadata_hash(topics);
                e.bump_epoch(hash);
                // Compute the new target now, so the survivors learn it on
                // their next heartbeat without a second round.
                self.maybe_compute_target(&mut e, topics);
            }
            records.extend(e.records);
        }
        records
    }

    /// The earliest session or revocation deadline, for the host's timer.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.timers
            .values()
            .flat_map(|t| std::iter::once(t.session_deadline_ms).chain(t.revocation_deadline_ms))
            .min()
    }

    /// Validates an `OffsetCommit` and returns its records.
    pub fn commit_offsets(
        &self,
        req: &CommitRequest,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<Vec<Record>> {
        validate_group_id(&req.group_id)?;
        let group = self.groups.get(&req.group_id);
        let has_members = group.is_some_and(|g| !g.members.is_empty());
        if req.member_epoch < 0 || req.member_id.is_empty() {
            if has_members {
                bail!(
                    UnknownMemberId,
                    "group {:?} has members; a commit without a current member id is refused",
                    req.group_id
                );
            }
        } else {
            self.current_member(&req.group_id, &req.member_id, req.member_epoch, "committed")?;
        }
        let mut records = Vec::with_capacity(req.offsets.len());
        for o in &req.offsets {
            let Some(t) = topics
                .by_name(&o.topic)
                .filter(|t| (0..t.partitions).contains(&o.partition))
            else {
                bail!(
                    UnknownTopicOrPartition,
                    "{}-{} does not exist",
                    o.topic,
                    o.partition
                );
            };
            if o.offset < 0 {
                bail!(
                    InvalidRequest,
                    "offset {} for {}-{} is negative",
                    o.offset,
                    t.name,
                    o.partition
                );
            }
            if o.metadata.len() > self.config.offset_metadata_max_bytes {
                bail!(
                    OffsetMetadataTooLarge,
                    "metadata for {}-{} is {} bytes, more than offset.metadata.max.bytes {}",
                    o.topic,
                    o.partition,
                    o.metadata.len(),
                    self.config.offset_metadata_max_bytes
                );
            }
            records.push(Record::put(
                RecordKey::OffsetCommit {
                    group: req.group_id.clone(),
                    topic: o.topic.clone(),
                    partition: o.partition,
                },
                RecordValue::OffsetCommit(OffsetCommitValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp_ms: now_ms,
                }),
            ));
        }
        Ok(records)
    }

    /// The member `member_id` of `group_id` if `member_epoch` is its
    /// current epoch: a newer one is FENCED_MEMBER_EPOCH, an older one
    /// STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID (a group
    /// that does not exist GROUP_ID_NOT_FOUND). `what` is the verb of the
    /// messages (`committed`, `read`).
    fn current_member(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        what: &str,
    ) -> Result<&Member> {
        let group = self.groups.get(group_id);
        let Some(member) = group.and_then(|g| g.members.get(member_id)) else {
            if group.is_none() {
                bail!(GroupIdNotFound, "group {group_id:?} has no members");
            }
            bail!(
                UnknownMemberId,
                "member {member_id:?} is not in group {group_id:?}"
            );
        };
        let epoch = member.current.member_epoch;
        if member_epoch > epoch {
            bail!(
                FencedMemberEpoch,
                "member {member_id:?} {what} with epoch {member_epoch}, its epoch is {epoch}"
            );
        }
        if member_epoch < epoch {
            bail!(
                StaleMemberEpoch,
                "member {member_id:?} {what} with epoch {member_epoch}, its epoch is {epoch}"
            );
        }
        Ok(member)
    }

    /// What a member may read now (`ConsumeMemberRecords`): the partitions
    /// it owns if `member_epoch` is its current epoch (errors as for a
    /// commit). Partitions pending revocation are left out: the member
    /// was told to give them up.
    pub fn member_assignment(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<Assignment> {
        validate_group_id(group_id)?;
        if member_id.is_empty() || member_epoch <= 0 {
            bail!(
                UnknownMemberId,
                "reading as a member needs a member id and its epoch (got {member_id:?}, {member_epoch})"
            );
        }
        let m = self.current_member(group_id, member_id, member_epoch, "read")?;
        Ok(m.current.assigned.clone())
    }

    /// Validates a `TxnOffsetCommit` and returns its records: the same
    /// checks and records as [`commit_offsets`](Self::commit_offsets); the
    /// host appends them as a transactional batch of the request's producer
    /// id and epoch (after the transaction coordinator added the offsets
    /// partition to the transaction), and replays them with
    /// [`replay_transactional`](Self::replay_transactional).
    pub fn txn_commit_offsets(
        &self,
        req: &TxnCommitRequest,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<Vec<Record>> {
        if req.producer_id < 0 || req.producer_epoch < 0 {
            bail!(
                InvalidRequest,
                "transactional offset commit without a producer id and epoch ({}, {})",
                req.producer_id,
                req.producer_epoch
            );
        }
        self.commit_offsets(&req.commit, topics, now_ms)
    }

    /// Committed offsets of `group_id`: of `partitions`, or all when `None`
    /// (`None` values: nothing committed). An unknown group has none, as in
    /// Kafka.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<FetchedOffset>> {
        validate_group_id(group_id)?;
        let committed = self.offsets.get(group_id);
        Ok(match partitions {
            None => committed
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
            Some(ps) => ps
                .iter()
                .map(|k| (k.clone(), committed.and_then(|o| o.get(k)).cloned()))
                .collect(),
        })
    }

    /// `OffsetDelete`: refused for a topic a member subscribes to.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        topics: &Topics,
    ) -> Result<Vec<Record>> {
        validate_group_id(group_id)?;
        let group = self.groups.get(group_id);
        if group.is_none() && !self.offsets.contains_key(group_id) {
            bail!(GroupIdNotFound, "group {group_id:?} does not exist");
        }
        let subscribed: BTreeSet<Uuid> = group
            .map(|g| {
                g.members
                    .values()
                    .flat_map(|m| ConsumerGroup::subscribed_ids(&m.metadata, topics))
                    .collect()
            })
            .unwrap_or_default();
        let committed = self.offsets.get(group_id);
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if topics
                .by_name(topic)
                .is_some_and(|t| subscribed.contains(&t.id))
            {
                bail!(
                    GroupSubscribedToTopic,
                    "group {group_id:?} has members subscribed to topic {topic:?}"
                );
            }
            if committed.is_some_and(|o| o.contains_key(&(topic.clone(), *partition))) {
                records.push(Record::tombstone(RecordKey::OffsetCommit {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *partition,
                }));
            }
        }
        Ok(records)
    }

    /// `DeleteGroups`: refused while the group has members.
    pub fn delete_group(&self, group_id: &str) -> Result<Vec<Record>> {
        validate_group_id(group_id)?;
        let group = self.groups.get(group_id);
        if group.is_none() && !self.offsets.contains_key(group_id) {
            bail!(GroupIdNotFound, "group {group_id:?} does not exist");
        }
        if let Some(g) = group
            && !g.members.is_empty()
        {
            let ids: Vec<&str> = g.members.keys().map(String::as_str).collect();
            bail!(
                NonEmptyGroup,
                "group {group_id:?} has members: {}",
                ids.join(", ")
            );
        }
        if self.has_pending_offsets(group_id, None) {
            bail!(
                NonEmptyGroup,
                "group {group_id:?} has transactional offsets awaiting their transaction's end"
            );
        }
        Ok(self.group_tombstones(group_id))
    }

    fn group_tombstones(&self, group_id: &str) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .offsets
            .get(group_id)
            .into_iter()
            .flat_map(|o| o.keys())
            .map(|(topic, partition)| {
                Record::tombstone(RecordKey::OffsetCommit {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *partition,
                })
            })
            .collect();
        if let Some(g) = self.groups.get(group_id) {
            for id in g.target.keys() {
                records.push(Record::tombstone(RecordKey::TargetAssignmentMember {
                    group: group_id.to_owned(),
                    member: id.clone(),
                }));
            }
            records.push(Record::tombstone(RecordKey::TargetAssignmentMetadata {
                group: group_id.to_owned(),
            }));
            records.push(Record::tombstone(RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            }));
        }
        records
    }

    /// Offsets of groups without members whose last commit is older than
    /// `offsets.retention.minutes`; a group left with nothing is deleted.
    pub fn expire_offsets(&self, now_ms: i64) -> Vec<Record> {
        let mut records = Vec::new();
        for (gid, offsets) in &self.offsets {
            if self.groups.get(gid).is_some_and(|g| !g.members.is_empty())
                || self.has_pending_offsets(gid, None)
            {
                continue;
            }
            let expired: Vec<&(String, i32)> = offsets
                .iter()
                .filter(|(_, v)| v.commit_timestamp_ms + self.config.offsets_retention_ms <= now_ms)
                .map(|(k, _)| k)
                .collect();
            if expired.len() == offsets.len() {
                records.extend(self.group_tombstones(gid));
            } else {
                records.extend(expired.into_iter().map(|(topic, partition)| {
                    Record::tombstone(RecordKey::OffsetCommit {
                        group: gid.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                }));
            }
        }
        records
    }

    /// Every group of the shard: consumer groups and groups with only
    /// committed offsets.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        let ids: BTreeSet<&String> = self.groups.keys().chain(self.offsets.keys()).collect();
        ids.into_iter()
            .map(|id| match self.groups.get(id) {
                Some(g) => GroupListing {
                    group_id: id.clone(),
                    state: g.state(),
                    protocol_type: "consumer".to_owned(),
                    members: g.members.len(),
                },
                None => GroupListing {
                    group_id: id.clone(),
                    state: GroupState::Empty,
                    protocol_type: String::new(),
                    members: 0,
                },
            })
            .collect()
    }

    /// `DescribeGroups`.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        validate_group_id(group_id)?;
        match self.groups.get(group_id) {
            Some(g) => Ok(GroupDescription {
                group_id: group_id.to_owned(),
                state: g.state(),
                protocol_type: "consumer".to_owned(),
                assignor: g.chosen_assignor(),
                epoch: g.epoch,
                assignment_epoch: g.assignment_epoch,
                members: g
                    .members
                    .iter()
                    .map(|(id, m): (&String, &Member)| MemberDescription {
                        member_id: id.clone(),
                        metadata: m.metadata.clone(),
                        current: m.current.clone(),
                        target: g.target.get(id).cloned().unwrap_or_default(),
                    })
                    .collect(),
            }),
            None if self.offsets.contains_key(group_id) => Ok(GroupDescription {
                group_id: group_id.to_owned(),
                state: GroupState::Empty,
                protocol_type: String::new(),
                assignor: None,
                epoch: 0,
                assignment_epoch: 0,
                members: Vec::new(),
            }),
            None => Err(GroupError::new(
                ErrorKind::GroupIdNotFound,
                format!("group {group_id:?} does not exist"),
            )),
        }
    }
}

pub mod classic;

#[cfg(test)]
#[path = "shard_test.rs"]
mod tests;
