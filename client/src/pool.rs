//! Connections: one lazily connected tonic [`Channel`] per node address,
//! shared by every request to that node, and the rotation through the
//! bootstrap servers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// A pool of channels keyed by `host:port`. Channels connect on first use
/// (bounded by the connect timeout) and reconnect by themselves after a
/// failure, so entries are never evicted.
#[derive(Debug)]
pub(crate) struct ChannelPool {
    connect_timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
    bootstrap: Vec<String>,
    /// Index into `bootstrap` of the node requests currently go to.
    current: AtomicUsize,
}

impl ChannelPool {
    pub(crate) fn new(bootstrap: Vec<String>, connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            channels: Mutex::default(),
            bootstrap,
            current: AtomicUsize::new(0),
        }
    }

    /// The bootstrap server requests go to now.
    pub(crate) fn current(&self) -> String {
        let i = self.current.load(Ordering::Relaxed) % self.bootstrap.len();
        self.bootstrap[i].clone()
    }

    /// Moves on to the next bootstrap server after `failed` could not be
    /// reached (no-op if another request already moved on).
    pub(crate) fn rotate(&self, failed: &str) {
        let i = self.current.load(Ordering::Relaxed);
        if self.bootstrap[i % self.bootstrap.len()] == failed {
            let _ = self.current.compare_exchange(
                i,
                (i + 1) % self.bootstrap.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// The channel to `address`, created (unconnected) on first use.
    pub(crate) fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self
            .channels
            .lock()
            .expect("channel pool lock is never poisoned");
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Error::InvalidArgument(format!("invalid address '{address}': {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Whether a channel to `address` was created.
    #[cfg(test)]
    pub(crate) fn has_channel(&self, address: &str) -> bool {
        self.channels
            .lock()
            .expect("not poisoned")
            .contains_key(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rotation_moves_past_the_failed_server_only_once() {
        let pool = ChannelPool::new(vec!["a:1".into(), "b:2".into()], Duration::from_secs(1));
        assert_eq!(pool.current(), "a:1");
        pool.rotate("a:1");
        assert_eq!(pool.current(), "b:2");
        pool.rotate("a:1"); // a stale report of the same failure
        assert_eq!(pool.current(), "b:2");
        pool.rotate("b:2");
        assert_eq!(pool.current(), "a:1");
    }

    #[tokio::test]
    async fn channels_are_shared_per_address() {
        let pool = ChannelPool::new(vec!["a:1".into()], Duration::from_secs(1));
        pool.channel("a:1").unwrap();
        pool.channel("a:1").unwrap();
        pool.channel("b:2").unwrap();
        assert_eq!(pool.channels.lock().unwrap().len(), 2);
    }
}
