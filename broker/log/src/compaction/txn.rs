//! The cleaner's view of transactions (Kafka's `CleanedTransactionMetadata`),
//! pure: a pass reads the log below its map end in offset order, from the
//! log start, and asks [`TxnTracker::role`] what each batch is.
//!
//! - A batch of an aborted transaction (the aborted-transaction index
//!   lists it) loses every record; its header stays, like every emptied
//!   batch of a producer.
//! - A marker (COMMIT or ABORT) stays while any batch of its transaction,
//!   read in this pass before the filtering, still holds records: a reader
//!   needs it to decide them. Once none does (an aborted transaction's
//!   records went in an earlier pass, a committed one's were all
//!   superseded), the marker gets a delete horizon
//!   (`now + delete.retention.ms`, as a tombstone, KIP-534) and a pass after
//!   that horizon removes it: a reader that fetched the transaction's
//!   records before they went still finds the marker for
//!   `delete.retention.ms`. Removing records and removing their marker
//!   therefore always happen in different passes.
//! - Markers are never deduplicated by key (they never enter the offset
//!   map).

use std::collections::HashMap;

/// What the cleaner does with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnRole {
    /// Plain, idempotent or committed transactional data: records go only
    /// when superseded (or expired tombstones, or keyless).
    Data,
    /// A batch of an aborted transaction: every record goes.
    Aborted,
    /// A marker whose transaction still holds records: kept whole.
    MarkerNeeded,
    /// A marker whose transaction holds no record any more: stamped with a
    /// delete horizon, removed once it passed.
    MarkerDone,
}

/// Per producer, whether its transaction read so far (since its last
/// marker) has a batch holding records.
#[derive(Debug, Default)]
pub(crate) struct TxnTracker {
    holding: HashMap<i64, bool>,
}

impl TxnTracker {
    /// The role of the next batch in offset order: `control` and
    /// `transactional` are its attribute bits, `has_records` whether its
    /// record count is above 0, `aborted` whether the aborted-transaction
    /// index places it inside an aborted transaction of its producer.
    pub(crate) fn role(
        &mut self,
        producer_id: i64,
        control: bool,
        transactional: bool,
        has_records: bool,
        aborted: bool,
    ) -> TxnRole {
        if control {
            return if self.holding.remove(&producer_id).unwrap_or(false) {
                TxnRole::MarkerNeeded
            } else {
                TxnRole::MarkerDone
            };
        }
        if !transactional {
            return TxnRole::Data;
        }
        *self.holding.entry(producer_id).or_insert(false) |= has_records;
        if aborted {
            TxnRole::Aborted
        } else {
            TxnRole::Data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch in offset order: (producer, control, transactional,
    /// has records, aborted).
    type Batch = (i64, bool, bool, bool, bool);

    const fn data(pid: i64, has_records: bool) -> Batch {
        (pid, false, true, has_records, false)
    }
    const fn aborted(pid: i64, has_records: bool) -> Batch {
        (pid, false, true, has_records, true)
    }
    const fn marker(pid: i64) -> Batch {
        (pid, true, true, false, false)
    }
    const PLAIN: Batch = (-1, false, false, true, false);

    #[test]
    fn roles_follow_each_producers_transaction() {
        use TxnRole::*;
        let cases: &[(&str, &[Batch], &[TxnRole])] = &[
            (
                "an aborted transaction with records keeps its marker",
                &[aborted(1, true), PLAIN, marker(1)],
                &[Aborted, Data, MarkerNeeded],
            ),
            (
                "once its records are gone the marker may go",
                &[aborted(1, false), aborted(1, false), marker(1)],
                &[Aborted, Aborted, MarkerDone],
            ),
            (
                "one batch still holding records keeps it",
                &[aborted(1, false), aborted(1, true), marker(1)],
                &[Aborted, Aborted, MarkerNeeded],
            ),
            (
                "a committed transaction's marker stays while records do",
                &[data(2, true), marker(2)],
                &[Data, MarkerNeeded],
            ),
            (
                "all superseded: the commit marker may go",
                &[data(2, false), marker(2)],
                &[Data, MarkerDone],
            ),
            (
                "a marker without batches may go",
                &[PLAIN, marker(3)],
                &[Data, MarkerDone],
            ),
            (
                "producers are tracked apart",
                &[
                    data(1, true),
                    data(2, false),
                    marker(2),
                    marker(1),
                    data(1, false),
                    marker(1),
                ],
                &[Data, Data, MarkerDone, MarkerNeeded, Data, MarkerDone],
            ),
            (
                "a marker ends its transaction: the next starts afresh",
                &[data(1, true), marker(1), marker(1)],
                &[Data, MarkerNeeded, MarkerDone],
            ),
            (
                "idempotent batches are data, and open no transaction",
                &[(4, false, false, true, false), marker(4)],
                &[Data, MarkerDone],
            ),
        ];
        for (name, batches, want) in cases {
            let mut tracker = TxnTracker::default();
            let got: Vec<TxnRole> = batches
                .iter()
                .map(|&(pid, control, txn, records, ab)| {
                    tracker.role(pid, control, txn, records, ab)
                })
                .collect();
            assert_eq!(got, *want, "{name}");
        }
    }
}
