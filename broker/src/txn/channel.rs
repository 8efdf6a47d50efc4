//! The marker channel, as Kafka's `TransactionMarkerChannelManager`: the
//! markers of every transaction waiting for the same partition leader
//! travel in one WriteTxnMarkers request.
//!
//! Each leader has a queue. A transaction's marker sender
//! ([`TxnCoordinator::complete_markers`](super::TxnCoordinator)) puts one
//! [`TxnMarker`] per leader into the leader's queue and waits for its
//! answer. While no request to that leader is in flight, a drain task
//! takes everything queued (at most [`MAX_MARKERS_PER_REQUEST`]), sends it
//! as one request and hands each marker its own result. Markers queued
//! meanwhile go together in the next request, so under load a leader gets
//! one request per round trip whatever the number of transactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use strom_proto::StromError;
use strom_proto::v1::{
    ErrorCode, TxnMarker, TxnMarkerResult, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// At most this many markers in one request (bounds its size: a marker
/// with a few partitions is some tens of bytes).
pub const MAX_MARKERS_PER_REQUEST: usize = 1000;

/// Sends one WriteTxnMarkers request to a leader (this broker or a peer).
pub trait MarkerSend: Send + Sync + std::fmt::Debug {
    /// WriteTxnMarkers at `leader`.
    fn send(
        &self,
        leader: i32,
        req: WriteTxnMarkersRequest,
    ) -> BoxFuture<'_, Result<WriteTxnMarkersResponse, StromError>>;
}

/// What a queued marker is answered with.
pub type MarkerReply = Result<TxnMarkerResult, StromError>;

type Waiting = (TxnMarker, oneshot::Sender<MarkerReply>);

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// A drain task runs for this leader.
    draining: bool,
}

/// The per-leader queues; see the module docs.
#[derive(Debug)]
pub struct MarkerChannel {
    sender: Arc<dyn MarkerSend>,
    queues: Mutex<HashMap<i32, Queue>>,
    tasks: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl MarkerChannel {
    /// Queues sent through `sender`; drain tasks run on `runtime`, owned
    /// by `tasks`.
    pub fn new(
        sender: Arc<dyn MarkerSend>,
        tasks: TaskTracker,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(MarkerChannel {
            sender,
            queues: Mutex::new(HashMap::new()),
            tasks,
            runtime,
        })
    }

    /// Queues `marker` for `leader`; the receiver gets its result (an
    /// error if the request failed as a whole, or the channel closed).
    pub fn submit(
        self: &Arc<Self>,
        leader: i32,
        marker: TxnMarker,
    ) -> oneshot::Receiver<MarkerReply> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let q = queues.entry(leader).or_default();
            q.waiting.push((marker, tx));
            !std::mem::replace(&mut q.draining, true)
        };
        if start {
            let this = self.clone();
            self.tasks
                .spawn_on(async move { this.drain(leader).await }, &self.runtime);
        }
        rx
    }

    /// Sends `leader`'s queue, request after request, until it is empty.
    async fn drain(self: Arc<Self>, leader: i32) {
        loop {
            let batch = {
                let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let Some(q) = queues.get_mut(&leader) else {
                    return;
                };
                let batch = take_batch(&mut q.waiting, MAX_MARKERS_PER_REQUEST);
                if batch.is_empty() {
                    queues.remove(&leader);
                    return;
                }
                batch
            };
            let (markers, replies): (Vec<TxnMarker>, Vec<_>) = batch.into_iter().unzip();
            let req = WriteTxnMarkersRequest { markers };
            let expected: Vec<i64> = req.markers.iter().map(|m| m.producer_id).collect();
            let answers = match self.sender.send(leader, req).await {
                Ok(resp) => split(&expected, resp),
                Err(e) => expected.iter().map(|_| Err(e.clone())).collect(),
            };
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The waiter may have given up (shutdown): nothing to do.
                let _ = reply.send(answer);
            }
        }
    }
}

/// The oldest `max` waiting markers, in the order they were queued.
fn take_batch(waiting: &mut Vec<Waiting>, max: usize) -> Vec<Waiting> {
    let n = waiting.len().min(max);
    waiting.drain(..n).collect()
}

/// Each marker's result from a response that answers the markers in the
/// request's order (`expected`: their producer ids). A response that
/// answers fewer markers, or another producer at a place, leaves those
/// markers with an error (retried by their senders).
fn split(expected: &[i64], resp: WriteTxnMarkersResponse) -> Vec<MarkerReply> {
    let mut answers = resp.markers.into_iter();
    expected
        .iter()
        .map(|producer_id| match answers.next() {
            Some(r) if r.producer_id == *producer_id => Ok(r),
            Some(r) => Err(StromError::new(
                ErrorCode::UnknownServerError,
                format!(
                    "WriteTxnMarkers answered producer {} where producer {producer_id} was asked",
                    r.producer_id
                ),
            )),
            None => Err(StromError::new(
                ErrorCode::UnknownServerError,
                format!("WriteTxnMarkers left the marker of producer {producer_id} unanswered"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use strom_proto::v1::{TxnMarkerPartitionResult, TxnTopic};
    use tokio::sync::Semaphore;

    use super::*;

    fn marker(producer_id: i64) -> TxnMarker {
        TxnMarker {
            producer_id,
            producer_epoch: 1,
            committed: true,
            coordinator_epoch: 0,
            topics: vec![TxnTopic {
                topic: "t".into(),
                partitions: vec![0],
            }],
        }
    }

    fn answered(m: &TxnMarker) -> TxnMarkerResult {
        TxnMarkerResult {
            producer_id: m.producer_id,
            partitions: vec![TxnMarkerPartitionResult {
                topic: "t".into(),
                partition: 0,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
            }],
        }
    }

    /// Records every request; each waits for a permit of `gate`.
    #[derive(Debug)]
    struct Gated {
        gate: Semaphore,
        requests: StdMutex<Vec<(i32, Vec<i64>)>>,
    }

    impl MarkerSend for Gated {
        fn send(
            &self,
            leader: i32,
            req: WriteTxnMarkersRequest,
        ) -> BoxFuture<'_, Result<WriteTxnMarkersResponse, StromError>> {
            Box::pin(async move {
                let ids = req.markers.iter().map(|m| m.producer_id).collect();
                self.requests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((leader, ids));
                self.gate.acquire().await.expect("gate open").forget();
                Ok(WriteTxnMarkersResponse {
                    markers: req.markers.iter().map(answered).collect(),
                })
            })
        }
    }

    async fn requests_seen(g: &Gated, n: usize) -> Vec<(i32, Vec<i64>)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = g.requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {seen:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn markers_queued_behind_a_request_share_the_next_one_per_leader() {
        let gated = Arc::new(Gated {
            gate: Semaphore::new(0),
            requests: StdMutex::new(Vec::new()),
        });
        let tasks = TaskTracker::new();
        let channel = MarkerChannel::new(
            gated.clone(),
            tasks.clone(),
            tokio::runtime::Handle::current(),
        );
        // The first marker for leader 2 goes out alone and blocks.
        let first = channel.submit(2, marker(10));
        assert_eq!(requests_seen(&gated, 1).await, vec![(2, vec![10])]);
        // Three more transactions for leader 2 wait behind it; leader 3
        // has its own queue and request.
        let queued: Vec<_> = [11, 12, 13]
            .into_iter()
            .map(|id| (id, channel.submit(2, marker(id))))
            .collect();
        let other = channel.submit(3, marker(20));
        let seen = requests_seen(&gated, 2).await;
        assert_eq!(seen[1], (3, vec![20]));
        gated.gate.add_permits(100);
        assert_eq!(first.await.expect("answered").expect("ok").producer_id, 10);
        for (id, rx) in queued {
            assert_eq!(rx.await.expect("answered").expect("ok").producer_id, id);
        }
        assert_eq!(other.await.expect("answered").expect("ok").producer_id, 20);
        let mut seen = requests_seen(&gated, 3).await;
        seen.sort();
        assert_eq!(
            seen,
            vec![(2, vec![10]), (2, vec![11, 12, 13]), (3, vec![20])],
            "one request per leader for everything queued"
        );
        // The queues are gone once drained; a new marker starts a new one.
        let again = channel.submit(2, marker(14));
        assert_eq!(again.await.expect("answered").expect("ok").producer_id, 14);
        tasks.close();
        tasks.wait().await;
    }

    #[test]
    fn a_batch_takes_the_oldest_markers_up_to_the_bound() {
        let mut waiting: Vec<Waiting> = (0..5)
            .map(|id| (marker(id), oneshot::channel().0))
            .collect();
        let ids = |b: &[Waiting]| b.iter().map(|(m, _)| m.producer_id).collect::<Vec<_>>();
        assert_eq!(ids(&take_batch(&mut waiting, 3)), vec![0, 1, 2]);
        assert_eq!(ids(&take_batch(&mut waiting, 3)), vec![3, 4]);
        assert!(take_batch(&mut waiting, 3).is_empty());
    }

    #[test]
    fn each_marker_gets_the_answer_at_its_place_or_an_error() {
        let resp = |ids: &[i64]| WriteTxnMarkersResponse {
            markers: ids.iter().map(|id| answered(&marker(*id))).collect(),
        };
        let ok = |r: &MarkerReply| r.as_ref().map(|r| r.producer_id).ok();
        /// (producers asked, producers answered, what each marker gets)
        type Case = (&'static [i64], &'static [i64], &'static [Option<i64>]);
        let table: [Case; 4] = [
            (&[1, 2], &[1, 2], &[Some(1), Some(2)]),
            (&[1, 2], &[1], &[Some(1), None]),
            (&[1, 2], &[2, 1], &[None, None]),
            (&[1], &[1, 2], &[Some(1)]),
        ];
        for (asked, answered, want) in table {
            let got: Vec<Option<i64>> = split(asked, resp(answered)).iter().map(ok).collect();
            assert_eq!(got, want, "asked {asked:?}, answered {answered:?}");
        }
    }
}
