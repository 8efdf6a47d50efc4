//! A consume-transform-produce loop through the Rust client's transactional
//! API, run as a child process by `tests/transactions_client.rs` so that
//! the test can kill it with -9.
//!
//! It reads every partition of the input topic (`read_committed`, from the
//! group's committed offsets), and for each poll writes one output record
//! per input record (value `out-<input value>`, same key) and commits the
//! consumed offsets in the same transaction. Any error ends the process
//! with exit code 1: the test starts it again, as a supervisor would, and
//! the new incarnation fences the old one and aborts what it left open.
//!
//! ```text
//! txn_transform BOOTSTRAP INPUT PARTITIONS OUTPUT GROUP TRANSACTIONAL_ID PAUSE_MS
//! ```

use std::time::Duration;

use anyhow::{Context, bail};
use strom_client::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, Properties, TopicPartition,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        bootstrap,
        input,
        partitions,
        output,
        group,
        transactional_id,
        pause_ms,
    ] = args.as_slice()
    else {
        bail!(
            "usage: txn_transform BOOTSTRAP INPUT PARTITIONS OUTPUT GROUP TRANSACTIONAL_ID PAUSE_MS"
        );
    };
    let partitions: i32 = partitions.parse().context("partitions")?;
    let pause = Duration::from_millis(pause_ms.parse().context("pause ms")?);

    let producer = Producer::connect(ProducerConfig::from_properties([
        format!("bootstrap.servers={bootstrap}"),
        format!("transactional.id={transactional_id}"),
        "transaction.timeout.ms=20000".to_owned(),
        "request.timeout.ms=5000".to_owned(),
        "delivery.timeout.ms=20000".to_owned(),
        "max.block.ms=30000".to_owned(),
        "linger.ms=2".to_owned(),
    ])?)
    .await?;
    // First: fences the previous incarnation and completes or aborts its
    // transaction, so the committed offsets read next are stable.
    producer
        .init_transactions()
        .await
        .context("init transactions")?;

    let mut consumer = Consumer::connect(ConsumerConfig::from_properties([
        format!("bootstrap.servers={bootstrap}"),
        format!("group.id={group}"),
        "enable.auto.commit=false".to_owned(),
        "isolation.level=read_committed".to_owned(),
        "max.poll.records=20".to_owned(),
        "request.timeout.ms=10000".to_owned(),
    ])?)
    .await?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(input.as_str(), p))
        .collect();
    consumer.assign(tps.clone());
    let committed = consumer
        .committed(&tps)
        .await
        .context("committed offsets")?;
    for tp in &tps {
        match committed.get(tp).and_then(Option::as_ref) {
            Some(o) => consumer.seek(tp, o.offset)?,
            None => consumer.seek_to_beginning(std::slice::from_ref(tp))?,
        }
    }
    println!("started");

    loop {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if records.is_empty() {
            continue;
        }
        producer.begin_transaction()?;
        for r in &records {
            let mut value = b"out-".to_vec();
            value.extend_from_slice(r.value.as_deref().unwrap_or_default());
            let mut record = ProducerRecord::new(output.as_str()).value(value);
            if let Some(key) = &r.key {
                record = record.key(key.clone());
            }
            producer.send(record).await.context("send")?;
        }
        let offsets = consumer.consumed_offsets();
        let group = consumer.group_metadata()?;
        producer
            .send_offsets_to_transaction(&offsets, &group)
            .await
            .context("send offsets")?;
        producer.commit_transaction().await.context("commit")?;
        println!("committed {}", records.len());
        tokio::time::sleep(pause).await;
    }
}
