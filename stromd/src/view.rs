//! What the HTTP admin endpoint reads of the node: handles on the
//! controller, the broker's standing and counters, the data directory and
//! the per-RPC metrics. `admin.rs` answers `/readyz` from it and `metrics.rs`
//! renders `/metrics` from it; neither depends on the other.

use std::path::PathBuf;
use std::sync::Arc;

use strom_broker::grpc::traffic::Traffic;
use strom_broker::{BrokerStatus, MetadataCache, ReplicaManager};
use strom_controller::Controller;
use tokio::sync::watch;

use crate::rpc::RpcMetrics;

/// What the admin endpoint reads of a broker.
#[derive(Clone)]
pub(crate) struct BrokerView {
    pub(crate) cache: MetadataCache,
    pub(crate) status: watch::Receiver<BrokerStatus>,
    pub(crate) traffic: Arc<Traffic>,
    pub(crate) log_dirs: strom_broker::replica::LogDirHealth,
    /// Retention counters and log start offsets.
    pub(crate) replicas: Arc<ReplicaManager>,
    /// The group coordinator's gauges and counters.
    pub(crate) groups: strom_broker::group::Coordinator,
    /// The transaction coordinator's gauges and counters.
    pub(crate) transactions: strom_broker::txn::TxnCoordinatorRef,
}

/// What the admin endpoint reads of the node.
#[derive(Clone)]
pub(crate) struct NodeView {
    pub(crate) controller: Option<Controller>,
    pub(crate) broker: Option<BrokerView>,
    pub(crate) node_id: i32,
    pub(crate) data_dir: PathBuf,
    pub(crate) rpc: Arc<RpcMetrics>,
}
