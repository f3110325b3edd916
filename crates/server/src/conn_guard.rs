//! Bounds on the connections a listener holds, so a crowd of idle or silent
//! clients cannot pin a node's file descriptors and tasks.
//!
//! - **How many.** At most `max` connections are open at once per listener;
//!   one more is closed as soon as it is accepted (the client sees the
//!   connection reset and retries or moves to another node), counted in
//!   `raftq_connections_refused_total`. The kernel's accept queue is not
//!   left to fill, so a refused client learns at once.
//! - **Silent ones.** A connection that sends no byte within
//!   [`FIRST_BYTE_TIMEOUT`] of being accepted is closed: an HTTP/2 client
//!   sends its preface at once, so this only catches sockets opened and left
//!   silent.
//! - Half-open ones (the peer vanished) are found by the server's HTTP/2
//!   keep-alive pings (see `serve`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;

/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection holding one of its listener's slots until it is dropped.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    _slot: OwnedSemaphorePermit,
    /// Until the first byte arrives: when the connection is closed.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Some(deadline) = self.first_byte.as_mut() {
            match &read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => self.first_byte = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    metrics::counter!("raftq_connections_timed_out_total").increment(1);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no request within {FIRST_BYTE_TIMEOUT:?} of connecting"),
                    )));
                }
                _ => {}
            }
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// `incoming` with at most `max` connections open at once (the rest are
/// dropped as they arrive) and each one closed if silent for
/// [`FIRST_BYTE_TIMEOUT`]. `listener` names it in the metrics.
pub fn guard<S, IO, E>(
    incoming: S,
    max: usize,
    listener: &'static str,
) -> impl Stream<Item = Result<Guarded<IO>, E>> + Send + 'static
where
    S: Stream<Item = Result<IO, E>> + Send + 'static,
    IO: Send + 'static,
    E: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    incoming.filter_map(move |accepted| {
        let io = match accepted {
            Ok(io) => io,
            Err(e) => return Some(Err(e)),
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(Ok(Guarded {
                io,
                _slot: slot,
                first_byte: Some(Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT))),
            })),
            Err(_) => {
                metrics::counter!("raftq_connections_refused_total", "listener" => listener).increment(1);
                tracing::warn!(listener, max, "connection limit reached; closing a new connection");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn accepted(n: usize) -> impl Stream<Item = Result<tokio::io::DuplexStream, io::Error>> {
        let (mut ends, mut far) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b) = tokio::io::duplex(64);
            ends.push(Ok(a));
            far.push(b);
        }
        // Keep the far ends open for the test's life.
        std::mem::forget(far);
        tokio_stream::iter(ends)
    }

    #[tokio::test]
    async fn past_the_limit_new_connections_are_dropped_until_one_closes() {
        let guarded: Vec<_> = guard(accepted(5), 3, "test").collect().await;
        assert_eq!(guarded.len(), 3, "two of five were over the limit");
        // A closed connection frees its slot.
        let slots = Arc::new(Semaphore::new(1));
        let first = Guarded { io: (), _slot: slots.clone().try_acquire_owned().unwrap(), first_byte: None };
        assert!(slots.clone().try_acquire_owned().is_err());
        drop(first);
        assert!(slots.try_acquire_owned().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_and_a_talking_one_is_not() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut silent: Vec<_> = guard(tokio_stream::iter([Ok::<_, io::Error>(near)]), 1, "test").collect().await;
        let mut silent = silent.remove(0).unwrap();
        let mut buf = [0u8; 8];
        let err = silent.read(&mut buf).await.expect_err("closed for silence");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (near, mut talker) = tokio::io::duplex(64);
        let mut talking: Vec<_> = guard(tokio_stream::iter([Ok::<_, io::Error>(near)]), 1, "test").collect().await;
        let mut talking = talking.remove(0).unwrap();
        talker.write_all(b"PRI").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 3);
        // Quiet afterwards is fine: only the first byte has a deadline.
        let later = tokio::time::timeout(FIRST_BYTE_TIMEOUT * 3, talking.read(&mut buf)).await;
        assert!(later.is_err(), "still open, waiting for data");
        far.write_all(b"x").await.unwrap();
    }
}
