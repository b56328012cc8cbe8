//! `echo-load`: N clients in one hub, each ping-ponging and checking every
//! reply, timed with one shared histogram (no lock: one thread). It also
//! reads its own CPU time over the ping-pong, and the server's when it is
//! told the server's process: a load generator that kept its core busier
//! than the server kept its own was the limit, not the server.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cpu::CpuTime;
use super::stats::{ping_pong, LoadSummary, Tally};
use crate::hub;
use crate::net::TcpStream;

/// How many clients may be connecting at once: more would overflow the
/// server's accept backlog and wait out SYN retransmits instead of working.
pub const CONNECTING_AT_ONCE: usize = 256;

/// The load to apply.
#[derive(Debug, Clone)]
pub struct Load {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent clients.
    pub clients: usize,
    /// Bytes per message.
    pub size: usize,
    /// How long the clients ping-pong, once all are connected.
    pub duration: Duration,
    /// The server's process, if it runs on this machine: its CPU time is
    /// read over the same span as the clients' own
    /// ([`LoadSummary::server_cpu`]).
    pub watch: Option<u32>,
}

// ANCHOR: hub_clients
/// Run `load` with one greenlet per client, in the current thread's hub.
/// Clients connect first, a wave of a few hundred at a time; then all start
/// together and stop after `load.duration`. `tick` is called about every
/// 100 ms with the time spent so far (for a progress bar).
pub fn hub_clients(load: &Load, tick: &mut dyn FnMut(Duration)) -> io::Result<LoadSummary> {
    let hub_error = |e: hub::HubError| io::Error::other(e.to_string());
    let tally = Rc::new(RefCell::new(Tally::new()));
    let mut streams = Vec::with_capacity(load.clients);
    for wave in (0..load.clients)
        .collect::<Vec<_>>()
        .chunks(CONNECTING_AT_ONCE)
    {
        let connecting: Vec<_> = wave
            .iter()
            .map(|_| {
                let addr = load.addr;
                hub::spawn(move || TcpStream::connect_timeout(&addr, Duration::from_secs(20)))
            })
            .collect();
        hub::joinall(&connecting, hub::JoinAll::new()).map_err(hub_error)?;
        for connected in connecting {
            match connected.join() {
                Ok(Ok(stream)) => streams.push(stream),
                Ok(Err(e)) => tally.borrow_mut().failed(&e),
                Err(e) => tally.borrow_mut().failed(&e),
            }
        }
    }
    if streams.is_empty() {
        // Nobody to ping-pong with: waiting out the duration measures nothing.
        return Ok(tally
            .borrow()
            .summary(load.clients, load.size, Duration::ZERO));
    }
    let server_at_start = load.watch.and_then(CpuTime::of);
    let cpu_at_start = CpuTime::of_this_thread();
    let start = Instant::now();
    let until = start + load.duration;
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(client, mut stream)| {
            let (tally, size, duration) = (tally.clone(), load.size, load.duration);
            hub::spawn(move || {
                let ran = stream
                    .set_nodelay(true)
                    .and_then(|()| {
                        stream.set_read_timeout(Some(duration + Duration::from_secs(10)))
                    })
                    .and_then(|()| {
                        ping_pong(&mut stream, client, size, until, &mut |t, ok| {
                            tally.borrow_mut().record(t, ok)
                        })
                    });
                if let Err(e) = ran {
                    tally.borrow_mut().failed(&e);
                }
            })
        })
        .collect();
    while Instant::now() < until {
        hub::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
        tick(start.elapsed());
    }
    hub::joinall(&clients, hub::JoinAll::new()).map_err(hub_error)?;
    let elapsed = start.elapsed();
    let mut summary = tally.borrow().summary(load.clients, load.size, elapsed);
    summary.load_cpu = cpu_at_start
        .zip(CpuTime::of_this_thread())
        .map(|(before, after)| after - before);
    summary.server_cpu = server_at_start
        .zip(load.watch.and_then(CpuTime::of))
        .map(|(before, after)| after - before);
    Ok(summary)
}
// ANCHOR_END: hub_clients
