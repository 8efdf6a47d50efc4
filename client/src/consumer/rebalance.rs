//! Subscriptions and rebalances on the application side: `subscribe`,
//! `unsubscribe`, `close`, and `poll`'s step that applies the heartbeat
//! task's news: a new assignment (revoke first, auto commit and
//! `on_partitions_revoked` before; then the new partitions at their
//! committed offsets, else per `auto.offset.reset`, and
//! `on_partitions_assigned`), or a lost one (`on_partitions_lost`, then
//! rejoin with epoch 0).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Consumer;
use super::commit::fetch_committed;
use super::group;
use crate::admin::TopicPartition;
use crate::error::{Error, Result};

/// What a rebalance listener's callbacks return.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Callbacks around rebalances (Kafka's `ConsumerRebalanceListener`), run
/// inside [`Consumer::poll`] (and [`Consumer::close`],
/// [`Consumer::unsubscribe`]) with the consumer at hand, so a callback may
/// commit (e.g. [`Consumer::commit_sync`]) or seek.
///
/// ```no_run
/// use strom_client::{Consumer, RebalanceListener, ListenerFuture, TopicPartition};
///
/// struct CommitOnRevoke;
///
/// impl RebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a mut self,
///         consumer: &'a mut Consumer,
///         _revoked: &'a [TopicPartition],
///     ) -> ListenerFuture<'a> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit_sync().await {
///                 eprintln!("commit before revocation failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send {
    /// Before the consumer gives up `partitions` in a rebalance (and on
    /// close or unsubscribe): their records were all returned by `poll`;
    /// the positions are still committable.
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// After the consumer took `partitions`, positioned at the committed
    /// offsets (or per `auto.offset.reset`); a seek here overrides them.
    fn on_partitions_assigned<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// The member lost `partitions` without revoking them (fenced by the
    /// coordinator, or left after `max.poll.interval.ms`): others may own
    /// them already, so committing would be refused. Defaults to
    /// [`RebalanceListener::on_partitions_revoked`], as in Kafka.
    fn on_partitions_lost<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

fn needs_group() -> Error {
    Error::strom(
        ErrorCode::InvalidGroupId,
        "subscribe needs a group.id in the consumer config",
    )
}

enum Callback {
    Revoked,
    Assigned,
    Lost,
}

impl Consumer {
    /// Joins the consumer's group (`group.id`) subscribed to `topics`: the
    /// coordinator assigns partitions, which `poll` then reads (replacing
    /// a previous subscription; an empty list unsubscribes).
    ///
    /// Errors: INVALID_GROUP_ID without a `group.id`; INVALID_ARGUMENT for
    /// an empty topic name, or while partitions are assigned manually
    /// (`assign([])` first). Errors of the coordinator (an unknown
    /// assignor, a session timeout outside its bounds) come from `poll`.
    pub async fn subscribe<I, S>(&mut self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: Vec<String> = topics.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return self.unsubscribe().await;
        }
        if let Some(bad) = names.iter().find(|n| n.trim().is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "invalid topic name {bad:?} in the subscription"
            )));
        }
        names.sort();
        names.dedup();
        self.set_subscription(pb::Subscription {
            topic_names: names,
            topic_regex: None,
        })
    }

    /// Joins the group subscribed to every topic whose name matches
    /// `regex` (the coordinator's regex syntax; internal `__` topics never
    /// match), including topics created later. An invalid regex is
    /// INVALID_REQUEST from `poll`.
    pub async fn subscribe_pattern(&mut self, regex: &str) -> Result<()> {
        if regex.is_empty() {
            return Err(Error::InvalidArgument(
                "the subscription pattern is empty".into(),
            ));
        }
        self.set_subscription(pb::Subscription {
            topic_names: Vec::new(),
            topic_regex: Some(regex.to_owned()),
        })
    }

    fn set_subscription(&mut self, subscription: pb::Subscription) -> Result<()> {
        let shared = self.shared.clone();
        let group = shared.group.as_ref().ok_or_else(needs_group)?;
        {
            let mut m = group.member();
            if m.subscription.is_none() && !self.state.assignment().is_empty() {
                return Err(Error::InvalidArgument(
                    "subscribe is not allowed while partitions are assigned manually; call \
                     assign([]) first"
                        .into(),
                ));
            }
            m.subscription = Some(subscription);
            m.fatal = None;
            m.last_poll = Instant::now();
        }
        if self.heartbeat.is_none() {
            self.heartbeat = Some(group::spawn_heartbeat(shared.clone()));
        }
        group.to_heartbeat.notify_one();
        Ok(())
    }

    /// The subscribed topic names (empty for a pattern or no subscription).
    pub fn subscription(&self) -> Vec<String> {
        self.shared
            .group
            .as_ref()
            .and_then(|g| g.member().subscription.clone())
            .map(|s| s.topic_names)
            .unwrap_or_default()
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.shared
            .group
            .as_ref()
            .is_some_and(|g| g.member().subscription.is_some())
    }

    /// Sets the rebalance listener (replacing a previous one).
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    async fn call_listener(&mut self, which: Callback, partitions: &[TopicPartition]) {
        let Some(mut listener) = self.listener.take() else {
            return;
        };
        match which {
            Callback::Revoked => listener.on_partitions_revoked(self, partitions).await,
            Callback::Assigned => listener.on_partitions_assigned(self, partitions).await,
            Callback::Lost => listener.on_partitions_lost(self, partitions).await,
        }
        if self.listener.is_none() {
            self.listener = Some(listener);
        }
    }

    /// Leaves the group: commits the positions (with auto commit), calls
    /// `on_partitions_revoked`, stops heartbeating and sends the leave
    /// (epoch -1, or -2 for a static member). Positions and assignment are
    /// dropped. A consumer without a subscription is left as it is.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        if !self.is_subscribed() {
            return Ok(());
        }
        let committed = self.auto_commit_now(self.positions_to_commit()).await;
        let owned = self.state.assignment();
        if !owned.is_empty() {
            self.call_listener(Callback::Revoked, &owned).await;
        }
        let left = self.stop_membership().await;
        self.set_partitions(Vec::new());
        left.and(committed)
    }

    /// Stops the heartbeat task and sends the leave.
    async fn stop_membership(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        let Some(group) = shared.group.as_ref() else {
            return Ok(());
        };
        self.heartbeat = None; // aborts the task
        let result = group::leave(&shared, group).await;
        let mut m = group.member();
        m.subscription = None;
        m.fatal = None;
        result
    }

    /// Stops membership without waiting (`assign` on a subscribed
    /// consumer): the leave is sent in the background.
    pub(super) fn leave_in_background(&mut self) {
        if !self.is_subscribed() {
            return;
        }
        self.heartbeat = None;
        let shared = self.shared.clone();
        if let Some(group) = shared.group.as_ref() {
            group.member().subscription = None;
        }
        tokio::spawn(async move {
            if let Some(group) = shared.group.as_ref()
                && let Err(error) = group::leave(&shared, group).await
            {
                debug!(%error, "leaving the group failed; the session expires instead");
            }
        });
    }

    /// `poll`'s group step: notes the poll (for `max.poll.interval.ms`),
    /// returns a fatal membership error, applies a lost or new assignment,
    /// and starts an auto commit when due.
    pub(super) async fn group_poll(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        let Some(group) = shared.group.as_ref() else {
            return Ok(());
        };
        let (lost, answered) = {
            let mut m = group.member();
            m.last_poll = Instant::now();
            if m.subscription.is_none() {
                drop(m);
                self.maybe_auto_commit(Instant::now());
                return Ok(());
            }
            if let Some(fatal) = &m.fatal {
                return Err(fatal.clone());
            }
            (m.lost.clone(), m.answered.take())
        };
        if let Some(lost) = lost {
            let owned = self.state.assignment();
            warn!(group = %group.group_id, ?lost, partitions = owned.len(), "partitions lost");
            self.set_partitions(Vec::new());
            if !owned.is_empty() {
                self.call_listener(Callback::Lost, &owned).await;
            }
            let mut m = group.member();
            m.owned.clear();
            m.answered = None;
            m.lost = None;
            m.epoch = 0;
            drop(m);
            group.to_heartbeat.notify_one();
            return Ok(());
        }
        if let Some(target) = answered {
            self.reconcile(target).await?;
        }
        self.maybe_auto_commit(Instant::now());
        Ok(())
    }

    /// Moves the consumer to `target`: revokes what it loses (auto commit
    /// and `on_partitions_revoked` first), reports that, then takes the new
    /// partitions at their committed offsets and reports them.
    async fn reconcile(&mut self, target: BTreeSet<TopicPartition>) -> Result<()> {
        let shared = self.shared.clone();
        let Some(group) = shared.group.as_ref() else {
            return Ok(());
        };
        let owned: BTreeSet<TopicPartition> = self.state.assignment().into_iter().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&target).cloned().collect();
        let added: Vec<TopicPartition> = target.difference(&owned).cloned().collect();
        debug!(group = %group.group_id, ?revoked, ?added, "reconciling");
        if !revoked.is_empty() {
            let mut positions = self.positions_to_commit();
            positions.retain(|tp, _| revoked.contains(tp));
            // A failed commit does not stop the revocation (as in Kafka):
            // the next owner starts from the last commit.
            let _ = self.auto_commit_now(positions).await;
            self.call_listener(Callback::Revoked, &revoked).await;
            let kept: Vec<TopicPartition> = owned.intersection(&target).cloned().collect();
            self.set_partitions(kept.clone());
            self.report_owned(kept.into_iter().collect());
        }
        if added.is_empty() {
            self.report_owned(target);
            return Ok(());
        }
        let committed = match fetch_committed(&shared, &added).await {
            Ok(c) => c,
            Err(error) => {
                // Try again on the next poll.
                let mut m = group.member();
                if m.answered.is_none() {
                    m.answered = Some(target);
                }
                return Err(error);
            }
        };
        self.set_partitions(target.iter().cloned());
        for (tp, offset) in committed {
            if let Some(o) = offset {
                self.state.seek_committed(&tp, o.offset, o.leader_epoch)?;
            }
        }
        self.report_owned(target);
        self.call_listener(Callback::Assigned, &added).await;
        Ok(())
    }

    /// Tells the heartbeat task what the consumer owns now.
    fn report_owned(&self, owned: BTreeSet<TopicPartition>) {
        if let Some(group) = self.shared.group.as_ref() {
            let mut m = group.member();
            if m.answered.as_ref() == Some(&owned) {
                m.answered = None;
            }
            m.owned = owned;
            drop(m);
            group.to_heartbeat.notify_one();
        }
    }

    /// Closes the consumer: commits the positions (with auto commit),
    /// calls `on_partitions_revoked`, and leaves the group at once (epoch
    /// -1, or -2 for a static member, which keeps its partitions until its
    /// session times out). Background tasks stop.
    pub async fn close(mut self) -> Result<()> {
        if self.is_subscribed() {
            return self.unsubscribe().await;
        }
        let positions = self.positions_to_commit();
        self.auto_commit_now(positions).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Compile-time check: a group consumer's `poll`, `close` and
    /// `subscribe` futures can run on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(consumer: &mut Consumer, owned: Consumer) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&consumer.poll(Duration::ZERO));
        is_send(&consumer.subscribe(["t"]));
        is_send(&consumer.commit_sync());
        is_send(&owned.close());
    }

    #[tokio::test]
    async fn subscribing_needs_a_group_id_and_no_manual_assignment() {
        let config = crate::ConsumerConfig::new("127.0.0.1:1").unwrap();
        let mut consumer = Consumer::connect(config.clone()).await.unwrap();
        let error = consumer.subscribe(["t"]).await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::InvalidGroupId), "{error}");
        let error = consumer.subscribe_pattern("t.*").await.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::InvalidGroupId), "{error}");
        let error = consumer.commit_sync_offsets(
            [(
                TopicPartition::new("t", 0),
                crate::OffsetAndMetadata::new(1),
            )]
            .into(),
        );
        assert_eq!(
            error.await.unwrap_err().code(),
            Some(ErrorCode::InvalidGroupId)
        );

        let grouped = crate::ConsumerConfig {
            group_id: Some("g".into()),
            ..config
        };
        let mut consumer = Consumer::connect(grouped).await.unwrap();
        consumer.assign([TopicPartition::new("t", 0)]);
        let error = consumer.subscribe(["t"]).await.unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        assert!(consumer.subscription().is_empty(), "nothing changed");
        let error = consumer.subscribe([""]).await.unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        consumer.assign([]);
        consumer.subscribe(["b", "a", "b"]).await.unwrap();
        assert_eq!(consumer.subscription(), ["a", "b"]);
        let error = consumer
            .commit_sync_offsets(
                [(
                    TopicPartition::new("t", 0),
                    crate::OffsetAndMetadata::new(-5),
                )]
                .into(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    }
}
