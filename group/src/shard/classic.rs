//! Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) on the same [`Shard`], as Kafka 4 serves classic members of
//! a consumer group (KIP-848's "upgrade" path): every request becomes a
//! heartbeat of the one state machine, so classic and KIP-848 members share
//! a group, the assignors, the single-owner rule and the records.
//!
//! * **JoinGroup** is a heartbeat that carries the member's subscription,
//!   its `partition.assignment.strategy` (the protocol names) and, from the
//!   subscription's `owned_partitions`, what it owns: a join (epoch 0) for
//!   a new member, its current epoch for a known one. The generation
//!   answered is the member's epoch afterwards; the protocol name is the
//!   group's assignor. Nobody is made leader: the assignment is computed
//!   by the coordinator (the assignor named by the protocol), so a
//!   client-side assignor Strom does not implement cannot be used
//!   (INCONSISTENT_GROUP_PROTOCOL when a member names none Strom knows).
//! * **SyncGroup** answers the member's current assignment (what it may
//!   own now, without what it must revoke). Assignments a client sends are
//!   ignored.
//! * **Heartbeat** keeps the session and asks the state machine what the
//!   member would be told now, without writing it: if that differs from
//!   what its last SyncGroup gave it (a new target, a partition to revoke,
//!   a partition now free), the answer is REBALANCE_IN_PROGRESS and the
//!   member rejoins, reporting what it owns. Its epoch (the generation)
//!   changes only at a JoinGroup, so its commits stay valid meanwhile.
//! * **LeaveGroup** is a leave heartbeat.
//!
//! A JoinGroup v4+ without a member id is answered MEMBER_ID_REQUIRED with
//! a fresh id (KIP-394); the id is remembered for its session timeout and
//! only then accepted. The soft state here (ids handed out, what each
//! member was last synced with) is not in the log: after a coordinator
//! move every classic member is told to rejoin, which is safe.

use std::collections::BTreeMap;

use super::{Decision, HeartbeatRequest, Shard, Subscription};
use crate::assignor::Assignor;
use crate::error::{Result, bail};
use crate::records::{Assignment, Record};
use crate::shard::validate_group_id;
use crate::topics::Topics;
use crate::{JOIN_GROUP_MEMBER_EPOCH, LEAVE_GROUP_MEMBER_EPOCH};

/// The only protocol type served: Kafka's consumer protocol.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Soft state of the classic protocol.
#[derive(Debug, Clone, Default)]
pub(super) struct ClassicState {
    /// Member ids handed out with MEMBER_ID_REQUIRED, by (group, member),
    /// with the time they are forgotten.
    issued: BTreeMap<(String, String), i64>,
    /// What each member's last SyncGroup gave it: (generation, assignment).
    synced: BTreeMap<(String, String), (i32, Assignment)>,
}

impl ClassicState {
    pub(super) fn expire(&mut self, now_ms: i64) {
        self.issued.retain(|_, deadline| *deadline > now_ms);
    }

    pub(super) fn forget(&mut self, group: &str, member: &str) {
        self.synced.remove(&(group.to_owned(), member.to_owned()));
    }
}

/// A `JoinGroup` with the consumer protocol's subscription decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicJoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty for a new member.
    pub member_id: String,
    /// A fresh member id the host made (`<client.id>-<uuid>`).
    pub new_member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// JoinGroup v4+: a new member without an id first gets
    /// MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// The protocol type (`consumer`).
    pub protocol_type: String,
    /// The protocol names in the client's order: its assignors.
    pub protocol_names: Vec<String>,
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Partitions the member owns now, by topic name.
    pub owned: Vec<(String, Vec<i32>)>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms`.
    pub rebalance_timeout_ms: i32,
}

/// The answer to a `JoinGroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassicJoinResponse {
    /// Rejoin with this member id (KIP-394); nothing was written.
    MemberIdRequired {
        /// The id to use.
        member_id: String,
    },
    /// Joined.
    Joined {
        /// The member's id.
        member_id: String,
        /// Its generation (member epoch).
        generation: i32,
        /// The group's assignor: the protocol to name in the answer.
        protocol_name: String,
    },
}

/// The answer to a `SyncGroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicSyncResponse {
    /// The group's assignor.
    pub protocol_name: String,
    /// What the member may own now.
    pub assignment: Assignment,
}

/// The answer to a classic `Heartbeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicHeartbeatResponse {
    /// Nothing changes for the member.
    Ok,
    /// The member must rejoin (REBALANCE_IN_PROGRESS).
    RebalanceInProgress,
}

/// A member of a `LeaveGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicLeave {
    /// Member id; may be empty when `instance_id` is given (an admin
    /// removing a static member).
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
}

fn owned_ids(owned: &[(String, Vec<i32>)], topics: &Topics) -> Assignment {
    let mut out = Assignment::new();
    for (name, parts) in owned {
        if let Some(t) = topics.by_name(name) {
            out.entry(t.id).or_default().extend(
                parts
                    .iter()
                    .copied()
                    .filter(|p| (0..t.partitions).contains(p)),
            );
        }
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

impl Shard {
    /// `JoinGroup` of a classic member at `now_ms`.
    pub fn classic_join(
        &mut self,
        req: &ClassicJoinRequest,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<Decision<ClassicJoinResponse>> {
        validate_group_id(&req.group_id)?;
        if req.protocol_type != CONSUMER_PROTOCOL_TYPE {
            bail!(
                InconsistentGroupProtocol,
                "protocol type {:?} is not {CONSUMER_PROTOCOL_TYPE:?}",
                req.protocol_type
            );
        }
        let assignors: Vec<String> = req
            .protocol_names
            .iter()
            .filter(|n| Assignor::from_name(n).is_some())
            .cloned()
            .collect();
        if assignors.is_empty() {
            bail!(
                InconsistentGroupProtocol,
                "none of the protocols {:?} is an assignor the coordinator runs (range, roundrobin, sticky, cooperative-sticky)",
                req.protocol_names
            );
        }
        let group = self.groups.get(&req.group_id);
        let key = |m: &str| (req.group_id.clone(), m.to_owned());
        let existing = group
            .filter(|_| !req.member_id.is_empty())
            .and_then(|g| g.members.get(&req.member_id));
        let member_epoch = if let Some(m) = existing {
            if let Some(iid) = &req.instance_id
                && m.metadata.instance_id.as_deref() != Some(iid.as_str())
            {
                bail!(
                    FencedInstanceId,
                    "member {:?} does not hold instance id {iid:?}",
                    req.member_id
                );
            }
            if m.current.member_epoch > 0 {
                m.current.member_epoch
            } else {
                JOIN_GROUP_MEMBER_EPOCH
            }
        } else if req.member_id.is_empty() {
            if req.instance_id.is_none() && req.require_known_member_id {
                let deadline = now_ms + i64::from(req.session_timeout_ms.max(0));
                self.classic
                    .issued
                    .insert(key(&req.new_member_id), deadline);
                return Ok(Decision {
                    records: Vec::new(),
                    response: ClassicJoinResponse::MemberIdRequired {
                        member_id: req.new_member_id.clone(),
                    },
                });
            }
            JOIN_GROUP_MEMBER_EPOCH
        } else if self.classic.issued.contains_key(&key(&req.member_id)) {
            JOIN_GROUP_MEMBER_EPOCH
        } else {
            if let Some(iid) = &req.instance_id
                && group.is_some_and(|g| g.static_member(iid).is_some())
            {
                bail!(
                    FencedInstanceId,
                    "instance id {iid:?} is held by another member of group {:?}",
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
        let hb = HeartbeatRequest {
            group_id: req.group_id.clone(),
            member_id: req.member_id.clone(),
            new_member_id: req.new_member_id.clone(),
            member_epoch,
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: Some(req.rebalance_timeout_ms),
            session_timeout_ms: Some(req.session_timeout_ms),
            subscription: Some(Subscription {
                topic_names: req.topics.clone(),
                topic_regex: None,
            }),
            assignors: Some(assignors),
            owned: Some(owned_ids(&req.owned, topics)),
        };
        let d = self.heartbeat_with(&hb, topics, now_ms, true)?;
        let member_id = d.response.member_id.clone();
        self.classic.issued.remove(&key(&req.member_id));
        self.classic.forget(&req.group_id, &member_id);
        let protocol_name = self.assignor_after(&req.group_id, &d.records)?;
        Ok(Decision {
            records: d.records,
            response: ClassicJoinResponse::Joined {
                member_id,
                generation: d.response.member_epoch,
                protocol_name,
            },
        })
    }

    /// The name of the assignor `group_id` uses once `records` are applied.
    fn assignor_after(&self, group_id: &str, records: &[Record]) -> Result<String> {
        let mut g = self.groups.get(group_id).cloned().unwrap_or_default();
        for r in records {
            g.apply(r);
        }
        match g.chosen_assignor() {
            Some(a) => Ok(a.name().to_owned()),
            None => bail!(
                InconsistentGroupProtocol,
                "the members of group {group_id:?} have no assignor in common"
            ),
        }
    }

    /// Checks that `member_id` is in `group_id` at `generation`: an unknown
    /// member is UNKNOWN_MEMBER_ID (FENCED_INSTANCE_ID when its instance id
    /// is held by another), another generation ILLEGAL_GENERATION.
    fn classic_member(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<()> {
        validate_group_id(group_id)?;
        let group = self.groups.get(group_id);
        let Some(m) = group.and_then(|g| g.members.get(member_id)) else {
            if let Some(iid) = instance_id
                && group.is_some_and(|g| g.static_member(iid).is_some())
            {
                bail!(
                    FencedInstanceId,
                    "instance id {iid:?} is held by another member of group {group_id:?}"
                );
            }
            bail!(
                UnknownMemberId,
                "member {member_id:?} is not in group {group_id:?}"
            );
        };
        if let Some(iid) = instance_id
            && m.metadata.instance_id.as_deref() != Some(iid)
        {
            bail!(
                FencedInstanceId,
                "member {member_id:?} does not hold instance id {iid:?}"
            );
        }
        if generation != m.current.member_epoch {
            bail!(
                IllegalGeneration,
                "member {member_id:?} sent generation {generation}, its generation is {}",
                m.current.member_epoch
            );
        }
        Ok(())
    }

    /// `SyncGroup`: the member's current assignment. `protocol_type` and
    /// `protocol_name`, when the client sends them (v5+), must match.
    pub fn classic_sync(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        now_ms: i64,
    ) -> Result<ClassicSyncResponse> {
        self.classic_member(group_id, member_id, instance_id, generation)?;
        let protocol_name = self.assignor_after(group_id, &[])?;
        if let Some(t) = protocol.0
            && t != CONSUMER_PROTOCOL_TYPE
        {
            bail!(
                InconsistentGroupProtocol,
                "protocol type {t:?} is not {CONSUMER_PROTOCOL_TYPE:?}"
            );
        }
        if let Some(n) = protocol.1
            && n != protocol_name
        {
            bail!(
                InconsistentGroupProtocol,
                "protocol {n:?} is not the group's {protocol_name:?}"
            );
        }
        let key = (group_id.to_owned(), member_id.to_owned());
        let Some(m) = self
            .groups
            .get(group_id)
            .and_then(|g| g.members.get(member_id))
        else {
            bail!(
                UnknownMemberId,
                "member {member_id:?} is not in group {group_id:?}"
            );
        };
        let assignment = m.current.assigned.clone();
        let session = i64::from(m.metadata.session_timeout_ms);
        if let Some(t) = self.timers.get_mut(&key) {
            t.session_deadline_ms = now_ms + session;
        }
        self.classic
            .synced
            .insert(key, (generation, assignment.clone()));
        Ok(ClassicSyncResponse {
            protocol_name,
            assignment,
        })
    }

    /// A classic `Heartbeat`: see the module doc. Writes nothing.
    pub fn classic_heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<ClassicHeartbeatResponse> {
        self.classic_member(group_id, member_id, instance_id, generation)?;
        let hb = HeartbeatRequest {
            group_id: group_id.to_owned(),
            member_id: member_id.to_owned(),
            member_epoch: generation,
            instance_id: instance_id.map(str::to_owned),
            ..HeartbeatRequest::default()
        };
        // What the member would be told now; not written (its epoch moves
        // at its next JoinGroup), but its session is refreshed.
        let d = self.heartbeat_with(&hb, topics, now_ms, false)?;
        let key = (group_id.to_owned(), member_id.to_owned());
        let unchanged = d.records.is_empty()
            && self.classic.synced.get(&key)
                == Some(&(d.response.member_epoch, d.response.assignment));
        Ok(if unchanged {
            ClassicHeartbeatResponse::Ok
        } else {
            ClassicHeartbeatResponse::RebalanceInProgress
        })
    }

    /// `LeaveGroup` of one member.
    pub fn classic_leave(
        &mut self,
        group_id: &str,
        leave: &ClassicLeave,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<Vec<Record>> {
        validate_group_id(group_id)?;
        let group = self.groups.get(group_id);
        let member_id = match (&leave.instance_id, leave.member_id.as_str()) {
            (Some(iid), member_id) => {
                let Some((held_by, _)) = group.and_then(|g| g.static_member(iid)) else {
                    bail!(
                        UnknownMemberId,
                        "no member of group {group_id:?} holds instance id {iid:?}"
                    );
                };
                if !member_id.is_empty() && member_id != held_by {
                    bail!(
                        FencedInstanceId,
                        "instance id {iid:?} is held by another member of group {group_id:?}"
                    );
                }
                held_by.clone()
            }
            (None, member_id) => member_id.to_owned(),
        };
        let hb = HeartbeatRequest {
            group_id: group_id.to_owned(),
            member_id: member_id.clone(),
            member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
            ..HeartbeatRequest::default()
        };
        let d = self.heartbeat_with(&hb, topics, now_ms, false)?;
        self.classic.forget(group_id, &member_id);
        Ok(d.records)
    }
}

#[cfg(test)]
#[path = "classic_test.rs"]
mod tests;
