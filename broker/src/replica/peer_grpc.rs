//! The production [`PeerTransport`]: a follower's rounds to a leader travel
//! on one `FetchStream` (`strom_proto::FetchSession`), a request and its
//! response per round on a long-lived HTTP/2 stream, rather than one unary
//! `Fetch` call each: at low latency most of a round's cost is the call
//! itself (headers, a new stream, a server task), not the handler. A leader
//! that does not serve the stream (UNIMPLEMENTED, an older version during a
//! rolling upgrade) is fetched from with unary calls instead.
//!
//! The leader's address comes from the metadata image at each round; a
//! changed address, or a failed round, dials again.

use std::time::Duration;

use futures::future::BoxFuture;
use strom_proto::FetchSession;
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::{FetchRequest, FetchResponse};
use tonic::transport::Endpoint;

use super::config::ReplicationConfig;
use super::seams::{PeerSession, PeerTransport};
use crate::metadata::MetadataCache;

/// Fetch sessions over gRPC to the addresses the image gives.
#[derive(Debug, Clone)]
pub struct GrpcPeers {
    config: ReplicationConfig,
    cache: MetadataCache,
}

impl GrpcPeers {
    /// Sessions sized by `config`, dialling the addresses `cache` holds.
    pub fn new(config: ReplicationConfig, cache: MetadataCache) -> Self {
        Self { config, cache }
    }
}

impl PeerTransport for GrpcPeers {
    fn connect(&self, leader: i32) -> Box<dyn PeerSession> {
        Box::new(GrpcPeerSession {
            leader,
            config: self.config.clone(),
            cache: self.cache.clone(),
            session: None,
        })
    }
}

/// One leader's fetch session, dialled lazily.
#[derive(Debug)]
struct GrpcPeerSession {
    leader: i32,
    config: ReplicationConfig,
    cache: MetadataCache,
    /// The session with the leader, and the address it dialled.
    session: Option<(String, FetchSession)>,
}

impl GrpcPeerSession {
    /// The session with the leader at its current address, dialled lazily.
    fn session(&mut self, partitions: usize) -> Option<&mut FetchSession> {
        let address = self.cache.with_image(|image| {
            image
                .broker(self.leader)
                .map(strom_proto::convert::broker_address)
        })?;
        if self.session.as_ref().is_none_or(|(a, _)| *a != address) {
            let endpoint = Endpoint::from_shared(format!("http://{address}"))
                .ok()?
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(strom_controller_client::KEEP_ALIVE_INTERVAL)
                .keep_alive_timeout(strom_controller_client::KEEP_ALIVE_TIMEOUT)
                .keep_alive_while_idle(true)
                .initial_stream_window_size(8 << 20)
                .initial_connection_window_size(32 << 20);
            let client = BrokerServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(self.decode_limit(partitions));
            self.session = Some((address, FetchSession::new(client)));
        }
        self.session.as_mut().map(|(_, s)| s)
    }

    /// Largest fetch response accepted from the leader: the response
    /// budget, plus one batch as large as any topic allows (the first
    /// batch is returned whatever its size, as in Kafka), plus framing per
    /// partition. Computed when dialling; a larger limit set later (a topic's
    /// `max.message.bytes`, or a live `message.max.bytes` on any broker)
    /// fails a round, and the redial takes it into account.
    fn decode_limit(&self, partitions: usize) -> usize {
        let largest_batch = self.cache.with_image(|image| {
            let topics = image
                .topics()
                .filter_map(|t| t.configs.get("max.message.bytes"));
            let brokers = std::iter::once(image.cluster_configs())
                .chain(image.brokers().filter_map(|b| image.broker_configs(b.id)))
                .filter_map(|c| c.get("message.max.bytes"));
            topics
                .chain(brokers)
                .filter_map(|v| v.parse::<usize>().ok())
                .fold(self.config.log.max_message_bytes, usize::max)
        });
        usize::try_from(self.config.replica_fetch_response_max_bytes)
            .unwrap_or(0)
            .saturating_add(largest_batch)
            .saturating_add(partitions.saturating_mul(256))
            .saturating_add(1 << 20)
    }
}

impl PeerSession for GrpcPeerSession {
    fn fetch(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<FetchResponse, tonic::Status>> {
        Box::pin(async move {
            let leader = self.leader;
            let partitions = request.topics.iter().map(|t| t.partitions.len()).sum();
            let Some(session) = self.session(partitions) else {
                return Err(tonic::Status::unavailable(format!(
                    "no address for broker {leader}"
                )));
            };
            let was_unary = session.is_unary();
            let result = session.fetch(request, timeout).await;
            if !was_unary && session.is_unary() {
                tracing::info!(
                    leader,
                    "the leader does not serve FetchStream; fetching with unary calls"
                );
            }
            result
        })
    }

    fn reset(&mut self) {
        self.session = None;
    }
}
