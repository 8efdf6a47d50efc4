//! Connections: one lazily connected tonic [`Channel`] per node address,
//! shared by every request to that node, and the rotation through the
//! bootstrap servers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// Largest message accepted from a node: metadata of a cluster with 100,000
/// partitions is several MiB, and a fetch may return 50 MiB and more (one
/// batch larger than `fetch.max.bytes` is always returned), both above
/// tonic's 4 MiB default.
pub(crate) const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// A pool of channels keyed by `host:port`. Channels connect on first use
/// (bounded by the connect timeout) and reconnect by themselves after a
/// failure. The producer and consumer still [`evict`](Self::evict) a
/// channel after a transport error or a deadline, so that a connection that
/// hangs (rather than fails) is replaced by a fresh one.
/// HTTP/2 stream flow-control window for data-plane channels.
const STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 connection flow-control window.
const CONNECTION_WINDOW: u32 = 32 << 20;

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
            .tcp_nodelay(true)
            // HTTP/2's default 64 KiB windows cap a produce or fetch stream
            // at one window per round trip; batches are up to megabytes.
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            // Detect a paused or cut-off broker instead of waiting on it.
            .http2_keep_alive_interval(std::time::Duration::from_secs(5))
            .keep_alive_timeout(std::time::Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Drops the channel to `address`; the next request dials anew.
    /// Requests already holding a clone of it are not affected.
    pub(crate) fn evict(&self, address: &str) {
        self.channels
            .lock()
            .expect("channel pool lock is never poisoned")
            .remove(address);
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
        pool.evict("a:1");
        assert!(!pool.has_channel("a:1"));
        assert!(pool.has_channel("b:2"));
    }
}
