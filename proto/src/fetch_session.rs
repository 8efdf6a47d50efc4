//! [`FetchSession`]: rounds of one `FetchRequest` and its `FetchResponse`
//! with one broker on a long-lived `BrokerService.FetchStream`, the way a
//! follower replica (or a consumer) fetches from a leader over and over.
//!
//! A unary `Fetch` per round costs a whole gRPC call: request and response
//! headers, a new HTTP/2 stream, a task and the service stack on the server.
//! At low latency that is most of a round's CPU, while a message on an open
//! stream costs one DATA frame each way.
//!
//! The session opens its stream on first use and keeps it while rounds
//! succeed. Any failure, a timeout, or a round abandoned half-way (its
//! future dropped, say because the caller's partition set changed) ends
//! the stream: the next response on it would answer the abandoned request,
//! so the next round opens a new one. A broker that does not serve
//! `FetchStream` (UNIMPLEMENTED: an older version during a rolling upgrade)
//! is fetched from with unary calls for the rest of the session.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::v1::broker_service_client::BrokerServiceClient;
use crate::v1::{FetchRequest, FetchResponse};

/// An open `FetchStream`.
#[derive(Debug)]
struct Open {
    requests: mpsc::Sender<FetchRequest>,
    responses: Streaming<FetchResponse>,
    /// A request went out whose response was not read: the round was
    /// abandoned and the stream is out of step.
    pending: bool,
}

/// Fetch rounds with one broker; see the module docs.
#[derive(Debug)]
pub struct FetchSession {
    client: BrokerServiceClient<Channel>,
    stream: Option<Open>,
    unary: bool,
}

impl FetchSession {
    /// A session over `client`'s channel; nothing is sent until the first
    /// [`fetch`](Self::fetch).
    pub fn new(client: BrokerServiceClient<Channel>) -> Self {
        Self {
            client,
            stream: None,
            unary: false,
        }
    }

    /// Whether rounds fall back to unary `Fetch` (the broker does not
    /// serve `FetchStream`).
    pub fn is_unary(&self) -> bool {
        self.unary
    }

    /// One round: sends `request` and waits up to `timeout` for its
    /// response (DEADLINE_EXCEEDED after that). An error status, whether
    /// the request's own rejection or the transport's, ends the stream, and
    /// the next round opens another.
    ///
    /// Cancel-safe: dropping the returned future abandons the stream, never
    /// a later round's answer.
    pub async fn fetch(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> Result<FetchResponse, Status> {
        let deadline = tokio::time::Instant::now() + timeout;
        let elapsed = || {
            Status::deadline_exceeded(format!("no fetch answer within {} ms", timeout.as_millis()))
        };
        let result = tokio::time::timeout_at(deadline, self.round(request, timeout))
            .await
            .unwrap_or_else(|_| Err(elapsed()));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn round(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> Result<FetchResponse, Status> {
        if self.unary {
            return self.unary_fetch(request, timeout).await;
        }
        if self.stream.as_ref().is_some_and(|s| s.pending) {
            self.stream = None;
        }
        let request = match &mut self.stream {
            Some(open) => match open.requests.try_send(request) {
                Ok(()) => {
                    open.pending = true;
                    None
                }
                // The stream's request side is gone: start another.
                Err(e) => Some(e.into_inner()),
            },
            None => Some(request),
        };
        if let Some(request) = request {
            self.stream = None;
            // Queued before the call, so the first request travels right
            // behind the stream's headers.
            let (requests, rx) = mpsc::channel(1);
            let retry = request.clone();
            requests
                .try_send(request)
                .map_err(|_| Status::internal("a new fetch stream's queue is full"))?;
            match self.client.fetch_stream(ReceiverStream::new(rx)).await {
                Ok(responses) => {
                    self.stream = Some(Open {
                        requests,
                        responses: responses.into_inner(),
                        pending: true,
                    });
                }
                Err(status) if status.code() == Code::Unimplemented => {
                    self.unary = true;
                    return self.unary_fetch(retry, timeout).await;
                }
                Err(status) => return Err(status),
            }
        }
        let Some(open) = &mut self.stream else {
            return Err(Status::internal("fetch stream missing"));
        };
        match open.responses.message().await? {
            Some(response) => {
                open.pending = false;
                Ok(response)
            }
            None => Err(Status::unavailable("the broker ended the fetch stream")),
        }
    }

    async fn unary_fetch(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> Result<FetchResponse, Status> {
        let mut request = tonic::Request::new(request);
        request.set_timeout(timeout);
        Ok(self.client.fetch(request).await?.into_inner())
    }
}
