//! The hub echo server, once per hub thread: each hub accepts on its own
//! `SO_REUSEPORT` listener and serves each connection in a greenlet, exactly
//! as stage 4's server does on one thread; what is new is how it stops.
//!
//! Stage 4 stopped its acceptor with a "knock" (a throwaway connection).
//! With many listeners on one port the kernel decides which listener a knock
//! reaches, so a knock cannot be aimed. Instead each hub's server waits on a
//! cross-thread [`channel`](crate::channel()): closing it wakes that hub
//! through its mio waker, and the server kills its acceptor and its
//! connections there, inside its own hub.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use stage_hub::echo::protocol::{is_disconnect, serve_upper};
use stage_hub::echo::threads::Backoff;
use stage_hub::net::{TcpListener, TcpStream};
use stage_hub::{hub, Handle};

use super::{listener, Counters, Running};
use crate::channel::{channel, Receiver};
use crate::hubs::Hubs;
use crate::work::{Work, Working};

/// Start `hubs` hub threads serving `addr` (a listener each, one port).
pub fn start(
    addr: SocketAddr,
    hubs: usize,
    work: Work,
    counters: Arc<Counters>,
) -> io::Result<Running> {
    let (listeners, bound) = listener::listeners(addr, hubs)?;
    let pool = Hubs::start(listeners.len()).map_err(io::Error::other)?;
    let mut stops = Vec::new();
    let mut served = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (stop, stopped) = channel::<()>();
        let counters = counters.clone();
        served.push(
            pool.hub(i)
                .spawn(move || serve(listener, work, &counters, &stopped))
                .map_err(io::Error::other)?,
        );
        stops.push(stop);
    }
    Ok(Running::new(bound, counters, move || {
        drop(stops); // every hub's `stopped.recv()` returns: closed
        for server in served {
            if let Ok(Err(e)) = server.join() {
                eprintln!("echo server: a hub's server failed: {e}");
            }
        }
        pool.shutdown();
    }))
}

// ANCHOR: serve
/// One hub's server: an acceptor greenlet and a greenlet per connection,
/// until `stopped` yields or closes; then both are killed, inside this hub.
pub fn serve(
    listener: std::net::TcpListener,
    work: Work,
    counters: &Arc<Counters>,
    stopped: &Receiver<()>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let live: Rc<RefCell<HashMap<u64, Handle<()>>>> = Rc::default();
    let acceptor = {
        let (live, counters) = (live.clone(), counters.clone());
        hub::spawn(move || accept_loop(&listener, work, &counters, &live))
    };
    let _ = stopped.recv(); // parks this greenlet; the others serve
    acceptor.kill();
    let open = std::mem::take(&mut *live.borrow_mut());
    for connection in open.into_values() {
        connection.kill();
    }
    Ok(())
}
// ANCHOR_END: serve

fn accept_loop(
    listener: &TcpListener,
    work: Work,
    counters: &Arc<Counters>,
    live: &Rc<RefCell<HashMap<u64, Handle<()>>>>,
) {
    let mut backoff = Backoff::default();
    let mut next_id = 0u64;
    loop {
        let (stream, _peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                counters.error();
                if let Some(pause) = backoff.failed(&e) {
                    hub::sleep(pause);
                }
                continue;
            }
        };
        backoff.succeeded();
        counters.connection();
        next_id += 1;
        let id = next_id;
        let (counted, live_in) = (counters.clone(), live.clone());
        match hub::Builder::new().spawn(move || {
            connection(stream, work, &counted);
            live_in.borrow_mut().remove(&id);
        }) {
            Ok(handle) => {
                live.borrow_mut().insert(id, handle);
            }
            Err(e) => {
                counters.error(); // no stack for it: this connection closes, the rest go on
                eprintln!("echo server: cannot start a greenlet for a connection: {e}");
            }
        }
    }
}

/// One connection: stage 4's protocol over a stream that works per message.
fn connection(mut stream: TcpStream, work: Work, counters: &Counters) {
    let _ = stream.set_nodelay(true);
    guarded(counters, |echoed| {
        serve_upper(&mut Working::new(&mut stream, work), echoed)
    });
}

/// Run one connection's handler and count what it did. A panic is counted
/// and ends this connection only; a kill (the server stopping) is let through.
fn guarded(counters: &Counters, handler: impl FnOnce(&mut u64) -> io::Result<()>) {
    let mut echoed = 0;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(&mut echoed)));
    counters.echoed(echoed);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            counters.error();
            if !is_disconnect(&e) {
                eprintln!("echo server: a connection failed: {e}");
            }
        }
        Err(payload) if hub::is_interrupt(&*payload) => panic::resume_unwind(payload),
        Err(_) => {
            counters.error();
            eprintln!("echo server: a handler panicked; its connection is closed, the rest go on");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_panicking_handler_costs_its_connection_only_and_a_kill_goes_through() {
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let panicked = hub::spawn(move || {
            guarded(&c, |echoed| {
                *echoed = 5;
                panic!("a bug in one handler");
            });
            "the greenlet carried on"
        });
        assert_eq!(panicked.join().unwrap(), "the greenlet carried on");
        let s = counters.summary();
        assert_eq!((s.bytes, s.errors), (5, 1));
        // A kill is not a handler's failure: it unwinds the greenlet, uncounted.
        let c = counters.clone();
        let killed = hub::spawn(move || {
            guarded(&c, |_| {
                hub::sleep(Duration::from_secs(60));
                Ok(())
            })
        });
        hub::yield_now();
        killed.kill();
        assert!(matches!(
            killed.join(),
            Err(stage_hub::HubError::Killed { .. })
        ));
        assert_eq!(counters.summary().errors, 1);
    }
}
