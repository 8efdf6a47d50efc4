//! [`SimNet`]: the in-memory peer fetch transport. A follower's round
//! travels to the leader's [`ReplicaManager`] in-process and is served by
//! the `Fetch` handler's own conversion (`grpc::fetch::fetch`), then back.
//! Each leg may be delayed (so rounds of different followers overtake each
//! other) or lost (the round fails as a broken connection would, or, more
//! rarely, hangs until the follower's timeout). A crashed or isolated
//! broker is unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use strom_proto::v1::{FetchRequest, FetchResponse};

use super::rng::{self, SharedRng};
use crate::replica::{PeerSession, PeerTransport, ReplicaManager};

/// Message faults, for the fetch transport and the controller channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that one leg of a message is lost.
    pub loss: f64,
    /// Each leg is delayed uniformly up to this.
    pub max_delay: Duration,
    /// Of the lost messages, the share that hang until the caller's
    /// timeout rather than failing at once.
    pub hang: f64,
}

impl Faults {
    /// A perfect network: no loss, no delay.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        max_delay: Duration::ZERO,
        hang: 0.0,
    };
}

/// What becomes of one leg of a message.
pub(crate) enum Leg {
    Delivered,
    Failed,
    Hung,
}

impl Faults {
    /// Draws one leg's fate and delay.
    pub(crate) fn draw(&self, rng: &SharedRng) -> (Leg, Duration) {
        rng::with(rng, |r| {
            let delay = r.delay(self.max_delay);
            let leg = if r.chance(self.loss) {
                if r.chance(self.hang) {
                    Leg::Hung
                } else {
                    Leg::Failed
                }
            } else {
                Leg::Delivered
            };
            (leg, delay)
        })
    }
}

#[derive(Debug)]
struct Inner {
    rng: SharedRng,
    brokers: Mutex<BTreeMap<i32, Arc<ReplicaManager>>>,
    isolated: Mutex<BTreeSet<i32>>,
    faults: Mutex<Faults>,
    /// Every leg, when tracing.
    log: Mutex<Option<(tokio::time::Instant, Vec<String>)>>,
}

/// The brokers' fetch network.
#[derive(Debug, Clone)]
pub struct SimNet {
    inner: Arc<Inner>,
}

impl SimNet {
    /// A network drawing its faults from `rng`.
    pub fn new(rng: SharedRng) -> Self {
        Self {
            inner: Arc::new(Inner {
                rng,
                brokers: Mutex::new(BTreeMap::new()),
                isolated: Mutex::new(BTreeSet::new()),
                faults: Mutex::new(Faults::NONE),
                log: Mutex::new(None),
            }),
        }
    }

    /// The transport broker `from` fetches over.
    pub fn peers(&self, from: i32) -> Arc<dyn PeerTransport> {
        Arc::new(SimPeers {
            from,
            net: self.clone(),
        })
    }

    /// Makes `rm` reachable as broker `id` (replacing an earlier one).
    pub fn attach(&self, id: i32, rm: Arc<ReplicaManager>) {
        self.inner
            .brokers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, rm);
    }

    /// Makes broker `id` unreachable (crashed).
    pub fn detach(&self, id: i32) {
        self.inner
            .brokers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Cuts broker `id` off from every other broker, or reconnects it.
    pub fn isolate(&self, id: i32, isolated: bool) {
        let mut set = self
            .inner
            .isolated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if isolated {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// Sets the message faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    fn faults(&self) -> Faults {
        *self.inner.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut(&self, a: i32, b: i32) -> bool {
        let isolated = self
            .inner
            .isolated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        isolated.contains(&a) || isolated.contains(&b)
    }

    fn reachable(&self, from: i32, to: i32) -> Option<Arc<ReplicaManager>> {
        if self.cut(from, to) {
            return None;
        }
        self.inner
            .brokers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&to)
            .cloned()
    }

    /// One leg from `from` to `to`: waits its delay, then fails or hangs if
    /// lost.
    /// Starts recording every message leg (for replay checks).
    pub fn record(&self) {
        *self.inner.log.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((tokio::time::Instant::now(), Vec::new()));
    }

    /// The legs recorded so far.
    pub fn recorded(&self) -> Vec<String> {
        self.inner
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }

    async fn leg(&self, from: i32, to: i32) -> Result<(), tonic::Status> {
        let (leg, delay) = self.faults().draw(&self.inner.rng);
        if let Some((start, log)) = self
            .inner
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            log.push(format!(
                "{:?} {from}->{to} {} {delay:?}",
                start.elapsed(),
                match leg {
                    Leg::Delivered => "ok",
                    Leg::Failed => "lost",
                    Leg::Hung => "hung",
                }
            ));
        }
        tokio::time::sleep(delay).await;
        match leg {
            Leg::Delivered => Ok(()),
            Leg::Failed => Err(tonic::Status::unavailable(format!(
                "simulated: message from {from} to {to} lost"
            ))),
            Leg::Hung => std::future::pending().await,
        }
    }

    async fn round(
        &self,
        from: i32,
        leader: i32,
        request: FetchRequest,
    ) -> Result<FetchResponse, tonic::Status> {
        self.leg(from, leader).await?;
        let Some(rm) = self.reachable(from, leader) else {
            return Err(tonic::Status::unavailable(format!(
                "simulated: broker {leader} unreachable from {from}"
            )));
        };
        let response = crate::grpc::fetch::fetch(&rm, request).await?;
        drop(rm);
        self.leg(leader, from).await?;
        if self.cut(from, leader) {
            // Cut off while the answer travelled.
            return Err(tonic::Status::unavailable("simulated: connection reset"));
        }
        Ok(response)
    }
}

#[derive(Debug)]
struct SimPeers {
    from: i32,
    net: SimNet,
}

impl PeerTransport for SimPeers {
    fn connect(&self, leader: i32) -> Box<dyn PeerSession> {
        Box::new(SimSession {
            from: self.from,
            leader,
            net: self.net.clone(),
        })
    }
}

#[derive(Debug)]
struct SimSession {
    from: i32,
    leader: i32,
    net: SimNet,
}

impl PeerSession for SimSession {
    fn fetch(
        &mut self,
        request: FetchRequest,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<FetchResponse, tonic::Status>> {
        Box::pin(async move {
            tokio::time::timeout(timeout, self.net.round(self.from, self.leader, request))
                .await
                .unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded(format!(
                        "simulated: no fetch answer within {} ms",
                        timeout.as_millis()
                    )))
                })
        })
    }

    fn reset(&mut self) {}
}
