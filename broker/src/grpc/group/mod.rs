//! `GroupService`: one file per RPC, conversions in [`convert`]; every rule
//! lives in `strom-group`, the I/O in [`crate::group`].

mod assignment_stream;
mod consume_member_records;
pub mod convert;
mod delete_group;
mod describe_group;
mod find_coordinator;
mod heartbeat;
mod list_groups;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod service;

pub use service::GroupServiceImpl;
