//! Strom cluster metadata: pure logic, no I/O, no async.
//!
//! The controller appends [`pb::MetadataRecord`] batches to its Raft log;
//! every controller and broker replays them into a [`ClusterImage`]. The
//! active controller decides what to propose with the pure functions here,
//! which read an image and return records (or a typed error) and never
//! mutate it; the records take effect only when the committed batch is
//! applied, where every precondition is checked again.
//!
//! Layout:
//! * [`error`]: [`MetadataError`] and [`ErrorKind`] (named after the proto `ErrorCode`s).
//! * [`image`]: [`ClusterImage`] and its parts, read accessors, partition helpers.
//! * `apply`: [`ClusterImage::apply_batch`], atomic through an undo log.
//! * `snapshot`: [`ClusterImage::to_snapshot`] and [`ClusterImage::from_snapshot`].
//! * [`records`]: protobuf ↔ domain conversions and record constructors.
//! * [`validation`]: topic names, counts, assignments, topic configs.
//! * [`configs`]: the config key tables, `DescribeConfigs` and
//!   `IncrementalAlterConfigs` (live configuration).
//! * [`placement`]: rack- and load-aware replica placement.
//! * [`election`]: the leader election rule and `ElectLeaders`.
//! * [`topics`]: create/delete topics, add partitions, alter topic configs.
//! * [`brokers`]: register, fence, unfence, controlled shutdown.
//! * [`isr`]: `AlterPartition` (ISR changes from leaders).
//! * [`imbalance`]: leader imbalance and preferred-leader rebalancing.
//! * [`reassignment`]: partition reassignment (KIP-455): start, cancel, complete.
//! * [`planner`]: rack-aware, minimal-movement reassignment plans.
//! * [`producer_ids`]: producer-id blocks for brokers (`AllocateProducerIds`).
//! * [`decommission`]: draining a broker (decommission, recommission).
//! * [`balancer`]: the built-in balancer's decisions (`balancer.mode`).
//! * [`throttle`]: replication throttles — which moving replicas the
//!   throttled-replicas topic configs select, and what a throttled plan sets.
//!
//! docs/metadata.md describes the records, the apply rules and the algorithms.
#![warn(missing_docs)]

pub mod pb {
    //! Metadata records generated from `proto/strom/metadata/v1/records.proto`.
    #![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
    include!(concat!(env!("OUT_DIR"), "/strom.metadata.v1.rs"));
}

mod apply;
pub mod balancer;
pub mod brokers;
pub mod configs;
pub mod decommission;
pub mod election;
pub mod error;
pub mod image;
pub mod imbalance;
pub mod isr;
pub mod placement;
pub mod planner;
pub mod producer_ids;
pub mod reassignment;
pub mod records;
mod snapshot;
pub mod throttle;
pub mod topics;
pub mod validation;

#[cfg(test)]
mod testutil;

pub use brokers::{
    ControlledShutdown, Registration, controlled_shutdown, fence_broker, register_broker,
    remaining_leaderships, unfence_broker, unregister_broker,
};
pub use decommission::{
    decommission_broker, decommission_moves, decommission_progress, recommission_broker,
    unregister_drained_broker,
};
pub use election::{
    ElectionKind, ElectionResult, LeaderChoice, choose_leader, elect_leaders, next_elr,
};
pub use error::{ErrorKind, MetadataError, Result};
pub use image::{
    BrokerRegistration, ClusterImage, DEFAULT_MIN_INSYNC_REPLICAS, MIN_INSYNC_REPLICAS, NO_LEADER,
    PartitionState, TopicImage, effective_min_isr, is_offline, offline_replicas, under_replicated,
};
pub use imbalance::{DEFAULT_LEADER_IMBALANCE_PERCENTAGE, leader_imbalance, rebalance_leaders};
pub use isr::alter_partition;
pub use placement::{BrokerLoad, assign_replicas, broker_loads};
pub use planner::{PartitionAssignment, plan_assignment};
pub use reassignment::{
    ReassignmentOutcome, ReassignmentSpec, alter_reassignments, complete_reassignments,
    reassignments,
};
pub use topics::{
    CreateTopicSpec, alter_topic_configs, create_partitions, create_topic, create_topics,
    delete_topic,
};
pub use uuid::Uuid;
pub use validation::{
    INTERNAL_TOPICS, is_internal_topic, validate_topic_config, validate_topic_configs,
    validate_topic_name,
};
