//! The other way to serve many sockets: one OS thread per connection, and the
//! notes' 500-thread client. Blocking std sockets, the same protocol
//! function as the hub server: only the way of waiting differs.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::protocol::{is_disconnect, serve_upper};
use super::stats::{ping_pong, ServerSummary, Tally};

/// Counters every connection thread adds to: atomics, since threads share them.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Connection threads not finished yet (they add their bytes at the end).
    open: AtomicU64,
}

/// One connection counted as open until this is dropped: at the end of its
/// thread, or with the thread's closure if the thread never started.
struct Open(Arc<Counters>);

impl Open {
    fn new(counters: &Arc<Counters>) -> Open {
        counters.open.fetch_add(1, Ordering::Relaxed);
        Open(counters.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a stopping server waits for connection threads to finish.
/// Those whose clients have already gone end within moments; waiting that
/// long lets the summary count their bytes. Those with clients still
/// connected would wait for ever, so they are left to end on their own.
const DRAIN: Duration = Duration::from_secs(1);

impl Counters {
    fn summary(&self) -> ServerSummary {
        ServerSummary {
            connections: self.connections.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A running thread-per-connection echo server; [`ThreadServer::stop`] ends it.
#[derive(Debug)]
pub struct ThreadServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    acceptor: Option<JoinHandle<()>>,
}

impl ThreadServer {
    /// Bind `addr` (port 0 picks one) and start accepting on a thread of its own.
    pub fn start(addr: impl ToSocketAddrs) -> io::Result<ThreadServer> {
        let listener = crate::net::std_listener(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let acceptor = {
            let (stop, counters) = (stop.clone(), counters.clone());
            thread::Builder::new()
                .name("echo-acceptor".into())
                .spawn(move || accept_loop(listener, &stop, &counters))?
        };
        Ok(ThreadServer {
            addr,
            stop,
            counters,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has counted so far.
    pub fn summary(&self) -> ServerSummary {
        self.counters.summary()
    }

    /// A handle that stops the server from another thread (a signal watcher).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            addr: self.addr,
            stop: self.stop.clone(),
        }
    }

    /// Stop accepting and return the summary. Connection threads still
    /// running finish on their own when their clients close (the summary
    /// waits a moment for those whose clients already have).
    pub fn stop(self) -> ServerSummary {
        self.stopper().stop();
        self.wait()
    }

    /// Serve until another thread calls [`Stopper::stop`], then return the summary.
    pub fn wait(mut self) -> ServerSummary {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let deadline = Instant::now() + DRAIN;
        while self.counters.open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        self.summary()
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.stopper().stop();
            let _ = acceptor.join();
        }
    }
}

/// Stops a [`ThreadServer`] or the tokio server from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Stopper {
    /// Raise the flag and wake the acceptor (blocked in `accept`) with a
    /// throwaway connection so it sees the flag.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn accept_loop(listener: TcpListener, stop: &AtomicBool, counters: &Arc<Counters>) {
    let mut backoff = Backoff::default();
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(pause) = backoff.failed(&e) {
                    thread::sleep(pause);
                }
                continue;
            }
        };
        backoff.succeeded();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        counters.connections.fetch_add(1, Ordering::Relaxed);
        // ANCHOR: thread_per_connection
        // The same handler as the hub server's, over a blocking std stream:
        // here every wait blocks this thread, and the kernel picks who runs.
        // Threads share the counters, so they are atomics; `open` marks the
        // connection as still counting until its thread ends.
        let open = Open::new(counters);
        let counters = counters.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let _open = open;
            let mut echoed = 0;
            let result = serve_upper(&mut stream, &mut echoed);
            counters.bytes.fetch_add(echoed, Ordering::Relaxed);
            if result.is_err() {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        // ANCHOR_END: thread_per_connection
        if let Err(e) = spawned {
            // Out of threads (or memory for stacks): the connection is dropped.
            eprintln!("echo server: cannot start a thread for a connection: {e}");
        }
    }
}

/// How an acceptor waits after `accept` fails: out of file descriptors is
/// worth a pause that grows (nothing frees one for us, so retrying at once
/// would only spin), anything else a short one.
#[derive(Debug, Default)]
pub struct Backoff {
    pause: Option<Duration>,
}

impl Backoff {
    /// The first and the longest pause.
    pub const FIRST: Duration = Duration::from_millis(5);
    /// The longest pause between retries.
    pub const MAX: Duration = Duration::from_secs(1);

    /// `accept` failed with `e`: log the start of an episode and say how
    /// long to wait (`None`: retry at once, the peer gave up mid-handshake).
    pub fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        if is_disconnect(e) || e.kind() == io::ErrorKind::Interrupted {
            return None;
        }
        let pause = match self.pause {
            None => {
                eprintln!(
                    "echo server: accept failed: {e}{}; backing off",
                    if is_fd_exhaustion(e) {
                        " (out of file descriptors: raise `ulimit -n` or wait for clients to leave)"
                    } else {
                        ""
                    }
                );
                Self::FIRST
            }
            Some(p) => (p * 2).min(Self::MAX),
        };
        self.pause = Some(pause);
        Some(pause)
    }

    /// `accept` worked: if an episode was under way, say it is over.
    pub fn succeeded(&mut self) {
        if self.pause.take().is_some() {
            eprintln!("echo server: accepting again");
        }
    }
}

/// EMFILE or ENFILE: the process or the system ran out of descriptors.
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

// ANCHOR: thread_clients
/// The notes' 500-thread client: `clients` OS threads, each with its own
/// blocking socket, ping-ponging `size`-byte messages for `seconds`.
pub fn thread_clients(
    addr: SocketAddr,
    clients: usize,
    size: usize,
    seconds: Duration,
) -> io::Result<Tally> {
    let until = Instant::now() + seconds;
    let mut threads = Vec::with_capacity(clients);
    for client in 0..clients {
        let thread = thread::Builder::new()
            .name(format!("client-{client}"))
            .spawn(move || {
                let mut tally = Tally::new();
                let ran = TcpStream::connect(addr).and_then(|mut stream| {
                    stream.set_read_timeout(Some(seconds + Duration::from_secs(10)))?;
                    stream.set_nodelay(true)?;
                    ping_pong(&mut stream, client, size, until, &mut |t, ok| {
                        tally.record(t, ok)
                    })
                });
                if let Err(e) = ran {
                    tally.failed(&e);
                }
                tally
            })?;
        threads.push(thread);
    }
    let mut total = Tally::new();
    for thread in threads {
        match thread.join() {
            Ok(tally) => total.merge(&tally),
            Err(_) => total.failed(&"a client thread panicked"),
        }
    }
    Ok(total)
}
// ANCHOR_END: thread_clients

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_clients_against_the_thread_server() {
        let server = ThreadServer::start("127.0.0.1:0").unwrap();
        let tally =
            thread_clients(server.local_addr(), 8, 100, Duration::from_millis(200)).unwrap();
        assert!(tally.messages > 8);
        assert_eq!((tally.wrong_replies, tally.failed_connections), (0, 0));
        let summary = server.stop();
        assert!(summary.connections >= 8);
    }

    #[test]
    fn the_summary_counts_the_bytes_of_clients_that_just_left() {
        use std::io::{Read, Write};
        let server = ThreadServer::start("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            let mut c = TcpStream::connect(server.local_addr()).unwrap();
            c.write_all(b"abc").unwrap();
            let mut reply = [0u8; 3];
            c.read_exact(&mut reply).unwrap();
        } // each client closes here; its thread adds its bytes when it sees that
        let summary = server.stop();
        assert_eq!((summary.connections, summary.bytes), (20, 60));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::default();
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(b.failed(&e), Some(Backoff::FIRST));
        assert_eq!(b.failed(&e), Some(Backoff::FIRST * 2));
        for _ in 0..20 {
            b.failed(&e);
        }
        assert_eq!(b.failed(&e), Some(Backoff::MAX));
        b.succeeded();
        assert_eq!(b.failed(&e), Some(Backoff::FIRST));
    }
}
