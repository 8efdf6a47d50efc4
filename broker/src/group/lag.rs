//! Consumer lag: every `group.consumer.lag.interval.ms` the coordinator
//! asks the partition leaders for the log end offsets of the partitions
//! its groups committed, one `ListOffsets` per leader
//! ([`strom_group::lag::end_offset_requests`]), and keeps the lag per
//! group and topic for `/metrics`. Never per commit: a scrape reads the
//! last snapshot.
//!
//! The leaders are reached through the [`EndOffsets`] seam; the production
//! one ([`GrpcEndOffsets`]) keeps one lazily dialled channel per broker
//! address.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::{
    ErrorCode, IsolationLevel, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopic,
};
use tonic::transport::{Channel, Endpoint};

use crate::metadata::MetadataCache;

/// How the coordinator reaches the partition leaders for end offsets.
pub trait EndOffsets: Send + Sync + Debug {
    /// Sends `request` to broker `leader`, answered within `timeout`.
    fn list_offsets(
        &self,
        leader: i32,
        request: ListOffsetsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ListOffsetsResponse, tonic::Status>>;
}

/// [`EndOffsets`] over gRPC, at the addresses of the metadata image.
#[derive(Debug)]
pub struct GrpcEndOffsets {
    cache: MetadataCache,
    /// One channel per address, dialled on first use.
    clients: Mutex<HashMap<String, BrokerServiceClient<Channel>>>,
}

impl GrpcEndOffsets {
    /// Dials the addresses `cache` holds.
    pub fn new(cache: MetadataCache) -> Self {
        Self {
            cache,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, leader: i32) -> Result<BrokerServiceClient<Channel>, tonic::Status> {
        let address = self
            .cache
            .with_image(|image| {
                image
                    .broker(leader)
                    .map(strom_proto::convert::broker_address)
            })
            .ok_or_else(|| tonic::Status::unavailable(format!("no address for broker {leader}")))?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&address) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| tonic::Status::invalid_argument(format!("address {address}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(strom_controller_client::KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(strom_controller_client::KEEP_ALIVE_TIMEOUT);
        let client = BrokerServiceClient::new(endpoint.connect_lazy());
        // Brokers come and go: keep the map from growing without bound.
        if clients.len() > 1024 {
            clients.clear();
        }
        clients.insert(address, client.clone());
        Ok(client)
    }
}

impl EndOffsets for GrpcEndOffsets {
    fn list_offsets(
        &self,
        leader: i32,
        request: ListOffsetsRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ListOffsetsResponse, tonic::Status>> {
        Box::pin(async move {
            let mut client = self.client(leader)?;
            let mut request = tonic::Request::new(request);
            request.set_timeout(timeout);
            match tokio::time::timeout(timeout, client.list_offsets(request)).await {
                Ok(answer) => answer.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "ListOffsets to broker {leader} took over {timeout:?}"
                ))),
            }
        })
    }
}

/// The ListOffsets request (latest, read_uncommitted: the high watermark)
/// for one leader's partitions.
pub(super) fn request_for(topics: &BTreeMap<String, BTreeSet<i32>>) -> ListOffsetsRequest {
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level: IsolationLevel::ReadUncommitted as i32,
        topics: topics
            .iter()
            .map(|(topic, partitions)| ListOffsetsTopic {
                topic: topic.clone(),
                partitions: partitions
                    .iter()
                    .map(|p| ListOffsetsPartition {
                        partition: *p,
                        timestamp: -1,
                        current_leader_epoch: -1,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Asks each leader of `plan` at once; the end offsets that came back.
/// A leader that fails or a partition with an error is left out (its lag
/// is unknown this round) and logged.
pub(super) async fn end_offsets(
    source: &dyn EndOffsets,
    plan: &BTreeMap<i32, BTreeMap<String, BTreeSet<i32>>>,
    timeout: Duration,
) -> HashMap<(String, i32), i64> {
    let calls = plan.iter().map(|(leader, topics)| async move {
        (
            *leader,
            source
                .list_offsets(*leader, request_for(topics), timeout)
                .await,
        )
    });
    let mut ends = HashMap::new();
    for (leader, answer) in join_all(calls).await {
        match answer {
            Ok(r) => {
                for t in r.topics {
                    for p in t.partitions {
                        if p.error_code == ErrorCode::None as i32 && p.offset >= 0 {
                            ends.insert((t.topic.clone(), p.partition), p.offset);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "end offsets for the consumer lag failed");
            }
        }
    }
    ends
}

#[cfg(test)]
#[path = "lag_test.rs"]
mod tests;
