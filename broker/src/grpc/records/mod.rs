//! `RecordsService`: records as protobuf messages for thin clients, one
//! file per RPC.

pub(crate) mod consume_records;
mod produce_records;
mod service;

pub use service::RecordsServiceImpl;
