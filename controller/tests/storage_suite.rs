//! openraft's storage conformance suite against the RocksDB log store and
//! state machine.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use strom_controller::raft::TypeConfig;
use strom_controller::raft::feed::MetadataFeed;
use strom_controller::raft::log_store::LogStore;
use strom_controller::raft::state_machine::StateMachine;
use strom_controller::raft::store::RaftDb;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = RaftDb::open(dir.path()).expect("open rocksdb");
        let sm = StateMachine::open(db.clone(), Arc::new(MetadataFeed::new(64))).await?;
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn rocksdb_store_passes_the_openraft_storage_suite() {
    Suite::test_all(RocksBuilder).expect("storage suite");
}
