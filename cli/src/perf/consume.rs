//! `strom perf consume`: kafka-consumer-perf-test. Reads `--messages`
//! records from the beginning of every partition of the topic (or as a
//! member of `--group`, from the group's committed offsets) and reports
//! the throughput.

use std::time::Duration;

use clap::Args;
use strom_client::{ClientConfig, Consumer, Error, ErrorCode, OffsetReset, TopicPartition};
use tokio::time::Instant;

use super::stats::{CONSUMER_HEADER, ConsumerReport, EndToEndLatency};
use crate::consume::{consumer_config, rewind};
use crate::output::{Output, Table};
use crate::{progress, topics};

/// Default of `--timeout-ms` here: the longest wait for the next record.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll slice (Kafka's tool polls with 100 ms).
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub(crate) struct PerfConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Records to read.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Consume as a member of this group (subscribe): partitions start at
    /// the group's committed offsets (else the beginning, or the end with
    /// --from-latest) and positions are committed as configured and on exit.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Start at the end of each partition instead of the beginning, and
    /// report end-to-end latency (producer timestamp to arrival here) of
    /// the records read.
    #[arg(long)]
    from_latest: bool,
    /// Consumer settings by their Kafka name, e.g. max.partition.fetch.bytes=4194304.
    #[arg(long, alias = "consumer-property", value_name = "KEY=VALUE", num_args = 1..)]
    consumer_props: Vec<String>,
}

impl Table for ConsumerReport {
    fn table(&self) -> Vec<String> {
        let mut lines = vec![CONSUMER_HEADER.to_owned(), self.line()];
        lines.extend(self.end_to_end.as_ref().map(EndToEndLatency::line));
        lines
    }
}

pub(crate) async fn run(
    args: PerfConsumeArgs,
    client: ClientConfig,
    idle_timeout: Option<Duration>,
    output: &Output,
) -> Result<(), Error> {
    let idle_timeout = idle_timeout.unwrap_or(IDLE_TIMEOUT);
    let count = topics::check_partition(&client, &args.topic, None).await?;
    let config = consumer_config(client, &args.consumer_props, |c| {
        c.auto_offset_reset = if args.from_latest {
            OffsetReset::Latest
        } else {
            OffsetReset::Earliest
        };
        if let Some(group) = &args.group {
            c.group_id = Some(group.clone());
        }
    })?;
    let grouped = config.group_id.is_some();
    let partitions: Vec<TopicPartition> = (0..count)
        .map(|p| TopicPartition::new(args.topic.clone(), p))
        .collect();
    let bar = progress::bar(args.messages, "records");
    let started = chrono::Local::now();
    let mut consumer = Consumer::connect(config).await?;
    if grouped {
        consumer.subscribe([args.topic.clone()]).await?;
    } else {
        consumer.assign(partitions.clone());
        if args.from_latest {
            consumer.seek_to_end(&partitions)?;
        } else {
            consumer.seek_to_beginning(&partitions)?;
        }
    }
    let mut messages = 0u64;
    let mut bytes = 0u64;
    let mut end_to_end = Vec::new();
    let mut last_record = Instant::now();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut stopped = None;
    while messages < args.messages {
        let idle = last_record.elapsed();
        if idle >= idle_timeout {
            stopped = Some(format!(
                "consumed {messages} of {} messages: no record arrived within {} ms (raise \
                 --timeout-ms)",
                args.messages,
                idle_timeout.as_millis()
            ));
            break;
        }
        let records = tokio::select! {
            polled = consumer.poll(POLL.min(idle_timeout - idle)) => polled?,
            _ = &mut interrupted => {
                stopped = Some(format!("interrupted after {messages} of {} messages", args.messages));
                break;
            }
        };
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        let room = (args.messages - messages) as usize;
        if grouped && records.len() > room {
            rewind(&mut consumer, &records[room..])?;
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        for record in records.iter().take((args.messages - messages) as usize) {
            if args.from_latest {
                end_to_end.push(now_ms - record.timestamp);
            }
            messages += 1;
            bytes += record.key.as_ref().map_or(0, |k| k.len() as u64)
                + record.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        bar.set_position(messages);
    }
    let ended = chrono::Local::now();
    bar.finish_and_clear();
    consumer.close().await?;
    let mut report = ConsumerReport::new(&started, &ended, bytes, messages);
    report.end_to_end = EndToEndLatency::of(end_to_end);
    output.print(&report);
    match stopped {
        Some(why) => Err(Error::strom(ErrorCode::RequestTimedOut, why)),
        None => Ok(()),
    }
}
