//! Consumer-group members (`g<n>`): `strom_client::Consumer`s with one
//! `group.id` subscribed to the records topic. Member 0 auto-commits
//! every second (also before revocation and on close, unrecorded); the
//! others commit their positions with `commit_sync` after each poll that
//! returned records and in `on_partitions_revoked`, recorded. Every member
//! reads the committed offsets back now and then, and sometimes leaves
//! (closes) or crashes (is dropped) and rejoins: a rebalance. Each
//! consumer of a member is an incarnation, marked `joined`, then `left` or
//! `crashed` (the single-owner check's boundaries). After the run
//! `group-final` reads them once more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_client::{
    Consumer, ConsumerConfig, ListenerFuture, OffsetAndMetadata, OffsetReset, RebalanceListener,
    TopicPartition,
};

use super::{Context, pause};
use crate::checker::group::GROUP_FINAL;
use crate::history::{Body, OpType, Polled, Recorder, decode_value};

/// The group's id.
pub const GROUP_ID: &str = "jepsen-group";

/// Longest wait for one commit or read-back.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// Longest wait for one poll (which may run rebalance callbacks that
/// commit). A poll that does not return is abandoned with its consumer,
/// as a crashed member: a poll cut short may have moved the positions
/// past records it never returned.
const POLL_LIMIT: Duration = Duration::from_secs(45);

/// How far beyond its position a deliberately broken member commits.
const BROKEN_COMMIT_AHEAD: i64 = 3;

fn config(bootstrap: &str, auto_commit: bool) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap).expect("valid bootstrap list");
    config.client.request_timeout = Duration::from_secs(5);
    config.client.connect_timeout = Duration::from_millis(500);
    config.group_id = Some(GROUP_ID.to_owned());
    config.auto_offset_reset = OffsetReset::Earliest;
    config.metadata_max_age = Duration::from_secs(5);
    // The broker's minimum: a member lost to a fault is replaced soon.
    config.session_timeout = Duration::from_secs(6);
    config.max_poll_interval = Duration::from_secs(30);
    config.enable_auto_commit = auto_commit;
    config.auto_commit_interval = Duration::from_secs(1);
    config.client_id = "jepsen".into();
    config
}

/// Records rebalances, and commits (recorded) before revocation.
struct Listener {
    recorder: Arc<Recorder>,
    name: String,
    commit: bool,
    broken: bool,
}

impl Listener {
    fn event(&self, event: &str, partitions: &[TopicPartition]) {
        self.recorder.record(
            &self.name,
            OpType::Ok,
            Body::Rebalance {
                event: event.to_owned(),
                partitions: partitions.iter().map(|tp| tp.partition).collect(),
            },
        );
    }
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if self.commit {
                commit(&self.recorder, &self.name, consumer, self.broken).await;
            }
            self.event("revoked", partitions);
        })
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move { self.event("assigned", partitions) })
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move { self.event("lost", partitions) })
    }
}

/// Commits the member's positions (beyond them when `broken`: the
/// negative control), recorded.
async fn commit(recorder: &Recorder, name: &str, consumer: &mut Consumer, broken: bool) {
    let mut offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = consumer.consumed_offsets();
    if offsets.is_empty() {
        return;
    }
    if broken {
        for o in offsets.values_mut() {
            o.offset += BROKEN_COMMIT_AHEAD;
        }
    }
    let pairs: Vec<(i32, i64)> = offsets
        .iter()
        .map(|(tp, o)| (tp.partition, o.offset))
        .collect();
    recorder.record(
        name,
        OpType::Invoke,
        Body::Commit {
            offsets: pairs.clone(),
            error: None,
            as_member: false,
        },
    );
    let joined_before = member_epoch(consumer) > 0;
    // Every error is indeterminate: only acknowledged commits are checked.
    let (ty, error) =
        match tokio::time::timeout(CALL_LIMIT, consumer.commit_sync_offsets(offsets)).await {
            Ok(Ok(())) => (OpType::Ok, None),
            Ok(Err(e)) => (OpType::Info, Some(e.to_string())),
            Err(_) => (OpType::Info, Some("commit did not return".to_owned())),
        };
    // A fence resets the client's epoch to 0 until the next poll, so a
    // positive epoch before and after means the commit went out with it.
    let as_member = ty == OpType::Ok && joined_before && member_epoch(consumer) > 0;
    recorder.record(
        name,
        ty,
        Body::Commit {
            offsets: pairs,
            error,
            as_member,
        },
    );
}

/// The member epoch a commit would carry now (-1 outside the group).
fn member_epoch(consumer: &Consumer) -> i32 {
    consumer.group_metadata().map_or(-1, |m| m.generation_id)
}

/// Records that an incarnation of member `name` began or ended (the
/// single-owner check's boundaries): `joined`, `left` or `crashed`.
fn mark(recorder: &Recorder, name: &str, event: &str) {
    recorder.record(
        name,
        OpType::Ok,
        Body::Rebalance {
            event: event.to_owned(),
            partitions: Vec::new(),
        },
    );
}

/// Closes a member's consumer (leaving the group), recorded as `left`, or
/// as `crashed` when the leave did not complete (its session expires).
async fn close(recorder: &Recorder, name: &str, consumer: Consumer) {
    let left = matches!(
        tokio::time::timeout(CALL_LIMIT, consumer.close()).await,
        Ok(Ok(()))
    );
    mark(recorder, name, if left { "left" } else { "crashed" });
}

/// Reads the group's committed offsets of every partition, recorded.
/// Returns whether the read succeeded.
async fn read_committed(
    recorder: &Recorder,
    name: &str,
    consumer: &mut Consumer,
    tps: &[TopicPartition],
) -> bool {
    recorder.record(
        name,
        OpType::Invoke,
        Body::Committed {
            offsets: Vec::new(),
            error: None,
        },
    );
    let (ty, offsets, error) = match tokio::time::timeout(CALL_LIMIT, consumer.committed(tps)).await
    {
        Ok(Ok(found)) => (
            OpType::Ok,
            found
                .into_iter()
                .map(|(tp, o)| (tp.partition, o.map(|o| o.offset)))
                .collect(),
            None,
        ),
        Ok(Err(e)) => (OpType::Fail, Vec::new(), Some(e.to_string())),
        Err(_) => (
            OpType::Info,
            Vec::new(),
            Some("offset fetch did not return".to_owned()),
        ),
    };
    let ok = ty == OpType::Ok;
    recorder.record(name, ty, Body::Committed { offsets, error });
    ok
}

fn partitions(context: &Context) -> Vec<TopicPartition> {
    (0..context.partitions)
        .map(|p| TopicPartition::new(context.topic.clone(), p))
        .collect()
}

async fn join(context: &Arc<Context>, name: &str, auto_commit: bool) -> Option<Consumer> {
    let mut consumer = match Consumer::connect(config(&context.bootstrap, auto_commit)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jepsen: group member {name} cannot start: {e}");
            return None;
        }
    };
    consumer.set_rebalance_listener(Listener {
        recorder: context.recorder.clone(),
        name: name.to_owned(),
        commit: !auto_commit,
        broken: context.broken_commits,
    });
    if let Err(e) = consumer.subscribe([context.topic.clone()]).await {
        eprintln!("jepsen: group member {name} cannot subscribe: {e}");
        return None;
    }
    mark(&context.recorder, name, "joined");
    Some(consumer)
}

/// One member: polls, commits, reads back, and now and then leaves and
/// rejoins, until the workload stops; then closes (leaving the group).
pub(super) async fn member(context: Arc<Context>, name: String, index: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let auto_commit = index == 0;
    let recorder = context.recorder.clone();
    let tps = partitions(&context);
    let mut consumer: Option<Consumer> = None;
    let mut polls = 0u64;
    while !context.stopped() {
        let Some(c) = consumer.as_mut() else {
            consumer = join(&context, &name, auto_commit).await;
            if consumer.is_none() {
                pause(&context, Duration::from_millis(500)).await;
            }
            continue;
        };
        let records =
            match tokio::time::timeout(POLL_LIMIT, c.poll(Duration::from_millis(300))).await {
                Ok(Ok(records)) => records,
                Ok(Err(_)) => {
                    pause(&context, Duration::from_millis(200)).await;
                    continue;
                }
                Err(_) => {
                    consumer = None;
                    mark(&recorder, &name, "crashed");
                    continue;
                }
            };
        polls += 1;
        if !records.is_empty() {
            let polled: Vec<Polled> = records
                .iter()
                .map(|r| Polled {
                    partition: r.partition,
                    offset: r.offset,
                    value: r.value.as_deref().and_then(decode_value),
                })
                .collect();
            recorder.record(&name, OpType::Ok, Body::GroupPoll { records: polled });
            if !auto_commit {
                commit(&recorder, &name, c, context.broken_commits).await;
            }
        }
        if polls.is_multiple_of(8) {
            read_committed(&recorder, &name, c, &tps).await;
        }
        // Churn: leave the group at once (close), or crash (dropped
        // without leaving: the coordinator waits for the session to
        // expire), and come back.
        if rng.gen_bool(0.02)
            && let Some(c) = consumer.take()
        {
            if rng.gen_bool(0.5) {
                close(&recorder, &name, c).await;
            } else {
                drop(c);
                mark(&recorder, &name, "crashed");
            }
        }
        pause(&context, context.pace).await;
    }
    if let Some(c) = consumer {
        close(&recorder, &name, c).await;
    }
}

/// After the members closed: reads the group's committed offsets as
/// `group-final`, retrying for up to `limit`.
pub async fn final_committed(
    recorder: &Recorder,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let mut consumer = Consumer::connect(config(bootstrap, false))
        .await
        .map_err(|e| format!("the group's final reader did not start: {e}"))?;
    while Instant::now() < deadline {
        if read_committed(recorder, GROUP_FINAL, &mut consumer, &tps).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!(
        "the group's committed offsets could not be read within {limit:?}"
    ))
}
