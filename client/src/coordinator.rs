//! The link to a coordinator: the broker leading the `__consumer_offsets`
//! partition of a group, or the `__transaction_state` partition of a
//! transactional id. It is found with FindCoordinator, remembered, and
//! forgotten when an answer (or its absence) says it moved, so the next
//! call finds it again. The consumer's membership and commits and the
//! transactional producer share it; their retry loops stay their own.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use strom_proto::v1 as pb;
use strom_proto::v1::ErrorCode;
use strom_proto::v1::group_service_client::GroupServiceClient;
use tonic::transport::Channel;
use tracing::debug;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::pool::ChannelPool;
use crate::retry;

/// A request with a deadline the server sees (`grpc-timeout`).
pub(crate) fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Whether the coordinator must be found again after `error`: it said it
/// is not (or no longer) the coordinator, or it did not answer. A
/// coordinator still loading its partition (COORDINATOR_LOAD_IN_PROGRESS)
/// is the right one: the call is retried there, as in Kafka.
pub(crate) fn moved(error: &Error) -> bool {
    match error {
        Error::Transport { .. } | Error::Timeout { .. } => true,
        Error::Strom(e) => matches!(
            e.code,
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NetworkException
                | ErrorCode::RequestTimedOut
        ),
        _ => false,
    }
}

/// One key's coordinator: the key, its type, and its address once found.
#[derive(Debug)]
pub(crate) struct Coordinator {
    key: String,
    key_type: pb::CoordinatorKeyType,
    address: Mutex<Option<String>>,
}

impl Coordinator {
    /// The coordinator of `key` (a group id or a transactional id), not
    /// found yet.
    pub(crate) fn new(key: impl Into<String>, key_type: pb::CoordinatorKeyType) -> Self {
        Self {
            key: key.into(),
            key_type,
            address: Mutex::new(None),
        }
    }

    /// The group id or transactional id.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.address
            .lock()
            .expect("coordinator lock is never poisoned")
    }

    /// The coordinator's address, if known.
    pub(crate) fn known(&self) -> Option<String> {
        self.slot().clone()
    }

    /// Forgets `address` unless another call already found a new one.
    fn forget(&self, address: &str) {
        let mut slot = self.slot();
        if slot.as_deref() == Some(address) {
            *slot = None;
        }
    }

    /// The coordinator's address, found with FindCoordinator (retried
    /// until the request timeout) when not known.
    pub(crate) async fn address(
        &self,
        config: &ClientConfig,
        pool: &ChannelPool,
    ) -> Result<String> {
        if let Some(address) = self.known() {
            return Ok(address);
        }
        let find = pb::FindCoordinatorRequest {
            group_id: self.key.clone(),
            key_type: self.key_type as i32,
        };
        let found = retry::call(config, pool, "find coordinator", |channel, timeout| {
            let find = find.clone();
            async move {
                GroupServiceClient::new(channel)
                    .find_coordinator(request(find, timeout))
                    .await
            }
        })
        .await?;
        debug!(key = %self.key, coordinator = %found.address, "found the coordinator");
        *self.slot() = Some(found.address.clone());
        Ok(found.address)
    }

    /// One call at the coordinator (found first when not known), bounded
    /// by `timeout`; an error saying it moved makes the next call find it
    /// again (and drops a broken connection).
    pub(crate) async fn call_once<T, F, Fut>(
        &self,
        config: &ClientConfig,
        pool: &ChannelPool,
        timeout: Duration,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let address = self.address(config, pool).await?;
        let channel = pool.channel(&address)?;
        let error = match tokio::time::timeout(timeout, f(channel, timeout)).await {
            Ok(Ok(answer)) => return Ok(answer.into_inner()),
            Ok(Err(status)) => Error::from_status(&address, status),
            Err(_) => Error::Timeout {
                what: format!(
                    "the coordinator of {:?} at {address} did not answer within {} ms",
                    self.key,
                    timeout.as_millis()
                ),
            },
        };
        if moved(&error) {
            self.forget(&address);
            if matches!(error, Error::Transport { .. }) {
                pool.evict(&address);
            }
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_errors_make_the_client_find_it_again() {
        let table = [
            (ErrorCode::NotCoordinator, true),
            (ErrorCode::CoordinatorNotAvailable, true),
            (ErrorCode::NetworkException, true),
            (ErrorCode::RequestTimedOut, true),
            // Loading: the right coordinator, asked again.
            (ErrorCode::CoordinatorLoadInProgress, false),
            (ErrorCode::FencedMemberEpoch, false),
            (ErrorCode::InvalidSessionTimeout, false),
            (ErrorCode::ConcurrentTransactions, false),
        ];
        for (code, want) in table {
            assert_eq!(moved(&Error::strom(code, "x")), want, "{code:?}");
        }
        assert!(moved(&Error::Timeout { what: "x".into() }));
        assert!(!moved(&Error::InvalidArgument("x".into())));
    }

    #[test]
    fn a_coordinator_found_again_elsewhere_is_not_forgotten() {
        let c = Coordinator::new("g", pb::CoordinatorKeyType::Group);
        *c.slot() = Some("b:1".into());
        // A late failure at the old address leaves the new one.
        c.forget("a:1");
        assert_eq!(c.known().as_deref(), Some("b:1"));
        c.forget("b:1");
        assert_eq!(c.known(), None);
    }
}
