//! [`TcpStream`]: a TCP connection whose blocking calls wait in the hub.

use std::cell::Cell;
use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::Interest;

use super::split::{ReadHalf, WriteHalf};
use crate::hub::io::Registration;

/// A TCP stream between a local and a remote socket, shaped like
/// [`std::net::TcpStream`], that never blocks the thread: a call that would
/// block registers interest with the hub and switches away, and the hub
/// switches back when the socket is ready (or the timeout passes).
///
/// It belongs to the hub of the thread that made it (it is not `Send`).
/// Code written for `Read + Write` runs over it unchanged.
pub struct TcpStream {
    /// Held inline, not behind an `Rc`: a connection's greenlet keeps its
    /// stream on its stack, where the socket costs no allocation of its own
    /// and no line of memory apart from the stream's. Only
    /// [`into_split`](TcpStream::into_split) moves it into an `Rc` the
    /// halves share.
    socket: Socket,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// The socket and its registration with the hub: one per connection,
/// shared by the two halves of a split stream.
pub(crate) struct Socket {
    pub(crate) io: mio::net::TcpStream,
    /// The last read returned less than it was asked for, so it emptied the
    /// socket: new bytes will arrive with a fresh readiness edge. The read
    /// side's alone (a split stream has one reader); kept here, in room
    /// the file descriptor leaves spare, so that a stream stays 56 bytes.
    drained: Cell<bool>,
    registration: Option<Registration>,
}

/// How long a wait may take, turned into the deadline the hub wants.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(ErrorKind::TimedOut, format!("{what} timed out"))
}

pub(crate) fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a zero timeout is not allowed (use None to wait forever)",
        ));
    }
    Ok(())
}

impl TcpStream {
    /// Connect to `addr`, trying each address it resolves to in turn.
    ///
    /// Resolving a host name may block on DNS, so it runs on the hub's
    /// blocking pool ([`crate::hub::spawn_blocking`]) while this greenlet
    /// waits and the others run. To skip resolution, pass a [`SocketAddr`]
    /// to [`TcpStream::connect_timeout`].
    pub fn connect<A: ToSocketAddrs + Send + 'static>(addr: A) -> io::Result<TcpStream> {
        let addrs = resolve(addr)?;
        let mut last = None;
        for addr in addrs {
            match Self::connect_deadline(addr, None) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                "the address resolved to no socket address",
            )
        }))
    }

    /// Connect to one address, giving up after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        check_timeout(Some(timeout))?;
        Self::connect_deadline(*addr, deadline(Some(timeout)))
    }

    fn connect_deadline(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        // mio starts a non-blocking connect; it is done when the socket
        // turns writable, and `take_error` says whether it worked.
        let stream = Self::register(mio::net::TcpStream::connect(addr)?)?;
        loop {
            stream
                .socket
                .wait(Interest::WRITABLE, deadline)
                .map_err(|e| {
                    if e.kind() == ErrorKind::TimedOut {
                        timed_out(&format!("connecting to {addr}"))
                    } else {
                        e
                    }
                })?;
            if let Some(e) = stream.socket.io.take_error()? {
                return Err(e);
            }
            match stream.socket.io.peer_addr() {
                Ok(_) => return Ok(stream),
                // Not connected yet: a spurious wake-up.
                Err(e) if e.kind() == ErrorKind::NotConnected => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Wrap a connected std stream (made blocking or not; it is switched to
    /// non-blocking) so it waits in the hub instead of blocking the thread.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Self::register(mio::net::TcpStream::from_std(stream))
    }

    pub(crate) fn register(mut io: mio::net::TcpStream) -> io::Result<TcpStream> {
        let registration = Registration::new(&mut io, Interest::READABLE | Interest::WRITABLE)?;
        Ok(TcpStream {
            socket: Socket {
                io,
                drained: Cell::new(false),
                registration: Some(registration),
            },
            read_timeout: None,
            write_timeout: None,
        })
    }

    /// Split it into a read half and a write half that different greenlets
    /// can own: one reads while another writes, gevent's full-duplex
    /// pattern (where two greenlets share one socket). Each half keeps its
    /// side's timeout; [`reunite`](TcpStream::reunite) puts them back
    /// together. The socket closes once both halves are dropped.
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use stage_hub::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let server = stage_hub::spawn(move || -> std::io::Result<()> {
    ///     let (conn, _) = listener.accept()?;
    ///     let (read, mut write) = conn.into_split();
    ///     let reader = stage_hub::spawn(move || BufReader::new(read).lines().count());
    ///     writeln!(write, "hello")?; // while the reader waits
    ///     write.shutdown()?;
    ///     assert_eq!(reader.join().unwrap(), 2);
    ///     Ok(())
    /// });
    /// let mut client = TcpStream::connect(addr)?;
    /// client.write_all(b"one\ntwo\n")?;
    /// client.shutdown(std::net::Shutdown::Write)?;
    /// let mut line = String::new();
    /// BufReader::new(&mut client).read_line(&mut line)?;
    /// assert_eq!(line, "hello\n");
    /// server.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let socket = Rc::new(self.socket);
        (
            ReadHalf {
                socket: socket.clone(),
                read_timeout: self.read_timeout,
            },
            WriteHalf {
                socket,
                write_timeout: self.write_timeout,
            },
        )
    }

    /// Put the halves of a split stream back together; both come back if
    /// they are halves of two different streams.
    pub fn reunite(read: ReadHalf, write: WriteHalf) -> Result<TcpStream, (ReadHalf, WriteHalf)> {
        if !Rc::ptr_eq(&read.socket, &write.socket) {
            return Err((read, write));
        }
        let WriteHalf {
            socket: other,
            write_timeout,
        } = write;
        drop(other);
        // The two halves held the socket's only references (neither can be
        // cloned), so the one left is the last.
        let socket = Rc::into_inner(read.socket)
            .expect("a split stream's halves hold the only references to its socket");
        Ok(TcpStream {
            socket,
            read_timeout: read.read_timeout,
            write_timeout,
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io.local_addr()
    }

    /// Shut down the read side, the write side or both. Shutting the write
    /// side tells the peer "no more from me" while replies still arrive.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.io.shutdown(how)
    }

    /// How long a read may wait before failing with [`ErrorKind::TimedOut`]
    /// (`None`: forever). Zero is refused, as std does.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// How long a write may wait before failing with [`ErrorKind::TimedOut`].
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.write_timeout = timeout;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout)
    }

    /// Disable (or enable) Nagle's algorithm: small writes go out at once.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.io.set_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is disabled.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.io.nodelay()
    }

    /// Take the socket's pending error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.io.take_error()
    }

    /// Read without removing what was read from the queue, waiting for data.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = deadline(self.read_timeout);
        let n = self
            .socket
            .cooperate(Interest::READABLE, deadline, "peek", |io| io.peek(buf))?;
        // The bytes peeked are still queued, and a peek that waited took
        // the readiness edge that announced them: the next read must try
        // at once, not wait for an edge that already came.
        self.socket.drained.set(false);
        Ok(n)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf, self.read_timeout)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf, self.write_timeout)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_vectored(bufs, self.write_timeout)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // TCP has no user-space buffer to flush
    }
}

impl Socket {
    fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        match &self.registration {
            Some(r) => r.wait(interest, deadline),
            None => Err(io::Error::other("the stream was deregistered")),
        }
    }

    // ANCHOR: would_block
    /// Run `op` until it stops saying "would block": each time it does,
    /// wait in the hub for `interest` (other greenlets run meanwhile), then
    /// try again. Wake-ups may be spurious; trying again is always safe.
    fn cooperate<T>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        what: &str,
        mut op: impl FnMut(&mio::net::TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.wait_for(interest, deadline, what)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }
    // ANCHOR_END: would_block

    fn wait_for(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        what: &str,
    ) -> io::Result<()> {
        self.wait(interest, deadline).map_err(|e| {
            if e.kind() == ErrorKind::TimedOut {
                timed_out(what)
            } else {
                e
            }
        })
    }

    // The read and write paths of a stream and of its split halves: each
    // takes its side's timeout, and its deadline starts with the call.

    /// A read that waits in the hub, for `timeout` at most; `drained` is the
    /// reader's note that its last read emptied the socket.
    pub(crate) fn read(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = deadline(timeout);
        if self.drained.get() && !buf.is_empty() {
            // The socket was emptied last time: a read now would most likely
            // only say WouldBlock (a wasted system call per message in a
            // ping-pong), so wait for the next edge first. A spurious wake-up
            // costs that call back, nothing more.
            self.wait_for(Interest::READABLE, deadline, "read")?;
        }
        let n = self.cooperate(Interest::READABLE, deadline, "read", |mut io| io.read(buf))?;
        self.drained.set(n > 0 && n < buf.len());
        Ok(n)
    }

    /// A write that waits in the hub while the socket's buffer is full, for
    /// `timeout` at most.
    pub(crate) fn write(&self, buf: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.cooperate(Interest::WRITABLE, deadline(timeout), "write", |mut io| {
            io.write(buf)
        })
    }

    /// [`write`](Self::write) from several buffers in one call.
    pub(crate) fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.cooperate(Interest::WRITABLE, deadline(timeout), "write", |mut io| {
            io.write_vectored(bufs)
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            // Failing to deregister a socket about to close changes nothing:
            // closing removes it from epoll anyway.
            let _ = registration.deregister(&mut self.io);
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.socket.io.local_addr().ok())
            .field("peer", &self.socket.io.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

// ANCHOR: resolve
/// Resolve `addr` on the hub's blocking pool: `getaddrinfo` may wait on DNS
/// for seconds, and it has no non-blocking form to register with epoll.
pub fn resolve<A: ToSocketAddrs + Send + 'static>(addr: A) -> io::Result<Vec<SocketAddr>> {
    crate::hub::spawn_blocking(move || addr.to_socket_addrs().map(Iterator::collect))
        .map_err(|e| io::Error::other(e.to_string()))?
}
// ANCHOR_END: resolve
