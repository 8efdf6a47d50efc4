use std::collections::BTreeSet;

use super::*;
use crate::records::TxnMetadata;
use crate::{ErrorKind, TxnError};

const NOW: i64 = 1_000_000;
const EPOCH: i32 = 7;

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_owned(), p)
}

/// A shard and the host around it: ids from a counter, every decision's
/// records checked against Kafka's transition table, put through the
/// codec (as a load reads the log) and replayed; the whole log kept.
struct Host {
    shard: TxnShard,
    next_id: i64,
    log: Vec<Record>,
}

impl Host {
    fn new() -> Self {
        Host {
            shard: TxnShard::new(TxnConfig::default(), EPOCH),
            next_id: 1000,
            log: Vec::new(),
        }
    }

    fn apply<T>(&mut self, d: &Decision<T>) {
        for r in &d.records {
            if let (Some(old), Some(new)) = (self.shard.get(&r.transactional_id), &r.value) {
                assert!(
                    new.state.valid_previous().contains(&old.state),
                    "{:?} -> {:?} is not a transition Kafka allows",
                    old.state,
                    new.state
                );
            }
            let (k, v) = r.encode();
            let back = Record::decode(&k, v.as_deref()).unwrap();
            assert_eq!(&back, r);
            self.shard.replay([&back]);
            self.log.push(back);
        }
    }

    fn init(&mut self, id: &str, expected: Option<(i64, i16)>) -> Result<InitProducerIdResponse> {
        let req = InitProducerIdRequest {
            transactional_id: id.into(),
            timeout_ms: 60_000,
            expected: expected
                .map(|(producer_id, epoch)| ProducerIdAndEpoch { producer_id, epoch }),
        };
        let mut next = self.next_id;
        let d = self.shard.init_producer_id(&req, NOW, &mut || {
            next += 1;
            Ok(next)
        })?;
        self.next_id = next;
        self.apply(&d);
        Ok(d.response)
    }

    fn ready(&mut self, id: &str) -> (i64, i16) {
        match self.init(id, None).unwrap() {
            InitProducerIdResponse::Ready(p) => (p.producer_id, p.epoch),
            other => panic!("{other:?}"),
        }
    }

    fn add(
        &mut self,
        id: &str,
        (pid, epoch): (i64, i16),
        parts: &[TopicPartition],
    ) -> Result<usize> {
        let d = self.shard.add_partitions(id, pid, epoch, parts, NOW)?;
        self.apply(&d);
        Ok(d.records.len())
    }

    fn end(
        &mut self,
        id: &str,
        (pid, epoch): (i64, i16),
        result: TxnResult,
    ) -> Result<Decision<ProducerIdAndEpoch>> {
        let mut next = self.next_id;
        let d = self
            .shard
            .end_txn(id, pid, epoch, result, TxnVersion::V2, NOW, &mut || {
                next += 1;
                Ok(next)
            })?;
        self.next_id = next;
        self.apply(&d);
        Ok(d)
    }

    /// EndTxn of a client before transaction version 2; ids must not be
    /// needed.
    fn end_v0(
        &mut self,
        id: &str,
        (pid, epoch): (i64, i16),
        result: TxnResult,
    ) -> Result<Decision<ProducerIdAndEpoch>> {
        let d = self
            .shard
            .end_txn(id, pid, epoch, result, TxnVersion::V0, NOW, &mut || {
                panic!("transaction version 0 never takes a new producer id")
            })?;
        self.apply(&d);
        Ok(d)
    }

    fn complete(&mut self, m: &WriteMarkers) -> Result<()> {
        let d = self.shard.markers_written(
            &m.transactional_id,
            m.producer_id,
            m.producer_epoch,
            NOW,
        )?;
        self.apply(&d);
        Ok(())
    }

    fn state(&self, id: &str) -> &TxnMetadata {
        self.shard.get(id).unwrap()
    }

    /// Puts `value` for `id` directly in the log (a state reached earlier).
    fn seed(&mut self, id: &str, value: TxnMetadata) {
        let r = Record::put(id, value);
        self.shard.replay([&r]);
        self.log.push(r);
    }
}

fn err_kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    r.expect_err("must be refused").kind
}

fn metadata(pid: i64, epoch: i16, state: TxnState, parts: &[TopicPartition]) -> TxnMetadata {
    TxnMetadata {
        producer_id: pid,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: epoch,
        timeout_ms: 60_000,
        state,
        partitions: parts.iter().cloned().collect(),
        last_update_ms: 0,
        start_ms: 0,
        client_transaction_version: 2,
    }
}

#[test]
fn init_producer_id_bad_input_is_refused_and_changes_nothing() {
    let long = "x".repeat(256);
    let cases: &[(&str, &str, i32, ErrorKind)] = &[
        ("empty id", "", 60_000, ErrorKind::InvalidRequest),
        ("long id", &long, 60_000, ErrorKind::InvalidRequest),
        ("zero timeout", "t", 0, ErrorKind::InvalidTransactionTimeout),
        (
            "negative timeout",
            "t",
            -1,
            ErrorKind::InvalidTransactionTimeout,
        ),
        (
            "above max",
            "t",
            900_001,
            ErrorKind::InvalidTransactionTimeout,
        ),
    ];
    for (name, id, timeout_ms, kind) in cases {
        let mut shard = TxnShard::new(TxnConfig::default(), EPOCH);
        let req = InitProducerIdRequest {
            transactional_id: (*id).into(),
            timeout_ms: *timeout_ms,
            expected: None,
        };
        let r = shard.init_producer_id(&req, NOW, &mut || Ok(1));
        assert_eq!(err_kind(r), *kind, "{name}");
        assert!(shard.list(&[], &[]).is_empty(), "{name}");
    }
    // The maximum itself is accepted.
    let mut shard = TxnShard::new(TxnConfig::default(), EPOCH);
    let req = InitProducerIdRequest {
        transactional_id: "t".into(),
        timeout_ms: 900_000,
        expected: None,
    };
    assert!(shard.init_producer_id(&req, NOW, &mut || Ok(1)).is_ok());
}

#[test]
fn init_producer_id_failing_id_source_is_retriable_and_writes_nothing() {
    let mut shard = TxnShard::new(TxnConfig::default(), EPOCH);
    let req = InitProducerIdRequest {
        transactional_id: "t".into(),
        timeout_ms: 60_000,
        expected: None,
    };
    let r = shard.init_producer_id(&req, NOW, &mut || {
        Err(TxnError::new(
            ErrorKind::CoordinatorNotAvailable,
            "no block",
        ))
    });
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::CoordinatorNotAvailable);
    assert!(e.kind.is_retriable());
    assert!(shard.get("t").is_none());
}

#[test]
fn init_producer_id_new_then_bump_fences_the_previous_incarnation() {
    let mut h = Host::new();
    let first = h.ready("t");
    assert_eq!(first, (1001, 0));
    let m = h.state("t");
    assert_eq!(
        (m.state, m.timeout_ms, m.start_ms),
        (TxnState::Empty, 60_000, -1)
    );
    let second = h.ready("t");
    assert_eq!(second, (1001, 1));
    // The first incarnation is fenced everywhere.
    assert_eq!(
        err_kind(h.add("t", first, &[tp("a", 0)])),
        ErrorKind::ProducerFenced
    );
    assert_eq!(
        err_kind(h.end("t", first, TxnResult::Abort)),
        ErrorKind::ProducerFenced
    );
    // A producer epoch the coordinator never gave.
    assert_eq!(
        err_kind(h.add("t", (1001, 2), &[tp("a", 0)])),
        ErrorKind::InvalidProducerEpoch
    );
    assert_eq!(
        err_kind(h.add("t", (5, 1), &[tp("a", 0)])),
        ErrorKind::InvalidProducerIdMapping
    );
}

#[test]
fn init_producer_id_with_an_open_transaction_aborts_it_first() {
    let mut h = Host::new();
    let old = h.ready("t");
    h.add("t", old, &[tp("a", 0), tp("b", 3)]).unwrap();
    let before = h.log.len();
    assert_eq!(
        h.init("t", None).unwrap(),
        InitProducerIdResponse::AbortingOngoing
    );
    assert_eq!(h.log.len(), before + 1);
    let m = h.state("t").clone();
    assert_eq!((m.state, m.producer_epoch), (TxnState::PrepareAbort, 1));
    let markers = h.shard.pending_markers();
    assert_eq!(
        markers,
        vec![WriteMarkers {
            transactional_id: "t".into(),
            producer_id: 1001,
            producer_epoch: 1,
            coordinator_epoch: EPOCH,
            result: TxnResult::Abort,
            partitions: [tp("a", 0), tp("b", 3)].into(),
        }]
    );
    // While the markers are written the new incarnation waits.
    assert_eq!(
        err_kind(h.init("t", None)),
        ErrorKind::ConcurrentTransactions
    );
    // The fenced producer cannot commit or add.
    assert_eq!(
        err_kind(h.end("t", old, TxnResult::Commit)),
        ErrorKind::ProducerFenced
    );
    assert_eq!(
        err_kind(h.add("t", old, &[tp("a", 0)])),
        ErrorKind::ProducerFenced
    );
    h.complete(&markers[0]).unwrap();
    assert_eq!(h.state("t").state, TxnState::CompleteAbort);
    assert!(h.state("t").partitions.is_empty());
    assert_eq!(h.ready("t"), (1001, 2));
}

#[test]
fn init_producer_id_with_exhausted_epoch_moves_to_a_new_producer_id() {
    let mut h = Host::new();
    h.seed(
        "t",
        metadata(50, EXHAUSTED_EPOCH, TxnState::CompleteCommit, &[]),
    );
    assert_eq!(h.ready("t"), (1001, 0));
    let m = h.state("t");
    assert_eq!(
        (m.producer_id, m.previous_producer_id, m.state),
        (1001, 50, TxnState::Empty)
    );
    // One below: an ordinary bump, which reaches the exhausted epoch.
    let mut h = Host::new();
    h.seed("t", metadata(50, EXHAUSTED_EPOCH - 1, TxnState::Empty, &[]));
    assert_eq!(h.ready("t"), (50, EXHAUSTED_EPOCH));
    assert!(is_epoch_exhausted(EXHAUSTED_EPOCH) && !is_epoch_exhausted(EXHAUSTED_EPOCH - 1));
}

#[test]
fn init_producer_id_kip_360_expected_producer() {
    // (expected id, expected epoch, seeded previous id, outcome)
    let cases: &[(&str, (i64, i16), Option<ErrorKind>)] = &[
        ("current id and epoch: bumped", (50, 3), None),
        (
            "older epoch: fenced",
            (50, 2),
            Some(ErrorKind::ProducerFenced),
        ),
        ("other id: fenced", (51, 3), Some(ErrorKind::ProducerFenced)),
        (
            "previous id, not exhausted: fenced",
            (49, 3),
            Some(ErrorKind::ProducerFenced),
        ),
        (
            "previous id, exhausted: accepted",
            (49, EXHAUSTED_EPOCH),
            None,
        ),
    ];
    for (name, expected, outcome) in cases {
        let mut h = Host::new();
        let mut m = metadata(50, 3, TxnState::CompleteCommit, &[]);
        m.previous_producer_id = 49;
        h.seed("t", m);
        match (h.init("t", Some(*expected)), outcome) {
            (Ok(InitProducerIdResponse::Ready(p)), None) => {
                assert_eq!((p.producer_id, p.epoch), (50, 4), "{name}")
            }
            (Err(e), Some(kind)) => {
                assert_eq!(e.kind, *kind, "{name}");
                assert_eq!(h.state("t").producer_epoch, 3, "{name}: unchanged");
            }
            (r, _) => panic!("{name}: {r:?}"),
        }
    }
}

/// KIP-360: a producer re-initialising with its id and epoch may retry
/// when the answer is lost, also while its open transaction is aborted.
#[test]
fn init_producer_id_kip_360_retries() {
    // A lost answer after a bump: the retry gets the same epoch, unbumped.
    let mut h = Host::new();
    let p = h.ready("t");
    let first = h.init("t", Some(p)).unwrap();
    assert_eq!(
        first,
        InitProducerIdResponse::Ready(ProducerIdAndEpoch {
            producer_id: p.0,
            epoch: p.1 + 1
        })
    );
    let before = h.log.len();
    assert_eq!(h.init("t", Some(p)).unwrap(), first);
    assert_eq!(h.log.len(), before, "nothing written");

    // With a transaction open: the first call fences and aborts, the
    // retries wait, then the one after the abort bumps again.
    let mut h = Host::new();
    let p = h.ready("t");
    h.add("t", p, &[tp("a", 0)]).unwrap();
    assert_eq!(
        h.init("t", Some(p)).unwrap(),
        InitProducerIdResponse::AbortingOngoing
    );
    assert_eq!(
        err_kind(h.init("t", Some(p))),
        ErrorKind::ConcurrentTransactions
    );
    let markers = h.shard.pending_markers();
    h.complete(&markers[0]).unwrap();
    assert_eq!(
        h.init("t", Some(p)).unwrap(),
        InitProducerIdResponse::Ready(ProducerIdAndEpoch {
            producer_id: p.0,
            epoch: p.1 + 2
        })
    );

    // Another incarnation in between ends the retry's privilege.
    let mut h = Host::new();
    let p = h.ready("t");
    h.init("t", Some(p)).unwrap();
    h.ready("t"); // a new producer with the id, without expectations
    assert_eq!(err_kind(h.init("t", Some(p))), ErrorKind::ProducerFenced);

    // So does a transaction begun after the bump.
    let mut h = Host::new();
    let p = h.ready("t");
    let InitProducerIdResponse::Ready(q) = h.init("t", Some(p)).unwrap() else {
        panic!("bumped")
    };
    h.add("t", (q.producer_id, q.epoch), &[tp("a", 0)]).unwrap();
    assert_eq!(err_kind(h.init("t", Some(p))), ErrorKind::ProducerFenced);
}

#[test]
fn add_partitions_transitions() {
    struct Case {
        name: &'static str,
        state: TxnState,
        existing: &'static [(&'static str, i32)],
        add: &'static [(&'static str, i32)],
        records: usize,
        partitions: &'static [(&'static str, i32)],
        start_ms: i64,
    }
    let cases = [
        Case {
            name: "empty opens",
            state: TxnState::Empty,
            existing: &[],
            add: &[("a", 0)],
            records: 1,
            partitions: &[("a", 0)],
            start_ms: NOW,
        },
        Case {
            name: "ongoing subset: nothing written",
            state: TxnState::Ongoing,
            existing: &[("a", 0), ("b", 1)],
            add: &[("b", 1)],
            records: 0,
            partitions: &[("a", 0), ("b", 1)],
            start_ms: 0,
        },
        Case {
            name: "ongoing grows",
            state: TxnState::Ongoing,
            existing: &[("a", 0)],
            add: &[("a", 1)],
            records: 1,
            partitions: &[("a", 0), ("a", 1)],
            start_ms: 0,
        },
        Case {
            name: "after commit: a new transaction",
            state: TxnState::CompleteCommit,
            existing: &[],
            add: &[("c", 2)],
            records: 1,
            partitions: &[("c", 2)],
            start_ms: NOW,
        },
        Case {
            name: "after abort: a new transaction",
            state: TxnState::CompleteAbort,
            existing: &[],
            add: &[("c", 2)],
            records: 1,
            partitions: &[("c", 2)],
            start_ms: NOW,
        },
    ];
    let owned =
        |ps: &[(&str, i32)]| -> Vec<TopicPartition> { ps.iter().map(|(t, p)| tp(t, *p)).collect() };
    for c in cases {
        let mut h = Host::new();
        h.seed("t", metadata(9, 4, c.state, &owned(c.existing)));
        assert_eq!(
            h.add("t", (9, 4), &owned(c.add)).unwrap(),
            c.records,
            "{}",
            c.name
        );
        let m = h.state("t");
        assert_eq!(m.state, TxnState::Ongoing, "{}", c.name);
        assert_eq!(
            m.partitions,
            owned(c.partitions).into_iter().collect::<BTreeSet<_>>(),
            "{}",
            c.name
        );
        assert_eq!(m.start_ms, c.start_ms, "{}", c.name);
        assert_eq!(m.producer_epoch, 4, "{}: AddPartitions never bumps", c.name);
    }
}

#[test]
fn add_partitions_errors_change_nothing() {
    /// (name, transactional id, seeded state, producer, partitions, error)
    type Case = (
        &'static str,
        &'static str,
        TxnState,
        (i64, i16),
        Vec<TopicPartition>,
        ErrorKind,
    );
    let cases: &[Case] = &[
        (
            "unknown id",
            "u",
            TxnState::Empty,
            (9, 4),
            vec![tp("a", 0)],
            ErrorKind::InvalidProducerIdMapping,
        ),
        (
            "empty id",
            "",
            TxnState::Empty,
            (9, 4),
            vec![tp("a", 0)],
            ErrorKind::InvalidRequest,
        ),
        (
            "other producer",
            "t",
            TxnState::Empty,
            (8, 4),
            vec![tp("a", 0)],
            ErrorKind::InvalidProducerIdMapping,
        ),
        (
            "old epoch",
            "t",
            TxnState::Ongoing,
            (9, 3),
            vec![tp("a", 0)],
            ErrorKind::ProducerFenced,
        ),
        (
            "new epoch",
            "t",
            TxnState::Ongoing,
            (9, 5),
            vec![tp("a", 0)],
            ErrorKind::InvalidProducerEpoch,
        ),
        (
            "prepare commit",
            "t",
            TxnState::PrepareCommit,
            (9, 4),
            vec![tp("a", 0)],
            ErrorKind::ConcurrentTransactions,
        ),
        (
            "prepare abort",
            "t",
            TxnState::PrepareAbort,
            (9, 4),
            vec![tp("a", 0)],
            ErrorKind::ConcurrentTransactions,
        ),
        (
            "no partitions",
            "t",
            TxnState::Empty,
            (9, 4),
            vec![],
            ErrorKind::InvalidRequest,
        ),
        (
            "empty topic",
            "t",
            TxnState::Empty,
            (9, 4),
            vec![tp("", 0)],
            ErrorKind::InvalidRequest,
        ),
        (
            "negative partition",
            "t",
            TxnState::Empty,
            (9, 4),
            vec![tp("a", -1)],
            ErrorKind::InvalidRequest,
        ),
        (
            "transaction log",
            "t",
            TxnState::Empty,
            (9, 4),
            vec![tp("__transaction_state", 0)],
            ErrorKind::InvalidRequest,
        ),
    ];
    for (name, id, state, producer, parts, kind) in cases {
        let mut h = Host::new();
        let seeded = metadata(9, 4, *state, &[]);
        h.seed("t", seeded.clone());
        assert_eq!(err_kind(h.add(id, *producer, parts)), *kind, "{name}");
        assert_eq!(h.state("t"), &seeded, "{name}");
    }
}

#[test]
fn add_offsets_adds_the_groups_offsets_partition() {
    let mut h = Host::new();
    let p = h.ready("t");
    let d = h
        .shard
        .add_offsets("t", p.0, p.1, "my-group", 50, NOW)
        .unwrap();
    h.apply(&d);
    let want = strom_group::offsets_partition_for("my-group", 50);
    assert_eq!(
        h.state("t").partitions,
        [tp("__consumer_offsets", want)].into()
    );
    assert_eq!(
        err_kind(h.shard.add_offsets("t", p.0, p.1, "", 50, NOW)),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        err_kind(h.shard.add_offsets("t", p.0, p.1, "g", 0, NOW)),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        err_kind(h.shard.add_offsets("t", p.0, p.1 - 1, "g", 50, NOW)),
        ErrorKind::ProducerFenced
    );
}

#[test]
fn commit_bumps_the_epoch_writes_markers_then_completes() {
    for (result, prepare, complete) in [
        (
            TxnResult::Commit,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit,
        ),
        (
            TxnResult::Abort,
            TxnState::PrepareAbort,
            TxnState::CompleteAbort,
        ),
    ] {
        let mut h = Host::new();
        let p = h.ready("t");
        h.add("t", p, &[tp("a", 0), tp("__consumer_offsets", 3)])
            .unwrap();
        let d = h.end("t", p, result).unwrap();
        assert_eq!(
            d.response,
            ProducerIdAndEpoch {
                producer_id: p.0,
                epoch: p.1 + 1
            }
        );
        assert_eq!(d.records.len(), 1);
        assert_eq!(h.state("t").state, prepare);
        assert_eq!(d.markers.len(), 1);
        let m = &d.markers[0];
        assert_eq!(
            (
                m.result,
                m.producer_id,
                m.producer_epoch,
                m.coordinator_epoch
            ),
            (result, p.0, p.1 + 1, EPOCH)
        );
        assert_eq!(
            m.partitions,
            [tp("a", 0), tp("__consumer_offsets", 3)].into()
        );
        // Its retry while the markers are written: retry later.
        assert_eq!(
            err_kind(h.end("t", p, result)),
            ErrorKind::ConcurrentTransactions
        );
        // The next transaction cannot start before this one completes.
        assert_eq!(
            err_kind(h.add("t", (p.0, p.1 + 1), &[tp("a", 0)])),
            ErrorKind::ConcurrentTransactions
        );
        h.complete(m).unwrap();
        let s = h.state("t");
        assert_eq!((s.state, s.producer_epoch), (complete, p.1 + 1));
        assert!(s.partitions.is_empty());
        // A stale acknowledgement changes nothing.
        assert_eq!(err_kind(h.complete(m)), ErrorKind::InvalidTxnState);
        // Its retry after completion: the same answer, nothing written.
        let before = h.log.len();
        let r = h.end("t", p, result).unwrap();
        assert_eq!(
            r.response,
            ProducerIdAndEpoch {
                producer_id: p.0,
                epoch: p.1 + 1
            }
        );
        assert_eq!(h.log.len(), before);
        // The other result for the same request: refused.
        let other = if result == TxnResult::Commit {
            TxnResult::Abort
        } else {
            TxnResult::Commit
        };
        assert_eq!(err_kind(h.end("t", p, other)), ErrorKind::InvalidTxnState);
        // The next transaction runs at the bumped epoch.
        h.add("t", (p.0, p.1 + 1), &[tp("b", 0)]).unwrap();
        assert_eq!(h.state("t").start_ms, NOW);
    }
}

#[test]
fn end_txn_without_a_transaction() {
    let mut h = Host::new();
    let p = h.ready("t");
    assert_eq!(
        err_kind(h.end("t", p, TxnResult::Commit)),
        ErrorKind::InvalidTxnState
    );
    // An abort is allowed (the client may not know whether it began):
    // PrepareAbort and CompleteAbort at once, no markers, epoch bumped.
    let d = h.end("t", p, TxnResult::Abort).unwrap();
    assert_eq!(d.records.len(), 2);
    assert!(d.markers.is_empty());
    assert_eq!(
        d.response,
        ProducerIdAndEpoch {
            producer_id: p.0,
            epoch: p.1 + 1
        }
    );
    assert_eq!(h.state("t").state, TxnState::CompleteAbort);
    assert_eq!(
        err_kind(h.end("u", p, TxnResult::Abort)),
        ErrorKind::InvalidProducerIdMapping
    );
    assert_eq!(
        err_kind(h.end("", p, TxnResult::Abort)),
        ErrorKind::InvalidRequest
    );
}

/// Transaction version 0 (librdkafka): EndTxn keeps the epoch, the
/// markers carry it, and the next transaction goes on in it.
#[test]
fn end_txn_v0_keeps_the_epoch_and_answers_retries_from_state() {
    let mut h = Host::new();
    let p = h.ready("t");
    h.add("t", p, &[tp("a", 0), tp("b", 1)]).unwrap();
    let d = h.end_v0("t", p, TxnResult::Commit).unwrap();
    let same = ProducerIdAndEpoch {
        producer_id: p.0,
        epoch: p.1,
    };
    assert_eq!(d.response, same);
    assert_eq!(d.markers.len(), 1);
    let m = &d.markers[0];
    assert_eq!((m.producer_id, m.producer_epoch), p, "markers at the epoch");
    assert_eq!(m.result, TxnResult::Commit);
    assert_eq!(m.partitions, [tp("a", 0), tp("b", 1)].into());
    let s = h.state("t");
    assert_eq!((s.state, s.producer_epoch), (TxnState::PrepareCommit, p.1));
    assert_eq!(s.client_transaction_version, 0);
    // While completing: the retry waits, the other result is refused.
    assert_eq!(
        err_kind(h.end_v0("t", p, TxnResult::Commit)),
        ErrorKind::ConcurrentTransactions
    );
    assert_eq!(
        err_kind(h.end_v0("t", p, TxnResult::Abort)),
        ErrorKind::InvalidTxnState
    );
    h.complete(&d.markers[0]).unwrap();
    // Complete: the retry gets the same answer and writes nothing.
    let retry = h.end_v0("t", p, TxnResult::Commit).unwrap();
    assert!(retry.records.is_empty() && retry.markers.is_empty());
    assert_eq!(retry.response, same);
    assert_eq!(
        err_kind(h.end_v0("t", p, TxnResult::Abort)),
        ErrorKind::InvalidTxnState
    );
    // The next transaction, same epoch; its abort writes ABORT markers.
    h.add("t", p, &[tp("a", 0)]).unwrap();
    let d = h.end_v0("t", p, TxnResult::Abort).unwrap();
    assert_eq!(d.response, same);
    assert_eq!(d.markers[0].result, TxnResult::Abort);
    h.complete(&d.markers[0]).unwrap();
    assert_eq!(h.state("t").state, TxnState::CompleteAbort);
}

#[test]
fn end_txn_v0_bad_input_is_refused_and_changes_nothing() {
    let mut h = Host::new();
    let p = h.ready("t");
    // Nothing open: neither result is allowed.
    for result in [TxnResult::Commit, TxnResult::Abort] {
        assert_eq!(
            err_kind(h.end_v0("t", p, result)),
            ErrorKind::InvalidTxnState
        );
    }
    h.add("t", p, &[tp("a", 0)]).unwrap();
    let before = h.state("t").clone();
    let cases = [
        ("older epoch", (p.0, p.1 - 1), ErrorKind::ProducerFenced),
        (
            "newer epoch",
            (p.0, p.1 + 1),
            ErrorKind::InvalidProducerEpoch,
        ),
        (
            "other producer id",
            (p.0 + 1, p.1),
            ErrorKind::InvalidProducerIdMapping,
        ),
    ];
    for (what, caller, want) in cases {
        assert_eq!(
            err_kind(h.end_v0("t", caller, TxnResult::Commit)),
            want,
            "{what}"
        );
        assert_eq!(h.state("t"), &before, "{what} changed the state");
    }
    assert_eq!(
        err_kind(h.end_v0("unknown", p, TxnResult::Commit)),
        ErrorKind::InvalidProducerIdMapping
    );
    // A fence (a new incarnation) makes the old producer's EndTxn fenced.
    let InitProducerIdResponse::AbortingOngoing = h.init("t", None).unwrap() else {
        panic!("the open transaction is aborted first");
    };
    assert_eq!(
        err_kind(h.end_v0("t", p, TxnResult::Commit)),
        ErrorKind::ProducerFenced
    );
}

/// KAFKA-17754: an EndTxn(commit) delayed past the start of the next
/// transaction must not commit it.
#[test]
fn a_delayed_end_txn_never_lands_in_the_next_transaction() {
    let mut h = Host::new();
    let p = h.ready("t");
    h.add("t", p, &[tp("a", 0)]).unwrap();
    let d = h.end("t", p, TxnResult::Abort).unwrap();
    h.complete(&d.markers[0]).unwrap();
    let next = (d.response.producer_id, d.response.epoch);
    h.add("t", next, &[tp("a", 0)]).unwrap();
    // The old request arrives again (a retry, or a delayed duplicate).
    for result in [TxnResult::Commit, TxnResult::Abort] {
        let r = h.end("t", p, result);
        assert!(r.is_err(), "{result:?}: {r:?}");
        assert_eq!(h.state("t").state, TxnState::Ongoing);
    }
    // A late EndTxn of an older epoch without retry memory: fenced.
    let mut fresh = TxnShard::new(TxnConfig::default(), EPOCH);
    fresh.replay(&h.log);
    let r = fresh.end_txn(
        "t",
        p.0,
        p.1,
        TxnResult::Commit,
        TxnVersion::V2,
        NOW,
        &mut || Ok(1),
    );
    assert_eq!(err_kind(r), ErrorKind::ProducerFenced);
}

#[test]
fn end_txn_with_exhausted_epoch_moves_to_the_next_producer_id() {
    let mut h = Host::new();
    h.seed(
        "t",
        metadata(50, EXHAUSTED_EPOCH - 1, TxnState::Ongoing, &[tp("a", 0)]),
    );
    let d = h
        .end("t", (50, EXHAUSTED_EPOCH - 1), TxnResult::Commit)
        .unwrap();
    assert_eq!(
        d.response,
        ProducerIdAndEpoch {
            producer_id: 1001,
            epoch: 0
        }
    );
    let m = h.state("t").clone();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.next_producer_id),
        (50, EXHAUSTED_EPOCH, 1001)
    );
    // Markers close producer 50's batches, at the bumped epoch.
    assert_eq!(
        (d.markers[0].producer_id, d.markers[0].producer_epoch),
        (50, EXHAUSTED_EPOCH)
    );
    h.complete(&d.markers[0]).unwrap();
    let m = h.state("t");
    assert_eq!(
        (
            m.producer_id,
            m.previous_producer_id,
            m.next_producer_id,
            m.producer_epoch,
            m.state
        ),
        (1001, 50, -1, 0, TxnState::CompleteCommit)
    );
    // The EndTxn's retry still gets the new id.
    let r = h
        .end("t", (50, EXHAUSTED_EPOCH - 1), TxnResult::Commit)
        .unwrap();
    assert_eq!(
        r.response,
        ProducerIdAndEpoch {
            producer_id: 1001,
            epoch: 0
        }
    );
    h.add("t", (1001, 0), &[tp("a", 0)]).unwrap();
}

#[test]
fn timed_out_transactions_are_aborted_with_the_producer_fenced() {
    let mut h = Host::new();
    let p = h.ready("t");
    let q = h.ready("u");
    h.add("t", p, &[tp("a", 0)]).unwrap(); // started at NOW, 60 s timeout
    let d = h.shard.abort_timed_out(NOW + 60_000);
    assert!(
        d.records.is_empty() && d.response.is_empty(),
        "not yet: {d:?}"
    );
    let d = h.shard.abort_timed_out(NOW + 60_001);
    assert_eq!(d.response, vec!["t".to_owned()]);
    h.apply(&d);
    assert_eq!(d.markers.len(), 1);
    assert_eq!(
        (d.markers[0].result, d.markers[0].producer_epoch),
        (TxnResult::Abort, p.1 + 1)
    );
    let m = h.state("t");
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::PrepareAbort, p.1 + 1)
    );
    // The timed-out producer is fenced: its commit never happens.
    assert_eq!(
        err_kind(h.end("t", p, TxnResult::Commit)),
        ErrorKind::ProducerFenced
    );
    h.complete(&d.markers[0]).unwrap();
    assert_eq!(
        err_kind(h.end("t", p, TxnResult::Commit)),
        ErrorKind::ProducerFenced
    );
    // "u" had no transaction: untouched.
    assert_eq!(h.state("u").producer_epoch, q.1);
    // The producer re-initialises and goes on.
    assert_eq!(h.ready("t"), (p.0, p.1 + 2));
}

#[test]
fn idle_transactional_ids_expire() {
    let mut h = Host::new();
    h.seed("idle", metadata(1, 0, TxnState::CompleteCommit, &[]));
    h.seed("open", metadata(2, 0, TxnState::Ongoing, &[tp("a", 0)]));
    let mut recent = metadata(3, 0, TxnState::Empty, &[]);
    recent.last_update_ms = 10;
    h.seed("recent", recent);
    let exp = h.shard.config().transactional_id_expiration_ms;
    let d = h.shard.expire_transactional_ids(exp);
    assert_eq!(d.response, vec!["idle".to_owned()]);
    h.apply(&d);
    assert!(h.shard.get("idle").is_none());
    assert!(h.shard.get("open").is_some() && h.shard.get("recent").is_some());
    assert_eq!(
        err_kind(h.shard.describe("idle")),
        ErrorKind::TransactionalIdNotFound
    );
    // An expired id starts over with a new producer id.
    assert_eq!(h.ready("idle"), (1001, 0));
}

#[test]
fn describe_and_list() {
    let mut h = Host::new();
    h.ready("a");
    let p = h.ready("b");
    h.add("b", p, &[tp("x", 0)]).unwrap();
    assert_eq!(h.shard.describe("b").unwrap().state, TxnState::Ongoing);
    assert_eq!(
        err_kind(h.shard.describe("zz")),
        ErrorKind::TransactionalIdNotFound
    );
    assert_eq!(err_kind(h.shard.describe("")), ErrorKind::InvalidRequest);
    let ongoing = h.shard.list(&[TxnState::Ongoing], &[]);
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0].transactional_id, "b");
    assert_eq!(h.shard.list(&[], &[]).len(), 2);
    assert_eq!(h.shard.list(&[], &[p.0]).len(), 1);
}

#[test]
fn open_transactions_count_ongoing_and_completing_ids() {
    let mut h = Host::new();
    let table = [
        (TxnState::Empty, false),
        (TxnState::Ongoing, true),
        (TxnState::PrepareCommit, true),
        (TxnState::PrepareAbort, true),
        (TxnState::CompleteCommit, false),
        (TxnState::CompleteAbort, false),
    ];
    let mut want = 0;
    for (i, (state, open)) in table.into_iter().enumerate() {
        let parts = if state == TxnState::Empty {
            vec![]
        } else {
            vec![tp("x", 0)]
        };
        h.seed(
            &format!("id-{i}"),
            metadata(100 + i as i64, 0, state, &parts),
        );
        want += usize::from(open);
        assert_eq!(h.shard.open_transactions(), want, "after {state:?}");
    }
}

/// The log rebuilds the same state: every id, and the markers a new
/// coordinator must write.
#[test]
fn replaying_the_log_rebuilds_the_same_state() {
    let mut h = Host::new();
    let a = h.ready("a");
    h.add("a", a, &[tp("x", 0), tp("y", 1)]).unwrap();
    let d = h.end("a", a, TxnResult::Commit).unwrap();
    h.complete(&d.markers[0]).unwrap();
    let b = h.ready("b");
    h.add("b", b, &[tp("x", 1)]).unwrap();
    let pending = h.end("b", b, TxnResult::Abort).unwrap();
    let c = h.ready("c");
    h.add("c", c, &[tp("z", 0)]).unwrap();
    h.init("c", None).unwrap(); // fence: PrepareAbort
    h.ready("d");
    let e = h.ready("e");
    h.seed("gone", metadata(77, 0, TxnState::Empty, &[]));
    h.apply(&Decision {
        records: vec![Record::tombstone("gone")],
        markers: vec![],
        response: (),
    });
    let _ = e;

    let mut fresh = TxnShard::new(TxnConfig::default(), EPOCH + 1);
    fresh.replay(&h.log);
    for id in ["a", "b", "c", "d", "e"] {
        assert_eq!(fresh.get(id), h.shard.get(id), "{id}");
    }
    assert!(fresh.get("gone").is_none());
    assert_eq!(fresh.list(&[], &[]), h.shard.list(&[], &[]));
    let mut want = h.shard.pending_markers();
    for m in &mut want {
        m.coordinator_epoch = EPOCH + 1;
    }
    assert_eq!(fresh.pending_markers(), want);
    assert_eq!(want.len(), 2);
    assert_eq!(want[0].partitions, pending.markers[0].partitions);
}

mod model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Init {
            id: usize,
        },
        Add {
            id: usize,
            client: usize,
            partition: i32,
        },
        End {
            id: usize,
            client: usize,
            commit: bool,
        },
        Complete {
            id: usize,
        },
        Tick {
            ms: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize).prop_map(|id| Op::Init { id }),
            (0..2usize, 0..3usize, 0..3i32).prop_map(|(id, client, partition)| Op::Add {
                id,
                client,
                partition
            }),
            (0..2usize, 0..3usize, any::<bool>()).prop_map(|(id, client, commit)| Op::End {
                id,
                client,
                commit
            }),
            (0..2usize).prop_map(|id| Op::Complete { id }),
            (1..40_000i64).prop_map(|ms| Op::Tick { ms }),
        ]
    }

    const IDS: [&str; 2] = ["t0", "t1"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Random clients (several incarnations per id, some fenced) against
        /// one shard: transitions are Kafka's, only the newest incarnation
        /// at its current epoch ever commits, epochs never go back, and the
        /// log replays to the same state.
        #[test]
        fn random_clients_keep_the_invariants(ops in proptest::collection::vec(op(), 1..60)) {
            let mut shard = TxnShard::new(TxnConfig { max_timeout_ms: 30_000, ..TxnConfig::default() }, EPOCH);
            let mut log: Vec<Record> = Vec::new();
            let mut now = 0i64;
            let mut next_id = 100i64;
            // Per id: the incarnations' handles (id, epoch), newest last.
            let mut clients: BTreeMap<usize, Vec<(i64, i16)>> = BTreeMap::new();
            // Per id: the newest handle the coordinator gave out.
            let mut newest: BTreeMap<usize, (i64, i16)> = BTreeMap::new();
            let mut pending: BTreeMap<usize, WriteMarkers> = BTreeMap::new();

            fn apply<T>(shard: &mut TxnShard, log: &mut Vec<Record>, d: &Decision<T>) {
                for r in &d.records {
                    let old = shard.get(&r.transactional_id).cloned();
                    if let (Some(old), Some(new)) = (&old, &r.value) {
                        assert!(new.state.valid_previous().contains(&old.state),
                            "{:?} -> {:?}", old.state, new.state);
                        if new.producer_id == old.producer_id {
                            assert!(new.producer_epoch >= old.producer_epoch, "epoch went back");
                        } else {
                            assert_eq!(new.previous_producer_id, old.producer_id);
                        }
                    }
                    let (k, v) = r.encode();
                    let back = Record::decode(&k, v.as_deref()).unwrap();
                    shard.replay([&back]);
                    log.push(back);
                }
            }

            for op in ops {
                match op {
                    Op::Init { id } => {
                        let req = InitProducerIdRequest {
                            transactional_id: IDS[id].into(),
                            timeout_ms: 10_000,
                            expected: None,
                        };
                        if let Ok(d) = shard.init_producer_id(&req, now, &mut || { next_id += 1; Ok(next_id) }) {
                            apply(&mut shard, &mut log, &d);
                            pending.remove(&id);
                            pending.extend(d.markers.iter().map(|m| (id, m.clone())));
                            match d.response {
                                InitProducerIdResponse::Ready(p) => {
                                    clients.entry(id).or_default().push((p.producer_id, p.epoch));
                                    newest.insert(id, (p.producer_id, p.epoch));
                                }
                                InitProducerIdResponse::AbortingOngoing => {
                                    // The fence's epoch: nobody holds it.
                                    let m = &d.markers[0];
                                    newest.insert(id, (m.producer_id, m.producer_epoch));
                                }
                            }
                        }
                    }
                    Op::Add { id, client, partition } => {
                        let Some(&h) = clients.get(&id).and_then(|c| c.get(client)) else { continue };
                        if let Ok(d) = shard.add_partitions(IDS[id], h.0, h.1, &[tp("a", partition)], now) {
                            prop_assert_eq!(Some(&h), newest.get(&id), "a fenced client added partitions");
                            apply(&mut shard, &mut log, &d);
                        }
                    }
                    Op::End { id, client, commit } => {
                        let Some(&h) = clients.get(&id).and_then(|c| c.get(client)) else { continue };
                        let result = if commit { TxnResult::Commit } else { TxnResult::Abort };
                        if let Ok(d) = shard.end_txn(IDS[id], h.0, h.1, result, TxnVersion::V2, now, &mut || { next_id += 1; Ok(next_id) }) {
                            let commits = d.records.iter().any(|r| r.value.as_ref().is_some_and(|v| v.state == TxnState::PrepareCommit));
                            if commits {
                                prop_assert_eq!(Some(&h), newest.get(&id), "a fenced client committed");
                            }
                            if !d.records.is_empty() {
                                prop_assert_eq!(Some(&h), newest.get(&id), "a fenced client ended a transaction");
                            }
                            apply(&mut shard, &mut log, &d);
                            pending.extend(d.markers.iter().map(|m| (id, m.clone())));
                            let next = (d.response.producer_id, d.response.epoch);
                            clients.get_mut(&id).unwrap()[client] = next;
                            if !d.records.is_empty() {
                                newest.insert(id, next);
                            }
                        }
                    }
                    Op::Complete { id } => {
                        if let Some(m) = pending.remove(&id) {
                            let d = shard.markers_written(&m.transactional_id, m.producer_id, m.producer_epoch, now).unwrap();
                            apply(&mut shard, &mut log, &d);
                        }
                    }
                    Op::Tick { ms } => {
                        now += ms;
                        let d = shard.abort_timed_out(now);
                        apply(&mut shard, &mut log, &d);
                        for m in &d.markers {
                            let id = IDS.iter().position(|i| *i == m.transactional_id).unwrap();
                            pending.insert(id, m.clone());
                            // The fence bumped the epoch: nobody holds it yet.
                            newest.insert(id, (m.producer_id, m.producer_epoch));
                        }
                    }
                }
            }
            let mut fresh = TxnShard::new(TxnConfig::default(), EPOCH);
            fresh.replay(&log);
            for id in IDS {
                prop_assert_eq!(fresh.get(id), shard.get(id));
            }
            prop_assert_eq!(fresh.pending_markers(), shard.pending_markers());
        }
    }
}
