//! `RecordsService.ProduceRecords`: each partition's records become one
//! uncompressed Kafka v2 batch, then the request is a `Produce`.

use std::time::{SystemTime, UNIX_EPOCH};

use strom_log::Header;
use strom_log::batch::{Compression, RecordBatchBuilder};
use strom_proto::v1::{
    ProducePartitionData, ProduceRecordsPartition, ProduceRecordsRequest, ProduceRequest,
    ProduceResponse, ProduceTopicData,
};

use crate::replica::ReplicaManager;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One partition's records as a batch (empty bytes for no records: the
/// append path refuses that with CORRUPT_MESSAGE, naming it).
fn batch(p: &ProduceRecordsPartition, now: i64) -> bytes::Bytes {
    if p.records.is_empty() {
        return bytes::Bytes::new();
    }
    let mut b = RecordBatchBuilder::new(Compression::None);
    for r in &p.records {
        let headers: Vec<Header> = r
            .headers
            .iter()
            .map(|h| Header {
                key: h.key.clone(),
                value: h.value.clone().map(bytes::Bytes::from),
            })
            .collect();
        let ts = if r.timestamp_ms > 0 {
            r.timestamp_ms
        } else {
            now
        };
        b.append(ts, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    b.build()
}

/// Builds the batches and answers as `Produce`.
pub(super) async fn produce_records(
    rm: &ReplicaManager,
    req: ProduceRecordsRequest,
) -> ProduceResponse {
    let now = now_ms();
    let produce = ProduceRequest {
        acks: req.acks,
        timeout_ms: req.timeout_ms,
        transactional_id: String::new(),
        topics: req
            .topics
            .into_iter()
            .map(|t| ProduceTopicData {
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| ProducePartitionData {
                        partition: p.partition,
                        records: batch(p, now),
                    })
                    .collect(),
                topic: t.topic,
            })
            .collect(),
    };
    crate::grpc::produce::produce(rm, produce).await
}
