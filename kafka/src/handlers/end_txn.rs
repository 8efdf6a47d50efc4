//! EndTxn: [`TxnCoordinator::end_txn`](strom_broker::txn::TxnCoordinator::end_txn),
//! the call gRPC's EndTxn makes. v5+ is transaction version 2 (KIP-890
//! part 2: the epoch is bumped and answered); below, as Kafka, the client
//! keeps its epoch ([`TxnVersion::V0`]; librdkafka).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use strom_txn::TxnVersion;

use super::Broker;
use crate::errors::{kafka_code, txn_error_code};

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;
/// The first version of transaction version 2 (Kafka's
/// `TransactionVersion.transactionVersionForEndTxn`).
const TRANSACTION_VERSION_2_SINCE: i16 = 5;

/// The transaction protocol of an EndTxn of `version`.
pub fn txn_version(version: i16) -> TxnVersion {
    if version >= TRANSACTION_VERSION_2_SINCE {
        TxnVersion::V2
    } else {
        TxnVersion::V0
    }
}

/// Answers one EndTxn request.
pub async fn answer(broker: &Broker, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let failed = |code: i16| {
        EndTxnResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let c = match broker.txn_coordinator() {
        Ok(c) => c,
        Err(e) => return failed(kafka_code(e.code)),
    };
    match c
        .end_txn(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            txn_version(version),
        )
        .await
    {
        Ok((id, epoch)) => EndTxnResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => failed(txn_error_code(e.code, version, FENCED_SINCE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_txn_v5_and_later_is_transaction_version_2() {
        let cases = [
            (0, TxnVersion::V0),
            (3, TxnVersion::V0),
            (4, TxnVersion::V0),
            (5, TxnVersion::V2),
        ];
        for (version, want) in cases {
            assert_eq!(txn_version(version), want, "v{version}");
        }
    }
}
