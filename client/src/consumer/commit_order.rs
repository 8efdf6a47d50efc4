//! The order of a consumer's commits: each commit (sync, async or auto)
//! takes a turn when it is issued and sends its request only after the
//! previous commit finished, so a later commit can never be overwritten by
//! an earlier one that completes after it (Kafka's client sends a group's
//! commits one after another on one coordinator connection for the same
//! reason). A commit that is dropped before it finished (a cancelled
//! `commit_sync`) gives its turn up.

use std::future::Future;

use tokio::sync::oneshot;

/// The consumer's queue of commits: where the next turn waits.
#[derive(Debug, Default)]
pub(super) struct CommitOrder {
    /// Closed when the last issued commit finished (or was dropped).
    tail: Option<oneshot::Receiver<()>>,
}

/// A commit's place in the queue, taken when the commit is issued.
#[derive(Debug)]
pub(super) struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this commit finished: lets the next one go.
    done: oneshot::Sender<()>,
}

impl CommitOrder {
    /// The next turn: it runs after every turn taken before it.
    pub(super) fn next(&mut self) -> Turn {
        let (done, finished) = oneshot::channel();
        Turn {
            previous: self.tail.replace(finished),
            done,
        }
    }
}

impl Turn {
    /// Runs `commit` once every earlier commit finished.
    pub(super) async fn run<F: Future>(self, commit: F) -> F::Output {
        if let Some(previous) = self.previous {
            // Never sent: closed when the previous commit's `done` drops.
            let _ = previous.await;
        }
        let output = commit.await;
        drop(self.done);
        output
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// A coordinator that keeps the last offset it was sent, like a
    /// partition's committed offset.
    #[derive(Debug, Default, Clone)]
    struct Coordinator(Arc<Mutex<Vec<i64>>>);

    impl Coordinator {
        /// A commit of `offset` whose request takes `latency` to arrive.
        async fn commit(self, offset: i64, latency: Duration) -> i64 {
            tokio::time::sleep(latency).await;
            self.0.lock().unwrap().push(offset);
            offset
        }

        fn committed(&self) -> Vec<i64> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_commit_is_never_overwritten_by_a_slower_earlier_one() {
        // (latency of each commit in issue order, in ms): the earlier ones
        // are the slow ones, so without the order they would land last.
        let table: [&[u64]; 4] = [&[50, 1], &[100, 10, 1], &[0, 0, 0], &[5, 30, 1, 20]];
        for latencies in table {
            let coordinator = Coordinator::default();
            let mut order = CommitOrder::default();
            let mut tasks = Vec::new();
            for (i, ms) in latencies.iter().enumerate() {
                let turn = order.next();
                let c = coordinator.clone();
                let offset = (i as i64 + 1) * 10;
                tasks.push(tokio::spawn(
                    turn.run(c.commit(offset, Duration::from_millis(*ms))),
                ));
            }
            // Awaited in reverse: the order does not depend on the caller.
            for task in tasks.into_iter().rev() {
                task.await.unwrap();
            }
            let want: Vec<i64> = (1..=latencies.len() as i64).map(|i| i * 10).collect();
            assert_eq!(coordinator.committed(), want, "{latencies:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_commit_gives_its_turn_up() {
        let coordinator = Coordinator::default();
        let mut order = CommitOrder::default();
        let first = order.next();
        let second = order.next();
        let third = order.next();
        let c = coordinator.clone();
        let late = tokio::spawn(third.run(c.commit(30, Duration::ZERO)));
        // The first commit never starts (a cancelled commit_sync).
        drop(first);
        let c = coordinator.clone();
        let cancelled = tokio::spawn(second.run(c.commit(20, Duration::from_secs(60))));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            coordinator.committed().is_empty(),
            "the third waits for the second"
        );
        cancelled.abort();
        assert_eq!(late.await.unwrap(), 30);
        assert_eq!(coordinator.committed(), [30]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_the_order_the_slow_earlier_commit_wins() {
        // Negative control: the race the order prevents is real.
        let coordinator = Coordinator::default();
        let slow = tokio::spawn(coordinator.clone().commit(10, Duration::from_millis(50)));
        let fast = tokio::spawn(coordinator.clone().commit(20, Duration::from_millis(1)));
        fast.await.unwrap();
        slow.await.unwrap();
        assert_eq!(coordinator.committed().last(), Some(&10));
    }
}
