//! The workload: client processes that run against the cluster while the
//! nemesis breaks it, each recording every operation it performs.
//!
//! * `producer` — producers sending unique values to random partitions,
//!   one operation at a time: through `strom_client::Producer` (acks=all,
//!   retries within `delivery.timeout.ms`, so duplicates are possible) or as
//!   single raw `BrokerService.Produce` attempts to the partition leader.
//! * `consumer` — `strom_client::Consumer`s assigned every partition from
//!   offset 0, polling; and the final reader, which reads every partition
//!   to its end after healing.
//! * `group` — consumer-group members sharing the topic, committing and
//!   reading their commits back; the group's final committed offsets.
//! * `txn` — transactional producers and `read_committed` readers of a
//!   second topic, and its final read.
//! * `ctp` — consume-transform-produce processors: a consumer group
//!   reading an input topic and writing an output topic in transactions
//!   that commit the input offsets; the final read of both.

mod consumer;
pub mod ctp;
pub mod group;
mod producer;
pub mod txn;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strom_integration_tests::data::Addrs;
use tokio::task::JoinSet;

pub use self::consumer::final_read;
use crate::history::Recorder;

/// What every client process shares.
#[derive(Debug)]
pub struct Context {
    /// Where operations are recorded.
    pub recorder: Arc<Recorder>,
    /// The topic.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
    /// Client addresses of the nodes.
    pub addrs: Addrs,
    /// `host:port,...` of every node.
    pub bootstrap: String,
    /// Pause between two operations of one process.
    pub pace: Duration,
    /// `acks` of every produce: -1 (all) or 1 (the leader alone, which a
    /// leader failure can lose: the negative control).
    pub acks: i32,
    /// The transactional workload's topic (`<topic>-txn`).
    pub txn_topic: String,
    /// Group members commit beyond what they processed: the negative
    /// control of the group checks.
    pub broken_commits: bool,
    stop: AtomicBool,
    next_value: AtomicU64,
}

impl Context {
    /// A context; values start at 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        recorder: Arc<Recorder>,
        topic: &str,
        partitions: i32,
        addrs: Addrs,
        bootstrap: String,
        pace: Duration,
        acks: i32,
        broken_commits: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            recorder,
            topic: topic.to_owned(),
            partitions,
            addrs,
            bootstrap,
            pace,
            acks,
            txn_topic: format!("{topic}-txn"),
            broken_commits,
            stop: AtomicBool::new(false),
            next_value: AtomicU64::new(0),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn next_value(&self) -> u64 {
        self.next_value.fetch_add(1, Ordering::Relaxed)
    }
}

/// How many processes of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Producers using `strom_client::Producer`.
    pub client_producers: usize,
    /// Producers making single raw produce attempts.
    pub raw_producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// Members of the consumer group (0: no group workload).
    pub group_members: usize,
    /// Transactional producers (0: no transactional workload).
    pub txn_producers: usize,
    /// `read_committed` readers of the transactional topic.
    pub txn_readers: usize,
    /// Consume-transform-produce processors (0: no such workload).
    pub ctp_processors: usize,
}

/// The running client processes.
#[derive(Debug)]
pub struct Workload {
    context: Arc<Context>,
    producers: JoinSet<()>,
    consumers: JoinSet<()>,
}

impl Workload {
    /// Starts the processes; process `i`'s random choices come from
    /// `seed + i`.
    pub fn start(context: Arc<Context>, mix: Mix, seed: u64) -> Self {
        let mut producers = JoinSet::new();
        let mut consumers = JoinSet::new();
        let mut n = 0u64;
        for i in 0..mix.client_producers {
            n += 1;
            producers.spawn(producer::client(
                context.clone(),
                format!("p{i}"),
                seed.wrapping_add(n),
            ));
        }
        for i in 0..mix.raw_producers {
            n += 1;
            producers.spawn(producer::raw(
                context.clone(),
                format!("p{}", mix.client_producers + i),
                seed.wrapping_add(n),
            ));
        }
        for i in 0..mix.consumers {
            consumers.spawn(consumer::consume(context.clone(), format!("c{i}")));
        }
        for i in 0..mix.group_members {
            n += 1;
            consumers.spawn(group::member(
                context.clone(),
                format!("g{i}"),
                i,
                seed.wrapping_add(n),
            ));
        }
        for i in 0..mix.txn_producers {
            n += 1;
            producers.spawn(txn::producer(
                context.clone(),
                format!("t{i}"),
                seed.wrapping_add(n),
            ));
        }
        for i in 0..mix.txn_readers {
            consumers.spawn(txn::reader(context.clone(), format!("r{i}")));
        }
        for i in 0..mix.ctp_processors {
            n += 1;
            producers.spawn(ctp::processor(
                context.clone(),
                format!("x{i}"),
                seed.wrapping_add(n),
            ));
        }
        Self {
            context,
            producers,
            consumers,
        }
    }

    /// Stops every process after its current operation and waits for them.
    pub async fn stop(mut self) {
        self.context.stop.store(true, Ordering::Relaxed);
        while self.producers.join_next().await.is_some() {}
        while self.consumers.join_next().await.is_some() {}
    }
}

/// Sleeps `d` unless the workload stops first.
async fn pause(context: &Context, d: Duration) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !context.stopped() {
        let s = left.min(step);
        tokio::time::sleep(s).await;
        left -= s;
    }
}
