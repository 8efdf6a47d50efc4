//! `BrokerService.Produce` and `ProduceStream`: convert, then call the
//! replica manager's one write path
//! ([`ReplicaManager::append`](crate::replica::ReplicaManager::append)),
//! which holds every rule (validation, min ISR, the acks=all wait).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

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
use crate::replica::{
    AppendOrigin, AppendRequest, Appended, Appending, PartitionAppend, PartitionResult,
    ReplicaManager,
};

/// Handles one produce request.
pub(crate) async fn produce(rm: &ReplicaManager, req: ProduceRequest) -> ProduceResponse {
    append_request(rm, req).await.answer(rm).await
}

/// A produce request whose partitions are appended (or refused), before
/// the acks=all wait.
pub(crate) struct AppendedRequest {
    /// Topic names in request order, with each one's partition count.
    topics: Vec<(String, usize)>,
    appending: Appending,
}

/// Converts `req` and appends it through the replica manager.
pub(crate) async fn append_request(rm: &ReplicaManager, req: ProduceRequest) -> AppendedRequest {
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut partitions = Vec::new();
    for topic in req.topics {
        topics.push((topic.topic.clone(), topic.partitions.len()));
        for p in topic.partitions {
            partitions.push(PartitionAppend {
                topic: topic.topic.clone(),
                partition: p.partition,
                records: p.records,
            });
        }
    }
    let appending = rm
        .append(AppendRequest {
            acks: req.acks,
            timeout_ms: req.timeout_ms,
            transactional_id: (!req.transactional_id.is_empty()).then_some(req.transactional_id),
            origin: AppendOrigin::Client,
            partitions,
        })
        .await;
    AppendedRequest { topics, appending }
}

impl AppendedRequest {
    /// The answer: at once for acks 0 and 1, after the ISR has the records
    /// (or the leadership ends, or the request times out) for acks=all.
    pub(crate) async fn answer(self, rm: &ReplicaManager) -> ProduceResponse {
        let mut results = self.appending.wait().await.into_iter();
        let topics = self
            .topics
            .into_iter()
            .map(|(topic, count)| ProduceTopicResponse {
                partitions: results
                    .by_ref()
                    .take(count)
                    .map(|r| partition_response(rm, r))
                    .collect(),
                topic,
            })
            .collect();
        ProduceResponse {
            topics,
            throttle_time_ms: 0,
        }
    }
}

fn partition_response(
    rm: &ReplicaManager,
    r: PartitionResult<Appended>,
) -> ProducePartitionResponse {
    match r.result {
        Ok(a) => ProducePartitionResponse {
            partition: r.partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            base_offset: a.base_offset,
            log_append_time_ms: a.log_append_time.unwrap_or(-1),
            log_start_offset: a.log_start_offset,
            current_leader: None,
        },
        Err(e) => ProducePartitionResponse {
            partition: r.partition,
            error_code: e.code as i32,
            current_leader: leader_hint_for(rm, &r.topic, r.partition, e.code),
            error_message: e.message,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
        },
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
