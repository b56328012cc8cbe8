//! [`TcpListener`]: accept connections, waiting in the hub between them.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};

use mio::Interest;

use super::TcpStream;
use crate::hub::io::Registration;

/// A TCP socket server, shaped like [`std::net::TcpListener`]: `accept`
/// waits in the hub (other greenlets run) until a client connects.
pub struct TcpListener {
    io: mio::net::TcpListener,
    registration: Option<Registration>,
}

impl TcpListener {
    /// Bind to `addr` (port 0 lets the system pick one; see
    /// [`TcpListener::local_addr`]). Addresses are taken literally: a host
    /// name here is resolved on the spot, as binding is done once at start.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            // mio's bind sets SO_REUSEADDR and a backlog of 1024, so a burst
            // of clients waits in the kernel instead of being refused.
            match mio::net::TcpListener::bind(addr) {
                Ok(io) => return Self::register(io),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address to bind to")))
    }

    /// Wrap a bound std listener so its `accept` waits in the hub.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Self::register(mio::net::TcpListener::from_std(listener))
    }

    fn register(mut io: mio::net::TcpListener) -> io::Result<TcpListener> {
        let registration = Registration::new(&mut io, Interest::READABLE)?;
        Ok(TcpListener {
            io,
            registration: Some(registration),
        })
    }

    /// Wait for the next connection. Errors such as running out of file
    /// descriptors come back to the caller, which decides how to back off.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.io.accept() {
                Ok((stream, addr)) => return Ok((TcpStream::register(stream)?, addr)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => match &self.registration {
                    Some(r) => r.wait(Interest::READABLE, None)?,
                    None => return Err(io::Error::other("the listener was deregistered")),
                },
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Accepting without waiting: `Ok(None)` when nobody is queued.
    pub fn try_accept(&self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        match self.io.accept() {
            Ok((stream, addr)) => Ok(Some((TcpStream::register(stream)?, addr))),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An endless iterator of accepted connections, as std's `incoming`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Take the socket's pending error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.take_error()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.io.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            let _ = registration.deregister(&mut self.io);
        }
    }
}
