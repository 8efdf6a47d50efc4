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

mod consumer;
mod producer;

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
    stop: AtomicBool,
    next_value: AtomicU64,
}

impl Context {
    /// A context; values start at 0.
    pub fn new(
        recorder: Arc<Recorder>,
        topic: &str,
        partitions: i32,
        addrs: Addrs,
        bootstrap: String,
        pace: Duration,
        acks: i32,
    ) -> Arc<Self> {
        Arc::new(Self {
            recorder,
            topic: topic.to_owned(),
            partitions,
            addrs,
            bootstrap,
            pace,
            acks,
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
