//! `BrokerService.Produce`: leader appends, then acks=all waits for the ISR.
//!
//! Every partition of the request is validated and appended on its own (a
//! bad batch fails only its partition, and writes nothing there). With
//! acks=all the ISR must hold `min.insync.replicas` members before anything
//! is written (NOT_ENOUGH_REPLICAS), and the answer waits — on partition
//! notifications, not by polling — until the high watermark passes the
//! batches, the leadership ends (NOT_LEADER_OR_FOLLOWER) or the request's
//! timeout expires (REQUEST_TIMED_OUT).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use strom_proto::StromError;
use strom_proto::v1::{
    ErrorCode, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceStreamRequest,
    ProduceStreamResponse, ProduceTopicResponse,
};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use super::leader_hint_for;
use super::traffic::Traffic;
use crate::replica::partition::Wake;
use crate::replica::{PartError, ReplicaManager};

/// A partition's answer before the acks=all wait.
struct Pending {
    topic: usize,
    response: ProducePartitionResponse,
    /// `(offset after the last record, leader epoch)` to wait for.
    wait: Option<(
        i64,
        i32,
        std::sync::Arc<crate::replica::partition::Partition>,
    )>,
}

fn error_response(partition: i32, e: &PartError) -> ProducePartitionResponse {
    ProducePartitionResponse {
        partition,
        error_code: e.code as i32,
        error_message: e.message.clone(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        current_leader: None,
    }
}

/// Handles one produce request.
pub(crate) async fn produce(rm: &ReplicaManager, req: ProduceRequest) -> ProduceResponse {
    append_request(rm, req).await.answer(rm).await
}

/// A produce request whose partitions are appended (or refused), before
/// the acks=all wait.
pub(crate) struct AppendedRequest {
    topics: Vec<ProduceTopicResponse>,
    pending: Vec<Pending>,
    deadline: tokio::time::Instant,
}

/// Validates and appends every partition of `req`, then wakes the fetches
/// waiting on them (once, after the last append).
pub(crate) async fn append_request(rm: &ReplicaManager, req: ProduceRequest) -> AppendedRequest {
    let acks = req.acks;
    let request_error = if !matches!(acks, -1..=1) {
        Some(PartError::new(
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1 (all), 0 or 1, got {acks}"),
        ))
    } else if req.timeout_ms < 0 {
        Some(PartError::new(
            ErrorCode::InvalidRequest,
            format!("timeout_ms must not be negative, got {}", req.timeout_ms),
        ))
    } else if !req.transactional_id.is_empty() {
        Some(PartError::new(
            ErrorCode::UnsupportedVersion,
            "transactional produce is not supported yet",
        ))
    } else {
        None
    };
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));

    let mut topics = Vec::with_capacity(req.topics.len());
    let mut pending = Vec::new();
    // Dropped after every partition is appended: fetches wake once.
    let mut wakes = Vec::new();
    for (ti, topic) in req.topics.into_iter().enumerate() {
        topics.push(ProduceTopicResponse {
            topic: topic.topic.clone(),
            partitions: Vec::with_capacity(topic.partitions.len()),
        });
        for p in topic.partitions {
            let result = match &request_error {
                Some(e) => Err(e.clone()),
                None => append(rm, &topic.topic, p.partition, p.records, acks).await,
            };
            pending.push(match result {
                Ok((response, wait, wake)) => {
                    wakes.push(wake);
                    Pending {
                        topic: ti,
                        wait,
                        response,
                    }
                }
                Err(e) => {
                    let mut response = error_response(p.partition, &e);
                    response.current_leader =
                        leader_hint_for(rm, &topic.topic, p.partition, e.code);
                    Pending {
                        topic: ti,
                        response,
                        wait: None,
                    }
                }
            });
        }
    }
    drop(wakes);
    AppendedRequest {
        topics,
        pending,
        deadline,
    }
}

impl AppendedRequest {
    /// The answer: at once for acks 0 and 1, after the ISR has the records
    /// (or the leadership ends, or the request times out) for acks=all.
    pub(crate) async fn answer(self, rm: &ReplicaManager) -> ProduceResponse {
        let Self {
            mut topics,
            pending,
            deadline,
        } = self;
        let waits = pending.into_iter().map(|mut p| async move {
            if let Some((required, epoch, part)) = p.wait.take()
                && let Err(e) = part.wait_for_isr(required, epoch, deadline).await
            {
                let partition = p.response.partition;
                // The records are in the leader's log but not acknowledged.
                p.response = error_response(partition, &e);
                p.response.current_leader = leader_hint_for(rm, &part.topic, partition, e.code);
            }
            p
        });
        for p in futures::future::join_all(waits).await {
            topics[p.topic].partitions.push(p.response);
        }
        ProduceResponse {
            topics,
            throttle_time_ms: 0,
        }
    }
}

/// Most unanswered requests on one `ProduceStream`. With that many
/// waiting, the stream reads no further message until one is answered, and
/// HTTP/2 flow control holds the client back.
const MAX_UNANSWERED: usize = 1024;

/// A request's answer in the making.
type Answering = Pin<Box<dyn Future<Output = ProduceStreamResponse> + Send>>;

/// One `ProduceStream`'s state.
struct StreamSession {
    rm: Arc<ReplicaManager>,
    traffic: Arc<Traffic>,
    /// `None` once the client has sent its last request.
    inbound: Option<Streaming<ProduceStreamRequest>>,
    answering: FuturesUnordered<Answering>,
    unanswered: HashSet<u64>,
    /// Cancelled when the server shuts down: no further request is read,
    /// the waiting ones are answered, and the stream ends.
    closing: CancellationToken,
}

/// What the session does next.
enum Step {
    Answer(ProduceStreamResponse),
    Request(Result<Option<ProduceStreamRequest>, Status>),
}

async fn next_message(
    inbound: &mut Option<Streaming<ProduceStreamRequest>>,
) -> Result<Option<ProduceStreamRequest>, Status> {
    match inbound {
        Some(inbound) => inbound.message().await,
        None => std::future::pending().await,
    }
}

/// `BrokerService.ProduceStream`: appends each request as it arrives, in
/// arrival order, and answers each (tagged with its correlation id) when
/// it completes. A message without a request, or reusing the id of an
/// unanswered one, ends the stream with INVALID_REQUEST; records appended
/// for requests still unanswered then stay unacknowledged, as when a
/// connection drops. The stream ends once the client has half-closed it
/// and every request is answered; if the client goes away, the waits are
/// dropped with it. When the server shuts down (`closing`), the stream
/// reads no further request, answers the waiting ones and ends.
pub(crate) fn produce_stream(
    rm: Arc<ReplicaManager>,
    traffic: Arc<Traffic>,
    inbound: Streaming<ProduceStreamRequest>,
    closing: CancellationToken,
) -> impl Stream<Item = Result<ProduceStreamResponse, Status>> + Send + 'static {
    let session = StreamSession {
        rm,
        traffic,
        inbound: Some(inbound),
        answering: FuturesUnordered::new(),
        unanswered: HashSet::new(),
        closing,
    };
    futures::stream::unfold(Some(session), |session| async move {
        let mut s = session?;
        loop {
            if s.closing.is_cancelled() {
                s.inbound = None;
            }
            if s.inbound.is_none() && s.answering.is_empty() {
                return None;
            }
            let reading = s.inbound.is_some() && s.answering.len() < MAX_UNANSWERED;
            // Answers first: they free the client's in-flight slots.
            let step = tokio::select! {
                biased;
                Some(answer) = s.answering.next(), if !s.answering.is_empty() => Step::Answer(answer),
                message = next_message(&mut s.inbound), if reading => Step::Request(message),
                _ = s.closing.cancelled(), if s.inbound.is_some() => continue,
                else => return None,
            };
            match step {
                Step::Answer(answer) => {
                    s.unanswered.remove(&answer.correlation_id);
                    return Some((Ok(answer), Some(s)));
                }
                Step::Request(Ok(Some(message))) => {
                    let id = message.correlation_id;
                    let Some(request) = message.request else {
                        return Some((Err(invalid_stream_request(id, "carries no request")), None));
                    };
                    if !s.unanswered.insert(id) {
                        return Some((
                            Err(invalid_stream_request(
                                id,
                                "reuses the id of an unanswered request",
                            )),
                            None,
                        ));
                    }
                    let arrived = Instant::now();
                    let sizes = Traffic::produce_sizes(&request);
                    // Appended here, before the next message is read, so
                    // requests reach the log in the order they arrived.
                    let appended = append_request(&s.rm, request).await;
                    let rm = s.rm.clone();
                    let traffic = s.traffic.clone();
                    s.answering.push(Box::pin(async move {
                        let response = appended.answer(&rm).await;
                        traffic.record_produce(&sizes, &response, arrived);
                        ProduceStreamResponse {
                            correlation_id: id,
                            response: Some(response),
                        }
                    }));
                }
                Step::Request(Ok(None)) => s.inbound = None,
                Step::Request(Err(status)) => return Some((Err(status), None)),
            }
        }
    })
}

fn invalid_stream_request(id: u64, what: &str) -> Status {
    StromError::new(
        ErrorCode::InvalidRequest,
        format!("produce stream message {id} {what}"),
    )
    .into()
}

type Appended = (
    ProducePartitionResponse,
    Option<(
        i64,
        i32,
        std::sync::Arc<crate::replica::partition::Partition>,
    )>,
    Wake,
);

async fn append(
    rm: &ReplicaManager,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i32,
) -> Result<Appended, PartError> {
    if records.is_empty() {
        return Err(PartError::new(
            ErrorCode::CorruptMessage,
            "the request holds no record batch",
        ));
    }
    let part = rm.partition(topic, partition)?;
    let (info, epoch, wake) = part.append_as_leader(records, acks).await?;
    let response = ProducePartitionResponse {
        partition,
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        base_offset: info.first_offset,
        log_append_time_ms: info.log_append_time.unwrap_or(-1),
        log_start_offset: part.reader().log_start_offset(),
        current_leader: None,
    };
    let wait = (acks == -1).then(|| (info.last_offset + 1, epoch, part));
    Ok((response, wait, wake))
}
