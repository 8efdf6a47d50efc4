//! The HTTP admin endpoint (`--admin-listen`): `/healthz`, `/readyz` and
//! `/metrics` in the Prometheus text format.
//!
//! Metrics are computed at scrape time from the node's own state (the Raft
//! metrics, the replayed image, the broker's standing), so they cost nothing
//! between scrapes. Cluster-wide gauges (offline partitions, brokers by
//! state) are reported by the active controller only, so that summing them
//! over every node gives the cluster's value, as Kafka's controller metrics.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strom_broker::{BrokerStatus, MetadataCache};
use strom_controller::Controller;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the admin endpoint reads.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) controller: Option<Controller>,
    pub(crate) broker: Option<(MetadataCache, watch::Receiver<BrokerStatus>)>,
    pub(crate) node_id: i32,
}

type Labels = Vec<(String, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

impl AdminState {
    /// Whether the node should receive traffic, and why not.
    fn ready(&self) -> Result<(), String> {
        if let Some((_, status)) = &self.broker {
            let s = status.borrow().clone();
            if s.shutting_down {
                return Err("broker is shutting down".into());
            }
            if s.fenced || !s.caught_up {
                return Err("broker is not yet registered, unfenced and caught up".into());
            }
        }
        if let Some(ctl) = &self.controller
            && ctl.leader().is_none()
        {
            return Err("controller quorum has no leader".into());
        }
        Ok(())
    }

    /// The Prometheus exposition of the node's metrics.
    fn metrics(&self) -> String {
        let mut r = Registry::with_prefix("strom");
        if let Some(ctl) = &self.controller {
            let m = ctl.raft().metrics().borrow().clone();
            let active = ctl.is_leader();
            gauge(
                &mut r,
                "controller_active",
                "1 on the active controller (the Raft leader), else 0",
                i64::from(active),
            );
            gauge(
                &mut r,
                "raft_term",
                "Current Raft term",
                i64::try_from(m.current_term).unwrap_or(i64::MAX),
            );
            gauge(
                &mut r,
                "raft_last_log_index",
                "Index of the last entry in the local Raft log",
                m.last_log_index
                    .map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX)),
            );
            gauge(
                &mut r,
                "raft_applied_index",
                "Index of the last entry applied to the metadata image",
                m.last_applied
                    .map_or(-1, |l| i64::try_from(l.index).unwrap_or(i64::MAX)),
            );
            if let Some(replication) = &m.replication {
                let lag: Family<Labels, Gauge> = Family::default();
                let last = m.last_log_index.unwrap_or(0);
                for (voter, matched) in replication {
                    let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
                    lag.get_or_create(&vec![("voter".into(), voter.to_string())])
                        .set(i64::try_from(behind).unwrap_or(i64::MAX));
                }
                r.register(
                    "raft_voter_lag",
                    "Entries each voter is behind the leader (active controller only)",
                    lag,
                );
            }
            if active {
                let (offline, brokers) = ctl.with_image(|image| {
                    let offline = image
                        .all_partitions()
                        .filter(|(_, _, p)| p.leader < 0)
                        .count();
                    let mut states = [0i64; 3];
                    for b in image.brokers() {
                        let i = if b.fenced {
                            1
                        } else if b.in_controlled_shutdown {
                            2
                        } else {
                            0
                        };
                        states[i] += 1;
                    }
                    (offline, states)
                });
                gauge(
                    &mut r,
                    "partitions_offline",
                    "Partitions without a leader (active controller only)",
                    i64::try_from(offline).unwrap_or(i64::MAX),
                );
                let fam: Family<Labels, Gauge> = Family::default();
                for (state, n) in ["unfenced", "fenced", "controlled_shutdown"]
                    .iter()
                    .zip(brokers)
                {
                    fam.get_or_create(&vec![("state".into(), (*state).into())])
                        .set(n);
                }
                r.register(
                    "brokers",
                    "Registered brokers by state (active controller only)",
                    fam,
                );
            }
        }
        if let Some((cache, status)) = &self.broker {
            let s = status.borrow().clone();
            gauge(
                &mut r,
                "broker_fenced",
                "1 while this broker is fenced",
                i64::from(s.fenced),
            );
            gauge(&mut r, "broker_epoch", "Current broker epoch", s.epoch);
            gauge(
                &mut r,
                "metadata_offset",
                "Offset of the last metadata batch this broker replayed",
                cache.offset(),
            );
            let node = self.node_id;
            let (leaders, under, topics, partitions) = cache.with_image(|image| {
                let mut leaders = 0i64;
                let mut under = 0i64;
                for (_, _, p) in image.all_partitions().filter(|(_, _, p)| p.leader == node) {
                    leaders += 1;
                    if p.isr.len() < p.replicas.len() {
                        under += 1;
                    }
                }
                (leaders, under, image.topic_count(), image.partition_count())
            });
            gauge(
                &mut r,
                "partitions_led",
                "Partitions this broker leads",
                leaders,
            );
            gauge(
                &mut r,
                "partitions_under_replicated",
                "Partitions led by this broker whose ISR is smaller than the replica set",
                under,
            );
            gauge(
                &mut r,
                "topics",
                "Topics in this broker's metadata image",
                i64::try_from(topics).unwrap_or(i64::MAX),
            );
            gauge(
                &mut r,
                "partitions",
                "Partitions in this broker's metadata image",
                i64::try_from(partitions).unwrap_or(i64::MAX),
            );
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &r) {
            tracing::warn!(error = %e, "encode metrics");
        }
        out
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match (req.method().as_str(), req.uri().path()) {
            ("GET", "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            ("GET", "/readyz") => match self.ready() {
                Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
                Err(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {why}\n"),
                ),
            },
            ("GET", "/metrics") => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: try /healthz, /readyz or /metrics\n".to_owned(),
            ),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        resp
    }
}

/// Serves the admin endpoint until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(state);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = state.respond(&req);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "admin connection");
            }
        });
    }
}
