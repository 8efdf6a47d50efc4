//! Producer processes. Each sends one unique value at a time to a random
//! partition and records the invocation and its completion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_client::{Acks, Producer, ProducerConfig, ProducerRecord};
use strom_integration_tests::data::{batch, partition_state_any, produce_once};
use strom_proto::v1::ErrorCode;

use super::{Context, pause};
use crate::history::{Body, OpType, encode_value};

/// The client producer's `delivery.timeout.ms`: how long a record may be
/// retried before the client gives up on it (indeterminate).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(12);

fn send_body(partition: i32, value: u64, single_attempt: bool, idempotent: bool) -> Body {
    Body::Send {
        partition,
        value,
        offset: None,
        error: None,
        single_attempt,
        idempotent,
    }
}

fn completion(
    partition: i32,
    value: u64,
    single_attempt: bool,
    idempotent: bool,
    result: Result<i64, String>,
) -> Body {
    let (offset, error) = match result {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(e)),
    };
    Body::Send {
        partition,
        value,
        offset,
        error,
        single_attempt,
        idempotent,
    }
}

fn client_config(bootstrap: &str, acks: i32) -> ProducerConfig {
    let mut config = ProducerConfig::new(bootstrap).expect("valid bootstrap list");
    config.acks = if acks == 1 { Acks::Leader } else { Acks::All };
    config.client.request_timeout = Duration::from_secs(4);
    config.client.connect_timeout = Duration::from_millis(500);
    config.linger = Duration::from_millis(1);
    config.delivery_timeout = DELIVERY_TIMEOUT;
    config.max_block = Duration::from_secs(4);
    config.metadata_max_age = Duration::from_secs(5);
    config.client_id = "jepsen".into();
    config
}

/// A `strom_client::Producer` (retrying within the delivery timeout). `send` refusing the record is a definite failure; a failed
/// delivery is indeterminate, since an earlier attempt may have been
/// written.
pub(super) async fn client(context: Arc<Context>, name: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = client_config(&context.bootstrap, context.acks);
    // Idempotent with acks=all (Kafka's default): a duplicate is fatal.
    let idempotent = config.idempotence();
    let producer = match Producer::connect(config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("jepsen: producer {name} cannot start: {e}");
            return;
        }
    };
    let recorder = &context.recorder;
    while !context.stopped() {
        let partition = rng.gen_range(0..context.partitions);
        let value = context.next_value();
        recorder.record(
            &name,
            OpType::Invoke,
            send_body(partition, value, false, idempotent),
        );
        let record = ProducerRecord::new(context.topic.clone())
            .partition(partition)
            .value(Bytes::from(encode_value(value)));
        let (ty, result) = match producer.send(record).await {
            Err(e) => (OpType::Fail, Err(e.to_string())),
            Ok(delivery) => {
                match tokio::time::timeout(DELIVERY_TIMEOUT + Duration::from_secs(5), delivery)
                    .await
                {
                    Ok(Ok(meta)) => (OpType::Ok, Ok(meta.offset)),
                    Ok(Err(e)) => (OpType::Info, Err(e.to_string())),
                    Err(_) => (OpType::Info, Err("no delivery report".to_owned())),
                }
            }
        };
        recorder.record(
            &name,
            ty,
            completion(partition, value, false, idempotent, result),
        );
        pause(&context, context.pace).await;
    }
    let _ = producer.close().await;
}

/// Whether a raw produce error means nothing was appended: the broker
/// refuses these before writing. Everything else (timeouts, lost
/// connections, NOT_LEADER_OR_FOLLOWER, which the leader also answers when
/// it loses the leadership after appending, storage errors) may have
/// written.
fn definitely_not_written(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotEnoughReplicas
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::InvalidRequiredAcks
            | ErrorCode::InvalidRequest
            | ErrorCode::CorruptMessage
            | ErrorCode::RecordTooLarge
    )
}

/// Single raw `Produce` attempts to the leader the freshest
/// metadata names; a value is never sent twice, so it can never be
/// duplicated legitimately.
pub(super) async fn raw(context: Arc<Context>, name: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut leaders: HashMap<i32, i32> = HashMap::new();
    let recorder = &context.recorder;
    while !context.stopped() {
        let partition = rng.gen_range(0..context.partitions);
        let leader = match leaders.get(&partition) {
            Some(l) => Some(*l),
            None => partition_state_any(&context.addrs, &context.topic, partition)
                .await
                .map(|s| s.0)
                .filter(|l| *l >= 0),
        };
        let Some(leader) = leader else {
            pause(&context, Duration::from_millis(200)).await;
            continue;
        };
        let value = context.next_value();
        recorder.record(
            &name,
            OpType::Invoke,
            send_body(partition, value, true, false),
        );
        let result = produce_once(
            &context.addrs,
            leader,
            &context.topic,
            partition,
            batch(&[Bytes::from(encode_value(value))]),
            context.acks,
            Duration::from_secs(3),
        )
        .await;
        let (ty, result) = match result {
            Ok(offset) => {
                leaders.insert(partition, leader);
                (OpType::Ok, Ok(offset))
            }
            Err(e) => {
                leaders.remove(&partition);
                let ty = if definitely_not_written(e.code) {
                    OpType::Fail
                } else {
                    OpType::Info
                };
                (ty, Err(format!("broker {leader}: {e}")))
            }
        };
        recorder.record(&name, ty, completion(partition, value, true, false, result));
        pause(&context, context.pace).await;
    }
}
