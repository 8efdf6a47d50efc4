//! Group membership (KIP-848, docs/groups.md): the coordinator link and the
//! heartbeat task.
//!
//! [`GroupShared`] holds what the application side (`poll`, commits) and
//! the background heartbeat task share: the member's id and epoch, the
//! partitions the application owns, the coordinator's last answered
//! assignment not applied yet, and why the member lost its partitions
//! (fenced, or left after `max.poll.interval.ms`). The task only talks to
//! the coordinator and records answers; `poll` applies them (revoke first,
//! then assign, see `rebalance`) and reports the partitions it owns, which
//! the task sends with its next heartbeat, at once.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::group_service_client::GroupServiceClient;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;
use tracing::{debug, warn};

use super::Shared;
use crate::admin::TopicPartition;
pub(super) use crate::coordinator::request;
use crate::coordinator::{Coordinator, moved as coordinator_moved};
use crate::error::{Error, Result};
use crate::pool::MAX_MESSAGE_SIZE;
use crate::retry::{self, Backoff};

/// Heartbeat epoch of a member leaving the group.
pub(super) const LEAVE_EPOCH: i32 = -1;
/// Heartbeat epoch of a static member leaving for a restart.
pub(super) const LEAVE_STATIC_EPOCH: i32 = -2;

/// Why the member gave up its partitions without revoking them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lost {
    /// FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID: the coordinator removed
    /// the member or moved on without it.
    Fenced(String),
    /// `poll` was not called within `max.poll.interval.ms`; the member left.
    PollTimeout,
}

/// The member as both sides see it.
#[derive(Debug)]
pub(super) struct MemberState {
    /// The subscription; `None` when not subscribed (manual assignment).
    pub(super) subscription: Option<pb::Subscription>,
    /// Given by the coordinator on the first join.
    pub(super) member_id: String,
    /// 0 until joined (and after losing the partitions).
    pub(super) epoch: i32,
    pub(super) heartbeat_interval: Duration,
    /// The partitions the application owns (reported with each heartbeat).
    pub(super) owned: BTreeSet<TopicPartition>,
    /// The coordinator's latest assignment when it differs from `owned`
    /// and the application has not applied it yet.
    pub(super) answered: Option<BTreeSet<TopicPartition>>,
    /// Set by the task: the application must drop its partitions (and
    /// call `on_partitions_lost`) before the member rejoins.
    pub(super) lost: Option<Lost>,
    /// A non-retriable heartbeat error, returned by every `poll` until the
    /// subscription changes.
    pub(super) fatal: Option<Error>,
    /// The last time the application polled.
    pub(super) last_poll: Instant,
}

/// What the consumer's application side and its heartbeat task share.
#[derive(Debug)]
pub(super) struct GroupShared {
    pub(super) group_id: String,
    coordinator: Coordinator,
    member: Mutex<MemberState>,
    /// Wakes the heartbeat task (an answer was applied, a subscription
    /// changed, a lost assignment was dropped).
    pub(super) to_heartbeat: Notify,
    /// Wakes `poll` (a new assignment, a loss, a fatal error).
    pub(super) to_app: Notify,
}

/// Aborts the heartbeat task when dropped (the consumer was dropped
/// without `close`: the session expires on the coordinator).
#[derive(Debug)]
pub(super) struct HeartbeatTask(JoinHandle<()>);

impl Drop for HeartbeatTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Topic partitions on the wire.
pub(super) fn to_wire(partitions: &BTreeSet<TopicPartition>) -> Vec<pb::TopicPartitions> {
    let mut out: Vec<pb::TopicPartitions> = Vec::new();
    for tp in partitions {
        match out.last_mut() {
            Some(t) if t.topic == tp.topic => t.partitions.push(tp.partition),
            _ => out.push(pb::TopicPartitions {
                topic: tp.topic.clone(),
                partitions: vec![tp.partition],
            }),
        }
    }
    out
}

fn from_wire(topics: Vec<pb::TopicPartitions>) -> BTreeSet<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect()
}

impl GroupShared {
    pub(super) fn new(group_id: String) -> Self {
        Self {
            coordinator: Coordinator::new(group_id.clone(), pb::CoordinatorKeyType::Group),
            group_id,
            member: Mutex::new(MemberState {
                subscription: None,
                member_id: String::new(),
                epoch: 0,
                heartbeat_interval: Duration::ZERO,
                owned: BTreeSet::new(),
                answered: None,
                lost: None,
                fatal: None,
                last_poll: Instant::now(),
            }),
            to_heartbeat: Notify::new(),
            to_app: Notify::new(),
        }
    }

    pub(super) fn member(&self) -> MutexGuard<'_, MemberState> {
        self.member.lock().expect("member lock is never poisoned")
    }

    /// The coordinator's address if known.
    fn known_coordinator(&self) -> Option<String> {
        self.coordinator.known()
    }

    /// One call to the coordinator (found first if needed); an error
    /// saying it moved makes the next call find it again.
    pub(super) async fn call_once<T, F, Fut>(&self, shared: &Shared, f: F) -> Result<T>
    where
        F: FnOnce(GroupServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let config = &shared.config.client;
        self.coordinator
            .call_once(
                config,
                &shared.pool,
                config.request_timeout,
                |channel, t| {
                    f(
                        GroupServiceClient::new(channel)
                            .max_decoding_message_size(MAX_MESSAGE_SIZE),
                        t,
                    )
                },
            )
            .await
    }

    /// Calls the coordinator until it answers, fails for good, or the
    /// request timeout passes; `retry` may accept more errors as transient.
    pub(super) async fn call<T, F, Fut>(
        &self,
        shared: &Shared,
        what: &str,
        mut f: F,
        retry: impl Fn(&Error) -> bool,
    ) -> Result<T>
    where
        F: FnMut(GroupServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let config = &shared.config.client;
        let deadline = Instant::now() + config.request_timeout;
        let mut backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
        loop {
            let error = match self.call_once(shared, &mut f).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let transient =
                retry::is_retriable(&error) || coordinator_moved(&error) || retry(&error);
            let delay = backoff.next_delay();
            if !transient || Instant::now() + delay >= deadline {
                if transient {
                    return Err(Error::Timeout {
                        what: format!(
                            "{what} for group {:?} did not complete within {} ms (last error: \
                             {error})",
                            self.group_id,
                            config.request_timeout.as_millis()
                        ),
                    });
                }
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// The member id and epoch a commit carries: those of a joined member,
    /// else none (a consumer that assigns partitions itself).
    pub(super) fn commit_identity(&self) -> (String, i32) {
        let m = self.member();
        if m.subscription.is_some() && m.epoch > 0 {
            (m.member_id.clone(), m.epoch)
        } else {
            (String::new(), -1)
        }
    }
}

/// The heartbeat to send now, or `None` to wait.
fn next_request(
    shared: &Shared,
    group: &GroupShared,
    now: Instant,
) -> Option<pb::ConsumerGroupHeartbeatRequest> {
    let config = &shared.config;
    let mut m = group.member();
    let subscription = m.subscription.clone()?;
    if m.lost.is_some() || m.fatal.is_some() {
        return None;
    }
    let leave_epoch = if config.group_instance_id.is_some() {
        LEAVE_STATIC_EPOCH
    } else {
        LEAVE_EPOCH
    };
    let mut epoch = m.epoch;
    if m.epoch > 0 && now.saturating_duration_since(m.last_poll) > config.max_poll_interval {
        warn!(
            group = %group.group_id,
            "poll was not called within max.poll.interval.ms ({} ms); leaving the group",
            config.max_poll_interval.as_millis()
        );
        m.lost = Some(Lost::PollTimeout);
        epoch = leave_epoch;
        group.to_app.notify_one();
    }
    let joining = epoch == 0;
    Some(pb::ConsumerGroupHeartbeatRequest {
        group_id: group.group_id.clone(),
        member_id: m.member_id.clone(),
        member_epoch: epoch,
        instance_id: config.group_instance_id.clone(),
        rack_id: config.client_rack.clone(),
        client_id: config.client_id.clone(),
        rebalance_timeout_ms: Some(millis(config.max_poll_interval)),
        session_timeout_ms: Some(millis(config.session_timeout)),
        subscription: Some(subscription),
        assignors: config.assignors.clone(),
        assignors_set: true,
        owned: Some(pb::OwnedPartitions {
            topics: if joining {
                Vec::new()
            } else {
                to_wire(&m.owned)
            },
        }),
    })
}

pub(super) fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Records a heartbeat's answer (or failure); returns how long to wait.
fn apply_answer(
    shared: &Shared,
    group: &GroupShared,
    sent_epoch: i32,
    result: Result<pb::ConsumerGroupHeartbeatResponse>,
    backoff: &mut Backoff,
) -> Duration {
    let mut m = group.member();
    match result {
        Ok(r) => {
            *backoff = Backoff::new(
                shared.config.client.retry_backoff,
                shared.config.client.retry_backoff_max,
            );
            if sent_epoch < 0 {
                // Left after max.poll.interval.ms: rejoin once the
                // application dropped the partitions.
                m.epoch = 0;
                return Duration::ZERO;
            }
            if m.subscription.is_none() || m.lost.is_some() {
                return Duration::ZERO;
            }
            m.member_id = r.member_id;
            m.epoch = r.member_epoch;
            m.heartbeat_interval = Duration::from_millis(r.heartbeat_interval_ms.max(0) as u64);
            let assignment = from_wire(r.assignment);
            if assignment != m.owned {
                if m.answered.as_ref() != Some(&assignment) {
                    debug!(group = %group.group_id, epoch = m.epoch, ?assignment, "new assignment");
                    m.answered = Some(assignment);
                    group.to_app.notify_one();
                }
            } else {
                m.answered = None;
            }
            m.heartbeat_interval
        }
        Err(error) => {
            if sent_epoch < 0 {
                // The leave did not arrive; the session expires instead.
                m.epoch = 0;
                return Duration::ZERO;
            }
            match error.code() {
                Some(ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId) => {
                    warn!(group = %group.group_id, %error, "fenced; rejoining");
                    m.epoch = 0;
                    m.answered = None;
                    m.lost = Some(Lost::Fenced(error.detail()));
                    group.to_app.notify_one();
                    Duration::ZERO
                }
                _ if retry::is_retriable(&error) || coordinator_moved(&error) => {
                    debug!(group = %group.group_id, %error, "heartbeat failed; retrying");
                    backoff.next_delay()
                }
                _ => {
                    warn!(group = %group.group_id, %error, "heartbeat refused");
                    m.fatal = Some(error);
                    group.to_app.notify_one();
                    Duration::ZERO
                }
            }
        }
    }
}

/// Starts the heartbeat task of `shared`'s group.
pub(super) fn spawn_heartbeat(shared: Arc<Shared>) -> HeartbeatTask {
    HeartbeatTask(tokio::spawn(heartbeat_loop(shared)))
}

/// Heartbeats while subscribed: joins, reports owned partitions, records
/// the coordinator's answers, leaves after `max.poll.interval.ms` without
/// a poll. Sleeps the coordinator's heartbeat interval between beats, or
/// until woken (by `poll`, or by the coordinator's pushed assignment
/// stream, `push`).
async fn heartbeat_loop(shared: Arc<Shared>) {
    let Some(group) = shared.group.as_ref() else {
        return;
    };
    let config = &shared.config.client;
    let mut backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
    let mut push = super::push::Push::default();
    loop {
        let now = Instant::now();
        let mut wait = Duration::from_secs(3600);
        if let Some(req) = next_request(&shared, group, now) {
            let sent_epoch = req.member_epoch;
            let result = group
                .call_once(&shared, |mut c, t| async move {
                    c.consumer_group_heartbeat(request(req, t)).await
                })
                .await;
            wait = apply_answer(&shared, group, sent_epoch, result, &mut backoff);
            if sent_epoch >= 0 && wait.is_zero() && group.member().lost.is_none() {
                // A fresh join answered without an interval: do not spin.
                wait = config.retry_backoff;
            }
        }
        let (joined, interval) = {
            let m = group.member();
            let joined = (m.epoch > 0 && m.lost.is_none() && m.subscription.is_some())
                .then(|| group.known_coordinator().map(|a| (m.member_id.clone(), a)))
                .flatten();
            (joined, m.heartbeat_interval)
        };
        push.ensure(&shared, joined, interval);
        {
            let m = group.member();
            if m.epoch > 0 && m.lost.is_none() {
                // Wake in time to notice a missed max.poll.interval.ms.
                let poll_deadline = m.last_poll + shared.config.max_poll_interval;
                let until = poll_deadline.saturating_duration_since(Instant::now());
                wait = wait.min(until + Duration::from_millis(1));
            }
        }
        tokio::select! {
            _ = group.to_heartbeat.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends the leave heartbeat of a member that stopped heartbeating
/// (epoch -1, or -2 for a static member), bounded by the request timeout.
pub(super) async fn leave(shared: &Shared, group: &GroupShared) -> Result<()> {
    let (member_id, epoch) = {
        let m = group.member();
        (m.member_id.clone(), m.epoch)
    };
    if member_id.is_empty() || epoch <= 0 {
        return Ok(());
    }
    let epoch = if shared.config.group_instance_id.is_some() {
        LEAVE_STATIC_EPOCH
    } else {
        LEAVE_EPOCH
    };
    let req = pb::ConsumerGroupHeartbeatRequest {
        group_id: group.group_id.clone(),
        member_id,
        member_epoch: epoch,
        instance_id: shared.config.group_instance_id.clone(),
        ..Default::default()
    };
    let result = group
        .call(
            shared,
            "leave group",
            |mut c, t| {
                let req = req.clone();
                async move { c.consumer_group_heartbeat(request(req, t)).await }
            },
            |_| false,
        )
        .await;
    let mut m = group.member();
    m.epoch = 0;
    m.member_id.clear();
    m.owned.clear();
    m.answered = None;
    m.lost = None;
    match result {
        Ok(_) => Ok(()),
        // Already gone: nothing to leave.
        Err(e)
            if matches!(
                e.code(),
                Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_round_trip_through_the_wire_form() {
        let set: BTreeSet<TopicPartition> = [
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 0),
            TopicPartition::new("b", 1),
        ]
        .into_iter()
        .collect();
        let wire = to_wire(&set);
        assert_eq!(wire.len(), 2);
        assert_eq!(wire[0].partitions, [0, 2]);
        assert_eq!(from_wire(wire), set);
        assert!(to_wire(&BTreeSet::new()).is_empty());
    }
}
