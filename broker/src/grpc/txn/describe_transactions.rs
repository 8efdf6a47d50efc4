//! `TransactionService.DescribeTransactions`.

use strom_proto::StromError;
use strom_proto::v1::{DescribeTransactionsRequest, DescribeTransactionsResponse};

use super::convert;
use crate::txn::TxnCoordinatorRef;

/// The id's state, answered by its coordinator.
pub(super) async fn describe_transactions(
    c: &TxnCoordinatorRef,
    req: DescribeTransactionsRequest,
) -> Result<DescribeTransactionsResponse, StromError> {
    let m = c.describe(&req.transactional_id).await?;
    Ok(convert::described(req.transactional_id, &m))
}
