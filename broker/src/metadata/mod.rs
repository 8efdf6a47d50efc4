//! The broker's copy of the cluster metadata.
//!
//! * [`cache`]: the replayed image, shared with request handlers.
//! * [`changes`]: ISR shrink/expand and leader election counters observed
//!   while replaying (for metrics).
//! * [`follower`]: replays the controller's metadata log into the cache.

pub mod cache;
pub mod changes;
pub mod follower;

pub use cache::MetadataCache;
