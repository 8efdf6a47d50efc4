//! `TransactionService.ListTransactions`.

use strom_proto::StromError;
use strom_proto::v1::{ListTransactionsRequest, ListTransactionsResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// The transactional ids this broker coordinates, filtered.
pub(super) async fn list_transactions(
    c: &TxnCoordinatorRef,
    req: ListTransactionsRequest,
) -> Result<ListTransactionsResponse, StromError> {
    let states = req
        .state_filters
        .iter()
        .map(|s| convert::state(s))
        .collect::<Result<Vec<_>, _>>()?;
    let listed = c.list(&states, &req.producer_id_filters).await;
    Ok(ListTransactionsResponse {
        transactions: listed.into_iter().map(convert::listing).collect(),
    })
}
