//! Consume-transform-produce processors (`x<n>`) and their final read
//! (`ctp-final`).
//!
//! The processors are members of one consumer group (`jepsen-ctp`)
//! subscribed to the input topic (`<topic>-ctp-in`) with
//! `isolation.level=read_committed`, each with a transactional producer
//! (`transactional.id` `jepsen-x<n>`). A transaction polls once or twice;
//! after each poll it writes one output record (a fresh value) to the
//! output topic (`<topic>-ctp-out`, same partition) per input record and
//! one fresh value to a random partition of the input topic, which some
//! processor reads later: the transactions read each other's writes, so
//! their write-read dependencies form a graph that a broker showing
//! uncommitted records could close into a cycle (G1c). Then it commits
//! the consumed input offsets with `send_offsets_to_transaction` and
//! commits, or (one in ten) aborts.
//!
//! After an abort the processor seeks its partitions back to the group's
//! committed offsets (what the aborted transaction consumed is processed
//! again). A revocation during a transaction aborts it. A transaction of
//! unknown outcome replaces the producer by a new incarnation, whose
//! `init_transactions` fences the old one and finishes its transaction
//! before the positions are rewound.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_client::{
    Consumer, ConsumerConfig, DeliveryFuture, Error as ClientError, IsolationLevel, ListenerFuture,
    OffsetReset, Producer, ProducerRecord, RebalanceListener, TopicPartition,
};

use super::txn::{END_LIMIT, incarnation, stable_read};
use super::{Context, pause};
use crate::checker::ctp::CTP_FINAL;
use crate::history::{
    Body, CtpOutput, OpType, Polled, Recorder, TxnWrite, decode_value, encode_value,
};

/// The processors' consumer group.
pub const CTP_GROUP: &str = "jepsen-ctp";

/// Longest wait for an offset fetch.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// Longest wait for one poll; a poll that does not return is abandoned
/// with its consumer.
const POLL_LIMIT: Duration = Duration::from_secs(45);

/// The input topic of the processors, for the workload's `topic`.
pub fn input_topic(topic: &str) -> String {
    format!("{topic}-ctp-in")
}

/// Their output topic.
pub fn output_topic(topic: &str) -> String {
    format!("{topic}-ctp-out")
}

fn consumer_config(bootstrap: &str, isolation: IsolationLevel) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap).expect("valid bootstrap list");
    config.client.request_timeout = Duration::from_secs(5);
    config.client.connect_timeout = Duration::from_millis(500);
    config.group_id = Some(CTP_GROUP.to_owned());
    config.auto_offset_reset = OffsetReset::Earliest;
    config.isolation_level = isolation;
    config.metadata_max_age = Duration::from_secs(5);
    // The broker's minimum: a processor lost to a fault is replaced soon.
    config.session_timeout = Duration::from_secs(6);
    config.max_poll_interval = Duration::from_secs(30);
    config.enable_auto_commit = false;
    config.max_poll_records = 20;
    config.client_id = "jepsen".into();
    config
}

/// Notes revocations: the transaction in progress must not commit offsets
/// of partitions the member no longer owns.
struct Listener {
    revoked: Arc<AtomicBool>,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        if !partitions.is_empty() {
            self.revoked.store(true, Ordering::Relaxed);
        }
        Box::pin(async {})
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        _partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async {})
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        if !partitions.is_empty() {
            self.revoked.store(true, Ordering::Relaxed);
        }
        Box::pin(async {})
    }
}

async fn join(context: &Context, name: &str, revoked: &Arc<AtomicBool>) -> Option<Consumer> {
    let mut consumer = match Consumer::connect(consumer_config(
        &context.bootstrap,
        IsolationLevel::ReadCommitted,
    ))
    .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jepsen: processor {name} cannot start its consumer: {e}");
            return None;
        }
    };
    consumer.set_rebalance_listener(Listener {
        revoked: revoked.clone(),
    });
    if let Err(e) = consumer.subscribe([input_topic(&context.topic)]).await {
        eprintln!("jepsen: processor {name} cannot subscribe: {e}");
        return None;
    }
    Some(consumer)
}

/// Moves every assigned partition back to the group's committed offset
/// (the beginning when none): after an abort, what the transaction
/// consumed is consumed again. False when the offsets could not be read.
async fn rewind(consumer: &mut Consumer) -> bool {
    let tps = consumer.assignment();
    if tps.is_empty() {
        return true;
    }
    let Ok(Ok(committed)) = tokio::time::timeout(CALL_LIMIT, consumer.committed(&tps)).await else {
        return false;
    };
    for tp in &tps {
        let moved = match committed.get(tp).and_then(Option::as_ref) {
            Some(o) => consumer.seek(tp, o.offset),
            None => consumer.seek_to_beginning(std::slice::from_ref(tp)),
        };
        if moved.is_err() {
            return false;
        }
    }
    true
}

/// What one transaction did, and what the processor must do next.
struct Done {
    ty: OpType,
    reads: Vec<Polled>,
    outputs: Vec<CtpOutput>,
    inputs: Vec<TxnWrite>,
    offsets: Vec<(i32, i64)>,
    error: Option<String>,
    /// The producer is unusable (outcome unknown, or fatal).
    replace_producer: bool,
    /// The consumer was abandoned in a poll that did not return.
    drop_consumer: bool,
}

/// Which write a delivery is for.
enum Sent {
    Output(usize),
    Input(usize),
}

/// Runs one transaction.
async fn run_txn(
    context: &Context,
    producer: &Producer,
    consumer: &mut Consumer,
    revoked: &AtomicBool,
    rng: &mut StdRng,
) -> Done {
    let mut d = Done {
        ty: OpType::Info,
        reads: Vec::new(),
        outputs: Vec::new(),
        inputs: Vec::new(),
        offsets: Vec::new(),
        error: None,
        replace_producer: false,
        drop_consumer: false,
    };
    revoked.store(false, Ordering::Relaxed);
    if let Err(e) = producer.begin_transaction() {
        // Nothing was written.
        d.ty = OpType::Fail;
        d.error = Some(format!("begin: {e}"));
        d.replace_producer = true;
        return d;
    }
    let in_topic = input_topic(&context.topic);
    let out_topic = output_topic(&context.topic);
    let mut deliveries: Vec<(Sent, DeliveryFuture)> = Vec::new();
    let mut error: Option<String> = None;
    'rounds: for _ in 0..rng.gen_range(1..=2) {
        let records =
            match tokio::time::timeout(POLL_LIMIT, consumer.poll(Duration::from_millis(300))).await
            {
                Ok(Ok(records)) => records,
                Ok(Err(e)) => {
                    error = Some(format!("poll: {e}"));
                    break;
                }
                Err(_) => {
                    error = Some("poll did not return".to_owned());
                    d.drop_consumer = true;
                    break;
                }
            };
        let first = d.reads.len();
        d.reads.extend(records.iter().map(|r| Polled {
            partition: r.partition,
            offset: r.offset,
            value: r.value.as_deref().and_then(decode_value),
        }));
        if revoked.load(Ordering::Relaxed) {
            error = Some("partitions revoked during the transaction".to_owned());
            break;
        }
        for read in &d.reads[first..] {
            // A corrupt input (reported by the checker) is not processed.
            let Some(from) = read.value else { continue };
            let out = CtpOutput {
                from,
                partition: read.partition,
                value: context.next_value(),
                offset: None,
            };
            let record = ProducerRecord::new(out_topic.clone())
                .partition(out.partition)
                .value(Bytes::from(encode_value(out.value)));
            match producer.send(record).await {
                Ok(f) => {
                    deliveries.push((Sent::Output(d.outputs.len()), f));
                    d.outputs.push(out);
                }
                Err(e) => {
                    error = Some(format!("send: {e}"));
                    break 'rounds;
                }
            }
        }
        let w = TxnWrite {
            partition: rng.gen_range(0..context.partitions),
            value: context.next_value(),
            offset: None,
        };
        let record = ProducerRecord::new(in_topic.clone())
            .partition(w.partition)
            .value(Bytes::from(encode_value(w.value)));
        match producer.send(record).await {
            Ok(f) => {
                deliveries.push((Sent::Input(d.inputs.len()), f));
                d.inputs.push(w);
            }
            Err(e) => {
                error = Some(format!("send: {e}"));
                break;
            }
        }
    }
    if error.is_none() && rng.gen_bool(0.9) {
        let offsets = consumer.consumed_offsets();
        d.offsets = offsets
            .iter()
            .map(|(tp, o)| (tp.partition, o.offset))
            .collect();
        match consumer.group_metadata() {
            Err(e) => error = Some(format!("group metadata: {e}")),
            Ok(group) => {
                match tokio::time::timeout(
                    END_LIMIT,
                    producer.send_offsets_to_transaction(&offsets, &group),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e @ ClientError::AbortableTransaction(_))) => {
                        error = Some(format!("send offsets: {e}"));
                    }
                    Ok(Err(e)) => {
                        d.error = Some(format!("send offsets: {e}"));
                        d.replace_producer = true;
                        return d;
                    }
                    Err(_) => {
                        d.error = Some("send offsets did not return".to_owned());
                        d.replace_producer = true;
                        return d;
                    }
                }
            }
        }
        if error.is_none() {
            match tokio::time::timeout(END_LIMIT, producer.commit_transaction()).await {
                Ok(Ok(())) => {
                    for (sent, f) in deliveries {
                        let offset = match tokio::time::timeout(Duration::from_secs(1), f).await {
                            Ok(Ok(meta)) => Some(meta.offset),
                            _ => None,
                        };
                        match sent {
                            Sent::Output(i) => d.outputs[i].offset = offset,
                            Sent::Input(i) => d.inputs[i].offset = offset,
                        }
                    }
                    d.ty = OpType::Ok;
                    return d;
                }
                Ok(Err(e @ ClientError::AbortableTransaction(_))) => {
                    error = Some(format!("commit: {e}"));
                }
                Ok(Err(e)) => {
                    d.error = Some(format!("commit: {e}"));
                    d.replace_producer = true;
                    return d;
                }
                Err(_) => {
                    d.error = Some("commit did not return".to_owned());
                    d.replace_producer = true;
                    return d;
                }
            }
        }
    }
    let why = error.unwrap_or_else(|| "aborted by choice".to_owned());
    match tokio::time::timeout(END_LIMIT, producer.abort_transaction()).await {
        Ok(Ok(())) => d.ty = OpType::Fail,
        Ok(Err(e)) => {
            d.error = Some(format!("{why}; abort: {e}"));
            d.replace_producer = true;
            return d;
        }
        Err(_) => {
            d.error = Some(format!("{why}; abort did not return"));
            d.replace_producer = true;
            return d;
        }
    }
    d.error = Some(why);
    d
}

/// A processor until the workload stops.
pub(super) async fn processor(context: Arc<Context>, name: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let revoked = Arc::new(AtomicBool::new(false));
    let mut producer: Option<Producer> = None;
    let mut consumer: Option<Consumer> = None;
    // The consumer's positions may be past what the group committed (an
    // abort, or a transaction of unknown outcome): rewind before the next
    // transaction, once a producer incarnation finished the last one.
    let mut rewind_needed = false;
    while !context.stopped() {
        if producer.is_none() {
            producer = incarnation(&context, &name).await;
            if producer.is_none() {
                pause(&context, Duration::from_millis(500)).await;
                continue;
            }
        }
        let Some(c) = consumer.as_mut() else {
            consumer = join(&context, &name, &revoked).await;
            rewind_needed = false;
            if consumer.is_none() {
                pause(&context, Duration::from_millis(500)).await;
            }
            continue;
        };
        if rewind_needed && !rewind(c).await {
            // Crash and rejoin: the new member starts at the committed
            // offsets.
            consumer = None;
            continue;
        }
        let p = producer.as_ref().expect("a producer incarnation");
        context.recorder.record(
            &name,
            OpType::Invoke,
            Body::CtpTxn {
                reads: Vec::new(),
                outputs: Vec::new(),
                inputs: Vec::new(),
                offsets: Vec::new(),
                error: None,
            },
        );
        let d = run_txn(&context, p, c, &revoked, &mut rng).await;
        context.recorder.record(
            &name,
            d.ty,
            Body::CtpTxn {
                reads: d.reads,
                outputs: d.outputs,
                inputs: d.inputs,
                offsets: d.offsets,
                error: d.error,
            },
        );
        rewind_needed = d.ty != OpType::Ok;
        if d.drop_consumer {
            consumer = None;
        }
        if d.replace_producer
            && let Some(p) = producer.take()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.close()).await;
        }
        pause(&context, context.pace).await;
    }
    if let Some(p) = producer {
        let _ = tokio::time::timeout(Duration::from_secs(5), p.close()).await;
    }
    if let Some(c) = consumer {
        let _ = tokio::time::timeout(CALL_LIMIT, c.close()).await;
    }
}

/// The final read after the processors stopped, as `ctp-final`: both
/// topics read to their ends once no transaction is open (as the
/// transactional workload's final read), then the group's committed input
/// offsets, recorded with [`Body::CtpFinal`].
pub async fn final_read(
    recorder: &Recorder,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    for (name, t) in [("in", input_topic(topic)), ("out", output_topic(topic))] {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        stable_read(
            recorder,
            bootstrap,
            &t,
            partitions,
            left,
            CTP_FINAL,
            |records| Body::CtpRead {
                topic: name.to_owned(),
                records,
            },
        )
        .await?;
    }
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(input_topic(topic), p))
        .collect();
    let mut consumer = Consumer::connect(consumer_config(bootstrap, IsolationLevel::ReadCommitted))
        .await
        .map_err(|e| format!("the processors' final reader did not start: {e}"))?;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(CALL_LIMIT, consumer.committed(&tps)).await {
            Ok(Ok(found)) => {
                let committed: BTreeMap<i32, i64> = found
                    .into_iter()
                    .filter_map(|(tp, o)| o.map(|o| (tp.partition, o.offset)))
                    .collect();
                recorder.record(
                    CTP_FINAL,
                    OpType::Ok,
                    Body::CtpFinal {
                        committed: committed.into_iter().collect(),
                    },
                );
                return Ok(());
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "offset fetch did not return".to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!(
        "the processors' committed offsets could not be read within {limit:?} (last: {last})"
    ))
}
