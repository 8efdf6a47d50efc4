//! Strom's Kafka wire-protocol listener: a second front end on the broker
//! core, beside gRPC. Every handler translates a Kafka message into the
//! same broker, controller and coordinator calls the gRPC handlers make;
//! no rule lives here. Messages are encoded and decoded by the
//! `kafka-protocol` crate (generated from Kafka's own schemas); record
//! batches, already Kafka v2 bytes in Strom's log, pass through as bytes.
//!
//! Layout:
//! * [`frame`]: size-prefixed framing, with the request size limit (pure).
//! * [`request`]: a frame's header and body decoded, or why the connection
//!   must close (pure).
//! * [`versions`]: the APIs and versions served — the one table
//!   ApiVersions answers from and requests are checked against.
//! * [`errors`]: Strom's error codes onto Kafka's, in one place.
//! * [`consumer_protocol`]: the subscription and assignment embedded in
//!   the group protocol's messages (pure).
//! * [`fetch_session`]: KIP-227 incremental fetch sessions, the broker's
//!   bounded cache of them and the rules of each Fetch against it (pure,
//!   behind one lock).
//! * [`response`]: a response's header (v0 or v1 by flexible version) and
//!   body, framed.
//! * [`handlers`]: one file per API over the [`Broker`] core.
//! * [`connection`]: one client connection: pipelined requests, answered
//!   in request order, with a bound on unanswered requests and the idle
//!   timeout.
//! * [`listener`]: accepts connections and owns their tasks until the
//!   root cancellation token stops it.
//!
//! docs/kafka.md describes the design and what is served.

pub mod connection;
pub mod consumer_protocol;
pub mod errors;
pub mod fetch_session;
pub mod frame;
pub mod handlers;
pub mod listener;
pub mod request;
pub mod response;
pub mod versions;

pub use handlers::Broker;
pub use listener::{KafkaListener, ListenerConfig};
