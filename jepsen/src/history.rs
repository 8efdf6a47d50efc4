//! The history of a run: every client and nemesis operation as an
//! invocation followed by its completion (`ok`, `fail`: definitely did not
//! happen, `info`: indeterminate), in the order they happened, one JSON
//! object per line.
//!
//! ```text
//! {"index":7,"time_us":812345,"process":"p1","type":"invoke","f":"send","partition":2,"value":41}
//! {"index":9,"time_us":815001,"process":"p1","type":"ok","f":"send","partition":2,"value":41,"offset":17}
//! {"index":12,"time_us":901234,"process":"c0","type":"ok","f":"poll","records":[{"partition":2,"offset":17,"value":41}]}
//! ```
//!
//! `seek` and `replica` entries are single `ok` lines (nothing to wait
//! for). Record payloads carry the value in a self-checking encoding
//! ([`encode_value`]), so a corrupted record that reaches a reader shows as
//! `"value":null` instead of passing for another value.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A value a producer sends: unique within a run.
pub type Value = u64;

/// What an entry of the history is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation started.
    Invoke,
    /// It happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown whether it happened (timeout, lost connection, an error
    /// after the write may have been applied).
    Info,
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: u64,
    /// Microseconds since the run started.
    pub time_us: u64,
    /// Who did it: `p<n>` producers, `c<n>` consumers, `final` (the reader
    /// after healing), `replicas`, `nemesis`.
    pub process: String,
    /// Invocation or completion.
    #[serde(rename = "type")]
    pub ty: OpType,
    /// The operation and its arguments or results.
    #[serde(flatten)]
    pub body: Body,
}

/// A record a reader saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Polled {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The value, `None` when the payload did not decode (corrupt).
    pub value: Option<Value>,
}

/// The operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Body {
    /// A producer sends `value` to `partition`; the completion carries the
    /// acknowledged offset or the error.
    Send {
        /// Partition.
        partition: i32,
        /// The unique value.
        value: Value,
        /// Offset acknowledged (ok only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Sent exactly once on the wire (no client retries): a duplicate
        /// of it cannot be the client's doing.
        #[serde(default, skip_serializing_if = "is_false")]
        single_attempt: bool,
        /// Sent by an idempotent producer (`enable.idempotence`): the
        /// broker drops its retried batches, so a duplicate of it is not
        /// the client's doing either.
        #[serde(default, skip_serializing_if = "is_false")]
        idempotent: bool,
    },
    /// A consumer polls; the completion carries the records returned, in
    /// order.
    Poll {
        /// Records (ok only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        records: Vec<Polled>,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A consumer's position in `partition` was set to `offset` (assign or
    /// seek): the next record it polls there need not follow the previous.
    Seek {
        /// Partition.
        partition: i32,
        /// The new position.
        offset: i64,
    },
    /// A replica's log as found on disk after the run (nodes stopped),
    /// below `high_watermark`, for a replica in the final ISR.
    Replica {
        /// Node.
        node: i32,
        /// Partition.
        partition: i32,
        /// The partition's high watermark after healing.
        high_watermark: i64,
        /// Its records below the high watermark.
        records: Vec<Polled>,
    },
    /// A group member's poll (a single `ok` line, `process` `g<n>`): the
    /// records it returned, in order. Group polls stand apart from
    /// [`Body::Poll`]: a member's position jumps with every rebalance.
    GroupPoll {
        /// Records returned.
        records: Vec<Polled>,
    },
    /// A group member's assignment changed (a single `ok` line):
    /// `event` is `assigned`, `revoked` or `lost`; or one incarnation of
    /// the member began or ended (`partitions` empty): `joined` (a new
    /// consumer subscribed), `left` (`close` returned ok: it left the
    /// group), `crashed` (dropped without leaving, or `close` failed: the
    /// coordinator removes it when its session expires).
    Rebalance {
        /// `assigned`, `revoked`, `lost`, `joined`, `left` or `crashed`.
        event: String,
        /// The partitions concerned.
        partitions: Vec<i32>,
    },
    /// A group member commits `offsets` (partition, next offset to
    /// consume); ok once the coordinator acknowledged them.
    Commit {
        /// (partition, offset) pairs.
        offsets: Vec<(i32, i64)>,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// On `ok`: the commit carried the member's id and a positive
        /// member epoch (the epoch was positive before and after the call;
        /// the client's epoch, once reset to 0 by a fence, stays 0 until
        /// the next poll), so its acknowledgement proves the coordinator
        /// held the member as current at some instant of the call.
        #[serde(default, skip_serializing_if = "is_false")]
        as_member: bool,
    },
    /// The group's committed offsets read back (`OffsetFetch`); the
    /// completion carries them (`None`: nothing committed).
    Committed {
        /// (partition, committed offset) pairs (ok only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offsets: Vec<(i32, Option<i64>)>,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A topic's end offsets (high watermarks) after healing, as the final
    /// read found them (a single `ok` line); `topic` names the topic.
    Ends {
        /// The topic.
        topic: String,
        /// (partition, end offset) pairs.
        offsets: Vec<(i32, i64)>,
    },
    /// A transaction of a transactional producer (`process` `t<n>`): the
    /// invocation lists the values it will send, `ok` means
    /// `commit_transaction` was acknowledged, `fail` that the transaction
    /// was aborted (`abort_transaction` acknowledged, or nothing was sent),
    /// `info` that its outcome is unknown.
    Txn {
        /// The values the transaction writes, in send order.
        writes: Vec<TxnWrite>,
        /// Whether the producer meant to commit (it aborts otherwise).
        commit: bool,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A `read_committed` reader's poll of the transactional topic (a
    /// single `ok` line, `process` `r<n>` or `txn-final`).
    TxnPoll {
        /// Records returned.
        records: Vec<Polled>,
    },
    /// A consume-transform-produce transaction of a processor (`process`
    /// `x<n>`, `transactional.id` `jepsen-x<n>`): what it polled from the
    /// input topic (`read_committed`, as a member of the processors'
    /// group), the output record it wrote for each input, the fresh values
    /// it wrote to the input topic, and the input offsets it committed with
    /// `send_offsets_to_transaction`. The invocation is empty; `ok` means
    /// `commit_transaction` was acknowledged, `fail` that the transaction
    /// was aborted, `info` that its outcome is unknown.
    CtpTxn {
        /// Input records polled inside the transaction, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reads: Vec<Polled>,
        /// One output record per input record processed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        outputs: Vec<CtpOutput>,
        /// Fresh values written to the input topic.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        inputs: Vec<TxnWrite>,
        /// (partition, next offset) of the input committed with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offsets: Vec<(i32, i64)>,
        /// The error (fail, info).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A `read_committed` read of the processors' input (`topic` `in`) or
    /// output (`out`) topic after the run (a single `ok` line, `process`
    /// `ctp-final`).
    CtpRead {
        /// `in` or `out`.
        topic: String,
        /// Records returned.
        records: Vec<Polled>,
    },
    /// The end of the processors' final read (a single `ok` line,
    /// `ctp-final`): both topics were read to their ends with no
    /// transaction open, and the group's committed input offsets
    /// (partition, next offset; a partition without a commit is absent).
    CtpFinal {
        /// The group's committed offsets of the input topic.
        committed: Vec<(i32, i64)>,
    },
    /// A fault starts (invoke), is in place (ok), or is healed (`fault` =
    /// `heal`: everything is healed once it completes ok).
    Nemesis {
        /// Fault name, or `heal`.
        fault: String,
        /// What exactly was done (nodes, files, rules).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
}

/// One write of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnWrite {
    /// Partition.
    pub partition: i32,
    /// The unique value.
    pub value: Value,
    /// The offset the send was acknowledged at, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// An output record of a consume-transform-produce transaction: the
/// fresh `value` written to the output topic for input value `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtpOutput {
    /// The input value it was made from.
    pub from: Value,
    /// Output partition.
    pub partition: i32,
    /// The output record's unique value.
    pub value: Value,
    /// The offset the send was acknowledged at, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The name of the nemesis operation that heals every fault.
pub const HEAL: &str = "heal";

/// Length of an encoded value: 20 digits, `|`, padding.
pub const PAYLOAD_LEN: usize = 100;

/// The record payload carrying `value`: its 20 decimal digits, `|`, then
/// `.` up to [`PAYLOAD_LEN`] bytes.
pub fn encode_value(value: Value) -> Vec<u8> {
    let mut out = format!("{value:020}|").into_bytes();
    out.resize(PAYLOAD_LEN, b'.');
    out
}

/// The value in a payload built by [`encode_value`], `None` if any byte is
/// off.
pub fn decode_value(payload: &[u8]) -> Option<Value> {
    if payload.len() != PAYLOAD_LEN || payload[20] != b'|' {
        return None;
    }
    if !payload[21..].iter().all(|b| *b == b'.') || !payload[..20].iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&payload[..20]).ok()?.parse().ok()
}

/// Appends operations to a history in memory and, as JSON lines, to a file
/// (flushed line by line, so a crashed run leaves what it recorded).
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    next: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    ops: Vec<Op>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Recorder {
    /// A recorder writing to `path` (created or truncated), or only to
    /// memory when `None`.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        };
        Ok(Self {
            start: Instant::now(),
            next: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                ops: Vec::new(),
                file,
            }),
        })
    }

    /// Microseconds since the recorder was created.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Records one operation and returns it.
    pub fn record(&self, process: &str, ty: OpType, body: Body) -> Op {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Index and time are taken under the lock, so both grow along the
        // history.
        let op = Op {
            index: self.next.fetch_add(1, Ordering::Relaxed),
            time_us: self.now_us(),
            process: process.to_owned(),
            ty,
            body,
        };
        if let Some(f) = &mut inner.file {
            let line = serde_json::to_string(&op).expect("an op serializes");
            // A failing history file must not stop the run; the in-memory
            // history is what gets checked.
            let _ = writeln!(f, "{line}").and_then(|()| f.flush());
        }
        inner.ops.push(op.clone());
        op
    }

    /// A copy of the history so far.
    pub fn snapshot(&self) -> Vec<Op> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ops
            .clone()
    }

    /// Runs `f` on the history so far without copying it.
    pub fn with_ops<T>(&self, f: impl FnOnce(&[Op]) -> T) -> T {
        f(&self.inner.lock().unwrap_or_else(|e| e.into_inner()).ops)
    }
}

/// Reads a history written by a [`Recorder`].
pub fn read_history(path: &Path) -> anyhow::Result<Vec<Op>> {
    use anyhow::Context;
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut ops = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        ops.push(
            serde_json::from_str(&line)
                .with_context(|| format!("parse line {} of {}", n + 1, path.display()))?,
        );
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_encoding_and_any_flipped_bit_is_detected() {
        for v in [0, 1, 42, u64::MAX] {
            let payload = encode_value(v);
            assert_eq!(payload.len(), PAYLOAD_LEN);
            assert_eq!(decode_value(&payload), Some(v));
        }
        let payload = encode_value(123_456);
        for byte in 0..PAYLOAD_LEN {
            for bit in 0..8 {
                let mut p = payload.clone();
                p[byte] ^= 1 << bit;
                assert_ne!(
                    decode_value(&p),
                    Some(123_456),
                    "flip of bit {bit} in byte {byte}"
                );
            }
        }
        assert_eq!(decode_value(b"42"), None);
    }

    #[test]
    fn ops_round_trip_through_json_lines() {
        let ops = [
            Body::Send {
                partition: 2,
                value: 41,
                offset: Some(17),
                error: None,
                single_attempt: true,
                idempotent: false,
            },
            Body::Poll {
                records: vec![Polled {
                    partition: 2,
                    offset: 17,
                    value: None,
                }],
                error: None,
            },
            Body::Seek {
                partition: 1,
                offset: 0,
            },
            Body::Nemesis {
                fault: HEAL.into(),
                detail: String::new(),
            },
            Body::GroupPoll {
                records: vec![Polled {
                    partition: 0,
                    offset: 3,
                    value: Some(9),
                }],
            },
            Body::Rebalance {
                event: "assigned".into(),
                partitions: vec![0, 2],
            },
            Body::Commit {
                offsets: vec![(0, 4), (2, 7)],
                error: None,
                as_member: true,
            },
            Body::Committed {
                offsets: vec![(0, Some(4)), (1, None)],
                error: None,
            },
            Body::Ends {
                topic: "jepsen".into(),
                offsets: vec![(0, 10)],
            },
            Body::Txn {
                writes: vec![TxnWrite {
                    partition: 1,
                    value: 5,
                    offset: Some(2),
                }],
                commit: true,
                error: Some("timed out".into()),
            },
            Body::TxnPoll {
                records: Vec::new(),
            },
            Body::CtpTxn {
                reads: vec![Polled {
                    partition: 0,
                    offset: 3,
                    value: Some(7),
                }],
                outputs: vec![CtpOutput {
                    from: 7,
                    partition: 0,
                    value: 8,
                    offset: Some(1),
                }],
                inputs: vec![TxnWrite {
                    partition: 2,
                    value: 9,
                    offset: None,
                }],
                offsets: vec![(0, 4)],
                error: None,
            },
            Body::CtpRead {
                topic: "out".into(),
                records: Vec::new(),
            },
            Body::CtpFinal {
                committed: vec![(0, 4)],
            },
        ];
        for body in ops {
            let op = Op {
                index: 3,
                time_us: 9,
                process: "p0".into(),
                ty: OpType::Ok,
                body,
            };
            let line = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::from_str::<Op>(&line).unwrap(), op, "{line}");
        }
        let line = r#"{"index":1,"time_us":2,"process":"p1","type":"invoke","f":"send","partition":0,"value":5}"#;
        let op: Op = serde_json::from_str(line).unwrap();
        assert_eq!(op.ty, OpType::Invoke);
        assert!(matches!(
            op.body,
            Body::Send {
                value: 5,
                offset: None,
                single_attempt: false,
                ..
            }
        ));
    }
}
