//! Thread per connection with CPU work per message: the kernel schedules
//! every connection's thread over the cores, no hub involved.
//!
//! The acceptor blocks in `accept`; to stop it, the listening socket is shut
//! down for reading, which on Linux makes a blocked `accept` return at once
//! (no knock needed, which could land on another `SO_REUSEPORT` listener).

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::Socket;
use stage_hub::echo::protocol::serve_upper;
use stage_hub::echo::threads::Backoff;

use super::{listener, Counters, Running};
use crate::work::{Work, Working};

/// How long stopping waits for connection threads whose clients have left.
const DRAIN: Duration = Duration::from_secs(1);

/// Start a thread-per-connection server on `addr`.
pub fn start(addr: SocketAddr, work: Work, counters: Arc<Counters>) -> io::Result<Running> {
    let listener = listener::reuseport_listener(addr)?;
    let bound = listener.local_addr()?;
    let shutter = Socket::from(listener.try_clone()?);
    let open = Arc::new(AtomicU64::new(0));
    let acceptor = {
        let (counters, open) = (counters.clone(), open.clone());
        thread::Builder::new()
            .name("echo-acceptor".into())
            .spawn(move || {
                let mut backoff = Backoff::default();
                loop {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return, // shut down
                        Err(e) => {
                            counters.error();
                            if let Some(pause) = backoff.failed(&e) {
                                thread::sleep(pause);
                            }
                            continue;
                        }
                    };
                    backoff.succeeded();
                    counters.connection();
                    spawn_connection(stream, work, &counters, &open);
                }
            })?
    };
    Ok(Running::new(bound, counters, move || {
        let _ = shutter.shutdown(Shutdown::Read);
        let _ = acceptor.join();
        let deadline = Instant::now() + DRAIN;
        while open.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }))
}

fn spawn_connection(
    stream: TcpStream,
    work: Work,
    counters: &Arc<Counters>,
    open: &Arc<AtomicU64>,
) {
    let (counters, open) = (counters.clone(), open.clone());
    open.fetch_add(1, Ordering::AcqRel);
    let spawned = thread::Builder::new().spawn({
        let (counters, open) = (counters.clone(), open.clone());
        move || {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            let mut echoed = 0;
            let result = serve_upper(&mut Working::new(&mut stream, work), &mut echoed);
            counters.echoed(echoed);
            if result.is_err() {
                counters.error();
            }
            open.fetch_sub(1, Ordering::AcqRel);
        }
    });
    if let Err(e) = spawned {
        open.fetch_sub(1, Ordering::AcqRel);
        counters.error();
        eprintln!("echo server: cannot start a thread for a connection: {e}");
    }
}
