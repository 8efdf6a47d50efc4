//! The data path: every partition replica this broker hosts, following the
//! metadata image.
//!
//! * [`append`]: the one write path, [`ReplicaManager::append`]: client
//!   rules, leader append, the acks=all wait. Every writer uses it.
//! * [`fetch`]: the one read path, [`ReplicaManager::fetch`]: consumer and
//!   follower fetches, follower progress, the delayed-fetch wait.
//! * [`config`]: [`ReplicationConfig`], read by the manager and the
//!   fetchers (apart from both, so neither module depends on the other).
//! * [`rules`]: pure replication rules (ISR, high watermark, divergence).
//! * `partition`: one replica — log, role, follower progress.
//! * `plan`: the pure decision of what to do on an image
//!   change (open, lead, follow, update, wait, remove).
//! * [`manager`]: [`ReplicaManager`], which executes those plans (opens
//!   and role changes in parallel), and runs the periodic ISR shrink check,
//!   checkpoints and retention.
//! * [`offsets`]: ListOffsets and OffsetsForLeaderEpoch lookups on the
//!   leader, for every front end.
//! * [`retention`]: the log start offset moving up — retention on a timer
//!   (`retention.ms`, `retention.bytes`, `segment.ms` rolls of quiet
//!   partitions; followers follow their leader's start) and
//!   `DeleteRecords`.
//! * [`cleaner`]: the log cleaner — compaction of `cleanup.policy=compact`
//!   replicas on dedicated threads (dirtiest log first, throttled).
//! * [`log_dir`]: the log directory's health: a write error takes it
//!   offline, the broker's heartbeats report it and the controller fences
//!   the broker (KIP-112).
//! * [`leadership`]: the hook that tells components (coordinators) of role
//!   changes.
//! * [`fetcher`]: follower fetch sessions, one per source broker.
//! * [`quota`]: the replication throttles' byte rates (a token bucket per
//!   side, leader and follower), metering moving replicas only.
//! * [`isr`]: sends ISR changes to the controller (AlterPartition).
//! * `producer_ids`: producer ids for `InitProducerId`, from blocks the
//!   controller hands out (AllocateProducerIds).
//! * [`producers`]: DescribeProducers, and the producer and
//!   last-stable-offset figures for metrics.
//! * [`seams`]: the traits between the core and the outside world
//!   (controller, peer fetch transport, clock, blocking work), so a
//!   simulation runs the real core in one process.
//! * [`peer_grpc`]: the production peer fetch transport (`FetchStream`).
//! * [`startup`]: recovers every local log before the broker registers and
//!   finds the replicas that lost records.
//!
//! Design notes: `docs/replication.md`.

pub mod append;
mod changes;
pub mod cleaner;
pub mod config;
pub mod fetch;
pub mod fetcher;
pub mod isr;
pub mod leadership;
pub mod log_dir;
pub mod manager;
#[cfg(test)]
mod manager_test;
pub mod offsets;
pub(crate) mod partition;
pub mod peer_grpc;
pub(crate) mod plan;
#[cfg(test)]
mod plan_test;
mod producer_ids;
pub mod producers;
pub mod quota;
pub mod retention;
#[cfg(test)]
mod retention_test;
pub mod rules;
pub mod seams;
pub mod startup;

pub use append::{
    AppendOrigin, AppendRequest, Appended, Appending, PartitionAppend, PartitionResult,
};
pub use config::ReplicationConfig;
pub use fetch::{FetchParams, FetchPartition, FetchedPartition, Isolation};
pub use leadership::{LeadershipChange, LeadershipListener, LeadershipRole};
pub use log_dir::LogDirHealth;
pub use manager::ReplicaManager;
pub use offsets::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, ListedOffset};
pub use partition::ActiveProducer;
pub use peer_grpc::GrpcPeers;
pub use producers::{LsoLag, ProducerStats};
pub use quota::ReplicationQuotas;
pub use retention::{RecordsToDelete, RetentionStats};
pub use seams::{
    Blocking, Clock, ControllerClient, PeerSession, PeerTransport, Seams, SystemClock, TxnVerifier,
};
pub use startup::{DamagedReplica, clear_lost_records_markers, recover_local_logs};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use strom_log::{ErrorKind, LogError};
use strom_proto::v1::ErrorCode;

/// A per-partition error, as carried in produce and fetch responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    /// The Kafka error code.
    pub code: ErrorCode,
    /// What and why.
    pub message: String,
}

impl PartError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_leader(topic: &str, partition: i32) -> Self {
        Self::new(
            ErrorCode::NotLeaderOrFollower,
            format!("this broker is not the leader of {topic}-{partition}"),
        )
    }

    pub(crate) fn from_log(e: &LogError) -> Self {
        let code = match e.kind() {
            ErrorKind::CorruptMessage => ErrorCode::CorruptMessage,
            ErrorKind::RecordTooLarge => ErrorCode::RecordTooLarge,
            ErrorKind::InvalidRecord => ErrorCode::InvalidRecord,
            ErrorKind::OffsetOutOfRange => ErrorCode::OffsetOutOfRange,
            ErrorKind::InvalidConfig => ErrorCode::InvalidConfig,
            ErrorKind::InvalidProducerEpoch => ErrorCode::InvalidProducerEpoch,
            ErrorKind::OutOfOrderSequence => ErrorCode::OutOfOrderSequenceNumber,
            ErrorKind::UnknownProducerId => ErrorCode::UnknownProducerId,
            ErrorKind::InvalidTxnState => ErrorCode::InvalidTxnState,
            ErrorKind::TransactionCoordinatorFenced => ErrorCode::TransactionCoordinatorFenced,
            ErrorKind::UnexpectedAppendOffset | ErrorKind::Storage => ErrorCode::KafkaStorageError,
        };
        Self::new(code, e.to_string())
    }
}

impl std::fmt::Display for PartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)
    }
}

/// A hash map whose iteration order follows from what was inserted, not
/// from a per-process random seed: SipHash with fixed keys, as fast as
/// `HashMap`'s default. The core iterates these maps to build fetch
/// requests and to run ISR checks, and a simulation replays a seed only if
/// that order does too. Its keys (topic ids, partition indexes, broker
/// ids) come from the controller, not from clients.
pub(crate) type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

#[cfg(test)]
mod part_error_tests {
    use super::*;

    #[test]
    fn log_transaction_errors_keep_their_kafka_codes() {
        let table = [
            (
                LogError::InvalidTxnState {
                    producer_id: 7,
                    reason: "non-transactional batch while its transaction is open".into(),
                },
                ErrorCode::InvalidTxnState,
            ),
            (
                LogError::TransactionCoordinatorFenced {
                    producer_id: 7,
                    coordinator_epoch: 1,
                    current: 2,
                },
                ErrorCode::TransactionCoordinatorFenced,
            ),
            (
                LogError::UnknownProducerId {
                    producer_id: 7,
                    first_seq: 3,
                },
                ErrorCode::UnknownProducerId,
            ),
        ];
        for (e, code) in table {
            let p = PartError::from_log(&e);
            assert_eq!(p.code, code, "{e}");
            assert!(
                p.message.contains("producer 7") || p.message.contains("id 7"),
                "{p}"
            );
        }
    }
}
