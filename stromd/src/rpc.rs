//! A tower layer on both gRPC servers: a tracing span per request and the
//! request duration histogram per RPC, without touching any handler.
//!
//! Labels are bounded: only the RPCs the node serves (read from the
//! services' file descriptors) get their own `service`/`method` labels; any
//! other path counts as `unknown`. The duration is measured until the
//! response headers, which for a unary tonic RPC is the handler's whole
//! work (an error is a trailers-only response, so its `grpc-status` is in
//! the headers too). Server-streaming RPCs (WatchMetadata, reflection) only
//! count responses: their headers say nothing about their length.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prost::Message;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;

type Labels = Vec<(String, String)>;

/// Buckets from 0.5 ms doubling to ~16 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// One RPC the node serves.
#[derive(Debug, Clone)]
struct Rpc {
    service: String,
    method: String,
    streaming: bool,
}

/// The per-RPC metrics, shared by both servers and the metrics endpoint.
#[derive(Debug)]
pub(crate) struct RpcMetrics {
    known: HashMap<String, Rpc>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    responses: Family<Labels, Counter>,
}

impl RpcMetrics {
    /// Metrics for the RPCs described by the encoded descriptor sets.
    pub(crate) fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut known = HashMap::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                tracing::warn!("unreadable file descriptor set; its RPCs count as unknown");
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let full = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    for m in &service.method {
                        known.insert(
                            format!("/{full}/{}", m.name()),
                            Rpc {
                                service: full.clone(),
                                method: m.name().to_owned(),
                                streaming: m.server_streaming(),
                            },
                        );
                    }
                }
            }
        }
        Self {
            known,
            duration: Family::new_with_constructor(duration_histogram),
            responses: Family::default(),
        }
    }

    fn rpc(&self, path: &str) -> Rpc {
        self.known.get(path).cloned().unwrap_or_else(|| Rpc {
            service: "unknown".into(),
            method: "unknown".into(),
            streaming: false,
        })
    }

    fn record(&self, rpc: &Rpc, code: &str, elapsed: f64) {
        let labels = vec![
            ("service".to_owned(), rpc.service.clone()),
            ("method".to_owned(), rpc.method.clone()),
        ];
        if !rpc.streaming {
            self.duration.get_or_create(&labels).observe(elapsed);
        }
        let mut labels = labels;
        labels.push(("code".to_owned(), code.to_owned()));
        self.responses.get_or_create(&labels).inc();
    }

    /// Adds the families to a scrape's registry.
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "rpc_duration_seconds",
            "gRPC request duration until the response headers, per unary RPC",
            self.duration.clone(),
        );
        r.register(
            "rpc_responses",
            "gRPC responses per RPC and status code",
            self.responses.clone(),
        );
    }
}

/// The gRPC status name in a response's headers (OK when absent: a unary
/// success carries its status in the trailers).
fn status_name<B>(resp: &http::Response<B>) -> &'static str {
    let code = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    match tonic::Code::from(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The layer: wraps each server's routes.
#[derive(Debug, Clone)]
pub(crate) struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    pub(crate) fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service the layer produces.
#[derive(Debug, Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, R> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready; call the one that is.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let rpc = metrics.rpc(req.uri().path());
        let span = tracing::info_span!("rpc", service = %rpc.service, method = %rpc.method);
        Box::pin(
            async move {
                let start = Instant::now();
                let result = inner.call(req).await;
                let elapsed = start.elapsed().as_secs_f64();
                let code = match &result {
                    Ok(resp) => status_name(resp),
                    Err(_) => "UNAVAILABLE",
                };
                metrics.record(&rpc, code, elapsed);
                tracing::debug!(code, elapsed_ms = elapsed * 1000.0, "rpc answered");
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_rpcs_come_from_the_descriptors() {
        let m = RpcMetrics::new(&[strom_proto::FILE_DESCRIPTOR_SET]);
        let produce = m.rpc("/strom.v1.BrokerService/Produce");
        assert_eq!(
            (
                produce.service.as_str(),
                produce.method.as_str(),
                produce.streaming
            ),
            ("strom.v1.BrokerService", "Produce", false)
        );
        assert!(m.rpc("/strom.v1.ControllerService/WatchMetadata").streaming);
        assert_eq!(m.rpc("/x.Evil/Anything").service, "unknown");
    }
}
