//! The broker's gRPC services on the client port.
//!
//! * [`metadata`]: `MetadataService`, answered from the broker's own image.
//! * [`controller_proxy`]: `ControllerService` for broker-only nodes,
//!   forwarding every call to the controller quorum.

pub mod controller_proxy;
pub mod metadata;

pub use controller_proxy::ControllerProxy;
pub use metadata::MetadataServiceImpl;
