//! One file per API, each translating its Kafka message into the broker
//! core's calls — the same ones the gRPC handlers make — and the answer
//! back. Conversions only: every rule is in the core.
//!
//! * [`api_versions`], [`metadata`]: negotiation and the cluster image.
//! * [`produce`], [`fetch`], [`list_offsets`], [`offset_for_leader_epoch`]:
//!   the data path over the replica manager.
//! * [`init_producer_id`], [`find_coordinator`]: producer ids and the
//!   group and transaction coordinators.
//! * [`add_partitions_to_txn`], [`add_offsets_to_txn`], [`end_txn`],
//!   [`txn_offset_commit`], [`list_transactions`],
//!   [`describe_transactions`], [`describe_producers`]: transactions, over
//!   the transaction coordinator (the group coordinator for
//!   TxnOffsetCommit, the replica manager for DescribeProducers).
//! * [`join_group`], [`sync_group`], [`heartbeat`], [`leave_group`]: the
//!   classic group protocol on the group coordinator's state machine;
//!   [`offset_commit`], [`offset_fetch`], [`offset_delete`],
//!   [`list_groups`], [`describe_groups`], [`delete_groups`],
//!   [`consumer_group_heartbeat`] (KIP-848): the same coordinator calls as
//!   gRPC's.
//! * [`create_topics`], [`delete_topics`], [`create_partitions`],
//!   [`describe_configs`], [`incremental_alter_configs`], [`alter_configs`],
//!   [`elect_leaders`], [`list_partition_reassignments`],
//!   [`alter_partition_reassignments`]: admin requests forwarded to the
//!   controller quorum, as a Kafka broker forwards them to its KRaft
//!   controller.
//! * [`describe_cluster`]: the brokers, from the replayed image.
//! * [`describe_log_dirs`]: this broker's log directory and replica sizes.
//! * [`delete_records`]: the replica manager's log-start move.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
mod group_util;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;
use strom_broker::ReplicaManager;
use strom_broker::config::KAFKA_ENDPOINT;
use strom_broker::group::Coordinator;
use strom_broker::txn::TxnCoordinatorRef;
use strom_controller_client::QuorumClient;
use strom_metadata::ClusterImage;
use strom_proto::StromError;
use strom_proto::v1::ErrorCode;

use crate::fetch_session::FetchSessionCache;
use crate::request::{Body, Request};
use crate::response::Response;

/// What the handlers serve from: the broker core of this node.
#[derive(Debug)]
pub struct Broker {
    /// The one write and read path.
    pub replicas: Arc<ReplicaManager>,
    /// The group coordinator (FindCoordinator).
    pub groups: Option<Coordinator>,
    /// The transaction coordinator (FindCoordinator, InitProducerId).
    pub transactions: Option<TxnCoordinatorRef>,
    /// The controller quorum, for admin requests.
    pub controller: Arc<QuorumClient>,
    /// Bound on one admin request to the quorum
    /// (`controller.request.timeout.ms`).
    pub controller_timeout: Duration,
    /// Incremental fetch sessions (KIP-227), shared by every connection
    /// (`max.incremental.fetch.session.cache.slots`).
    pub fetch_sessions: FetchSessionCache,
}

/// A request's answer still to come; `None` for a request that gets no
/// answer (Produce with acks=0).
pub type Pending = Pin<Box<dyn Future<Output = Option<Response>> + Send>>;

impl Broker {
    /// Starts `req`. Whatever must happen in the order requests arrive on
    /// the connection (a Produce's append) is done before this returns;
    /// the rest (the acks=all wait, a fetch's wait, a controller call) is
    /// the returned future, which the connection runs alongside later
    /// requests and answers in order.
    pub async fn start(self: &Arc<Self>, req: Request) -> Pending {
        let version = req.version();
        let client_id = req
            .header
            .client_id
            .as_deref()
            .unwrap_or_default()
            .to_owned();
        let this = self.clone();
        match req.body {
            Body::Produce(r) => produce::start(&self.replicas, r, version).await,
            Body::ApiVersions(_) => ready(Response::ApiVersions(api_versions::answer(version))),
            Body::Metadata(r) => ready(Response::Metadata(metadata::answer(
                &self.replicas,
                r,
                version,
            ))),
            Body::Fetch(r) => {
                let answer = fetch::start(self, r, version);
                Box::pin(async move { Some(Response::Fetch(answer.await)) })
            }
            Body::ListOffsets(r) => ready(Response::ListOffsets(list_offsets::answer(
                &self.replicas,
                r,
                version,
            ))),
            Body::OffsetForLeaderEpoch(r) => ready(Response::OffsetForLeaderEpoch(
                offset_for_leader_epoch::answer(&self.replicas, r),
            )),
            Body::InitProducerId(r) => Box::pin(async move {
                Some(Response::InitProducerId(
                    init_producer_id::answer(&this, r).await,
                ))
            }),
            Body::FindCoordinator(r) => ready(Response::FindCoordinator(find_coordinator::answer(
                self, r, version,
            ))),
            Body::CreateTopics(r) => Box::pin(async move {
                Some(Response::CreateTopics(
                    create_topics::answer(&this, r, version).await,
                ))
            }),
            Body::DeleteTopics(r) => Box::pin(async move {
                Some(Response::DeleteTopics(
                    delete_topics::answer(&this, r, version).await,
                ))
            }),
            Body::CreatePartitions(r) => Box::pin(async move {
                Some(Response::CreatePartitions(
                    create_partitions::answer(&this, r).await,
                ))
            }),
            Body::AddPartitionsToTxn(r) => Box::pin(async move {
                Some(Response::AddPartitionsToTxn(
                    add_partitions_to_txn::answer(&this, r, version).await,
                ))
            }),
            Body::AddOffsetsToTxn(r) => Box::pin(async move {
                Some(Response::AddOffsetsToTxn(
                    add_offsets_to_txn::answer(&this, r, version).await,
                ))
            }),
            Body::EndTxn(r) => {
                Box::pin(
                    async move { Some(Response::EndTxn(end_txn::answer(&this, r, version).await)) },
                )
            }
            Body::TxnOffsetCommit(r) => Box::pin(async move {
                Some(Response::TxnOffsetCommit(
                    txn_offset_commit::answer(&this, r, version).await,
                ))
            }),
            Body::DescribeProducers(r) => Box::pin(async move {
                Some(Response::DescribeProducers(
                    describe_producers::answer(&this.replicas, r).await,
                ))
            }),
            Body::ListTransactions(r) => Box::pin(async move {
                Some(Response::ListTransactions(
                    list_transactions::answer(&this, r).await,
                ))
            }),
            Body::DescribeTransactions(r) => Box::pin(async move {
                Some(Response::DescribeTransactions(
                    describe_transactions::answer(&this, r).await,
                ))
            }),
            Body::JoinGroup(r) => Box::pin(async move {
                Some(Response::JoinGroup(
                    join_group::answer(&this, r, version, &client_id).await,
                ))
            }),
            Body::SyncGroup(r) => Box::pin(async move {
                Some(Response::SyncGroup(
                    sync_group::answer(&this, r, version).await,
                ))
            }),
            Body::Heartbeat(r) => {
                Box::pin(
                    async move { Some(Response::Heartbeat(heartbeat::answer(&this, r).await)) },
                )
            }
            Body::LeaveGroup(r) => Box::pin(async move {
                Some(Response::LeaveGroup(
                    leave_group::answer(&this, r, version).await,
                ))
            }),
            Body::OffsetCommit(r) => Box::pin(async move {
                Some(Response::OffsetCommit(
                    offset_commit::answer(&this, r, version).await,
                ))
            }),
            Body::OffsetFetch(r) => Box::pin(async move {
                Some(Response::OffsetFetch(
                    offset_fetch::answer(&this, r, version).await,
                ))
            }),
            Body::OffsetDelete(r) => Box::pin(async move {
                Some(Response::OffsetDelete(
                    offset_delete::answer(&this, r).await,
                ))
            }),
            Body::ListGroups(r) => Box::pin(async move {
                Some(Response::ListGroups(
                    list_groups::answer(&this, r, version).await,
                ))
            }),
            Body::DescribeGroups(r) => Box::pin(async move {
                Some(Response::DescribeGroups(
                    describe_groups::answer(&this, r, version).await,
                ))
            }),
            Body::ConsumerGroupHeartbeat(r) => Box::pin(async move {
                Some(Response::ConsumerGroupHeartbeat(
                    consumer_group_heartbeat::answer(&this, r, version, &client_id).await,
                ))
            }),
            Body::DeleteGroups(r) => Box::pin(async move {
                Some(Response::DeleteGroups(
                    delete_groups::answer(&this, r).await,
                ))
            }),
            Body::DescribeConfigs(r) => Box::pin(async move {
                Some(Response::DescribeConfigs(
                    describe_configs::answer(&this, r).await,
                ))
            }),
            Body::IncrementalAlterConfigs(r) => Box::pin(async move {
                Some(Response::IncrementalAlterConfigs(
                    incremental_alter_configs::answer(&this, r).await,
                ))
            }),
            Body::AlterConfigs(r) => Box::pin(async move {
                Some(Response::AlterConfigs(
                    alter_configs::answer(&this, r).await,
                ))
            }),
            Body::DescribeLogDirs(r) => ready(Response::DescribeLogDirs(
                describe_log_dirs::answer(&self.replicas, r),
            )),
            Body::DescribeCluster(r) => ready(Response::DescribeCluster(describe_cluster::answer(
                &self.replicas,
                r,
                version,
            ))),
            Body::DeleteRecords(r) => Box::pin(async move {
                Some(Response::DeleteRecords(
                    delete_records::answer(&this.replicas, r).await,
                ))
            }),
            Body::ElectLeaders(r) => Box::pin(async move {
                Some(Response::ElectLeaders(
                    elect_leaders::answer(&this, r, version).await,
                ))
            }),
            Body::ListPartitionReassignments(r) => Box::pin(async move {
                Some(Response::ListPartitionReassignments(
                    list_partition_reassignments::answer(&this, r).await,
                ))
            }),
            Body::AlterPartitionReassignments(r) => Box::pin(async move {
                Some(Response::AlterPartitionReassignments(
                    alter_partition_reassignments::answer(&this, r).await,
                ))
            }),
        }
    }
}

impl Broker {
    /// The transaction coordinator, or COORDINATOR_NOT_AVAILABLE.
    pub(crate) fn txn_coordinator(&self) -> Result<&TxnCoordinatorRef, StromError> {
        self.transactions.as_ref().ok_or_else(|| {
            StromError::new(
                ErrorCode::CoordinatorNotAvailable,
                "this broker runs no transaction coordinator",
            )
        })
    }
}

fn ready(response: Response) -> Pending {
    Box::pin(std::future::ready(Some(response)))
}

/// `(host, port)` of `broker`'s Kafka listener, if it registered one.
pub(crate) fn kafka_endpoint(image: &ClusterImage, broker: i32) -> Option<(StrBytes, i32)> {
    image
        .broker(broker)?
        .endpoints
        .iter()
        .find(|e| e.name == KAFKA_ENDPOINT)
        .and_then(|e| {
            Some((
                StrBytes::from_string(e.host.clone()),
                i32::try_from(e.port).ok()?,
            ))
        })
}

/// A broker id in Kafka's newtype.
pub(crate) fn broker_id(id: i32) -> BrokerId {
    BrokerId(id)
}

/// A string in Kafka's type.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
