//! Which errors are worth retrying, the exponential backoff between
//! attempts, and the loop that drives a request until it succeeds, fails
//! for good, or runs out of time.

use std::future::Future;
use std::time::Duration;

use strom_proto::v1::ErrorCode;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::pool::ChannelPool;

/// Whether retrying the whole request (possibly on another node) may succeed:
/// transport errors and the transient server codes (NOT_CONTROLLER,
/// NETWORK_EXCEPTION, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, …, see
/// [`strom_proto::error::is_retriable`]). UNKNOWN_SERVER_ERROR is not
/// retried, as in Kafka: it usually means a bug, and retrying would only hide
/// it until the timeout.
pub fn is_retriable(error: &Error) -> bool {
    match error {
        Error::Transport { .. } => true,
        Error::Strom(e) => {
            e.code != ErrorCode::UnknownServerError && strom_proto::error::is_retriable(e.code)
        }
        Error::Timeout { .. }
        | Error::InvalidArgument(_)
        | Error::Config(_)
        | Error::Closed(_)
        | Error::IllegalState(_)
        | Error::FatalTransaction(_)
        | Error::AbortableTransaction(_) => false,
    }
}

/// Whether a produce or fetch for one partition may succeed when retried:
/// transport errors and the transient codes of [`is_retriable`], plus
/// UNKNOWN_TOPIC_OR_PARTITION while the client's metadata still has the
/// topic (`topic_known`: the answering broker may not have caught up with a
/// new topic or partition yet).
pub fn is_retriable_for_partition(error: &Error, topic_known: bool) -> bool {
    match error {
        Error::Strom(e) if e.code == ErrorCode::UnknownTopicOrPartition => topic_known,
        other => is_retriable(other),
    }
}

/// Whether an error means the client's view of a partition's leader may
/// be wrong, so its metadata should be refreshed before the retry (Kafka's
/// `InvalidMetadataException` family, and broken connections).
pub fn invalidates_metadata(error: &Error) -> bool {
    use ErrorCode as E;
    match error {
        Error::Transport { .. } => true,
        Error::Strom(e) => matches!(
            e.code,
            E::NotLeaderOrFollower
                | E::LeaderNotAvailable
                | E::FencedLeaderEpoch
                | E::UnknownLeaderEpoch
                | E::UnknownTopicOrPartition
                | E::UnknownTopicId
                | E::KafkaStorageError
                | E::NetworkException
                | E::BrokerNotAvailable
                | E::ReplicaNotAvailable
        ),
        _ => false,
    }
}

/// Exponential backoff: `initial`, then doubled per attempt, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` and never exceeding `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            next: initial.min(max),
            max,
        }
    }

    /// The wait before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// The wait before retry number `attempt` (1 for the first retry):
    /// `initial · 2^(attempt-1)`, capped at `max` (Kafka's `retry.backoff.ms`
    /// and `retry.backoff.max.ms`). Attempt 0 waits nothing.
    pub fn delay_for_attempt(initial: Duration, max: Duration, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        initial.saturating_mul(factor).min(max)
    }
}

/// Runs `attempt` against the cluster until it succeeds, fails with a
/// non-retriable error, or `config.request_timeout` passes. Each attempt gets
/// a channel and the time left. Transport errors rotate to the next
/// bootstrap server; NOT_CONTROLLER with a leader address retries there once.
pub(crate) async fn call<T, F, Fut>(
    config: &ClientConfig,
    pool: &ChannelPool,
    what: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(Channel, Duration) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let timeout_ms = config.request_timeout.as_millis();
    let deadline = Instant::now() + config.request_timeout;
    let mut backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
    let mut redirect: Option<String> = None;
    loop {
        let address = redirect.take().unwrap_or_else(|| pool.current());
        let remaining = deadline.saturating_duration_since(Instant::now());
        let channel = pool.channel(&address)?;
        let error = match tokio::time::timeout(remaining, attempt(channel, remaining)).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) => Error::from_status(&address, status),
            Err(_elapsed) => {
                return Err(Error::Timeout {
                    what: format!("{what} did not complete within {timeout_ms} ms"),
                });
            }
        };
        if !is_retriable(&error) {
            return Err(error);
        }
        match &error {
            Error::Transport { .. } => pool.rotate(&address),
            Error::Strom(e) if e.code == ErrorCode::NotController => {
                redirect = e
                    .leader
                    .as_ref()
                    .map(|l| l.address.clone())
                    .filter(|a| !a.is_empty());
            }
            _ => {}
        }
        let delay = backoff.next_delay();
        if Instant::now() + delay >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "{what} did not complete within {timeout_ms} ms (last error: {error})"
                ),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use strom_proto::StromError;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn delay_for_attempt_grows_exponentially_to_the_cap() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let table = [
            (0, 0),
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
            (u32::MAX, 1000),
        ];
        for (attempt, want_ms) in table {
            assert_eq!(
                Backoff::delay_for_attempt(initial, max, attempt),
                Duration::from_millis(want_ms),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn retry_classification() {
        let strom = |code| Error::strom(code, "x");
        let table = [
            (strom(ErrorCode::NotController), true),
            (strom(ErrorCode::NetworkException), true),
            (strom(ErrorCode::LeaderNotAvailable), true),
            (strom(ErrorCode::RequestTimedOut), true),
            (
                Error::Transport {
                    address: "h:1".into(),
                    source: tonic::Status::unavailable("x"),
                },
                true,
            ),
            (strom(ErrorCode::UnknownServerError), false),
            (strom(ErrorCode::TopicAlreadyExists), false),
            (strom(ErrorCode::InvalidPartitions), false),
            (strom(ErrorCode::UnknownTopicOrPartition), false),
            (Error::Timeout { what: "x".into() }, false),
            (Error::InvalidArgument("x".into()), false),
        ];
        for (error, want) in table {
            assert_eq!(is_retriable(&error), want, "{error}");
        }
    }

    #[test]
    fn partition_errors_retry_on_transient_codes_and_on_lagging_metadata() {
        let strom = |code| Error::strom(code, "x");
        let transport = Error::Transport {
            address: "h:1".into(),
            source: tonic::Status::unavailable("reset"),
        };
        // (error, topic in metadata, retriable, refresh metadata)
        let table = [
            (strom(ErrorCode::NotLeaderOrFollower), true, true, true),
            (strom(ErrorCode::FencedLeaderEpoch), true, true, true),
            (strom(ErrorCode::NotEnoughReplicas), true, true, false),
            (
                strom(ErrorCode::NotEnoughReplicasAfterAppend),
                true,
                true,
                false,
            ),
            (strom(ErrorCode::RequestTimedOut), true, true, false),
            (strom(ErrorCode::KafkaStorageError), true, true, true),
            (strom(ErrorCode::UnknownTopicOrPartition), true, true, true),
            (
                strom(ErrorCode::UnknownTopicOrPartition),
                false,
                false,
                true,
            ),
            (transport, true, true, true),
            (strom(ErrorCode::CorruptMessage), true, false, false),
            (strom(ErrorCode::InvalidRecord), true, false, false),
            (strom(ErrorCode::RecordTooLarge), true, false, false),
            (strom(ErrorCode::InvalidRequiredAcks), true, false, false),
            (strom(ErrorCode::UnknownServerError), true, false, false),
            (strom(ErrorCode::OffsetOutOfRange), true, false, false),
        ];
        for (error, known, retriable, refresh) in table {
            assert_eq!(
                is_retriable_for_partition(&error, known),
                retriable,
                "{error} (topic known: {known})"
            );
            assert_eq!(invalidates_metadata(&error), refresh, "{error}");
        }
    }

    fn test_config(timeout_ms: u64) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: vec!["a:1".into(), "b:2".into()],
            request_timeout: Duration::from_millis(timeout_ms),
            retry_backoff: Duration::from_millis(1),
            retry_backoff_max: Duration::from_millis(4),
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn retriable_errors_are_retried_until_success() {
        let config = test_config(5_000);
        let pool = ChannelPool::new(config.bootstrap_servers.clone(), config.connect_timeout);
        let attempts = AtomicUsize::new(0);
        let result = call(&config, &pool, "test", |_, _| {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            async move {
                match n {
                    0 => Err(tonic::Status::unavailable("connection refused")),
                    1 => Err(StromError::new(ErrorCode::NotController, "no leader").to_status()),
                    _ => Ok(tonic::Response::new(42)),
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 42);
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        assert_eq!(
            pool.current(),
            "b:2",
            "the transport error rotated to the next server"
        );
    }

    #[tokio::test]
    async fn non_retriable_errors_return_at_once() {
        let config = test_config(5_000);
        let pool = ChannelPool::new(config.bootstrap_servers.clone(), config.connect_timeout);
        let attempts = AtomicUsize::new(0);
        let result: Result<()> = call(&config, &pool, "test", |_, _| {
            attempts.fetch_add(1, Ordering::Relaxed);
            async { Err(StromError::new(ErrorCode::TopicAlreadyExists, "exists").to_status()) }
        })
        .await;
        assert_eq!(
            result.unwrap_err().code(),
            Some(ErrorCode::TopicAlreadyExists)
        );
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn retries_stop_at_the_request_timeout_naming_the_last_error() {
        let config = test_config(50);
        let pool = ChannelPool::new(config.bootstrap_servers.clone(), config.connect_timeout);
        let result: Result<()> = call(&config, &pool, "create topics", |_, _| async {
            Err(StromError::new(ErrorCode::NotController, "no leader elected").to_status())
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::RequestTimedOut));
        let text = error.to_string();
        assert!(
            text.starts_with("create topics did not complete within 50 ms"),
            "{text}"
        );
        assert!(text.contains("NOT_CONTROLLER: no leader elected"), "{text}");
    }

    #[tokio::test]
    async fn not_controller_with_a_leader_address_retries_there() {
        let config = test_config(5_000);
        let pool = ChannelPool::new(config.bootstrap_servers.clone(), config.connect_timeout);
        let attempts = AtomicUsize::new(0);
        let result = call(&config, &pool, "test", |_, _| {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    let e = StromError::new(ErrorCode::NotController, "x").with_leader(3, "c:3");
                    Err(e.to_status())
                } else {
                    Ok(tonic::Response::new(()))
                }
            }
        })
        .await;
        result.unwrap();
        assert!(pool.has_channel("c:3"));
    }
}
