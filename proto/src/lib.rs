//! Strom's gRPC contract, package `strom.v1`.
//!
//! * [`v1`]: messages, `ErrorCode`, and the generated tonic clients and
//!   servers for `ControllerService`, `MetadataService`, `BrokerService` (produce, fetch,
//!   offsets) and `RaftService`.
//! * [`FetchSession`]: repeated fetches from one broker on a long-lived
//!   `FetchStream`.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
//! * Metadata records (`strom.metadata.v1`) are defined in `strom-metadata`
//!   and re-exported here as [`records`].

#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]

/// Generated code of package `strom.v1`.
pub mod v1 {
    tonic::include_proto!("strom.v1");
}

pub mod convert;
pub mod error;
pub mod fetch_session;

pub use error::{LeaderHint, StromError};
pub use fetch_session::FetchSession;
pub use strom_metadata::pb as records;

/// Largest message on the controller's channels (Raft, `ControllerService`,
/// `WatchMetadata`), in both directions: a metadata snapshot can be large,
/// but a peer must never make another allocate without bound.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Encoded `FileDescriptorSet` of every Strom proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("strom_descriptor");
