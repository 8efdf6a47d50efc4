//! `RecordsService.ConsumeRecords`: a consumer fetch of one partition
//! through the read path, its batches decoded into messages. Control
//! batches are never returned; with READ_COMMITTED neither are the records
//! of aborted transactions ([`AbortedFilter`], the same filter the Rust
//! consumer applies). `next_offset` moves past what was left out.

use strom_log::AbortedFilter;
use strom_log::batch::BatchIter;
use strom_proto::StromError;
use strom_proto::v1::{
    ConsumeRecordsRequest, ConsumeRecordsResponse, ConsumedRecord, ErrorCode, RecordMessageHeader,
};

use crate::grpc::fetch::isolation;
use crate::replica::{FetchParams, FetchPartition, ReplicaManager};

/// Kafka's default `max.poll.records`.
const DEFAULT_MAX_RECORDS: i32 = 500;
/// Bytes read per call.
const MAX_BYTES: i32 = 4 << 20;

/// Fetches and decodes; a partition error becomes the call's error.
pub(crate) async fn consume_records(
    rm: &ReplicaManager,
    req: ConsumeRecordsRequest,
) -> Result<ConsumeRecordsResponse, StromError> {
    if req.max_records < 0 || req.max_wait_ms < 0 || req.offset < 0 {
        return Err(StromError::new(
            ErrorCode::InvalidRequest,
            format!(
                "offset ({}), max_records ({}) and max_wait_ms ({}) must not be negative",
                req.offset, req.max_records, req.max_wait_ms
            ),
        ));
    }
    let max_records = if req.max_records == 0 {
        DEFAULT_MAX_RECORDS
    } else {
        req.max_records
    };
    let params = FetchParams {
        replica_id: -1,
        max_wait_ms: req.max_wait_ms,
        min_bytes: 1,
        max_bytes: MAX_BYTES,
        isolation: isolation(req.isolation_level)?,
        partitions: vec![FetchPartition {
            topic: req.topic.clone(),
            topic_id: None,
            partition: req.partition,
            fetch_offset: req.offset,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            durable_offset: -1,
            max_bytes: MAX_BYTES,
        }],
    };
    let fetched = rm
        .fetch(params)
        .await
        .map_err(|e| StromError::new(e.code, e.message))?;
    let Some(p) = fetched.into_iter().next() else {
        return Err(StromError::new(
            ErrorCode::UnknownServerError,
            "no fetch result",
        ));
    };
    if let Some(e) = p.error {
        let mut err = StromError::new(e.code, e.message);
        if let Some(l) = rm.leader_hint(&req.topic, req.partition) {
            err.leader = Some(strom_proto::LeaderHint {
                id: l.leader_id,
                address: l.leader_address,
            });
        }
        return Err(err);
    }
    let mut records = Vec::new();
    let mut next_offset = req.offset;
    // Empty unless READ_COMMITTED: then it also drops aborted records.
    let mut filter = AbortedFilter::new(p.aborted_transactions);
    let corrupt =
        |e: strom_log::LogError| StromError::new(ErrorCode::CorruptMessage, e.to_string());
    'batches: for batch in BatchIter::new(p.records) {
        let batch = batch.map_err(corrupt)?;
        if !filter.keep(&batch).map_err(corrupt)? {
            next_offset = next_offset.max(batch.next_offset());
            continue;
        }
        let decoded = batch.records().map_err(corrupt)?;
        for r in decoded {
            if r.offset < req.offset {
                continue;
            }
            if records.len() >= usize::try_from(max_records).unwrap_or(usize::MAX) {
                break 'batches;
            }
            next_offset = r.offset + 1;
            records.push(ConsumedRecord {
                offset: r.offset,
                timestamp_ms: r.timestamp,
                key: r.key.map(|k| k.to_vec()),
                value: r.value.map(|v| v.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| RecordMessageHeader {
                        key: h.key,
                        value: h.value.map(|v| v.to_vec()),
                    })
                    .collect(),
            });
        }
        if records.len() < usize::try_from(max_records).unwrap_or(usize::MAX) {
            next_offset = next_offset.max(batch.next_offset());
        }
    }
    Ok(ConsumeRecordsResponse {
        records,
        next_offset,
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
        last_stable_offset: p.last_stable_offset,
    })
}
