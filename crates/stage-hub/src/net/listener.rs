//! [`TcpListener`]: accept connections, waiting in the hub between them.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};

use mio::Interest;
use socket2::{Domain, Socket, Type};

use super::TcpStream;
use crate::hub::io::Registration;

/// How many connections may wait to be accepted. Linux lowers a larger
/// backlog to `net.core.somaxconn` without a word; 4096 is that cap's default
/// since Linux 5.4. std's `bind` asks for 128 and mio's for 1024: under a
/// burst of thousands of clients (echo-load connects a few hundred at a time,
/// and each wave completes as soon as the kernel has answered, before the
/// server has accepted) a queue that short overflows, and each connection it
/// drops waits out a one-second SYN retransmit.
pub const BACKLOG: i32 = 4096;

/// A listening std socket on the first of `addr`'s addresses that binds,
/// with `SO_REUSEADDR` and a [`BACKLOG`]-long accept queue: what every echo
/// server here listens with, so none is measured against a shorter queue
/// than another. The socket blocks; [`TcpListener::from_std`] and tokio's
/// `from_std` want it non-blocking, and set that themselves or are told to.
pub fn std_listener<A: ToSocketAddrs>(addr: A) -> io::Result<std::net::TcpListener> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address to bind to")))
}

fn listen_on(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

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
        Self::from_std(std_listener(addr)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// More clients than mio's backlog (1024) complete their handshake
    /// while nobody accepts: the queue is as long as the system allows.
    #[test]
    fn the_accept_queue_holds_more_than_mio_would() {
        // The kernel caps the backlog at net.core.somaxconn; a machine with
        // a lower cap than mio's can only be asked to honour its own.
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(128);
        let waiting = cap.min(1100);
        let listener = std_listener("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..waiting)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(800))
                    .unwrap_or_else(|e| panic!("client {i} of {waiting} was not queued: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), waiting);
    }
}
