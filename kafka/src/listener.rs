//! The Kafka listener: accepts connections and owns a task per connection
//! until the cancellation token (a child of the node's root) stops it;
//! then it stops accepting, ends every connection and waits for their
//! tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::connection::{self, Closed};
use crate::handlers::Broker;

/// Settings of the listener (Kafka's names in the broker config).
#[derive(Debug, Clone, Copy)]
pub struct ListenerConfig {
    /// `socket.request.max.bytes`: a larger frame closes the connection.
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`.
    pub idle_timeout: Duration,
    /// Unanswered requests per connection before reading pauses.
    pub max_in_flight: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 100 << 20,
            idle_timeout: Duration::from_millis(600_000),
            max_in_flight: 64,
        }
    }
}

/// The Kafka listener.
#[derive(Debug)]
pub struct KafkaListener {
    listener: TcpListener,
    broker: Arc<Broker>,
    config: ListenerConfig,
}

impl KafkaListener {
    /// Serves `broker` on `listener`.
    pub fn new(listener: TcpListener, broker: Arc<Broker>, config: ListenerConfig) -> Self {
        Self {
            listener,
            broker,
            config,
        }
    }

    /// Accepts connections until `cancel`, then ends them and waits.
    pub async fn run(self, cancel: CancellationToken) {
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep
                    // serving the connections there are.
                    tracing::warn!(error = %e, "kafka listener cannot accept");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "set TCP_NODELAY");
            }
            let broker = self.broker.clone();
            let config = self.config;
            let token = cancel.child_token();
            tasks.spawn(
                async move {
                    match connection::serve(stream, broker, config, token).await {
                        Closed::Normally => tracing::debug!("kafka connection closed"),
                        Closed::Io(e) => tracing::debug!(error = %e, "kafka connection closed"),
                        e => tracing::info!(error = %e, "kafka connection closed"),
                    }
                }
                .instrument(tracing::info_span!("kafka_connection", %peer)),
            );
        }
        tasks.close();
        tasks.wait().await;
    }
}
