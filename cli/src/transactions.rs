//! `strom transactions list | describe | describe-producers | find-hanging
//! | abort`, mirroring kafka-transactions (KIP-664): its subcommands,
//! flags and columns.
//!
//! `find-hanging` is Kafka's `FindHangingTransactionsCommand`: the open
//! transactions of the broker's partitions (DescribeProducers at each
//! leader) whose producer last wrote longer ago than
//! `--max-transaction-timeout` minutes are candidates; a candidate hangs
//! when no transactional id holds its producer id (ListTransactions), or
//! when the id's coordinator does not have the partition in a transaction
//! of that producer (DescribeTransactions). The decision is pure
//! ([`candidates`], [`is_hanging`]).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde::Serialize;
use strom_client::{
    Admin, Error, ErrorCode, ProducerState, TopicPartition, TransactionDescription,
    TransactionListing,
};

use crate::output::{Output, Table, columns};

/// Kafka's default `--max-transaction-timeout`: `transaction.max.timeout.ms`
/// (15 minutes).
const DEFAULT_MAX_TRANSACTION_TIMEOUT_MINUTES: i64 = 15;

#[derive(Debug, Subcommand)]
pub(crate) enum TransactionsCommand {
    /// List every transactional id of the cluster, with its coordinator.
    List,
    /// Describe one transactional id at its coordinator.
    Describe(DescribeArgs),
    /// The producers of a partition, as its leader tracks them.
    DescribeProducers(PartitionArgs),
    /// Find open transactions that no coordinator will complete.
    FindHanging(FindHangingArgs),
    /// Abort the open transaction starting at an offset of a partition.
    Abort(AbortArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The transactional id.
    #[arg(long)]
    transactional_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct PartitionArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Partition index.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    partition: i32,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("scope").required(true).args(["broker_id", "topic"]))]
pub(crate) struct FindHangingArgs {
    /// Look at the partitions this broker holds a replica of.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    broker_id: Option<i32>,
    /// Look at this topic's partitions.
    #[arg(long)]
    topic: Option<String>,
    /// With --topic: only this partition.
    #[arg(long, requires = "topic", conflicts_with = "broker_id", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// A transaction whose producer has not written for longer than this
    /// is a candidate (transaction.max.timeout.ms, in minutes).
    #[arg(long, value_name = "MINUTES", default_value_t = DEFAULT_MAX_TRANSACTION_TIMEOUT_MINUTES, value_parser = clap::value_parser!(i64).range(0..))]
    max_transaction_timeout: i64,
}

#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Partition index.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    partition: i32,
    /// The first offset of the transaction to abort (its
    /// CurrentTransactionStartOffset in describe-producers).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    start_offset: i64,
}

pub(crate) async fn run(
    command: TransactionsCommand,
    admin: &Admin,
    output: &Output,
) -> Result<(), Error> {
    match command {
        TransactionsCommand::List => {
            output.print(&Listing(admin.list_transactions(&[], &[]).await?));
        }
        TransactionsCommand::Describe(args) => {
            let d = admin.describe_transaction(&args.transactional_id).await?;
            output.print(&Described::new(d, now_ms()));
        }
        TransactionsCommand::DescribeProducers(args) => {
            let tp = TopicPartition {
                topic: args.topic,
                partition: args.partition,
            };
            output.print(&Producers(admin.describe_partition_producers(&tp).await?));
        }
        TransactionsCommand::FindHanging(args) => {
            output.print(&Hanging(find_hanging(args, admin).await?));
        }
        TransactionsCommand::Abort(args) => {
            let tp = TopicPartition {
                topic: args.topic,
                partition: args.partition,
            };
            let p = admin.abort_transaction(&tp, args.start_offset).await?;
            output.print(&Aborted {
                topic: tp.topic,
                partition: tp.partition,
                start_offset: args.start_offset,
                producer_id: p.producer_id,
                producer_epoch: p.producer_epoch,
                coordinator_epoch: p.latest_coordinator_epoch.unwrap_or(0),
            });
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn or_none<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

/// `[{"transactional_id", "coordinator", "producer_id", "state"}]`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Listing(Vec<TransactionListing>);

impl Table for Listing {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![vec![
            "TransactionalId".to_owned(),
            "Coordinator".to_owned(),
            "ProducerId".to_owned(),
            "TransactionState".to_owned(),
        ]];
        rows.extend(self.0.iter().map(|t| {
            vec![
                t.transactional_id.clone(),
                t.coordinator.to_string(),
                t.producer_id.to_string(),
                t.state.clone(),
            ]
        }));
        columns(&rows)
    }
}

/// The description with the open transaction's duration (Kafka's
/// TransactionDurationMs).
#[derive(Debug, Serialize)]
struct Described {
    #[serde(flatten)]
    d: TransactionDescription,
    transaction_duration_ms: Option<i64>,
}

impl Described {
    fn new(d: TransactionDescription, now_ms: i64) -> Self {
        let transaction_duration_ms = d
            .transaction_start_time_ms
            .map(|start| (now_ms - start).max(0));
        Described {
            d,
            transaction_duration_ms,
        }
    }
}

impl Table for Described {
    fn table(&self) -> Vec<String> {
        let d = &self.d;
        let partitions = d
            .topic_partitions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        columns(&[
            vec![
                "CoordinatorId".to_owned(),
                "TransactionalId".to_owned(),
                "ProducerId".to_owned(),
                "ProducerEpoch".to_owned(),
                "TransactionState".to_owned(),
                "TransactionTimeoutMs".to_owned(),
                "CurrentTransactionStartTimeMs".to_owned(),
                "TransactionDurationMs".to_owned(),
                "TopicPartitions".to_owned(),
            ],
            vec![
                d.coordinator_id.to_string(),
                d.transactional_id.clone(),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.state.clone(),
                d.transaction_timeout_ms.to_string(),
                or_none(d.transaction_start_time_ms),
                or_none(self.transaction_duration_ms),
                partitions,
            ],
        ])
    }
}

/// `[{"producer_id", "producer_epoch", "latest_coordinator_epoch",
/// "last_sequence", "last_timestamp", "current_transaction_start_offset"}]`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Producers(Vec<ProducerState>);

impl Table for Producers {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![vec![
            "ProducerId".to_owned(),
            "ProducerEpoch".to_owned(),
            "LatestCoordinatorEpoch".to_owned(),
            "LastSequence".to_owned(),
            "LastTimestamp".to_owned(),
            "CurrentTransactionStartOffset".to_owned(),
        ]];
        rows.extend(self.0.iter().map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                or_none(p.latest_coordinator_epoch),
                p.last_sequence.to_string(),
                p.last_timestamp.to_string(),
                or_none(p.current_transaction_start_offset),
            ]
        }));
        columns(&rows)
    }
}

/// An open transaction of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenTxn {
    tp: TopicPartition,
    producer: ProducerState,
}

/// A hanging transaction, as find-hanging prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct HangingTxn {
    topic: String,
    partition: i32,
    producer_id: i64,
    producer_epoch: i32,
    coordinator_epoch: Option<i32>,
    start_offset: i64,
    last_timestamp: i64,
    duration_ms: i64,
}

/// `[{"topic", "partition", "producer_id", "producer_epoch",
/// "coordinator_epoch", "start_offset", "last_timestamp", "duration_ms"}]`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Hanging(Vec<HangingTxn>);

impl Table for Hanging {
    fn table(&self) -> Vec<String> {
        let mut rows = vec![vec![
            "Topic".to_owned(),
            "Partition".to_owned(),
            "ProducerId".to_owned(),
            "ProducerEpoch".to_owned(),
            "CoordinatorEpoch".to_owned(),
            "StartOffset".to_owned(),
            "LastTimestamp".to_owned(),
            "Duration(min)".to_owned(),
        ]];
        rows.extend(self.0.iter().map(|h| {
            vec![
                h.topic.clone(),
                h.partition.to_string(),
                h.producer_id.to_string(),
                h.producer_epoch.to_string(),
                or_none(h.coordinator_epoch),
                h.start_offset.to_string(),
                h.last_timestamp.to_string(),
                (h.duration_ms / 60_000).to_string(),
            ]
        }));
        columns(&rows)
    }
}

/// `{"topic", "partition", "start_offset", "producer_id", "producer_epoch",
/// "coordinator_epoch"}`.
#[derive(Debug, Serialize)]
struct Aborted {
    topic: String,
    partition: i32,
    start_offset: i64,
    producer_id: i64,
    producer_epoch: i32,
    coordinator_epoch: i32,
}

impl Table for Aborted {
    fn table(&self) -> Vec<String> {
        vec![format!(
            "Aborted the transaction of producer {} (epoch {}) starting at offset {} of {}-{}",
            self.producer_id, self.producer_epoch, self.start_offset, self.topic, self.partition
        )]
    }
}

/// The open transactions whose producer last wrote more than
/// `max_timeout_ms` before `now_ms`: no coordinator lets a transaction live
/// that long, so one still open may hang.
fn candidates(open: Vec<OpenTxn>, now_ms: i64, max_timeout_ms: i64) -> Vec<OpenTxn> {
    open.into_iter()
        .filter(|t| now_ms - t.producer.last_timestamp > max_timeout_ms)
        .collect()
}

/// Whether the coordinator's view of the candidate's transactional id
/// (`None`: no id holds its producer id, or the coordinator does not know
/// it) leaves `txn` hanging: it does unless the coordinator has the
/// partition in an open or completing transaction of the same producer,
/// which it will complete (Kafka's `isTransactionHanging`).
fn is_hanging(txn: &OpenTxn, description: Option<&TransactionDescription>) -> bool {
    let Some(d) = description else {
        return true;
    };
    let open = matches!(
        d.state.as_str(),
        "Ongoing" | "PrepareCommit" | "PrepareAbort"
    );
    !(d.producer_id == txn.producer.producer_id && open && d.topic_partitions.contains(&txn.tp))
}

/// The partitions find-hanging looks at.
async fn scope(args: &FindHangingArgs, admin: &Admin) -> Result<Vec<TopicPartition>, Error> {
    let topics = match &args.topic {
        Some(t) => admin.describe_topics(std::slice::from_ref(t)).await?,
        None => admin.describe_topics(&[]).await?,
    };
    let mut out = Vec::new();
    for t in topics {
        for p in t.partitions {
            let wanted = match (args.broker_id, args.partition) {
                (Some(b), _) => p.replicas.contains(&b),
                (None, Some(partition)) => p.partition == partition,
                (None, None) => true,
            };
            if wanted {
                out.push(TopicPartition {
                    topic: t.name.clone(),
                    partition: p.partition,
                });
            }
        }
    }
    if let (Some(partition), Some(topic)) = (args.partition, &args.topic)
        && out.is_empty()
    {
        return Err(Error::strom(
            ErrorCode::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        ));
    }
    if let Some(b) = args.broker_id {
        let cluster = admin.describe_cluster().await?;
        if !cluster.brokers.iter().any(|x| x.id == b) {
            return Err(Error::strom(
                ErrorCode::BrokerIdNotRegistered,
                format!("broker {b} is not registered"),
            ));
        }
    }
    Ok(out)
}

async fn find_hanging(args: FindHangingArgs, admin: &Admin) -> Result<Vec<HangingTxn>, Error> {
    let partitions = scope(&args, admin).await?;
    let mut open = Vec::new();
    for (tp, answer) in admin.describe_producers(&partitions).await? {
        for producer in answer? {
            if producer.current_transaction_start_offset.is_some() {
                open.push(OpenTxn {
                    tp: tp.clone(),
                    producer,
                });
            }
        }
    }
    let now = now_ms();
    let candidates = candidates(open, now, args.max_transaction_timeout * 60_000);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut producer_ids: Vec<i64> = candidates.iter().map(|t| t.producer.producer_id).collect();
    producer_ids.sort_unstable();
    producer_ids.dedup();
    let listed = admin.list_transactions(&[], &producer_ids).await?;
    let mut descriptions: BTreeMap<i64, Vec<TransactionDescription>> = BTreeMap::new();
    for l in listed {
        match admin.describe_transaction(&l.transactional_id).await {
            Ok(d) => descriptions.entry(l.producer_id).or_default().push(d),
            // Expired meanwhile: no coordinator knows it.
            Err(e) if e.code() == Some(ErrorCode::TransactionalIdNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(candidates
        .into_iter()
        .filter(|t| {
            let ds = descriptions.get(&t.producer.producer_id);
            match ds {
                None => true,
                Some(ds) => ds.iter().all(|d| is_hanging(t, Some(d))),
            }
        })
        .map(|t| HangingTxn {
            duration_ms: now - t.producer.last_timestamp,
            topic: t.tp.topic,
            partition: t.tp.partition,
            producer_id: t.producer.producer_id,
            producer_epoch: t.producer.producer_epoch,
            coordinator_epoch: t.producer.latest_coordinator_epoch,
            start_offset: t.producer.current_transaction_start_offset.unwrap_or(-1),
            last_timestamp: t.producer.last_timestamp,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    fn open(producer_id: i64, last_timestamp: i64) -> OpenTxn {
        OpenTxn {
            tp: tp("t", 0),
            producer: ProducerState {
                producer_id,
                producer_epoch: 1,
                latest_coordinator_epoch: Some(0),
                last_sequence: 0,
                last_timestamp,
                current_transaction_start_offset: Some(5),
            },
        }
    }

    fn described(
        producer_id: i64,
        state: &str,
        partitions: &[TopicPartition],
    ) -> TransactionDescription {
        TransactionDescription {
            coordinator_id: 1,
            transactional_id: "id".into(),
            producer_id,
            producer_epoch: 1,
            state: state.into(),
            transaction_timeout_ms: 60_000,
            transaction_start_time_ms: Some(0),
            topic_partitions: partitions.to_vec(),
        }
    }

    #[test]
    fn candidates_are_transactions_quiet_for_longer_than_the_max_timeout() {
        let max = 15 * 60_000;
        let now = 100 * 60_000;
        let table = [
            (now, false),
            (now - max, false),
            (now - max - 1, true),
            (0, true),
        ];
        for (last, want) in table {
            let got = !candidates(vec![open(1, last)], now, max).is_empty();
            assert_eq!(got, want, "last write at {last}");
        }
    }

    #[test]
    fn a_candidate_hangs_unless_its_coordinator_has_the_partition_open() {
        let t = open(7, 0);
        let here = [tp("t", 0)];
        let elsewhere = [tp("t", 1)];
        let table: [(Option<TransactionDescription>, bool); 8] = [
            (None, true),
            (Some(described(7, "Ongoing", &here)), false),
            (Some(described(7, "PrepareCommit", &here)), false),
            (Some(described(7, "PrepareAbort", &here)), false),
            (Some(described(7, "Ongoing", &elsewhere)), true),
            (Some(described(7, "CompleteCommit", &[])), true),
            (Some(described(7, "Empty", &[])), true),
            (Some(described(8, "Ongoing", &here)), true),
        ];
        for (d, want) in table {
            assert_eq!(is_hanging(&t, d.as_ref()), want, "{d:?}");
        }
    }

    #[test]
    fn producers_print_kafka_columns_with_none_for_unset_fields() {
        let mut p = open(7, 1234).producer;
        p.latest_coordinator_epoch = None;
        p.current_transaction_start_offset = None;
        let lines = Producers(vec![p]).table();
        assert_eq!(
            lines[0],
            "ProducerId  ProducerEpoch  LatestCoordinatorEpoch  LastSequence  LastTimestamp  CurrentTransactionStartOffset"
        );
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells, ["7", "1", "None", "0", "1234", "None"]);
    }
}
