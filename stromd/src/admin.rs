//! The HTTP admin endpoint (`--admin-listen`): `/healthz`, `/readyz` and
//! `/metrics` in the Prometheus text format (rendered by `metrics.rs`), all
//! answered from the node's [`NodeView`].

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::view::NodeView;

/// Whether the node should receive traffic, and why not.
fn ready(node: &NodeView) -> Result<(), String> {
    if let Some(broker) = &node.broker {
        let s = broker.status.borrow().clone();
        if s.shutting_down {
            return Err("broker is shutting down".into());
        }
        if let Some(reason) = broker.log_dirs.reason() {
            return Err(format!(
                "log directory {} is offline ({reason}): restart the broker once the disk is fixed",
                broker.log_dirs.dir().display()
            ));
        }
        if s.fenced || !s.caught_up {
            return Err("broker is not yet registered, unfenced and caught up".into());
        }
    }
    if let Some(ctl) = &node.controller
        && ctl.leader().is_none()
    {
        return Err("controller quorum has no leader".into());
    }
    Ok(())
}

async fn respond(node: Arc<NodeView>, method: String, path: String) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method.as_str(), path.as_str()) {
        ("GET", "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        ("GET", "/readyz") => match ready(&node) {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        ("GET", "/metrics") => {
            // Reads the log directories: off the async workers.
            match tokio::task::spawn_blocking(move || crate::metrics::render(&node)).await {
                Ok(text) => (
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("metrics failed: {e}\n"),
                ),
            }
        }
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

/// Serves the admin endpoint until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    node: NodeView,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let node = Arc::new(node);
    // Connections are owned: on shutdown they end and are awaited.
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept");
                    continue;
                }
            },
            _ = shutdown.cancelled() => {
                connections.close();
                connections.wait().await;
                return Ok(());
            }
        };
        let node = node.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let node = node.clone();
                let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
                async move { Ok::<_, Infallible>(respond(node, method, path).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                r = connection.as_mut() => r,
                _ = shutdown.cancelled() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "admin connection");
            }
        });
    }
}
