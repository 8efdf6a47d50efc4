//! A client of the controller quorum for brokers: finds the active
//! controller among the voters, follows NOT_CONTROLLER hints and retries
//! transient failures until a deadline.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use strom_proto::StromError;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::controller_service_client::ControllerServiceClient;
use tonic::transport::{Channel, Endpoint};

/// Interval of HTTP/2 keep-alive pings on controller connections.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A connection whose ping is not answered within this is closed.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Talks to whichever voter leads.
#[derive(Debug)]
pub struct QuorumClient {
    voters: BTreeMap<u64, String>,
    clients: Mutex<BTreeMap<String, ControllerServiceClient<Channel>>>,
    /// Address of the last known leader.
    leader: Mutex<Option<String>>,
    /// Round-robin cursor over voters when the leader is unknown.
    cursor: Mutex<usize>,
}

impl QuorumClient {
    /// A client of the quorum `voters` (id → host:port).
    pub fn new(voters: BTreeMap<u64, String>) -> Self {
        Self {
            voters,
            clients: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
            cursor: Mutex::new(0),
        }
    }

    /// A channel to `addr`.
    pub fn client_for(&self, addr: &str) -> Result<ControllerServiceClient<Channel>, StromError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| {
                StromError::new(
                    ErrorCode::InvalidRequest,
                    format!("bad address {addr}: {e}"),
                )
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            // A paused or partitioned voter keeps the TCP connection open
            // but stops answering HTTP/2 pings: drop the connection after a
            // few seconds, so a long-lived stream (WatchMetadata) fails over
            // to another voter instead of waiting forever.
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let client = ControllerServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(strom_proto::MAX_CONTROL_MESSAGE_BYTES);
        clients.insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    fn pick(&self) -> Option<String> {
        if let Some(l) = self
            .leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(l);
        }
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let addr = self
            .voters
            .values()
            .nth(*cursor % self.voters.len().max(1))
            .cloned();
        *cursor = cursor.wrapping_add(1);
        addr
    }

    /// Any voter, rotating (for reads any voter can serve).
    pub fn any_voter(&self) -> Option<String> {
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let addr = self
            .voters
            .values()
            .nth(*cursor % self.voters.len().max(1))
            .cloned();
        *cursor = cursor.wrapping_add(1);
        addr
    }

    /// Drops the cached channel to `addr` so the next call connects afresh:
    /// a channel whose peer died can wait out a whole deadline reconnecting,
    /// while a new connection to a dead port fails at once.
    fn evict(&self, addr: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }

    /// Calls the active controller, retrying NOT_CONTROLLER and transient
    /// errors with backoff until `timeout`. Other errors return at once.
    /// One attempt gets at most a third of `timeout` (≥ 500 ms), so a dead
    /// voter cannot eat the whole deadline.
    pub async fn call<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, StromError>
    where
        F: Fn(ControllerServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let Some(addr) = self.pick() else {
                return Err(StromError::new(
                    ErrorCode::InvalidRequest,
                    "no controller voters configured",
                ));
            };
            let client = self.client_for(&addr)?;
            let attempt = (timeout / 3).max(Duration::from_millis(500));
            let attempt_deadline = deadline.min(tokio::time::Instant::now() + attempt);
            let error = match tokio::time::timeout_at(attempt_deadline, f(client)).await {
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => {
                    let e = StromError::from_status(&status);
                    if e.code == ErrorCode::NetworkException {
                        self.evict(&addr);
                    }
                    e
                }
                Err(_) => {
                    self.evict(&addr);
                    StromError::new(
                        ErrorCode::RequestTimedOut,
                        format!("controller {addr} did not answer within {attempt:?}"),
                    )
                }
            };
            if !error.is_retriable() {
                return Err(error);
            }
            let hint = error
                .leader
                .as_ref()
                .map(|l| l.address.clone())
                .filter(|a| !a.is_empty());
            *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = hint;
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}
