//! `RecordsService`: records as protobuf messages for thin clients, one
//! file per RPC.

mod consume_records;
mod produce_records;
mod service;

pub use service::RecordsServiceImpl;
