//! `strom produce`: one record per stdin line, like kafka-console-producer.
//! With `--output json`, one line per record on stdout once its fate is
//! known, in input order.
//!
//! With `--transactional-id`, the records go in transactions of
//! `--transaction-size` records (default: all of stdin), each committed,
//! or aborted with `--abort`.

use std::io::IsTerminal;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use serde::Serialize;
use strom_client::producer::parse_compression;
use strom_client::{
    Acks, ClientConfig, Compression, DeliveryFuture, Error, ErrorCode, Producer, ProducerConfig,
    ProducerRecord, Properties, RecordMetadata,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::output::{Format, Output};
use crate::{progress, topics};

#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Write every record to this partition (default: by key, murmur2 as
    /// Kafka; records without a key stick to a partition per batch).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Split each line at the first SEP into key and value (default: the
    /// whole line is the value, the key is null).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Acknowledgements: all (-1), 1 or 0.
    #[arg(long, value_parser = parse_acks)]
    acks: Option<Acks>,
    /// Batch compression.
    #[arg(long, value_name = "none|gzip|snappy|lz4|zstd", value_parser = parse_codec)]
    compression: Option<Compression>,
    /// How long a batch waits for more records (linger.ms, default 5).
    #[arg(long, value_name = "N")]
    linger_ms: Option<u64>,
    /// Uncompressed size at which a batch is sent (batch.size, default 16384).
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<usize>,
    /// Other producer settings by their Kafka name, e.g.
    /// delivery.timeout.ms=60000 or enable.idempotence=false (repeatable;
    /// also spelled --producer-property).
    #[arg(long, alias = "producer-property", value_name = "KEY=VALUE", num_args = 1..)]
    producer_props: Vec<String>,
    /// Write the records in transactions under this transactional.id
    /// (read_committed consumers see each transaction whole or not at all).
    #[arg(long, value_name = "T")]
    transactional_id: Option<String>,
    /// Records per transaction (default: all of stdin in one).
    #[arg(long, value_name = "N", requires = "transactional_id",
          value_parser = clap::value_parser!(u64).range(1..))]
    transaction_size: Option<u64>,
    /// Abort every transaction instead of committing it (for demos and
    /// tests: read_committed consumers see none of the records).
    #[arg(long, requires = "transactional_id")]
    abort: bool,
}

pub(crate) fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse()
        .map_err(|e: strom_client::ConfigError| e.to_string())
}

fn parse_codec(s: &str) -> Result<Compression, String> {
    parse_compression(s).map_err(|e| e.to_string())
}

/// A producer config: defaults, then `props`, then `apply` (explicit flags).
/// As in Kafka, a `delivery.timeout.ms` not set explicitly grows to
/// `linger.ms + request.timeout.ms` when those exceed it.
pub(crate) fn producer_config(
    client: ClientConfig,
    props: &[String],
    apply: impl FnOnce(&mut ProducerConfig),
) -> Result<ProducerConfig, Error> {
    let mut config = ProducerConfig {
        client,
        ..ProducerConfig::default()
    };
    config.set_all(props)?;
    apply(&mut config);
    let explicit = strom_client::parse_properties(props)?
        .iter()
        .any(|(key, _)| key == "delivery.timeout.ms");
    if !explicit {
        let floor = config.linger + config.client.request_timeout;
        config.delivery_timeout = config.delivery_timeout.max(floor);
    }
    config.validate()?;
    Ok(config)
}

/// A record on its way, with what the JSON line reports.
#[derive(Debug)]
struct Pending {
    line: u64,
    key: Option<String>,
    value: String,
    delivery: Result<DeliveryFuture, Error>,
}

/// `{"topic", "partition", "offset", "key", "value"}`.
#[derive(Debug, Serialize)]
struct Acked<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<&'a str>,
    value: &'a str,
}

/// `{"error", "message", "key", "value"}`.
#[derive(Debug, Serialize)]
struct Failed<'a> {
    error: &'static str,
    message: String,
    key: Option<&'a str>,
    value: &'a str,
}

/// How the records fared.
#[derive(Debug, Default)]
struct Tally {
    total: u64,
    failed: u64,
    first_failure: Option<(u64, Error)>,
}

pub(crate) async fn run(
    args: ProduceArgs,
    client: ClientConfig,
    output: &Output,
) -> Result<(), Error> {
    let config = producer_config(client.clone(), &args.producer_props, |c| {
        if let Some(acks) = args.acks {
            c.acks = acks;
        }
        if let Some(codec) = args.compression {
            c.compression = codec;
        }
        if let Some(ms) = args.linger_ms {
            c.linger = Duration::from_millis(ms);
        }
        if let Some(bytes) = args.batch_size {
            c.batch_size = bytes;
        }
        if let Some(id) = &args.transactional_id {
            c.transactional_id = Some(id.clone());
        }
    })?;
    topics::check_partition(&config.client, &args.topic, args.partition).await?;
    let transactional = config.transactional_id.is_some();
    let producer = Producer::connect(config).await?;
    if transactional {
        producer.init_transactions().await?;
    }
    // Records in the open transaction.
    let mut in_transaction = 0u64;
    let mut transaction_error = None;
    let (pending_tx, pending_rx) = mpsc::channel::<Pending>(8192);
    let show_progress = !std::io::stdin().is_terminal() && !std::io::stdout().is_terminal();
    let progress = progress::counter("records", show_progress);
    let reporter = {
        let progress = progress.clone();
        let output_format = output.format();
        tokio::spawn(report(pending_rx, output_format, progress))
    };
    let mut lines = BufReader::new(tokio::io::stdin());
    let mut buffer = Vec::new();
    let mut line = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    // Ctrl-C: an open transaction is aborted, not committed.
    let mut stopped = false;
    loop {
        buffer.clear();
        let read = tokio::select! {
            read = lines.read_until(b'\n', &mut buffer) => read,
            _ = &mut interrupted => {
                stopped = true;
                break;
            }
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(Error::strom(
                    ErrorCode::InvalidRequest,
                    format!("cannot read stdin: {e}"),
                ));
            }
        }
        line += 1;
        let text = String::from_utf8_lossy(trim_line_end(&buffer)).into_owned();
        let (key, value) = match split_line(&text, args.key_separator.as_deref()) {
            Ok(parts) => parts,
            Err(message) => {
                let error = Error::strom(
                    ErrorCode::InvalidRequest,
                    format!("{message} on line {line}"),
                );
                let pending = Pending {
                    line,
                    key: None,
                    value: text,
                    delivery: Err(error),
                };
                if pending_tx.send(pending).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let mut record = ProducerRecord::new(args.topic.clone()).value(Bytes::from(value.clone()));
        if let Some(key) = &key {
            record = record.key(Bytes::from(key.clone()));
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        if transactional
            && in_transaction == 0
            && let Err(error) = producer.begin_transaction()
        {
            transaction_error = Some(error);
            break;
        }
        let delivery = producer.send(record).await;
        let pending = Pending {
            line,
            key,
            value,
            delivery,
        };
        if pending_tx.send(pending).await.is_err() {
            break;
        }
        in_transaction += 1;
        if transactional && args.transaction_size == Some(in_transaction) {
            in_transaction = 0;
            if let Err(error) = end_transaction(&producer, args.abort).await {
                transaction_error = Some(error);
                break;
            }
        }
    }
    if transactional
        && in_transaction > 0
        && transaction_error.is_none()
        && let Err(error) = end_transaction(&producer, args.abort || stopped).await
    {
        transaction_error = Some(error);
    }
    drop(pending_tx);
    // Pending records are still delivered; Ctrl-C here gives up on them.
    tokio::select! {
        closed = producer.close() => closed?,
        _ = tokio::signal::ctrl_c() => {
            progress.finish_and_clear();
            return Err(Error::strom(
                ErrorCode::RequestTimedOut,
                "interrupted before every record was acknowledged".to_owned(),
            ));
        }
    }
    let tally = reporter.await.map_err(|e| {
        Error::strom(
            ErrorCode::UnknownServerError,
            format!("the reporter failed: {e}"),
        )
    })?;
    progress.finish_and_clear();
    if let Some(error) = transaction_error {
        return Err(error);
    }
    match tally.first_failure {
        None => Ok(()),
        Some((line, error)) => Err(Error::strom(
            error.code().unwrap_or(ErrorCode::InvalidRequest),
            format!(
                "{} of {} record(s) failed; the first, on line {line}: {}",
                tally.failed,
                tally.total,
                error.detail()
            ),
        )),
    }
}

/// Commits the open transaction (flushing its records first), or aborts it
/// after a flush with `abort`, so that its records were written and the
/// abort is what hides them. A commit refused with an abortable error is
/// aborted before the error is returned.
async fn end_transaction(producer: &Producer, abort: bool) -> Result<(), Error> {
    if abort {
        producer.flush().await?;
        return producer.abort_transaction().await;
    }
    match producer.commit_transaction().await {
        Err(error @ Error::AbortableTransaction(_)) => {
            producer.abort_transaction().await?;
            Err(error)
        }
        other => other,
    }
}

/// Awaits each record's fate in input order and, in JSON, prints it.
async fn report(
    mut pending: mpsc::Receiver<Pending>,
    format: Format,
    progress: indicatif::ProgressBar,
) -> Tally {
    let output = Output::new(format);
    let mut tally = Tally::default();
    while let Some(p) = pending.recv().await {
        tally.total += 1;
        let outcome = match p.delivery {
            Ok(delivery) => delivery.await,
            Err(error) => Err(error),
        };
        progress.inc(1);
        let line = match &outcome {
            Ok(RecordMetadata {
                topic,
                partition,
                offset,
                ..
            }) => serde_json::to_string(&Acked {
                topic,
                partition: *partition,
                offset: *offset,
                key: p.key.as_deref(),
                value: &p.value,
            }),
            Err(error) => serde_json::to_string(&Failed {
                error: error
                    .code()
                    .unwrap_or(ErrorCode::InvalidRequest)
                    .as_str_name(),
                message: error.detail(),
                key: p.key.as_deref(),
                value: &p.value,
            }),
        };
        if let Err(error) = outcome {
            tally.failed += 1;
            if tally.first_failure.is_none() {
                tally.first_failure = Some((p.line, error));
            }
        }
        if format == Format::Json {
            let line = line.expect("output values always serialize");
            progress.suspend(|| output.lines(&[line]));
        }
    }
    tally
}

/// A line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a line into key and value at the first separator; without a
/// separator the line is the value and the key is null.
fn split_line(line: &str, separator: Option<&str>) -> Result<(Option<String>, String), String> {
    match separator {
        None => Ok((None, line.to_owned())),
        Some(separator) => match line.split_once(separator) {
            Some((key, value)) => Ok((Some(key.to_owned()), value.to_owned())),
            None => Err(format!("no key separator '{separator}' found")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_key_and_value() {
        /// (line, separator, key and value or no separator found)
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<(Option<&'static str>, &'static str)>,
        );
        let table: &[Case] = &[
            ("hello", None, Some((None, "hello"))),
            ("k:v", Some(":"), Some((Some("k"), "v"))),
            ("k:v:w", Some(":"), Some((Some("k"), "v:w"))),
            (":v", Some(":"), Some((Some(""), "v"))),
            ("k\tv", Some("\t"), Some((Some("k"), "v"))),
            ("k::v", Some("::"), Some((Some("k"), "v"))),
            ("novalue", Some(":"), None),
        ];
        for (line, separator, want) in table {
            let got = split_line(line, *separator);
            match (got, want) {
                (Ok((key, value)), Some((want_key, want_value))) => {
                    assert_eq!(key.as_deref(), *want_key, "{line:?}");
                    assert_eq!(value, *want_value, "{line:?}");
                }
                (Err(_), None) => {}
                (got, _) => panic!("{line:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn line_ends_are_trimmed() {
        let table: &[(&[u8], &[u8])] = &[
            (b"a\n", b"a"),
            (b"a\r\n", b"a"),
            (b"a", b"a"),
            (b"\n", b""),
            (b"a\r", b"a"),
        ];
        for (input, want) in table {
            assert_eq!(trim_line_end(input), *want);
        }
    }

    #[test]
    fn unset_delivery_timeout_follows_the_request_timeout() {
        let client = ClientConfig {
            request_timeout: Duration::from_secs(200),
            ..ClientConfig::default()
        };
        let config = producer_config(client.clone(), &[], |_| {}).unwrap();
        assert_eq!(config.delivery_timeout, Duration::from_millis(200_005));
        let explicit = ["delivery.timeout.ms=1000".to_owned()];
        assert!(producer_config(client, &explicit, |_| {}).is_err());
    }

    #[test]
    fn flags_override_properties() {
        let props = ["acks=1".to_owned(), "linger.ms=50".to_owned()];
        let config =
            producer_config(ClientConfig::default(), &props, |c| c.acks = Acks::None).unwrap();
        assert_eq!(config.acks, Acks::None);
        assert_eq!(config.linger, Duration::from_millis(50));
    }
}
