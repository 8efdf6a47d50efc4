//! `TransactionService`: one file per RPC, conversions in [`convert`];
//! every rule lives in `strom-txn`, the I/O in [`crate::txn`].

mod add_offsets_to_txn;
mod add_partitions_to_txn;
pub mod convert;
mod describe_transactions;
mod end_txn;
mod list_transactions;
mod service;
mod txn_offset_commit;
mod write_txn_markers;

pub use service::TransactionServiceImpl;
