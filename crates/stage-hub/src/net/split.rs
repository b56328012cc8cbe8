//! The two halves of a split [`TcpStream`](super::TcpStream): one greenlet
//! reads while another writes.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use super::stream::Socket;

/// The reading half of a split [`TcpStream`](super::TcpStream)
/// ([`into_split`](super::TcpStream::into_split)): `Read` (wrap it in a
/// `BufReader` for `BufRead`), waiting in the hub. Not `Send`.
pub struct ReadHalf {
    pub(super) socket: Rc<Socket>,
    pub(super) read_timeout: Option<Duration>,
}

/// The writing half of a split [`TcpStream`](super::TcpStream): `Write`,
/// waiting in the hub while the socket's buffer is full. Not `Send`.
pub struct WriteHalf {
    pub(super) socket: Rc<Socket>,
    pub(super) write_timeout: Option<Duration>,
}

impl ReadHalf {
    /// How long a read may wait before failing with `TimedOut` (`None`:
    /// forever). Zero is refused, as std does.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        super::stream::check_timeout(timeout)?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io.peer_addr()
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf, self.read_timeout)
    }
}

impl WriteHalf {
    /// How long a write may wait before failing with `TimedOut`.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        super::stream::check_timeout(timeout)?;
        self.write_timeout = timeout;
        Ok(())
    }

    /// Tell the peer "no more from me" (shut the write side down); replies
    /// still arrive on the read half.
    pub fn shutdown(&self) -> io::Result<()> {
        self.socket.io.shutdown(Shutdown::Write)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io.peer_addr()
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf, self.write_timeout)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_vectored(bufs, self.write_timeout)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf")
            .field("peer", &self.socket.io.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf")
            .field("peer", &self.socket.io.peer_addr().ok())
            .finish_non_exhaustive()
    }
}
