//! Data-plane traffic counters for `/metrics`: bytes and records produced
//! (appended by this broker as leader), fetched by consumers and fetched by
//! follower replicas. Records are counted from the v2 batch headers
//! (`recordCount`), never by decoding. Also the produce duration
//! histogram: a `ProduceStream` message is not a gRPC call, so the per-RPC
//! histogram of the servers' tower layer cannot see it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use strom_proto::v1::{ErrorCode, FetchResponse, ProduceRequest, ProduceResponse};

/// Offset of `batchLength` (i32) in a v2 batch header.
const LENGTH_OFFSET: usize = 8;
/// Offset of `recordCount` (i32) in a v2 batch header.
const RECORD_COUNT_OFFSET: usize = 57;
/// Size of a v2 batch header.
const HEADER_SIZE: usize = 61;
/// Bytes before the part `batchLength` counts.
const LOG_OVERHEAD: usize = 12;

/// Records in concatenated v2 batches, from their headers. Stops at the
/// first truncated or malformed header (the log rejects such input anyway).
pub fn count_records(mut buf: &[u8]) -> u64 {
    let mut total = 0u64;
    while buf.len() >= HEADER_SIZE {
        let be_i32 =
            |at: usize| i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let (Ok(length), Ok(count)) = (
            usize::try_from(be_i32(LENGTH_OFFSET)),
            u64::try_from(be_i32(RECORD_COUNT_OFFSET)),
        ) else {
            break;
        };
        total += count;
        let size = length.saturating_add(LOG_OVERHEAD);
        if size < HEADER_SIZE || size > buf.len() {
            break;
        }
        buf = &buf[size..];
    }
    total
}

/// Monotonic counters, shared by the service and the metrics endpoint.
#[derive(Debug)]
pub struct Traffic {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
    replication_bytes_out: AtomicU64,
    replication_records_out: AtomicU64,
    produce_requests: AtomicU64,
    fetch_requests: AtomicU64,
    replication_fetch_requests: AtomicU64,
    /// Seconds from a produce request's arrival to its answer.
    produce_duration: Histogram,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            bytes_in: AtomicU64::default(),
            records_in: AtomicU64::default(),
            bytes_out: AtomicU64::default(),
            records_out: AtomicU64::default(),
            replication_bytes_out: AtomicU64::default(),
            replication_records_out: AtomicU64::default(),
            produce_requests: AtomicU64::default(),
            fetch_requests: AtomicU64::default(),
            replication_fetch_requests: AtomicU64::default(),
            // 0.25 ms doubling to ~8 s: acks=all answers on a healthy
            // cluster take a few milliseconds, a timed-out one seconds.
            produce_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
        }
    }
}

/// A reading of [`Traffic`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounts {
    /// Record batch bytes appended by produce requests.
    pub bytes_in: u64,
    /// Records appended by produce requests.
    pub records_in: u64,
    /// Record batch bytes returned to consumers.
    pub bytes_out: u64,
    /// Records returned to consumers.
    pub records_out: u64,
    /// Record batch bytes returned to follower replicas.
    pub replication_bytes_out: u64,
    /// Records returned to follower replicas.
    pub replication_records_out: u64,
    /// Produce requests answered, unary or on a `ProduceStream`.
    pub produce_requests: u64,
    /// Consumer fetch requests answered, unary or on a `FetchStream`.
    pub fetch_requests: u64,
    /// Follower fetch requests answered, unary or on a `FetchStream`.
    pub replication_fetch_requests: u64,
}

/// What one produce request carries per partition: (topic, partition, bytes, records).
pub(crate) type ProduceSizes = Vec<(String, i32, u64, u64)>;

impl Traffic {
    /// The counters now.
    pub fn counts(&self) -> TrafficCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TrafficCounts {
            bytes_in: get(&self.bytes_in),
            records_in: get(&self.records_in),
            bytes_out: get(&self.bytes_out),
            records_out: get(&self.records_out),
            replication_bytes_out: get(&self.replication_bytes_out),
            replication_records_out: get(&self.replication_records_out),
            produce_requests: get(&self.produce_requests),
            fetch_requests: get(&self.fetch_requests),
            replication_fetch_requests: get(&self.replication_fetch_requests),
        }
    }

    /// Sizes of a produce request, taken before it is handled.
    pub(crate) fn produce_sizes(req: &ProduceRequest) -> ProduceSizes {
        req.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.topic.clone(),
                        p.partition,
                        p.records.len() as u64,
                        count_records(&p.records),
                    )
                })
            })
            .collect()
    }

    /// The produce duration histogram (shared: a clone observes the same
    /// data), for the metrics endpoint.
    pub fn produce_duration(&self) -> Histogram {
        self.produce_duration.clone()
    }

    /// Counts an answered produce request, received at `arrived`, and the
    /// partitions of it that were appended.
    pub(crate) fn record_produce(
        &self,
        sizes: &ProduceSizes,
        resp: &ProduceResponse,
        arrived: Instant,
    ) {
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
        self.produce_duration
            .observe(arrived.elapsed().as_secs_f64());
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != ErrorCode::None as i32 {
                    continue;
                }
                if let Some((_, _, bytes, records)) = sizes
                    .iter()
                    .find(|(topic, partition, _, _)| *topic == t.topic && *partition == p.partition)
                {
                    self.bytes_in.fetch_add(*bytes, Ordering::Relaxed);
                    self.records_in.fetch_add(*records, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts the records a fetch returns; `replica_id` ≥ 0 is a follower.
    pub(crate) fn record_fetch(&self, replica_id: i32, resp: &FetchResponse) {
        let (requests, bytes, records) = if replica_id >= 0 {
            (
                &self.replication_fetch_requests,
                &self.replication_bytes_out,
                &self.replication_records_out,
            )
        } else {
            (&self.fetch_requests, &self.bytes_out, &self.records_out)
        };
        requests.fetch_add(1, Ordering::Relaxed);
        for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
            if !p.records.is_empty() {
                bytes.fetch_add(p.records.len() as u64, Ordering::Relaxed);
                records.fetch_add(count_records(&p.records), Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let length = i32::try_from(size - LOG_OVERHEAD).expect("small");
        b[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        b[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn records_are_counted_from_batch_headers() {
        let mut two = batch(3, 80);
        two.extend(batch(5, 100));
        let mut garbage_after = batch(2, 64);
        garbage_after.extend([0u8; HEADER_SIZE]);
        let cases: [(&str, Vec<u8>, u64); 5] = [
            ("empty", vec![], 0),
            ("one batch", batch(7, 70), 7),
            ("two batches", two.clone(), 8),
            ("truncated second header", two[..100].to_vec(), 3),
            ("zero length stops the walk", garbage_after, 2),
        ];
        for (name, buf, want) in cases {
            assert_eq!(count_records(&buf), want, "{name}");
        }
    }
}
