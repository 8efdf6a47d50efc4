//! The broker's copy of the cluster metadata.
//!
//! * [`cache`]: the replayed image, shared with request handlers.
//! * [`follower`]: replays the controller's metadata log into the cache.

pub mod cache;
pub mod follower;

pub use cache::MetadataCache;
