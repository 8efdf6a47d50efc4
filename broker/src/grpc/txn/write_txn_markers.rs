//! `TransactionService.WriteTxnMarkers` (broker to broker).

use strom_proto::v1::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::txn::TxnCoordinatorRef;

/// Writes the markers to the partitions this broker leads; errors per
/// partition.
pub(super) async fn write_txn_markers(
    c: &TxnCoordinatorRef,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    c.write_markers_here(req).await
}
