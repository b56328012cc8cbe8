//! The hub echo server: one greenlet accepts, one greenlet per connection
//! serves, all on one thread.
//!
//! The counters are plain `Cell`s: every greenlet runs on the hub's thread
//! and only one runs at a time, switching only where it waits, so no two can
//! be in the middle of an update together. No locks, no atomics.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, TcpStream as StdStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::protocol::{is_disconnect, serve_upper};
use super::stats::ServerSummary;
use super::threads::Backoff;
use crate::hub;
use crate::net::{TcpListener, TcpStream};

/// What a connection greenlet runs: the lesson's [`serve_upper`] unless a
/// test wants another (one that panics, say).
pub type Handler = fn(&mut TcpStream, &mut u64) -> io::Result<()>;

/// The server's counters and log, shared by its greenlets without locks.
#[derive(Debug, Default)]
pub struct Counters {
    connections: Cell<u64>,
    bytes: Cell<u64>,
    errors: Cell<u64>,
    panics: Cell<u64>,
    accept_failures: Cell<u64>,
    log: RefCell<Vec<String>>,
    quiet: Cell<bool>,
}

impl Counters {
    fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get() + n);
    }

    /// The one-line summary figures.
    pub fn summary(&self) -> ServerSummary {
        ServerSummary {
            connections: self.connections.get(),
            bytes: self.bytes.get(),
            errors: self.errors.get() + self.accept_failures.get(),
        }
    }

    /// Handlers that panicked.
    pub fn panics(&self) -> u64 {
        self.panics.get()
    }

    /// `accept` calls that failed (out of descriptors, …).
    pub fn accept_failures(&self) -> u64 {
        self.accept_failures.get()
    }

    /// What the server reported, in order (also printed to stderr unless quiet).
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn report(&self, line: String) {
        if !self.quiet.get() {
            eprintln!("echo server: {line}");
        }
        self.log.borrow_mut().push(line);
    }
}

/// A hub echo server, bound and ready to [`EchoServer::serve`].
#[derive(Debug)]
pub struct EchoServer {
    listener: TcpListener,
    addr: SocketAddr,
    conns: Rc<Connections>,
    stop: Arc<AtomicBool>,
    /// Each connection greenlet's stack size (the greenlet crate's default
    /// unless set).
    stack_size: Option<usize>,
}

/// What the server shares with its connection greenlets. Each greenlet's
/// closure holds one pointer to it (besides its stream, its peer and its
/// slot): at 10,000 connections every byte a closure carries is 10 kB
/// more, kept until the greenlet ends.
#[derive(Debug)]
struct Connections {
    counters: Rc<Counters>,
    handler: Cell<Handler>,
    /// The connection greenlets still running, to close at stop.
    live: RefCell<Live>,
}

/// The connection greenlets still running: a slot each, reused once its
/// connection ends (a slab, 16 bytes a connection, rather than a map).
#[derive(Debug, Default)]
struct Live {
    slots: Vec<Option<hub::Handle<()>>>,
    /// Slots whose connection ended, to reuse.
    free: Vec<usize>,
}

impl Live {
    /// A slot for a connection about to start.
    fn reserve(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        })
    }

    fn fill(&mut self, slot: usize, greenlet: hub::Handle<()>) {
        self.slots[slot] = Some(greenlet);
    }

    /// The connection in `slot` ended (or never started): nothing to close.
    /// Each slot is released once, by whoever reserved it or its greenlet;
    /// after [`Live::take_all`] there is nothing left to release.
    fn release(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = None;
            self.free.push(slot);
        }
    }

    /// Every greenlet still running, leaving the slab empty.
    fn take_all(&mut self) -> Vec<hub::Handle<()>> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Stops a serving [`EchoServer`] from any greenlet or thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl StopHandle {
    /// Raise the flag, then knock: a throwaway connection wakes the acceptor
    /// wherever it waits, and it sees the flag. Safe from any thread, and
    /// from inside the server's own hub too: the kernel completes a loopback
    /// connect without waiting for `accept`, so the knock never blocks.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = StdStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl EchoServer {
    /// Bind `addr` (port 0 picks one).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<EchoServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(EchoServer {
            listener,
            addr,
            conns: Rc::new(Connections {
                counters: Rc::new(Counters::default()),
                handler: Cell::new(serve_upper::<TcpStream>),
                live: RefCell::default(),
            }),
            stop: Arc::new(AtomicBool::new(false)),
            stack_size: None,
        })
    }

    /// Give each connection's greenlet a stack of `bytes`: a handler with
    /// deep calls needs more, a server of many tiny ones could take less.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Serve with another handler (tests use one that panics).
    pub fn with_handler(self, handler: Handler) -> Self {
        self.conns.handler.set(handler);
        self
    }

    /// Keep reports in the log only, off stderr (tests, the lesson).
    pub fn quiet(self) -> Self {
        self.conns.counters.quiet.set(true);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live counters.
    pub fn counters(&self) -> Rc<Counters> {
        self.conns.counters.clone()
    }

    /// A handle that stops [`EchoServer::serve`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            addr: self.addr,
            stop: self.stop.clone(),
        }
    }

    // ANCHOR: serve
    /// Accept until stopped, each connection in a greenlet of its own.
    /// Must run inside the hub (in a spawned greenlet or the hub's main).
    pub fn serve(&self) -> ServerSummary {
        let mut backoff = Backoff::default();
        // Whether the last connection found no greenlet to serve it: such a
        // failure is logged once per episode, not once per client.
        let mut starved = false;
        while !self.stop.load(Ordering::SeqCst) {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) => {
                    Counters::add(&self.conns.counters.accept_failures, 1);
                    if let Some(pause) = backoff.failed(&e) {
                        hub::sleep(pause); // out of descriptors: wait, don't spin
                    }
                    continue;
                }
            };
            backoff.succeeded();
            if self.stop.load(Ordering::SeqCst) {
                break; // that was the stop knock
            }
            Counters::add(&self.conns.counters.connections, 1);
            let slot = self.conns.live.borrow_mut().reserve();
            let conns = self.conns.clone();
            let mut builder = hub::Builder::new();
            if let Some(bytes) = self.stack_size {
                builder = builder.stack_size(bytes);
            }
            let spawned = builder.spawn(move || {
                connection(stream, peer, conns.handler.get(), &conns.counters);
                conns.live.borrow_mut().release(slot); // done: nothing to close at stop
            });
            match spawned {
                Ok(greenlet) => {
                    starved = false;
                    self.conns.live.borrow_mut().fill(slot, greenlet);
                }
                // No stack for another greenlet (vm.max_map_count, memory):
                // this client's connection closes with the closure that
                // held it; the server and every other client go on.
                Err(e) => {
                    self.conns.live.borrow_mut().release(slot);
                    Counters::add(&self.conns.counters.errors, 1);
                    if !std::mem::replace(&mut starved, true) {
                        self.conns.counters.report(format!(
                            "cannot serve {peer}: {e}; closing new connections until a \
                             greenlet can start"
                        ));
                    }
                }
            }
        }
        // Close what is still open: each greenlet unwinds from its wait and
        // drops its stream, so clients see the connection end.
        let open = self.conns.live.borrow_mut().take_all();
        for greenlet in open {
            greenlet.kill();
        }
        self.conns.counters.summary()
    }
    // ANCHOR_END: serve
}

// ANCHOR: connection
/// What the handler touches on every message, kept on one cache line.
///
/// Both live above the handler's frame and its 1024-byte buffer, more than
/// a kilobyte from where the greenlet parks: out of reach of the lines the
/// hub loads ahead as it wakes the greenlet ([`crate::hub::PREFETCH_LINES`]), so each
/// line of them is a wait for memory on every message when thousands of
/// connections take turns. Apart (the stream in the spawned closure, the
/// count in this frame) they took three lines; together, one.
#[repr(align(64))]
struct Served {
    stream: TcpStream,
    echoed: u64,
}

// Every release build checks it (debug builds are larger: see the test).
#[cfg(not(debug_assertions))]
const _: () = assert!(size_of::<Served>() == 64, "Served must fit one cache line");

/// One connection's greenlet: run the handler, count what it did, and turn
/// a panic into a report instead of a dead server.
fn connection(stream: TcpStream, peer: SocketAddr, handler: Handler, counters: &Counters) {
    let _ = stream.set_nodelay(true);
    let mut served = Served { stream, echoed: 0 };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        handler(&mut served.stream, &mut served.echoed)
    }));
    Counters::add(&counters.bytes, served.echoed);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            Counters::add(&counters.errors, 1);
            if !is_disconnect(&e) {
                counters.report(format!("connection from {peer} failed: {e}"));
            }
        }
        Err(payload) => {
            if payload.is::<hub::KillSignal>() || payload.is::<hub::TimeoutSignal>() {
                panic::resume_unwind(payload); // the hub is unwinding us: let it
            }
            Counters::add(&counters.errors, 1);
            Counters::add(&counters.panics, 1);
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".into());
            counters.report(format!(
                "the handler for {peer} panicked ({message}); connection closed, still serving"
            ));
        }
    }
}
// ANCHOR_END: connection

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_message_touches_fits_one_cache_line() {
        // A stream that grows past 56 bytes would spill onto a second line:
        // this says so here rather than as a slower figure in the book.
        // In a debug build mio keeps a poller id beside each descriptor (to
        // check a source is registered once), 8 bytes more, and the line
        // overflows; release builds, the ones measured, are held to one
        // line when they compile (see `Served`).
        let lines = if cfg!(debug_assertions) { 2 } else { 1 };
        assert_eq!(std::mem::size_of::<Served>(), 64 * lines);
        assert_eq!(std::mem::align_of::<Served>(), 64);
    }
}

/// What a server running on its own thread reports when it stops.
#[derive(Debug, Clone, Default)]
pub struct ServerReport {
    /// Connections, bytes, errors.
    pub summary: ServerSummary,
    /// Handlers that panicked.
    pub panics: u64,
    /// `accept` calls that failed.
    pub accept_failures: u64,
    /// The server's reports, in order.
    pub log: Vec<String>,
}

/// A hub echo server running on a thread of its own (with that thread's
/// own hub), for the lesson and the tests: clients in this thread's hub or
/// in other threads talk to it over loopback.
#[derive(Debug)]
pub struct ServerThread {
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<std::thread::JoinHandle<ServerReport>>,
}

impl ServerThread {
    /// Bind `addr` and serve with `handler` on a new thread, quietly
    /// (reports go to the log only).
    pub fn start(addr: impl ToSocketAddrs, handler: Handler) -> io::Result<ServerThread> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hub-echo-server".into())
            .spawn(move || {
                let server = match EchoServer::bind(addr) {
                    Ok(server) => server.with_handler(handler).quiet(),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return ServerReport::default();
                    }
                };
                let _ = tx.send(Ok((server.local_addr(), server.stop_handle())));
                let summary = server.serve();
                let counters = server.counters();
                ServerReport {
                    summary,
                    panics: counters.panics(),
                    accept_failures: counters.accept_failures(),
                    log: counters.log(),
                }
            })?;
        let (addr, stop) = rx
            .recv()
            .map_err(|_| io::Error::other("the server thread died before binding"))??;
        Ok(ServerThread {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop it and collect its report.
    pub fn stop(mut self) -> ServerReport {
        self.stop.stop();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.stop();
            let _ = thread.join();
        }
    }
}
