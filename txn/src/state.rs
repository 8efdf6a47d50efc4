//! A transaction's states, as Kafka's `TransactionState` (ids, names and
//! legal transitions).

use crate::error::{Result, bail};

/// The state of a transactional id's current (or last) transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction open; the producer may start one.
    Empty,
    /// A transaction is open: partitions have been added.
    Ongoing,
    /// Commit decided; COMMIT markers are being written.
    PrepareCommit,
    /// Abort decided; ABORT markers are being written.
    PrepareAbort,
    /// Every COMMIT marker is written.
    CompleteCommit,
    /// Every ABORT marker is written.
    CompleteAbort,
    /// The transactional id expired (Kafka writes it before the tombstone;
    /// Strom writes the tombstone alone, and reads `Dead` as absent).
    Dead,
    /// Kafka's in-memory state while fencing an open transaction; never in
    /// Strom's log (a fence is written as `PrepareAbort` with the bumped
    /// epoch in one decision), read as `PrepareAbort` if Kafka wrote it.
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in id order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's state id (the `TransactionStatus` byte).
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a `TransactionStatus` byte.
    pub fn from_id(id: i8) -> Result<TxnState> {
        match TxnState::ALL.get(usize::try_from(id).unwrap_or(usize::MAX)) {
            Some(s) => Ok(*s),
            None => bail!(CorruptMessage, "unknown transaction state id {id}"),
        }
    }

    /// Kafka's name (as `DescribeTransactions` and kafka-transactions show it).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states from which Kafka allows a transition into `self`
    /// (transaction version 2: an abort may start from `Empty` and the
    /// complete states).
    pub fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether markers are being written (the transaction is decided but
    /// not complete).
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// Whether no transaction is open or completing: the id may expire and
    /// a new transaction may start.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}
