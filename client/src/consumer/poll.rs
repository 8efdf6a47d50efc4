//! The poll loop: [`Consumer::poll`] starts the background tasks that are
//! due (metadata refresh, offset resets per leader, one fetch per leader),
//! returns buffered records, and otherwise waits for a task to finish, a
//! backoff to end, or its deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_proto::v1::ErrorCode;
use tokio::time::Instant;

use super::fetcher::{self, FetchOutcome, FetchTarget};
use super::offsets::{self, OffsetAnswer, OffsetQuery};
use super::{Consumer, ConsumerRecord};
use crate::cluster::Leader;
use crate::error::{Error, Result};

/// A finished background task.
#[derive(Debug)]
pub(super) enum Task {
    Metadata(Result<()>),
    Reset {
        leader: Leader,
        queries: Vec<(OffsetQuery, u64)>,
        result: Result<Vec<(OffsetQuery, OffsetAnswer)>>,
    },
    Fetch(FetchOutcome),
}

/// Requests grouped by leader (keyed by address and id).
type LeaderGroups<T> = BTreeMap<(String, i32), (Leader, Vec<T>)>;

impl Consumer {
    /// Returns fetched records of the assigned partitions, at most
    /// `max.poll.records`, waiting up to `timeout` for some. Records of a
    /// partition come in offset order, from its position on.
    ///
    /// A group member applies rebalances here (running the
    /// [`RebalanceListener`](super::RebalanceListener) callbacks), starts
    /// auto commits when due, and must call it within
    /// `max.poll.interval.ms`, else it leaves the group (and rejoins on the
    /// next call). Group errors: a refused join (INVALID_SESSION_TIMEOUT,
    /// INCONSISTENT_GROUP_PROTOCOL, INVALID_REQUEST for a bad regex,
    /// FENCED_INSTANCE_ID, ...) is returned by every poll until the
    /// subscription changes.
    ///
    /// Errors: a partition without a position under `auto.offset.reset =
    /// none` (seek first); OFFSET_OUT_OF_RANGE under `none` (the message
    /// names the valid range); CORRUPT_MESSAGE; RECORD_TOO_LARGE when a
    /// batch does not fit `max.partition.fetch.bytes`. The partition keeps
    /// its position, so the error repeats until it is sought elsewhere.
    /// Leader changes and transient errors are retried internally.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.group_poll().await?;
            self.handle_finished()?;
            let records = self.take_buffered()?;
            if !records.is_empty() {
                // Prefetch; an error here shows on the next poll.
                let _ = self.start_requests(Instant::now());
                return Ok(records);
            }
            if Instant::now() >= deadline {
                self.start_requests(Instant::now())?;
                return Ok(Vec::new());
            }
            self.step(deadline).await?;
        }
    }

    /// Applies the answers of tasks that already finished, without waiting.
    fn handle_finished(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.handle(done.map_err(task_failed)?);
        }
        Ok(())
    }

    /// Starts what is needed, then waits for one task to finish, a backoff
    /// to end, or `deadline`.
    pub(super) async fn step(&mut self, deadline: Instant) -> Result<()> {
        let now = Instant::now();
        self.start_requests(now)?;
        let mut wake = deadline;
        if let Some(at) = self.state.next_retry(now) {
            wake = wake.min(at);
        }
        if !self.refreshing
            && let Some(at) = self
                .shared
                .metadata
                .refresh_due(now, self.shared.config.metadata_max_age)
        {
            wake = wake.min(at.max(now + Duration::from_millis(1)));
        }
        let shared = self.shared.clone();
        let group_news = async {
            match shared.group.as_ref() {
                Some(group) => group.to_app.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                self.handle(done.map_err(task_failed)?);
            }
            _ = group_news => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        Ok(())
    }

    /// Starts a metadata refresh, offset lookups and fetches as needed.
    fn start_requests(&mut self, now: Instant) -> Result<()> {
        let shared = &self.shared;
        if !self.refreshing
            && let Some(due) = shared
                .metadata
                .refresh_due(now, shared.config.metadata_max_age)
            && due <= now
        {
            self.refreshing = true;
            let shared = shared.clone();
            self.tasks
                .spawn(async move { Task::Metadata(shared.metadata.refresh().await) });
        }

        let resets = self.state.pending_resets(now)?;
        let mut by_leader: LeaderGroups<(OffsetQuery, u64)> = BTreeMap::new();
        let mut leaderless = false;
        for reset in resets {
            let (leader, epoch) = shared
                .metadata
                .read(|m| (m.leader(&reset.tp), m.leader_epoch(&reset.tp)));
            let Some(leader) = leader else {
                leaderless = true;
                continue;
            };
            self.state.mark_busy(&reset.tp);
            by_leader
                .entry((leader.address.clone(), leader.id))
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push((
                    OffsetQuery {
                        tp: reset.tp,
                        timestamp: reset.to.timestamp(),
                        leader_epoch: epoch,
                    },
                    reset.generation,
                ));
        }
        for (leader, queries) in by_leader.into_values() {
            let shared = shared.clone();
            self.tasks.spawn(async move {
                let only: Vec<OffsetQuery> = queries.iter().map(|(q, _)| q.clone()).collect();
                let result = offsets::list_offsets_once(&shared, &leader, &only).await;
                Task::Reset {
                    leader,
                    queries,
                    result,
                }
            });
        }

        let mut fetches: LeaderGroups<FetchTarget> = BTreeMap::new();
        let mut stale = false;
        for position in self.state.fetchable(now) {
            let (leader, epoch) = shared
                .metadata
                .read(|m| (m.leader(&position.tp), m.leader_epoch(&position.tp)));
            let Some(leader) = leader else {
                leaderless = true;
                continue;
            };
            if position.min_leader_epoch.is_some_and(|e| e > epoch) {
                // The metadata names a leader older than records this
                // consumer already read (or its committed offset's): a
                // stale answer, from a node cut off from the controllers.
                // That node's log may end below the position, and its
                // OFFSET_OUT_OF_RANGE would reset it (KIP-320). Ask
                // another node.
                stale = true;
                continue;
            }
            if self.fetching.contains(&leader.address) {
                continue;
            }
            fetches
                .entry((leader.address.clone(), leader.id))
                .or_insert_with(|| (leader, Vec::new()))
                .1
                .push(FetchTarget {
                    tp: position.tp,
                    offset: position.offset,
                    generation: position.generation,
                    leader_epoch: epoch,
                });
        }
        for (leader, targets) in fetches.into_values() {
            for target in &targets {
                self.state.mark_busy(&target.tp);
            }
            self.fetching.insert(leader.address.clone());
            let shared = shared.clone();
            self.tasks
                .spawn(async move { Task::Fetch(fetcher::fetch(shared, leader, targets).await) });
        }
        if stale {
            self.shared.metadata.distrust_source();
        } else if leaderless {
            self.shared.metadata.mark_stale();
        }
        Ok(())
    }
}

/// A consumer task panicked (a bug): its partitions would stay busy.
fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::strom(
        ErrorCode::UnknownServerError,
        format!("a consumer task failed: {e}"),
    )
}
