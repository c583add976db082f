//! [`Socket`]: smol-hyper's adapter around async-net's socket, telling hyper that it takes
//! vectored writes.
//!
//! hyper asks its IO whether vectored writes are efficient and, if not, copies every body chunk
//! into its own buffer before writing it. smol-hyper's `FuturesIo` answers no (the default),
//! although async-net's `TcpStream` writes a list of buffers with one `writev`. Answering yes
//! lets hyper hand the chunks to the socket as they are: on the benchmarks' 2.3 MB exposition
//! that copy was 2.3 MB per scrape.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_net::TcpStream;
use smol_hyper::rt::FuturesIo;

/// async-net's socket for hyper, with vectored writes.
#[derive(Debug)]
pub(crate) struct Socket(FuturesIo<TcpStream>);

impl Socket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self(FuturesIo::new(stream))
    }
}

impl hyper::rt::Read for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}
