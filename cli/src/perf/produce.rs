//! `strom perf produce`: kafka-producer-perf-test. Sends `--num-records`
//! keyless records of `--record-size` random uppercase letters, at most
//! `--throughput` per second, and reports every 5 s and at the end.
//!
//! Transactional as ProducerPerformance: with `--transactional-id` (or
//! `transactional.id` in `--producer-props`) and/or
//! `--transaction-duration-ms`, the records go in transactions committed
//! every `--transaction-duration-ms` (default 3000 with an id; the id
//! defaults to `performance-producer-default-transactional-id`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_client::{
    Acks, ClientConfig, Error, ErrorCode, Producer, ProducerRecord, RecordMetadata,
};

use super::stats::{ProducerStats, Throttler};
use crate::output::{Format, Output};
use crate::produce::{parse_acks, producer_config};
use crate::{progress, topics};

/// How often a window line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub(crate) struct PerfProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Records to send.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Bytes of each record's value.
    #[arg(long, value_name = "B")]
    record_size: usize,
    /// At most this many records per second; -1: as fast as possible.
    #[arg(long, value_name = "R", default_value_t = -1.0, allow_negative_numbers = true, value_parser = parse_throughput)]
    throughput: f64,
    /// Acknowledgements: all (default), 1 or 0; overrides acks in --producer-props.
    #[arg(long, value_parser = parse_acks)]
    acks: Option<Acks>,
    /// Producer settings by their Kafka name, e.g. linger.ms=10 batch.size=65536.
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    producer_props: Vec<String>,
    /// Send in transactions under this transactional.id.
    #[arg(long, value_name = "T")]
    transactional_id: Option<String>,
    /// Commit the open transaction once it is this old (default 3000 when
    /// transactional).
    #[arg(long, value_name = "D", value_parser = clap::value_parser!(u64).range(1..))]
    transaction_duration_ms: Option<u64>,
}

/// ProducerPerformance's id when only a transaction duration is given.
const DEFAULT_TRANSACTIONAL_ID: &str = "performance-producer-default-transactional-id";
/// ProducerPerformance's transaction duration when only an id is given.
const DEFAULT_TRANSACTION_DURATION: Duration = Duration::from_millis(3000);

fn parse_throughput(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r == -1.0 || (r > 0.0 && r.is_finite()) => Ok(r),
        _ => Err(format!(
            "expected a positive rate or -1 (unthrottled), got '{s}'"
        )),
    }
}

pub(crate) async fn run(
    args: PerfProduceArgs,
    client: ClientConfig,
    output: &Output,
) -> Result<(), Error> {
    let config = producer_config(client, &args.producer_props, |c| {
        if let Some(acks) = args.acks {
            c.acks = acks;
        }
        if let Some(id) = &args.transactional_id {
            c.transactional_id = Some(id.clone());
        } else if args.transaction_duration_ms.is_some() && c.transactional_id.is_none() {
            c.transactional_id = Some(DEFAULT_TRANSACTIONAL_ID.to_owned());
        }
    })?;
    topics::check_partition(&config.client, &args.topic, None).await?;
    let transaction_duration = config.transactional_id.as_ref().map(|_| {
        args.transaction_duration_ms
            .map_or(DEFAULT_TRANSACTION_DURATION, Duration::from_millis)
    });
    let producer = Producer::connect(config).await?;
    if transaction_duration.is_some() {
        producer.init_transactions().await?;
    }
    let mut transaction_started: Option<Instant> = None;
    let payload = random_payload(args.record_size);
    let start = Instant::now();
    let bar = progress::bar(args.num_records, "records");
    let tally = Arc::new(Tally {
        stats: Mutex::new(ProducerStats::new(args.num_records, start)),
        first_error: Mutex::new(None),
        bar: bar.clone(),
        record_size: args.record_size,
    });
    let reporter = {
        let tally = tally.clone();
        let format = output.format();
        tokio::spawn(async move {
            let output = Output::new(format);
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
            loop {
                ticks.tick().await;
                let window = tally.stats().take_window(Instant::now());
                if format == Format::Table && window.records > 0 {
                    tally.bar.suspend(|| output.lines(&[window.to_string()]));
                }
            }
        })
    };
    let throttler = Throttler::new(args.throughput);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    for sent in 0..args.num_records {
        // One clock read per record serves the throttle and the latency
        // (a second only after a throttle pause): at several hundred
        // thousand records/s the reads were ~15% of this process's CPU.
        let mut sent_at = Instant::now();
        if let Some(wait) = throttler.wait(sent, sent_at - start) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut interrupted => break,
            }
            sent_at = Instant::now();
        }
        if let Some(duration) = transaction_duration {
            if transaction_started.is_some_and(|at| sent_at - at >= duration) {
                producer.commit_transaction().await?;
                transaction_started = None;
            }
            if transaction_started.is_none() {
                producer.begin_transaction()?;
                transaction_started = Some(sent_at);
            }
        }
        let record = ProducerRecord::new(args.topic.clone()).value(payload.clone());
        // Like Kafka's perf tool, a callback per record: it runs on the
        // producer's task when the answer arrives, with no channel and no
        // task of its own to wake.
        let on_delivery = {
            let tally = tally.clone();
            move |outcome: Result<_, Error>| tally.delivered(sent_at, outcome)
        };
        let queued = tokio::select! {
            queued = producer.send_with_callback(record, on_delivery) => queued,
            _ = &mut interrupted => break,
        };
        if let Err(error) = queued {
            tally.failed(error);
        }
    }
    if transaction_started.is_some() {
        producer.commit_transaction().await?;
    }
    // Every callback has run once the producer is closed.
    tokio::select! {
        closed = producer.close() => closed?,
        _ = tokio::signal::ctrl_c() => {}
    }
    reporter.abort();
    bar.finish_and_clear();
    let total = tally.stats().total(Instant::now());
    output.print(&TotalLine(total.clone()));
    let first_error = tally
        .first_error
        .lock()
        .expect("error lock is never poisoned")
        .take();
    match first_error {
        Some(error) => Err(Error::strom(
            error.code().unwrap_or(ErrorCode::InvalidRequest),
            format!(
                "{} of {} record(s) failed; the first: {}",
                total.errors,
                total.records + total.errors,
                error.detail()
            ),
        )),
        None if total.records < args.num_records => Err(Error::strom(
            ErrorCode::RequestTimedOut,
            format!(
                "interrupted after {} of {} records",
                total.records, args.num_records
            ),
        )),
        None => Ok(()),
    }
}

/// `--record-size` random uppercase letters, like Kafka's payload.
fn random_payload(size: usize) -> Bytes {
    let mut rng = StdRng::from_entropy();
    Bytes::from(
        (0..size)
            .map(|_| b'A' + rng.gen_range(0..26u8))
            .collect::<Vec<u8>>(),
    )
}

/// What the records' callbacks and the reporter share.
struct Tally {
    stats: Mutex<ProducerStats>,
    first_error: Mutex<Option<Error>>,
    bar: indicatif::ProgressBar,
    record_size: usize,
}

impl Tally {
    fn stats(&self) -> std::sync::MutexGuard<'_, ProducerStats> {
        self.stats.lock().expect("stats lock is never poisoned")
    }

    /// A record's outcome, `sent_at` being when it was handed to `send`.
    fn delivered(&self, sent_at: Instant, outcome: Result<RecordMetadata, Error>) {
        match outcome {
            Ok(_) => self.stats().record(sent_at.elapsed(), self.record_size),
            Err(error) => self.failed(error),
        }
        // A hidden bar (stderr not a terminal) still reads the clock.
        if !self.bar.is_hidden() {
            self.bar.inc(1);
        }
    }

    fn failed(&self, error: Error) {
        self.stats().error();
        self.first_error
            .lock()
            .expect("error lock is never poisoned")
            .get_or_insert(error);
    }
}

/// The final line (table) or summary object (JSON).
#[derive(Debug)]
struct TotalLine(super::stats::TotalReport);

impl serde::Serialize for TotalLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl crate::output::Table for TotalLine {
    fn table(&self) -> Vec<String> {
        vec![self.0.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_positive_or_minus_one() {
        assert_eq!(parse_throughput("-1"), Ok(-1.0));
        assert_eq!(parse_throughput("1000"), Ok(1000.0));
        assert_eq!(parse_throughput("0.5"), Ok(0.5));
        for bad in ["0", "-2", "fast", "inf"] {
            assert!(parse_throughput(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payload_is_uppercase_letters() {
        let payload = random_payload(1000);
        assert_eq!(payload.len(), 1000);
        assert!(payload.iter().all(u8::is_ascii_uppercase));
    }
}
