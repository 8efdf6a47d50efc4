//! The pushed assignment stream (`ConsumerGroupAssignmentStream`): while
//! the member is in the group, a task listens on the coordinator's stream
//! and wakes the heartbeat task at each event, so the member learns a new
//! assignment (or that a partition it waits for was released) at once
//! instead of at its next heartbeat interval. If the stream cannot be
//! opened or ends, the member keeps heartbeating at its interval and tries
//! the stream again no sooner than one interval later.

use std::sync::Arc;
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::group_service_client::GroupServiceClient;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use super::Shared;
use crate::error::Error;

/// The listener of one member id at one coordinator; aborted when dropped.
#[derive(Debug)]
struct Listener {
    member_id: String,
    address: String,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The heartbeat task's handle on the stream: opened, replaced and
/// dropped as the membership changes.
#[derive(Debug, Default)]
pub(super) struct Push {
    listener: Option<Listener>,
    /// No new stream before this (after one failed or ended).
    retry_at: Option<Instant>,
}

impl Push {
    /// Keeps a stream open for `member_id` at `address` when the member is
    /// joined (`Some`), none otherwise. `interval` paces the retries.
    pub(super) fn ensure(
        &mut self,
        shared: &Arc<Shared>,
        joined: Option<(String, String)>,
        interval: Duration,
    ) {
        let Some((member_id, address)) = joined else {
            self.listener = None;
            return;
        };
        if let Some(l) = &self.listener {
            let same = l.member_id == member_id && l.address == address;
            if same && !l.task.is_finished() {
                return;
            }
            if l.task.is_finished() && self.retry_at.is_none() {
                self.retry_at = Some(Instant::now() + interval);
            }
            self.listener = None;
        }
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.retry_at = None;
        let task = tokio::spawn(listen(shared.clone(), address.clone(), member_id.clone()));
        self.listener = Some(Listener {
            member_id,
            address,
            task,
        });
    }
}

/// Opens the stream and wakes the heartbeat task at every event, until the
/// stream ends or fails.
async fn listen(shared: Arc<Shared>, address: String, member_id: String) {
    let Some(group) = shared.group.as_ref() else {
        return;
    };
    let timeout = shared.config.client.request_timeout;
    let channel = match shared.pool.channel(&address) {
        Ok(c) => c,
        Err(error) => {
            debug!(group = %group.group_id, %error, "no channel for the assignment stream");
            return;
        }
    };
    let req = pb::ConsumerGroupAssignmentStreamRequest {
        group_id: group.group_id.clone(),
        member_id,
    };
    let mut client = GroupServiceClient::new(channel);
    let opened = tokio::time::timeout(
        timeout,
        client.consumer_group_assignment_stream(tonic::Request::new(req)),
    )
    .await;
    let mut stream = match opened {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => {
            let error = Error::from_status(&address, status);
            debug!(group = %group.group_id, %error, "assignment stream refused; heartbeating at the interval");
            return;
        }
        Err(_) => {
            debug!(group = %group.group_id, "assignment stream did not open in time");
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                debug!(
                    group = %group.group_id,
                    group_epoch = event.group_epoch,
                    assignment_epoch = event.assignment_epoch,
                    "pushed: heartbeat now"
                );
                group.to_heartbeat.notify_one();
            }
            Ok(None) => return,
            Err(status) => {
                let error = Error::from_status(&address, status);
                debug!(group = %group.group_id, %error, "assignment stream ended");
                // The heartbeat learns what happened (moved coordinator,
                // removed member) and acts on it.
                group.to_heartbeat.notify_one();
                return;
            }
        }
    }
}
