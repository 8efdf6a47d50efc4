//! [`ProduceSessions`]: the producer's requests to each broker as messages
//! on one long-lived `BrokerService.ProduceStream`, tagged with correlation
//! ids and answered in the order they complete, the way Kafka pipelines
//! produce requests on one connection.
//!
//! A unary `Produce` costs a whole gRPC call (request and response headers,
//! a new HTTP/2 stream, a task and the service stack on the broker); a
//! message on an open stream costs one DATA frame each way.
//!
//! A broker's session opens its stream on first use and keeps it while it
//! works. The stream ends when the broker ends it or the transport fails,
//! or when a request's answer does not come in time (the broker is taken
//! to hang, as a unary call's deadline would take its connection); every
//! request still unanswered on it then fails with that error, the sender
//! retries it as after a lost connection, and the next request opens a new
//! stream. A broker that does not serve `ProduceStream` (UNIMPLEMENTED: an
//! older version during a rolling upgrade) gets unary `Produce` calls until
//! one fails on the transport or times out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::v1::broker_service_client::BrokerServiceClient;
use strom_proto::v1::{ErrorCode, ProduceRequest, ProduceResponse, ProduceStreamRequest};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::debug;

use crate::cluster::Leader;
use crate::error::Error;
use crate::pool::{ChannelPool, MAX_MESSAGE_SIZE};

type Answer = Result<ProduceResponse, Status>;

/// Every broker's produce session.
#[derive(Debug, Default)]
pub(super) struct ProduceSessions {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Brokers that answered `ProduceStream` with UNIMPLEMENTED.
    unary: Mutex<HashSet<String>>,
}

/// One broker's stream: requests go out through `requests`, the task
/// hands each answer to the request's waiter.
#[derive(Debug)]
struct Session {
    requests: mpsc::UnboundedSender<ProduceStreamRequest>,
    state: Arc<Mutex<State>>,
    next_id: AtomicU64,
    /// An answer arrived, so the broker serves `ProduceStream`.
    confirmed: Arc<AtomicBool>,
    task: AbortHandle,
}

#[derive(Debug, Default)]
struct State {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// Why the stream ended; no request is taken after that.
    ended: Option<Status>,
}

/// Fails every waiting request with `status`, once.
fn end(state: &Mutex<State>, status: Status) {
    let mut state = state.lock().expect("session lock is never poisoned");
    if state.ended.is_some() {
        return;
    }
    for (_, waiter) in state.waiting.drain() {
        let _ = waiter.send(Err(status.clone()));
    }
    state.ended = Some(status);
}

impl Session {
    fn open(client: BrokerServiceClient<Channel>) -> Self {
        let (requests, outgoing) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State::default()));
        let confirmed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(
            client,
            UnboundedReceiverStream::new(outgoing),
            state.clone(),
            confirmed.clone(),
        ));
        Self {
            requests,
            state,
            next_id: AtomicU64::new(0),
            confirmed,
            task: task.abort_handle(),
        }
    }

    fn is_ended(&self) -> bool {
        self.state
            .lock()
            .expect("session lock is never poisoned")
            .ended
            .is_some()
    }

    /// Queues `request`, or hands it back when the stream has ended.
    fn submit(&self, request: ProduceRequest) -> Result<oneshot::Receiver<Answer>, ProduceRequest> {
        let correlation_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().expect("session lock is never poisoned");
            if state.ended.is_some() {
                return Err(request);
            }
            state.waiting.insert(correlation_id, tx);
        }
        let message = ProduceStreamRequest {
            correlation_id,
            request: Some(request),
        };
        match self.requests.send(message) {
            Ok(()) => Ok(rx),
            // The task is gone (it ends the state on its way out).
            Err(mpsc::error::SendError(message)) => {
                self.state
                    .lock()
                    .expect("session lock is never poisoned")
                    .waiting
                    .remove(&correlation_id);
                Err(message.request.unwrap_or_default())
            }
        }
    }

    fn close(&self, status: Status) {
        end(&self.state, status);
        self.task.abort();
    }
}

/// Opens the stream and delivers its answers until it ends.
async fn run(
    mut client: BrokerServiceClient<Channel>,
    outgoing: UnboundedReceiverStream<ProduceStreamRequest>,
    state: Arc<Mutex<State>>,
    confirmed: Arc<AtomicBool>,
) {
    let status = match client.produce_stream(outgoing).await {
        Ok(answers) => {
            let mut answers = answers.into_inner();
            loop {
                match answers.message().await {
                    Ok(Some(answer)) => {
                        confirmed.store(true, Ordering::Relaxed);
                        let waiter = state
                            .lock()
                            .expect("session lock is never poisoned")
                            .waiting
                            .remove(&answer.correlation_id);
                        let response = answer
                            .response
                            .ok_or_else(|| Status::internal("a produce answer without a response"));
                        match waiter {
                            Some(waiter) => {
                                let _ = waiter.send(response);
                            }
                            None => debug!(
                                id = answer.correlation_id,
                                "produce answer for a request no longer awaited"
                            ),
                        }
                    }
                    Ok(None) => break Status::unavailable("the broker ended the produce stream"),
                    Err(status) => break status,
                }
            }
        }
        Err(status) => status,
    };
    end(&state, status);
}

impl ProduceSessions {
    /// Sends `request` to `leader` and waits up to `wait` for its answer.
    /// When the wait runs out the broker is taken to hang: its stream is
    /// ended (failing the other requests on it, to be retried) and the
    /// next request opens a new one.
    pub(super) async fn produce(
        &self,
        pool: &ChannelPool,
        leader: &Leader,
        request: ProduceRequest,
        wait: Duration,
    ) -> Result<ProduceResponse, Error> {
        let address = leader.address.as_str();
        let timed_out = || {
            Error::strom(
                ErrorCode::RequestTimedOut,
                format!(
                    "no produce answer from broker {} ({address}) within {} ms",
                    leader.id,
                    wait.as_millis()
                ),
            )
        };
        if self.is_unary(address) {
            let result = tokio::time::timeout(wait, unary(pool, address, request, wait))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
            if result.as_ref().is_err_and(|e| {
                matches!(e, Error::Transport { .. }) || e.code() == Some(ErrorCode::RequestTimedOut)
            }) {
                // A new connection may reach an upgraded broker.
                self.unary
                    .lock()
                    .expect("session lock is never poisoned")
                    .remove(address);
            }
            return result;
        }
        let (session, answer, fallback) = self.submit(pool, address, request)?;
        let status = match tokio::time::timeout(wait, answer).await {
            Ok(Ok(Ok(response))) => return Ok(response),
            Ok(Ok(Err(status))) => status,
            Ok(Err(_)) => Status::cancelled("the produce stream was abandoned"),
            Err(_elapsed) => {
                self.drop_session(address, &session);
                session.close(Status::unavailable(format!(
                    "the producer abandoned the produce stream to {address}: a request timed out"
                )));
                return Err(timed_out());
            }
        };
        self.drop_session(address, &session);
        if status.code() == Code::Unimplemented
            && let Some(request) = fallback
        {
            debug!(
                broker = address,
                "the broker does not serve ProduceStream; using unary calls"
            );
            self.unary
                .lock()
                .expect("session lock is never poisoned")
                .insert(address.to_owned());
            return tokio::time::timeout(wait, unary(pool, address, request, wait))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
        }
        Err(Error::from_status(address, status))
    }

    /// Queues `request` on the broker's live session (a session found
    /// ended is replaced once). Returns the session, the answer to come,
    /// and a copy of the request while the broker is not known to serve
    /// the stream, to fall back to a unary call without losing it.
    #[allow(clippy::type_complexity)]
    fn submit(
        &self,
        pool: &ChannelPool,
        address: &str,
        mut request: ProduceRequest,
    ) -> Result<
        (
            Arc<Session>,
            oneshot::Receiver<Answer>,
            Option<ProduceRequest>,
        ),
        Error,
    > {
        for _ in 0..2 {
            let session = self.session(pool, address)?;
            let fallback = (!session.confirmed.load(Ordering::Relaxed)).then(|| request.clone());
            match session.submit(request) {
                Ok(answer) => return Ok((session, answer, fallback)),
                Err(back) => {
                    self.drop_session(address, &session);
                    request = back;
                }
            }
        }
        Err(Error::Transport {
            address: address.to_owned(),
            source: Status::unavailable("the produce stream ended before the request was sent"),
        })
    }

    fn is_unary(&self, address: &str) -> bool {
        self.unary
            .lock()
            .expect("session lock is never poisoned")
            .contains(address)
    }

    /// The broker's live session, opened if there is none.
    fn session(&self, pool: &ChannelPool, address: &str) -> Result<Arc<Session>, Error> {
        let mut sessions = self
            .sessions
            .lock()
            .expect("session lock is never poisoned");
        if let Some(session) = sessions.get(address)
            && !session.is_ended()
        {
            return Ok(session.clone());
        }
        let client = BrokerServiceClient::new(pool.channel(address)?)
            .max_decoding_message_size(MAX_MESSAGE_SIZE);
        let session = Arc::new(Session::open(client));
        sessions.insert(address.to_owned(), session.clone());
        Ok(session)
    }

    /// Removes `session` if it is still the broker's current one.
    fn drop_session(&self, address: &str, session: &Arc<Session>) {
        let mut sessions = self
            .sessions
            .lock()
            .expect("session lock is never poisoned");
        if sessions
            .get(address)
            .is_some_and(|current| Arc::ptr_eq(current, session))
        {
            sessions.remove(address);
        }
    }
}

async fn unary(
    pool: &ChannelPool,
    address: &str,
    request: ProduceRequest,
    timeout: Duration,
) -> Result<ProduceResponse, Error> {
    let mut client = BrokerServiceClient::new(pool.channel(address)?)
        .max_decoding_message_size(MAX_MESSAGE_SIZE);
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    match client.produce(request).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(Error::from_status(address, status)),
    }
}
