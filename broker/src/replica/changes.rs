//! [`Changes`]: a partition's change counter that waiters (delayed fetch,
//! acks=all) wait on. Like a `tokio::sync::watch` of a counter, but the
//! waiters are woken in the order they started waiting: `watch` spreads
//! its waiters over eight queues picked at random, so the order in which
//! a fetch and an acks=all wait resume would differ between two runs of
//! the same seeded simulation. One bump is one atomic add and one
//! `notify_waiters` (`watch` visits all eight queues).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Shared {
    version: AtomicU64,
    notify: Notify,
}

/// The sending side, owned by the partition.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    shared: Arc<Shared>,
}

impl Changes {
    /// Records a change and wakes every waiter.
    pub(crate) fn bump(&self) {
        self.shared.version.fetch_add(1, Ordering::SeqCst);
        self.shared.notify.notify_waiters();
    }

    /// A subscription that has seen every change so far.
    pub(crate) fn subscribe(&self) -> Subscription {
        Subscription {
            seen: self.shared.version.load(Ordering::SeqCst),
            shared: self.shared.clone(),
        }
    }
}

/// One waiter's view: the changes it has not seen yet.
#[derive(Debug)]
pub(crate) struct Subscription {
    shared: Arc<Shared>,
    seen: u64,
}

impl Subscription {
    /// Whether a change happened since the last [`changed`](Self::changed)
    /// or [`mark_seen`](Self::mark_seen).
    #[cfg(test)]
    pub(crate) fn has_changed(&self) -> bool {
        self.shared.version.load(Ordering::SeqCst) != self.seen
    }

    /// Marks every change so far as seen.
    #[cfg(test)]
    pub(crate) fn mark_seen(&mut self) {
        self.seen = self.shared.version.load(Ordering::SeqCst);
    }

    /// Waits for a change not seen yet (at once if there is one), and
    /// marks it seen. Cancel-safe.
    pub(crate) async fn changed(&mut self) {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Registered before the check: a bump after it wakes us.
            notified.as_mut().enable();
            let now = self.shared.version.load(Ordering::SeqCst);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_missed() {
        let changes = Changes::default();
        let mut sub = changes.subscribe();
        assert!(!sub.has_changed());
        changes.bump();
        assert!(sub.has_changed());
        // Returns at once, and marks the change seen.
        sub.changed().await;
        assert!(!sub.has_changed());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_in_the_order_they_started_waiting() {
        let changes = Arc::new(Changes::default());
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let mut sub = changes.subscribe();
            let woken = woken.clone();
            tasks.push(tokio::spawn(async move {
                sub.changed().await;
                woken.lock().unwrap_or_else(|e| e.into_inner()).push(i);
            }));
            // Let it start waiting before the next one.
            tokio::task::yield_now().await;
        }
        changes.bump();
        for t in tasks {
            t.await.expect("waiter");
        }
        let order = woken.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(order, (0..16).collect::<Vec<_>>());
    }
}
