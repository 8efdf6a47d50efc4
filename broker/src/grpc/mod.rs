//! The broker's gRPC services on the client port.
//!
//! * [`broker_service`]: `BrokerService`, one file per RPC: [`produce`],
//!   [`fetch`], [`list_offsets`], [`offsets_for_leader_epoch`],
//!   [`delete_records`], [`init_producer_id`], [`describe_producers`].
//! * [`group`]: `GroupService` (consumer groups and committed offsets),
//!   one file per RPC over the broker's group coordinator.
//! * [`txn`]: `TransactionService` (AddPartitionsToTxn, AddOffsetsToTxn,
//!   EndTxn, and WriteTxnMarkers between brokers), one file per RPC over
//!   the broker's transaction coordinator.
//! * [`records`]: `RecordsService` (`ProduceRecords`: records as protobuf
//!   messages for thin clients, appended through the produce path).
//! * [`metadata`]: `MetadataService`, answered from the broker's own image.
//! * [`controller_proxy`]: `ControllerService` for broker-only nodes,
//!   forwarding every call to the controller quorum.
//! * [`traffic`]: bytes and records in and out, for metrics.

pub mod broker_service;
pub mod controller_proxy;
pub mod delete_records;
pub mod describe_producers;
pub mod fetch;
pub mod group;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offsets_for_leader_epoch;
pub mod produce;
pub mod records;
pub mod traffic;
pub mod txn;

pub use broker_service::BrokerServiceImpl;
pub use controller_proxy::ControllerProxy;
pub use group::GroupServiceImpl;
pub use metadata::MetadataServiceImpl;
pub use records::RecordsServiceImpl;
use strom_proto::v1::{ErrorCode, LeaderIdAndEpoch};
pub use txn::TransactionServiceImpl;

use crate::replica::ReplicaManager;

/// The current leader to name in a partition error that sends the client
/// elsewhere (every front end names it for the same codes).
pub fn leader_hint_for(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    code: ErrorCode,
) -> Option<LeaderIdAndEpoch> {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::LeaderNotAvailable
    )
    .then(|| rm.leader_hint(topic, partition))
    .flatten()
}
