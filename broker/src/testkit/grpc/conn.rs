//! Client connections that a crash cuts: every connection a broker's
//! server accepted fails at once when its [`CancellationToken`] is
//! cancelled, as when the process dies and the kernel resets its sockets,
//! rather than draining as a graceful shutdown would.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An accepted connection, cut when `cut` is cancelled.
#[derive(Debug)]
pub(crate) struct Cuttable {
    io: TcpStream,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Cuttable {
    /// The error of every operation once cut, or `None`.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.cut.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionReset,
                "simulated: the broker crashed",
            )
        })
    }
}

impl AsyncRead for Cuttable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.poll_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cuttable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.poll_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.poll_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.poll_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl Connected for Cuttable {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// The connections `listener` accepts (with `TCP_NODELAY`, as `stromd`
/// serves them), each cut when `cut` is cancelled.
pub(crate) fn incoming(
    listener: TcpListener,
    cut: CancellationToken,
) -> impl Stream<Item = io::Result<Cuttable>> + Send + 'static {
    futures::stream::unfold(listener, move |listener| {
        let cut = cut.clone();
        async move {
            let accepted = listener.accept().await.and_then(|(io, _)| {
                io.set_nodelay(true)?;
                Ok(Cuttable {
                    io,
                    cut: Box::pin(cut.cancelled_owned()),
                })
            });
            Some((accepted, listener))
        }
    })
}
