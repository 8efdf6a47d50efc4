//! Transactional producers (`t<n>`) and `read_committed` readers (`r<n>`)
//! of the transactional topic, and its final read (`txn-final`).
//!
//! A producer runs transactions of one to four unique values sent to
//! random partitions, committing three in four and aborting the rest. A
//! transaction whose outcome is unknown (commit or abort timed out, the
//! producer failed) is recorded `info`, and the producer is replaced by a
//! new incarnation with the same `transactional.id`, whose
//! `init_transactions` fences the old one and finishes its transaction.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_client::{
    Consumer, ConsumerConfig, DeliveryFuture, Error as ClientError, IsolationLevel, OffsetReset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

use super::{Context, pause};
use crate::checker::txn::TXN_FINAL;
use crate::history::{Body, OpType, Polled, Recorder, TxnWrite, decode_value, encode_value};

/// The transactional producers' `transaction.timeout.ms`: a transaction
/// left open by a replaced producer is aborted after this.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a commit or abort before its outcome is unknown.
pub(super) const END_LIMIT: Duration = Duration::from_secs(20);

fn producer_config(bootstrap: &str, name: &str) -> ProducerConfig {
    let mut config = ProducerConfig::new(bootstrap).expect("valid bootstrap list");
    config.client.request_timeout = Duration::from_secs(4);
    config.client.connect_timeout = Duration::from_millis(500);
    config.linger = Duration::from_millis(1);
    config.delivery_timeout = Duration::from_secs(12);
    config.max_block = Duration::from_secs(8);
    config.metadata_max_age = Duration::from_secs(5);
    config.transactional_id = Some(format!("jepsen-{name}"));
    config.transaction_timeout = TRANSACTION_TIMEOUT;
    config.client_id = "jepsen".into();
    config
}

fn consumer_config(bootstrap: &str, isolation: IsolationLevel) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap).expect("valid bootstrap list");
    config.client.request_timeout = Duration::from_secs(5);
    config.client.connect_timeout = Duration::from_millis(500);
    config.auto_offset_reset = OffsetReset::None;
    config.isolation_level = isolation;
    config.metadata_max_age = Duration::from_secs(5);
    config.client_id = "jepsen".into();
    config
}

/// A producer that ran `init_transactions`, or `None` (retried by the
/// caller).
pub(super) async fn incarnation(context: &Context, name: &str) -> Option<Producer> {
    let producer = Producer::connect(producer_config(&context.bootstrap, name))
        .await
        .ok()?;
    for _ in 0..5 {
        match producer.init_transactions().await {
            Ok(()) => return Some(producer),
            // A timeout may be retried; anything else is fatal.
            Err(ClientError::Timeout { .. }) => {}
            Err(_) => break,
        }
        if context.stopped() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), producer.close()).await;
    None
}

/// How a transaction ended.
enum End {
    Committed(Vec<TxnWrite>),
    Aborted(String),
    Unknown(String),
}

/// Runs one transaction of `writes`. `Unknown` leaves the producer
/// unusable.
async fn run_txn(producer: &Producer, topic: &str, writes: &[TxnWrite], commit: bool) -> End {
    if let Err(e) = producer.begin_transaction() {
        return End::Unknown(format!("begin: {e}"));
    }
    let mut deliveries: Vec<(TxnWrite, DeliveryFuture)> = Vec::new();
    let mut error = None;
    for w in writes {
        let record = ProducerRecord::new(topic.to_owned())
            .partition(w.partition)
            .value(Bytes::from(encode_value(w.value)));
        match producer.send(record).await {
            Ok(d) => deliveries.push((*w, d)),
            Err(e) => {
                error = Some(format!("send: {e}"));
                break;
            }
        }
    }
    if commit && error.is_none() {
        match tokio::time::timeout(END_LIMIT, producer.commit_transaction()).await {
            Ok(Ok(())) => {
                let mut done = Vec::new();
                for (w, d) in deliveries {
                    let offset = match tokio::time::timeout(Duration::from_secs(1), d).await {
                        Ok(Ok(meta)) => Some(meta.offset),
                        _ => None,
                    };
                    done.push(TxnWrite { offset, ..w });
                }
                return End::Committed(done);
            }
            Ok(Err(e @ ClientError::AbortableTransaction(_))) => {
                error = Some(format!("commit: {e}"));
            }
            Ok(Err(e)) => return End::Unknown(format!("commit: {e}")),
            Err(_) => return End::Unknown("commit did not return".to_owned()),
        }
    }
    let why = error.unwrap_or_else(|| "aborted by choice".to_owned());
    match tokio::time::timeout(END_LIMIT, producer.abort_transaction()).await {
        Ok(Ok(())) => End::Aborted(why),
        Ok(Err(e)) => End::Unknown(format!("{why}; abort: {e}")),
        Err(_) => End::Unknown(format!("{why}; abort did not return")),
    }
}

/// A transactional producer until the workload stops.
pub(super) async fn producer(context: Arc<Context>, name: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let recorder = &context.recorder;
    let topic = context.txn_topic.clone();
    let mut current: Option<Producer> = None;
    while !context.stopped() {
        let Some(producer) = current.as_ref() else {
            current = incarnation(&context, &name).await;
            if current.is_none() {
                pause(&context, Duration::from_millis(500)).await;
            }
            continue;
        };
        let n = rng.gen_range(1..=4);
        let writes: Vec<TxnWrite> = (0..n)
            .map(|_| TxnWrite {
                partition: rng.gen_range(0..context.partitions),
                value: context.next_value(),
                offset: None,
            })
            .collect();
        let commit = rng.gen_bool(0.75);
        recorder.record(
            &name,
            OpType::Invoke,
            Body::Txn {
                writes: writes.clone(),
                commit,
                error: None,
            },
        );
        let (ty, writes, error, replace) = match run_txn(producer, &topic, &writes, commit).await {
            End::Committed(done) => (OpType::Ok, done, None, false),
            End::Aborted(why) => (OpType::Fail, writes, Some(why), false),
            End::Unknown(why) => (OpType::Info, writes, Some(why), true),
        };
        recorder.record(
            &name,
            ty,
            Body::Txn {
                writes,
                commit,
                error,
            },
        );
        if replace && let Some(p) = current.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.close()).await;
        }
        pause(&context, context.pace).await;
    }
    if let Some(p) = current {
        let _ = tokio::time::timeout(Duration::from_secs(5), p.close()).await;
    }
}

fn polled(records: &[strom_client::ConsumerRecord]) -> Vec<Polled> {
    records
        .iter()
        .map(|r| Polled {
            partition: r.partition,
            offset: r.offset,
            value: r.value.as_deref().and_then(decode_value),
        })
        .collect()
}

async fn assigned_from_start(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<(Consumer, Vec<TopicPartition>), String> {
    let mut consumer = Consumer::connect(consumer_config(bootstrap, IsolationLevel::ReadCommitted))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer
            .seek(tp, 0)
            .map_err(|e| format!("seek {tp}: {e}"))?;
    }
    Ok((consumer, tps))
}

/// A `read_committed` reader of every partition from offset 0.
pub(super) async fn reader(context: Arc<Context>, name: String) {
    let (mut consumer, _) =
        match assigned_from_start(&context.bootstrap, &context.txn_topic, context.partitions).await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("jepsen: reader {name} cannot start: {e}");
                return;
            }
        };
    while !context.stopped() {
        match tokio::time::timeout(
            Duration::from_secs(10),
            consumer.poll(Duration::from_millis(300)),
        )
        .await
        {
            Ok(Ok(records)) if !records.is_empty() => {
                context.recorder.record(
                    &name,
                    OpType::Ok,
                    Body::TxnPoll {
                        records: polled(&records),
                    },
                );
            }
            _ => pause(&context, context.pace).await,
        }
    }
}

/// The final read of the transactional topic after healing, as
/// `txn-final`: waits until no transaction is open (the last stable
/// offset of every partition equals its high watermark), reads every
/// partition to it, and repeats until the end offsets stop moving; then
/// records the end offsets (`Ends`), which tells the checker the read is
/// complete.
pub async fn final_read(
    recorder: &Recorder,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) -> Result<(), String> {
    stable_read(
        recorder,
        bootstrap,
        topic,
        partitions,
        limit,
        TXN_FINAL,
        |records| Body::TxnPoll { records },
    )
    .await
}

/// The final read of a transactional topic: as [`final_read`], recording
/// its polls as `process` with `body` and its `Ends` last.
pub(super) async fn stable_read(
    recorder: &Recorder,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
    process: &str,
    body: impl Fn(Vec<Polled>) -> Body,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let (mut committed, tps) = assigned_from_start(bootstrap, topic, partitions).await?;
    let uncommitted =
        Consumer::connect(consumer_config(bootstrap, IsolationLevel::ReadUncommitted))
            .await
            .map_err(|e| format!("connect: {e}"))?;
    let mut previous: Option<BTreeMap<i32, i64>> = None;
    let mut last = String::new();
    while Instant::now() < deadline {
        let (hw, lso) = match (
            uncommitted.end_offsets(&tps).await,
            committed.end_offsets(&tps).await,
        ) {
            (Ok(hw), Ok(lso)) => (hw, lso),
            (Err(e), _) | (_, Err(e)) => {
                last = format!("end offsets: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if hw != lso {
            last = format!("open transactions: high watermarks {hw:?}, last stable {lso:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        let ends: BTreeMap<i32, i64> = hw.into_iter().map(|(tp, o)| (tp.partition, o)).collect();
        if previous.as_ref() == Some(&ends) {
            recorder.record(
                process,
                OpType::Ok,
                Body::Ends {
                    topic: topic.to_owned(),
                    offsets: ends.into_iter().collect(),
                },
            );
            return Ok(());
        }
        loop {
            let mut behind = false;
            for tp in &tps {
                match committed.position(tp).await {
                    Ok(p) if p >= ends.get(&tp.partition).copied().unwrap_or(0) => {}
                    Ok(_) => behind = true,
                    Err(e) => {
                        last = format!("position of {tp}: {e}");
                        behind = true;
                    }
                }
            }
            if !behind || Instant::now() >= deadline {
                break;
            }
            match tokio::time::timeout(
                Duration::from_secs(10),
                committed.poll(Duration::from_millis(300)),
            )
            .await
            {
                Ok(Ok(records)) if !records.is_empty() => {
                    recorder.record(process, OpType::Ok, body(polled(&records)));
                }
                Ok(Err(e)) => last = format!("poll: {e}"),
                _ => {}
            }
        }
        previous = Some(ends);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "the final read of {topic} did not finish within {limit:?} (last: {last})"
    ))
}
