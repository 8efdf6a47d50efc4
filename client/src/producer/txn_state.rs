//! The transactional producer's state machine (no I/O, no clock): which
//! call is allowed when, and how errors split into fatal and abortable
//! ones, as Kafka's `TransactionManager`.
//!
//! ```text
//! Uninitialized ─init→ Initializing ─ok→ Ready ─begin→ InTransaction
//!   InTransaction ─commit→ Committing ─ok→ Ready
//!   InTransaction ─abort→ Aborting ─ok→ Ready
//!   InTransaction/Committing ─abortable error→ AbortableError ─abort→ Aborting
//!   any ─fatal error→ Fatal (only close is left)
//! ```
//!
//! A record refused by its partition leader with UNKNOWN_PRODUCER_ID (the
//! leader lost the producer's state) or INVALID_PRODUCER_EPOCH (the leader
//! saw a newer epoch) makes the transaction abortable, not the producer
//! fatal (KIP-360, KIP-588): the abort's EndTxn bumps the epoch (every
//! EndTxn does, KIP-890, also an abort of nothing), so the next
//! transaction's sequences start at 0 in an epoch every leader accepts;
//! if the producer was really fenced, the coordinator refuses that EndTxn
//! with PRODUCER_FENCED, which is fatal. The same codes from the
//! coordinator stay fatal.
//!
//! A commit or an abort whose coordinator call timed out stays in
//! `Committing` / `Aborting` and may be called again: the coordinator
//! answers a retried EndTxn from its state. An `init_transactions` that
//! timed out may likewise be called again.

use strom_proto::v1::ErrorCode;

use crate::error::Error;

/// Where the transactional producer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// `init_transactions` under way (or timed out: call it again).
    Initializing,
    /// Initialised, no transaction open.
    Ready,
    /// `begin_transaction` called.
    InTransaction,
    /// `commit_transaction` under way (or timed out: call it again).
    Committing,
    /// `abort_transaction` under way (or timed out: call it again).
    Aborting,
    /// A send or a transactional call failed: only an abort is allowed.
    AbortableError,
    /// Fenced or otherwise failed for good: only close.
    Fatal,
}

/// A call of the transactional API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Init,
    Begin,
    Send,
    SendOffsets,
    Commit,
    Abort,
}

/// Codes after which a transactional producer can only be closed, as
/// Kafka's fatal errors: a newer incarnation fenced it, or its epoch or
/// id no longer match what the coordinator holds.
pub(crate) fn is_fatal_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProducerFenced
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::TransactionCoordinatorFenced
            | ErrorCode::InvalidTxnState
            | ErrorCode::InvalidProducerIdMapping
            | ErrorCode::InvalidTransactionTimeout
            | ErrorCode::UnsupportedVersion
    )
}

/// Codes a partition leader answers a record with that only need a new
/// epoch (see the module docs): abortable for a record, fatal from the
/// coordinator.
pub(crate) fn needs_epoch_bump(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownProducerId | ErrorCode::InvalidProducerEpoch
    )
}

/// The transactional state of one producer.
#[derive(Debug, Clone)]
pub(crate) struct TxnState {
    phase: Phase,
    /// The error behind `AbortableError` or `Fatal`.
    error: Option<Error>,
    /// Something of the open transaction reached the coordinator or a
    /// partition (a record appended, offsets added): it needs an EndTxn.
    started: bool,
}

impl Default for TxnState {
    fn default() -> Self {
        Self {
            phase: Phase::Uninitialized,
            error: None,
            started: false,
        }
    }
}

impl TxnState {
    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the open transaction needs an EndTxn.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Checks that `call` is allowed now; on success the phase moves to
    /// where the call leads (`Initializing`, `InTransaction`, `Committing`,
    /// `Aborting`). Refusals change nothing.
    pub(crate) fn start(&mut self, call: Call) -> Result<(), Error> {
        use Call as C;
        use Phase as P;
        let next = match (self.phase, call) {
            (P::Fatal, _) => return Err(self.fatal_error()),
            (P::Uninitialized | P::Initializing, C::Init) => P::Initializing,
            (P::Uninitialized | P::Initializing, _) => {
                return Err(illegal(
                    "the transactional producer is not initialised: call init_transactions first",
                ));
            }
            (_, C::Init) => {
                return Err(illegal("init_transactions was already called"));
            }
            (P::Ready, C::Begin) => P::InTransaction,
            (P::Ready, C::Send) => {
                return Err(illegal(
                    "a transactional producer sends only inside a transaction: call \
                     begin_transaction first",
                ));
            }
            (P::Ready, _) => return Err(illegal("no transaction is open")),
            (P::InTransaction, C::Begin) => {
                return Err(illegal("a transaction is already open"));
            }
            (P::InTransaction, C::Send | C::SendOffsets) => P::InTransaction,
            (P::InTransaction | P::Committing, C::Commit) => P::Committing,
            (P::InTransaction | P::Aborting | P::AbortableError, C::Abort) => P::Aborting,
            (P::Committing, _) => {
                return Err(illegal(
                    "the transaction is committing: only commit_transaction may be called again",
                ));
            }
            (P::Aborting, _) => {
                return Err(illegal(
                    "the transaction is aborting: only abort_transaction may be called again",
                ));
            }
            (P::AbortableError, _) => {
                return Err(Error::AbortableTransaction(Box::new(
                    self.error
                        .clone()
                        .unwrap_or_else(|| illegal("an earlier transactional call failed")),
                )));
            }
        };
        if next == P::InTransaction && self.phase == P::Ready {
            self.started = false;
        }
        self.phase = next;
        Ok(())
    }

    /// A record was appended to the open transaction, or its offsets were
    /// added.
    pub(crate) fn mark_started(&mut self) {
        self.started = true;
    }

    /// `init_transactions`, a commit or an abort finished: ready for the
    /// next transaction.
    pub(crate) fn ready(&mut self) {
        if self.phase != Phase::Fatal {
            self.phase = Phase::Ready;
            self.error = None;
            self.started = false;
        }
    }

    /// A call or a record of the transaction failed with `error`: fatal
    /// for the fatal codes, else abortable while a transaction is open or
    /// committing. A failure while aborting or idle is left to the call
    /// that sees it. Returns the error the application gets.
    pub(crate) fn fail(&mut self, error: Error) -> Error {
        if self.phase == Phase::Fatal {
            return self.fatal_error();
        }
        if error.code().is_some_and(is_fatal_code) {
            self.phase = Phase::Fatal;
            self.error = Some(error);
            return self.fatal_error();
        }
        self.fail_abortable(error)
    }

    /// A record of the transaction failed for good with `error` at its
    /// partition leader: as [`fail`](Self::fail), except that the codes of
    /// [`needs_epoch_bump`] are abortable (the abort bumps the epoch).
    pub(crate) fn fail_record(&mut self, error: Error) -> Error {
        // While aborting, records fail because of the abort itself (queued
        // ones are failed by it) or for a reason the abort's EndTxn will
        // meet too (a fence): the EndTxn's answer decides, not the record.
        if self.phase == Phase::Aborting {
            return error;
        }
        if self.phase != Phase::Fatal && error.code().is_some_and(needs_epoch_bump) {
            return self.fail_abortable(error);
        }
        self.fail(error)
    }

    fn fail_abortable(&mut self, error: Error) -> Error {
        match self.phase {
            Phase::InTransaction | Phase::Committing | Phase::AbortableError => {
                if self.phase != Phase::AbortableError {
                    self.error = Some(error.clone());
                }
                self.phase = Phase::AbortableError;
                Error::AbortableTransaction(Box::new(error))
            }
            _ => error,
        }
    }

    /// `init_transactions` was refused: whatever the code, the producer
    /// cannot go on (Kafka treats every such refusal as fatal).
    pub(crate) fn fail_fatal(&mut self, error: Error) -> Error {
        if self.phase != Phase::Fatal {
            self.phase = Phase::Fatal;
            self.error = Some(error);
        }
        self.fatal_error()
    }

    fn fatal_error(&self) -> Error {
        Error::FatalTransaction(Box::new(
            self.error
                .clone()
                .unwrap_or_else(|| illegal("the producer failed earlier")),
        ))
    }
}

fn illegal(message: &str) -> Error {
    Error::IllegalState(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fenced() -> Error {
        Error::strom(ErrorCode::ProducerFenced, "a newer incarnation")
    }

    fn timed_out() -> Error {
        Error::strom(ErrorCode::RequestTimedOut, "expired")
    }

    /// A producer brought to `phase` through the API.
    fn at(phase: Phase) -> TxnState {
        let mut s = TxnState::default();
        let path: &[Call] = match phase {
            Phase::Uninitialized => &[],
            Phase::Initializing => &[Call::Init],
            Phase::Ready => &[Call::Init],
            Phase::InTransaction => &[Call::Init, Call::Begin],
            Phase::Committing => &[Call::Init, Call::Begin, Call::Commit],
            Phase::Aborting => &[Call::Init, Call::Begin, Call::Abort],
            Phase::AbortableError | Phase::Fatal => &[Call::Init, Call::Begin],
        };
        for (i, call) in path.iter().enumerate() {
            s.start(*call).unwrap();
            if *call == Call::Init && (phase != Phase::Initializing || i + 1 < path.len()) {
                s.ready();
            }
        }
        match phase {
            Phase::AbortableError => {
                s.fail(timed_out());
            }
            Phase::Fatal => {
                s.fail(fenced());
            }
            _ => {}
        }
        assert_eq!(s.phase(), phase);
        s
    }

    /// What a call gets in each phase: the next phase, or the kind of error.
    #[derive(Debug, PartialEq)]
    enum Want {
        To(Phase),
        Illegal(&'static str),
        Abortable,
        Fatal,
    }

    #[test]
    fn each_call_is_allowed_or_refused_by_phase() {
        use Call as C;
        use Phase as P;
        use Want as W;
        let table: &[(Phase, Call, Want)] = &[
            (P::Uninitialized, C::Init, W::To(P::Initializing)),
            (
                P::Uninitialized,
                C::Begin,
                W::Illegal("init_transactions first"),
            ),
            (
                P::Uninitialized,
                C::Send,
                W::Illegal("init_transactions first"),
            ),
            (
                P::Uninitialized,
                C::SendOffsets,
                W::Illegal("init_transactions first"),
            ),
            (
                P::Uninitialized,
                C::Commit,
                W::Illegal("init_transactions first"),
            ),
            (
                P::Uninitialized,
                C::Abort,
                W::Illegal("init_transactions first"),
            ),
            (P::Initializing, C::Init, W::To(P::Initializing)),
            (
                P::Initializing,
                C::Begin,
                W::Illegal("init_transactions first"),
            ),
            (P::Ready, C::Init, W::Illegal("already called")),
            (P::Ready, C::Begin, W::To(P::InTransaction)),
            (P::Ready, C::Send, W::Illegal("only inside a transaction")),
            (
                P::Ready,
                C::SendOffsets,
                W::Illegal("no transaction is open"),
            ),
            (P::Ready, C::Commit, W::Illegal("no transaction is open")),
            (P::Ready, C::Abort, W::Illegal("no transaction is open")),
            (P::InTransaction, C::Begin, W::Illegal("already open")),
            (P::InTransaction, C::Send, W::To(P::InTransaction)),
            (P::InTransaction, C::SendOffsets, W::To(P::InTransaction)),
            (P::InTransaction, C::Commit, W::To(P::Committing)),
            (P::InTransaction, C::Abort, W::To(P::Aborting)),
            (P::Committing, C::Commit, W::To(P::Committing)),
            (P::Committing, C::Send, W::Illegal("committing")),
            (P::Committing, C::Abort, W::Illegal("committing")),
            (P::Aborting, C::Abort, W::To(P::Aborting)),
            (P::Aborting, C::Begin, W::Illegal("aborting")),
            (P::Aborting, C::Commit, W::Illegal("aborting")),
            (P::AbortableError, C::Abort, W::To(P::Aborting)),
            (P::AbortableError, C::Commit, W::Abortable),
            (P::AbortableError, C::Send, W::Abortable),
            (P::AbortableError, C::SendOffsets, W::Abortable),
            (P::AbortableError, C::Begin, W::Abortable),
            (P::Fatal, C::Init, W::Fatal),
            (P::Fatal, C::Begin, W::Fatal),
            (P::Fatal, C::Send, W::Fatal),
            (P::Fatal, C::Commit, W::Fatal),
            (P::Fatal, C::Abort, W::Fatal),
        ];
        for (phase, call, want) in table {
            let mut s = at(*phase);
            let got = match s.start(*call) {
                Ok(()) => W::To(s.phase()),
                Err(Error::IllegalState(m)) => {
                    let W::Illegal(needle) = want else {
                        panic!("{phase:?} {call:?}: illegal state {m:?}, want {want:?}");
                    };
                    assert!(m.contains(needle), "{phase:?} {call:?}: {m}");
                    assert_eq!(s.phase(), *phase, "a refusal changes nothing");
                    W::Illegal(needle)
                }
                Err(Error::AbortableTransaction(_)) => W::Abortable,
                Err(Error::FatalTransaction(e)) => {
                    assert_eq!(e.code(), Some(ErrorCode::ProducerFenced));
                    W::Fatal
                }
                Err(other) => panic!("{phase:?} {call:?}: {other}"),
            };
            assert_eq!(&got, want, "{phase:?} {call:?}");
        }
    }

    #[test]
    fn errors_split_into_fatal_and_abortable() {
        let table: &[(Phase, ErrorCode, Phase)] = &[
            (
                Phase::InTransaction,
                ErrorCode::ProducerFenced,
                Phase::Fatal,
            ),
            (
                Phase::InTransaction,
                ErrorCode::InvalidProducerEpoch,
                Phase::Fatal,
            ),
            (Phase::Committing, ErrorCode::ProducerFenced, Phase::Fatal),
            (Phase::Committing, ErrorCode::InvalidTxnState, Phase::Fatal),
            (
                Phase::Initializing,
                ErrorCode::InvalidTransactionTimeout,
                Phase::Fatal,
            ),
            (Phase::Aborting, ErrorCode::ProducerFenced, Phase::Fatal),
            (
                Phase::InTransaction,
                ErrorCode::RequestTimedOut,
                Phase::AbortableError,
            ),
            (
                Phase::InTransaction,
                ErrorCode::RecordTooLarge,
                Phase::AbortableError,
            ),
            (
                Phase::InTransaction,
                ErrorCode::IllegalGeneration,
                Phase::AbortableError,
            ),
            (
                Phase::Committing,
                ErrorCode::NotEnoughReplicas,
                Phase::AbortableError,
            ),
            (
                Phase::AbortableError,
                ErrorCode::RequestTimedOut,
                Phase::AbortableError,
            ),
            // While aborting or idle, an error is the call's own.
            (Phase::Aborting, ErrorCode::RequestTimedOut, Phase::Aborting),
            (Phase::Ready, ErrorCode::RequestTimedOut, Phase::Ready),
        ];
        for (phase, code, want) in table {
            let mut s = at(*phase);
            let got = s.fail(Error::strom(*code, "x"));
            assert_eq!(s.phase(), *want, "{phase:?} {code:?}");
            assert_eq!(
                got.code(),
                Some(*code),
                "{phase:?} {code:?}: the cause is kept"
            );
            match want {
                Phase::Fatal => assert!(matches!(got, Error::FatalTransaction(_)), "{got}"),
                Phase::AbortableError => {
                    assert!(matches!(got, Error::AbortableTransaction(_)), "{got}")
                }
                _ => assert!(matches!(got, Error::Strom(_)), "{got}"),
            }
        }
    }

    #[test]
    fn a_record_refused_for_its_epoch_makes_the_transaction_abortable() {
        // (phase, code of the record's refusal, phase after, via fail_record)
        let table: &[(Phase, ErrorCode, Phase)] = &[
            (
                Phase::InTransaction,
                ErrorCode::UnknownProducerId,
                Phase::AbortableError,
            ),
            (
                Phase::InTransaction,
                ErrorCode::InvalidProducerEpoch,
                Phase::AbortableError,
            ),
            (
                Phase::Committing,
                ErrorCode::UnknownProducerId,
                Phase::AbortableError,
            ),
            (
                Phase::Committing,
                ErrorCode::InvalidProducerEpoch,
                Phase::AbortableError,
            ),
            (
                Phase::AbortableError,
                ErrorCode::InvalidProducerEpoch,
                Phase::AbortableError,
            ),
            // Fenced stays fatal, for a record too.
            (
                Phase::InTransaction,
                ErrorCode::ProducerFenced,
                Phase::Fatal,
            ),
            (
                Phase::AbortableError,
                ErrorCode::ProducerFenced,
                Phase::Fatal,
            ),
            (Phase::Fatal, ErrorCode::UnknownProducerId, Phase::Fatal),
            // Other record errors as `fail`.
            (
                Phase::InTransaction,
                ErrorCode::RecordTooLarge,
                Phase::AbortableError,
            ),
            (
                Phase::Aborting,
                ErrorCode::UnknownProducerId,
                Phase::Aborting,
            ),
            (Phase::Aborting, ErrorCode::ProducerFenced, Phase::Aborting),
            (Phase::Aborting, ErrorCode::InvalidTxnState, Phase::Aborting),
        ];
        for (phase, code, want) in table {
            let mut s = at(*phase);
            let got = s.fail_record(Error::strom(*code, "x"));
            assert_eq!(s.phase(), *want, "{phase:?} {code:?}");
            match want {
                Phase::Fatal => assert!(matches!(got, Error::FatalTransaction(_)), "{got}"),
                Phase::AbortableError => {
                    assert!(matches!(got, Error::AbortableTransaction(_)), "{got}")
                }
                _ => assert!(matches!(got, Error::Strom(_)), "{got}"),
            }
        }
        // INVALID_PRODUCER_EPOCH from the coordinator stays fatal.
        let mut s = at(Phase::InTransaction);
        s.fail(Error::strom(ErrorCode::InvalidProducerEpoch, "x"));
        assert_eq!(s.phase(), Phase::Fatal);
    }

    /// The records an abort fails before they were sent (the error
    /// `abort_transaction` gives them) leave the abort to finish and the
    /// next transaction to begin: found by the jepsen transactional
    /// workload, where such an abort used to leave the producer fatal.
    #[test]
    fn records_failed_by_the_abort_do_not_fail_the_producer() {
        let mut s = at(Phase::InTransaction);
        s.mark_started();
        s.start(Call::Abort).unwrap();
        s.fail_record(Error::AbortableTransaction(Box::new(Error::IllegalState(
            "the transaction was aborted before the record was sent".into(),
        ))));
        assert_eq!(s.phase(), Phase::Aborting);
        s.ready();
        s.start(Call::Begin).unwrap();
    }

    #[test]
    fn after_an_epoch_refusal_the_abort_leads_to_the_next_transaction() {
        let mut s = at(Phase::InTransaction);
        s.mark_started();
        s.fail_record(Error::strom(ErrorCode::UnknownProducerId, "state lost"));
        let err = s.start(Call::Commit).unwrap_err();
        assert!(matches!(err, Error::AbortableTransaction(_)), "{err}");
        assert_eq!(err.code(), Some(ErrorCode::UnknownProducerId));
        s.start(Call::Abort).unwrap();
        assert!(s.started(), "the abort sends its EndTxn: the epoch bump");
        s.ready();
        s.start(Call::Begin).unwrap();
        s.start(Call::Commit).unwrap();
    }

    #[test]
    fn the_first_abortable_error_is_kept_and_an_abort_clears_it() {
        let mut s = at(Phase::InTransaction);
        s.fail(Error::strom(ErrorCode::RecordTooLarge, "first"));
        s.fail(Error::strom(ErrorCode::RequestTimedOut, "second"));
        let err = s.start(Call::Commit).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::RecordTooLarge), "{err}");
        s.start(Call::Abort).unwrap();
        s.ready();
        assert_eq!(s.phase(), Phase::Ready);
        s.start(Call::Begin).unwrap();
        s.start(Call::Commit).unwrap();
    }

    #[test]
    fn a_refused_init_is_fatal_whatever_its_code() {
        let mut s = at(Phase::Initializing);
        let err = s.fail_fatal(Error::strom(ErrorCode::InvalidRequest, "id too long"));
        assert!(
            matches!(&err, Error::FatalTransaction(e) if e.code() == Some(ErrorCode::InvalidRequest))
        );
        assert_eq!(s.phase(), Phase::Fatal);
    }

    #[test]
    fn a_fatal_error_is_final() {
        let mut s = at(Phase::Committing);
        s.fail(fenced());
        s.ready();
        assert_eq!(s.phase(), Phase::Fatal, "nothing brings it back");
        let err = s.fail(timed_out());
        assert_eq!(err.code(), Some(ErrorCode::ProducerFenced), "{err}");
    }

    #[test]
    fn a_transaction_needs_an_end_only_once_something_was_sent() {
        let mut s = at(Phase::Ready);
        s.start(Call::Begin).unwrap();
        assert!(!s.started());
        s.mark_started();
        assert!(s.started());
        s.start(Call::Commit).unwrap();
        s.ready();
        s.start(Call::Begin).unwrap();
        assert!(!s.started(), "a new transaction starts clean");
    }
}
