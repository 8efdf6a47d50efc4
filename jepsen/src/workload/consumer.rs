//! Consumer processes and the final read. Both use `strom_client::Consumer`
//! with manual assignment of every partition from offset 0 and
//! `auto.offset.reset=none`, so a consumer never silently jumps: an
//! out-of-range position surfaces as a failed poll.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition};

use super::Context;
use crate::history::{Body, OpType, Polled, Recorder, decode_value};

/// Longest wait for one poll before it is recorded as indeterminate.
const POLL_LIMIT: Duration = Duration::from_secs(10);

fn config(bootstrap: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap).expect("valid bootstrap list");
    config.client.request_timeout = Duration::from_secs(5);
    config.client.connect_timeout = Duration::from_millis(500);
    config.auto_offset_reset = OffsetReset::None;
    config.metadata_max_age = Duration::from_secs(5);
    config.client_id = "jepsen".into();
    config
}

fn polled(records: &[ConsumerRecord]) -> Vec<Polled> {
    records
        .iter()
        .map(|r| Polled {
            partition: r.partition,
            offset: r.offset,
            value: r.value.as_deref().and_then(decode_value),
        })
        .collect()
}

/// Assigns every partition and seeks each to 0, recording the seeks.
async fn start(
    recorder: &Recorder,
    name: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Option<(Consumer, Vec<TopicPartition>)> {
    let mut consumer = match Consumer::connect(config(bootstrap)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jepsen: consumer {name} cannot start: {e}");
            return None;
        }
    };
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    for tp in &tps {
        consumer.seek(tp, 0).expect("assigned partition");
        recorder.record(
            name,
            OpType::Ok,
            Body::Seek {
                partition: tp.partition,
                offset: 0,
            },
        );
    }
    Some((consumer, tps))
}

/// One recorded poll.
async fn poll_once(recorder: &Recorder, name: &str, consumer: &mut Consumer) -> usize {
    let invoke = Body::Poll {
        records: Vec::new(),
        error: None,
    };
    recorder.record(name, OpType::Invoke, invoke);
    let (ty, records, error) =
        match tokio::time::timeout(POLL_LIMIT, consumer.poll(Duration::from_millis(500))).await {
            Ok(Ok(records)) => (OpType::Ok, polled(&records), None),
            Ok(Err(e)) => (OpType::Fail, Vec::new(), Some(e.to_string())),
            Err(_) => (OpType::Info, Vec::new(), Some("poll did not return".into())),
        };
    let n = records.len();
    recorder.record(name, ty, Body::Poll { records, error });
    n
}

/// A consumer polling every partition until the workload stops.
pub(super) async fn consume(context: Arc<Context>, name: String) {
    let recorder = &context.recorder;
    let Some((mut consumer, _)) = start(
        recorder,
        &name,
        &context.bootstrap,
        &context.topic,
        context.partitions,
    )
    .await
    else {
        return;
    };
    while !context.stopped() {
        if poll_once(recorder, &name, &mut consumer).await == 0 {
            super::pause(&context, context.pace).await;
        }
    }
}

/// The final read after healing, as process `final`: a fresh consumer
/// reads every partition from 0 to its end offset (high watermark), again
/// until the end offsets stop moving. Returns the end offsets, or why it
/// could not finish within `limit`.
pub async fn final_read(
    recorder: &Recorder,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) -> Result<BTreeMap<i32, i64>, String> {
    let name = "final";
    let deadline = Instant::now() + limit;
    let Some((mut consumer, tps)) = start(recorder, name, bootstrap, topic, partitions).await
    else {
        return Err("the final consumer did not start".into());
    };
    let mut previous: Option<BTreeMap<i32, i64>> = None;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let ends = match consumer.end_offsets(&tps).await {
            Ok(e) => e
                .into_iter()
                .map(|(tp, o)| (tp.partition, o))
                .collect::<BTreeMap<i32, i64>>(),
            Err(e) => {
                last_error = format!("end offsets: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if previous.as_ref() == Some(&ends) {
            recorder.record(
                name,
                OpType::Ok,
                Body::Ends {
                    topic: topic.to_owned(),
                    offsets: ends.iter().map(|(p, o)| (*p, *o)).collect(),
                },
            );
            return Ok(ends);
        }
        loop {
            let mut behind = Vec::new();
            for tp in &tps {
                match consumer.position(tp).await {
                    Ok(p) if p >= ends.get(&tp.partition).copied().unwrap_or(0) => {}
                    Ok(p) => behind.push((tp.partition, p)),
                    Err(e) => {
                        last_error = format!("position of {tp}: {e}");
                        behind.push((tp.partition, -1));
                    }
                }
            }
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the final read did not reach the end offsets {ends:?} within {limit:?}: \
                     positions {behind:?} (last error: {last_error})"
                ));
            }
            poll_once(recorder, name, &mut consumer).await;
        }
        previous = Some(ends);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "the final read did not settle within {limit:?} (last error: {last_error})"
    ))
}
