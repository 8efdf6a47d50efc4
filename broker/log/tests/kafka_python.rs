//! Batches built by kafka-python (`DefaultRecordBatchBuilder`), an
//! implementation of the v2 format independent of ours, one per codec:
//! snappy in the xerial framing the Java client also writes, LZ4 and zstd
//! frames, gzip. Each must validate, decode to exactly the records its
//! generator wrote, and go through a leader append unchanged.
//!
//! `tests/fixtures/kafka-python-<codec>.bin` were written by
//! `tests/fixtures/gen_kafka_python.py`; when `STROM_PYTHON` names an
//! interpreter with kafka-python (scripts/test sets it up from
//! scripts/requirements-ci.txt), the generator is also run afresh, so a new
//! kafka-python or codec library is checked too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::{batch, read_all};
use strom_log::batch::HEADER_LEN;
use strom_log::{Compression, LogConfig, PartitionLog, Record, RecordBatch};

const CODECS: [(&str, Compression); 5] = [
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];
const RECORDS: i64 = 6;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Record `i` as `record(i)` in gen_kafka_python.py writes it: (timestamp,
/// key, value, headers).
type Expected = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn expected(i: i64) -> Expected {
    let key = (i != 3).then(|| format!("key-{i}").into_bytes());
    let value = match i {
        2 => None,
        1 => Some(b"value-1 ".repeat(4500)),
        _ => Some(format!("value-{i} ").repeat(40).into_bytes()),
    };
    let mut headers: Vec<(String, Option<Vec<u8>>)> = (0..i % 3)
        .map(|j| (format!("h{j}"), Some(format!("v{i}-{j}").into_bytes())))
        .collect();
    if i == 4 {
        headers.push(("null-header".into(), None));
    }
    if i == 5 {
        headers.push(("clé".into(), Some(b"non-ascii key".to_vec())));
    }
    (BASE_TIMESTAMP + 10 * i, key, value, headers)
}

fn check_records(name: &str, records: &[Record], base_offset: i64) {
    assert_eq!(records.len() as i64, RECORDS, "{name}");
    for (i, record) in (0..).zip(records) {
        let (timestamp, key, value, headers) = expected(i);
        assert_eq!(record.offset, base_offset + i, "{name} record {i}");
        assert_eq!(record.timestamp, timestamp, "{name} record {i}");
        assert_eq!(record.key.as_deref(), key.as_deref(), "{name} record {i}");
        assert_eq!(
            record.value.as_deref(),
            value.as_deref(),
            "{name} record {i}"
        );
        let got: Vec<(String, Option<Vec<u8>>)> = record
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
            .collect();
        assert_eq!(got, headers, "{name} record {i}");
    }
}

/// Decode `bytes` (one kafka-python batch), then append it as a leader after
/// 3 records of our own and read it back.
fn check_batch(name: &str, bytes: Bytes, codec: Compression) {
    let batch = RecordBatch::from_bytes(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    batch.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(batch.compression().expect("known codec"), codec, "{name}");
    if codec == Compression::Snappy {
        assert!(
            bytes[HEADER_LEN..].starts_with(XERIAL_MAGIC),
            "{name}: kafka-python writes xerial-framed snappy"
        );
    }
    assert_eq!(i64::from(batch.record_count()), RECORDS, "{name}");
    check_records(
        name,
        &batch.records().unwrap_or_else(|e| panic!("{name}: {e}")),
        0,
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
    log.append_as_leader(batch_records_of_our_own(), 2)
        .expect("our batch");
    let info = log
        .append_as_leader(bytes.clone(), 2)
        .unwrap_or_else(|e| panic!("{name}: leader append: {e}"));
    assert_eq!((info.first_offset, info.last_offset), (3, 3 + RECORDS - 1));
    let stored = read_all(&log.reader(), 3);
    assert_eq!(stored.len(), 1, "{name}");
    assert_eq!(
        stored[0].as_bytes()[HEADER_LEN..],
        bytes[HEADER_LEN..],
        "{name}: records stored as received"
    );
    check_records(
        name,
        &stored[0]
            .records()
            .unwrap_or_else(|e| panic!("{name}: {e}")),
        3,
    );
}

fn batch_records_of_our_own() -> Bytes {
    batch(3, BASE_TIMESTAMP, 10)
}

fn check_dir(dir: &Path) {
    for (codec_name, codec) in CODECS {
        let path = dir.join(format!("kafka-python-{codec_name}.bin"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_batch(&path.display().to_string(), Bytes::from(bytes), codec);
    }
}

#[test]
fn kafka_python_batches_of_every_codec_decode_and_append_as_leader() {
    check_dir(&fixtures());
}

#[test]
fn freshly_generated_kafka_python_batches_decode_and_append_as_leader() {
    let Some(python) = std::env::var_os("STROM_PYTHON") else {
        eprintln!(
            "STROM_PYTHON is not set: not running gen_kafka_python.py (scripts/test sets it)"
        );
        return;
    };
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(&python)
        .arg(fixtures().join("gen_kafka_python.py"))
        .arg(out.path())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", Path::new(&python).display()));
    assert!(
        output.status.success(),
        "gen_kafka_python.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    check_dir(out.path());
}
