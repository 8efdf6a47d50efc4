//! One client connection.
//!
//! Requests are read as they come (pipelining) and started in arrival
//! order — a Produce is appended before the next request is read — while
//! their waits (acks=all, a fetch's max wait, a controller call) run side
//! by side. Answers are written in request order, as Kafka clients
//! require. At most `max_in_flight` requests are unanswered: beyond that
//! nothing more is read until the oldest is answered, so TCP holds the
//! client back.
//!
//! Bad input closes the connection without an answer, as Kafka does: a
//! frame size that is negative or above `socket.request.max.bytes`, a
//! header that does not decode, an unknown API key, a version not served,
//! a body that does not decode or bytes after it (see [`crate::request`]).
//! A connection that sends nothing and has nothing unanswered for
//! `connections.max.idle.ms` is closed. None of this affects other
//! connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::frame::{self, FrameError};
use crate::handlers::{Broker, api_versions};
use crate::listener::ListenerConfig;
use crate::request::{self, Decoded, RequestError};
use crate::response::{self, EncodeError, Response};

/// Why a connection closed.
#[derive(Debug, thiserror::Error)]
pub enum Closed {
    /// The client closed it, or the listener stopped.
    #[error("closed")]
    Normally,
    /// Nothing sent or unanswered for `connections.max.idle.ms`.
    #[error("idle for {0:?}")]
    Idle(std::time::Duration),
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request could not be decoded or is not served.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An answer could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// An answer on its way: framed bytes, or nothing (acks=0).
type Answering = Pin<Box<dyn Future<Output = Result<Option<Bytes>, EncodeError>> + Send>>;

/// Serves one connection until it closes; says why it did.
pub async fn serve<S>(
    stream: S,
    broker: Arc<Broker>,
    config: ListenerConfig,
    cancel: CancellationToken,
) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match run(stream, broker, config, cancel).await {
        Ok(()) => Closed::Normally,
        Err(e) => e,
    }
}

async fn run<S>(
    stream: S,
    broker: Arc<Broker>,
    config: ListenerConfig,
    cancel: CancellationToken,
) -> Result<(), Closed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut answering: FuturesOrdered<Answering> = FuturesOrdered::new();
    let mut reading = true;
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        if !reading && answering.is_empty() {
            return Ok(());
        }
        let may_read = reading && answering.len() < config.max_in_flight;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            Some(answer) = answering.next(), if !answering.is_empty() => {
                if let Some(bytes) = answer? {
                    writer.write_all(&bytes).await?;
                }
                idle.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout);
            }
            frame = read_frame(&mut reader, &mut buf, config.max_request_bytes), if may_read => {
                let Some(frame) = frame? else {
                    reading = false;
                    continue;
                };
                idle.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout);
                answering.push_back(start(&broker, frame).await?);
            }
            _ = &mut idle, if answering.is_empty() => return Err(Closed::Idle(config.idle_timeout)),
        }
    }
}

/// Decodes `frame` and starts it.
async fn start(broker: &Arc<Broker>, frame: Bytes) -> Result<Answering, RequestError> {
    match request::decode(frame)? {
        Decoded::UnsupportedApiVersions { correlation_id } => {
            let answer = Response::ApiVersions(api_versions::unsupported());
            let framed = response::encode(&answer, 0, correlation_id).map(Some);
            Ok(Box::pin(std::future::ready(framed)))
        }
        Decoded::Request(req) => {
            let correlation_id = req.header.correlation_id;
            let version = req.version();
            tracing::trace!(api = ?req.api_key, version, correlation_id, "kafka request");
            let pending = broker.start(*req).await;
            Ok(Box::pin(async move {
                match pending.await {
                    Some(answer) => response::encode(&answer, version, correlation_id).map(Some),
                    None => Ok(None),
                }
            }))
        }
    }
}

/// The next frame, `None` at the end of the stream. Cancel-safe: what was
/// read stays in `buf`.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, Closed> {
    loop {
        if let Some(frame) = frame::next_frame(buf, max)? {
            return Ok(Some(frame));
        }
        if reader.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(Closed::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("stream ended inside a frame ({} bytes buffered)", buf.len()),
            )));
        }
    }
}
