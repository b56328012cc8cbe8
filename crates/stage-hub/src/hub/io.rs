//! Waiting for a socket: the one primitive cooperative IO is built on.
//!
//! mio is edge-triggered: the kernel reports "readable" once when data
//! arrives, not again while it sits unread. So a [`Registration`] remembers
//! readiness that arrived while nobody waited, and a greenlet that was woken
//! must read (or write) until the call returns `WouldBlock` before waiting
//! again. Wake-ups may be spurious (two greenlets waiting on one socket, a
//! readiness that a previous read already consumed): callers simply try the
//! call again.
//!
//! ```
//! use std::io::{Read, Write};
//! use stage_hub::hub::io::Registration;
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! server.set_nonblocking(true)?;
//! let mut server = mio::net::TcpStream::from_std(server);
//! let reg = Registration::new(&mut server, mio::Interest::READABLE)?;
//! client.write_all(b"ping")?;
//! let mut buf = [0u8; 16];
//! let n = loop {
//!     match server.read(&mut buf) {
//!         Ok(n) => break n,
//!         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
//!             reg.wait(mio::Interest::READABLE, None)?; // other greenlets run meanwhile
//!         }
//!         Err(e) => return Err(e),
//!     }
//! };
//! assert_eq!(&buf[..n], b"ping");
//! reg.deregister(&mut server)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use mio::{Interest, Token};

use super::few::Few;
use super::{Hub, HubError, State, Ticket, WaitOn, Wake};

/// What the hub knows about one registered source.
pub(crate) struct IoSlot {
    readable: Cell<bool>,
    writable: Cell<bool>,
    /// The peer closed its side (or the socket failed): that readiness is
    /// reported once by an edge-triggered poller but lasts for ever, so it
    /// is never taken. A reader that emptied the socket and waits for the
    /// next edge must still see end-of-file.
    read_closed: Cell<bool>,
    /// Its mio token, its index in the hub's socket table: kept here, in room
    /// the slot has spare, rather than in each [`Registration`], which is
    /// then two pointers (and a stream that holds one, one line of memory).
    token: u32,
    /// A `Cell` (taken out, changed, put back by [`IoSlot::with_waiters`]),
    /// not a `RefCell`: without a borrow flag the slot is 40 bytes, and its
    /// `Rc` fits a 64-byte heap chunk instead of 80.
    waiters: Cell<Waiters>,
}

/// The greenlets waiting on one socket, oldest first. Almost always there
/// is one (a connection's own greenlet), so it is kept inline: a server of
/// 10,000 idle connections would otherwise hold 10,000 small vectors, each
/// allocated for one entry and walked at every wake. Only a second waiter
/// (the halves of a split stream, a read and a write at once) allocates.
#[derive(Default)]
struct Waiters {
    /// The oldest waiter; `None` only when `rest` is empty too.
    first: Option<(Ticket, Interest)>,
    /// The others, in the order they came (one pointer while empty).
    rest: Few<(Ticket, Interest)>,
}

impl Waiters {
    fn push(&mut self, waiter: (Ticket, Interest)) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    /// Remove every waiter `take` says yes to, oldest first.
    fn remove_where(&mut self, mut take: impl FnMut(Ticket, Interest) -> bool) {
        if let Some((ticket, interest)) = self.first {
            if take(ticket, interest) {
                self.first = None;
            }
        }
        if !self.rest.is_empty() {
            self.rest
                .retain(|&(ticket, interest)| !take(ticket, interest));
            if self.first.is_none() {
                self.first = self.rest.remove(0);
            }
        }
    }
}

impl IoSlot {
    pub(super) fn new(token: u32) -> IoSlot {
        IoSlot {
            token,
            readable: Cell::new(false),
            writable: Cell::new(false),
            read_closed: Cell::new(false),
            waiters: Cell::new(Waiters::default()),
        }
    }

    /// Its mio token.
    pub(super) fn token(&self) -> u32 {
        self.token
    }

    /// Change the waiters. `change` is the hub's own code (it may queue
    /// greenlets, never run them), so nothing sees the list while it is
    /// out of its cell.
    fn with_waiters(&self, change: impl FnOnce(&mut Waiters)) {
        let mut waiters = self.waiters.take();
        change(&mut waiters);
        self.waiters.set(waiters);
    }

    /// The poller reported readiness: remember it and wake whoever waits for it.
    pub(crate) fn ready(&self, readable: bool, writable: bool, read_closed: bool, st: &mut State) {
        if read_closed {
            self.read_closed.set(true);
        }
        if readable {
            self.readable.set(true);
        }
        if writable {
            self.writable.set(true);
        }
        self.with_waiters(|waiters| {
            waiters.remove_where(|ticket, interest| {
                let hit =
                    (readable && interest.is_readable()) || (writable && interest.is_writable());
                if hit {
                    st.unpark(ticket, Wake::Ready);
                }
                hit
            })
        });
    }

    /// Take remembered readiness matching `interest`, if any.
    fn take(&self, interest: Interest) -> bool {
        let mut hit = false;
        if interest.is_readable() && (self.readable.replace(false) || self.read_closed.get()) {
            hit = true;
        }
        if interest.is_writable() && self.writable.replace(false) {
            hit = true;
        }
        hit
    }
}

/// A source registered with this thread's hub. `!Send`: it belongs to the
/// hub of the thread that made it.
pub struct Registration {
    hub: Rc<Hub>,
    slot: Rc<IoSlot>,
}

impl Registration {
    /// Register `source` for `interest` with this thread's hub (created if
    /// needed).
    pub fn new<S: mio::event::Source + ?Sized>(
        source: &mut S,
        interest: Interest,
    ) -> io::Result<Registration> {
        let hub = Hub::get().map_err(io::Error::other)?;
        let token = hub.state.borrow().io.next_token();
        match &hub.state.borrow().poller {
            Some(poller) => {
                poller
                    .poll
                    .registry()
                    .register(source, Token(token as usize), interest)?
            }
            None => return Err(io::Error::other(HubError::Closed)),
        }
        let slot = Rc::new(IoSlot::new(token));
        hub.state.borrow_mut().io.insert(token, slot.clone());
        Ok(Registration { hub, slot })
    }

    /// The mio token it is registered under.
    fn token(&self) -> usize {
        self.slot.token() as usize
    }

    /// Park the current greenlet until `interest` readiness arrives (at once
    /// if it arrived while nobody waited), or until `deadline`: then an error
    /// of kind [`io::ErrorKind::TimedOut`]. A kill or an expired
    /// `with_timeout` interrupts it like any other wait. The wake-up may be
    /// spurious: retry the call, and wait again on `WouldBlock`.
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        if self.slot.take(interest) {
            return Ok(());
        }
        // Counted so the hub knows someone outside could still wake a
        // greenlet. Undone however the wait ends, an unwinding kill or
        // `with_timeout` included, and so is the waiter entry that a wake
        // by readiness would have removed.
        struct Waiting<'a> {
            hub: &'a Hub,
            slot: &'a IoSlot,
            ticket: Cell<Option<Ticket>>,
        }
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.hub.state.borrow_mut().io_waiters -= 1;
                if let Some(ticket) = self.ticket.get() {
                    self.slot
                        .with_waiters(|waiters| waiters.remove_where(|t, _| t == ticket));
                }
            }
        }
        self.hub.state.borrow_mut().io_waiters += 1;
        let waiting = Waiting {
            hub: &self.hub,
            slot: &self.slot,
            ticket: Cell::new(None),
        };
        let wake = self
            .hub
            .park(WaitOn::Io(self.token(), interest), deadline, |ticket| {
                waiting.ticket.set(Some(ticket));
                self.slot
                    .with_waiters(|waiters| waiters.push((ticket, interest)));
            });
        if let Ok(Wake::Ready) = wake {
            // Woken by readiness: `IoSlot::ready` took the waiter off the
            // slot as it woke it (nothing else wakes an IO ticket with
            // `Ready`; an interrupt's wake is raised in `park` and never
            // returns here as `Ok`), so there is nothing left to remove.
            debug_assert!(waiting.ticket.get().is_some_and(|ticket| {
                let waiters = self.slot.waiters.take();
                let gone = waiters.first.is_none_or(|(t, _)| t != ticket)
                    && waiters.rest.as_slice().iter().all(|(t, _)| *t != ticket);
                self.slot.waiters.set(waiters);
                gone
            }));
            waiting.ticket.set(None);
        }
        drop(waiting);
        match wake {
            Ok(Wake::TimedOut) => Err(not_ready_in_time()),
            Ok(_) => {
                self.slot.take(interest);
                Ok(())
            }
            Err(e) => Err(hub_error(e)),
        }
    }

    /// Stop watching `source` (before closing it, or to hand it back).
    pub fn deregister<S: mio::event::Source + ?Sized>(self, source: &mut S) -> io::Result<()> {
        match &self.hub.state.borrow().poller {
            Some(poller) => poller.poll.registry().deregister(source),
            None => Ok(()), // the poller is closed: nothing watches it any more
        }
    }
}

// The errors a socket wait can end with, made out of line: inlined, their
// construction took room in the frame of every wait, which a parked
// connection's greenlet keeps on its stack (see `Hub::park`).

#[cold]
#[inline(never)]
fn not_ready_in_time() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the socket was not ready before the deadline",
    )
}

#[cold]
#[inline(never)]
fn hub_error(e: HubError) -> io::Error {
    io::Error::other(e)
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.state.borrow_mut().io.remove(self.slot.token());
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token())
            .finish_non_exhaustive()
    }
}
