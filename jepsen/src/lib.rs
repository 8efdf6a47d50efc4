//! Jepsen-style fault injection for Strom: concurrent producers and
//! consumers run against a real cluster of `stromd` processes while a
//! nemesis kills, pauses, partitions and damages nodes; every operation goes
//! into a history, and a checker looks for lost, duplicated, reordered or
//! inconsistent records and for a cluster that does not recover.
//!
//! Layout:
//! * [`history`] — operations (invocation, completion: ok / fail / info),
//!   the record payload encoding, the JSON-lines [`Recorder`](history::Recorder).
//! * [`checker`] — the pure checker: history in, anomalies out (lost-write,
//!   unseen, inconsistent-offsets, duplicate, nonmonotonic-send,
//!   nonmonotonic-poll, poll-skip, liveness, ...), with unit tests on
//!   hand-made histories.
//! * [`workload`] — producer and consumer processes (`strom_client` and raw
//!   `BrokerService` calls) and the final read after healing.
//! * [`nemesis`] — the faults, network partitions (`nemesis/net.rs`:
//!   cgroups + nftables), a fillable tmpfs (`strom_integration_tests::tmpfs`), segment
//!   damage (`nemesis/storage.rs`).
//! * [`env`] — the cluster and the machine state the nemesis changes, torn
//!   down in order.
//! * [`runner`] — one run from start to report; the fast CI variant's
//!   settings; reproduce commands.
//!
//! The `jepsen` binary (`src/bin/jepsen.rs`) runs the long variant; the
//! fast variant is `tests/faults.rs`, and `tests/regressions.rs` holds
//! directed reproductions of what the runs found. See
//! `docs/reliability.md`.

pub mod checker;
pub mod env;
pub mod history;
pub mod nemesis;
pub mod runner;
pub mod workload;
