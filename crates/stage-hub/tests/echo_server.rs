//! The hub echo server against real clients on 127.0.0.1: many at once,
//! resets, half-close, binary input, slow readers, a panicking handler.

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream as StdStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_hub::echo::protocol::{serve_upper, upper};
use stage_hub::echo::server::{EchoServer, ServerThread};
use stage_hub::net::TcpStream;
use stage_hub::{joinall, spawn, JoinAll};

fn start() -> ServerThread {
    ServerThread::start("127.0.0.1:0", serve_upper::<TcpStream>).expect("bind 127.0.0.1:0")
}

fn upper_of(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    upper(&mut v);
    v
}

/// Compare without printing megabytes: say where the first difference is.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} bytes vs {} expected, first difference at byte {at}",
            got.len(),
            want.len()
        );
    }
}

fn std_client(server: &ServerThread) -> StdStream {
    let s = StdStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send `msg`, read exactly as many bytes back.
fn round_trip(s: &mut StdStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut reply = vec![0; msg.len()];
    s.read_exact(&mut reply).unwrap();
    reply
}

/// The server must have closed `s`: end-of-file or a reset, within a few
/// seconds. A read that times out means the connection was left open.
fn assert_closed_by_server(s: &mut StdStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: {n} more bytes instead of the end"),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) => {}
        Err(e) => panic!("{what}: the connection was left open ({e})"),
    }
}

#[test]
fn a_thousand_clients_at_once_each_get_exactly_their_bytes() {
    const CLIENTS: usize = 1000;
    // Both ends of every connection live in this process.
    rlimit::increase_nofile_limit(4 * CLIENTS as u64).unwrap();
    let server = start();
    let addr = server.local_addr();
    let right = Rc::new(Cell::new(0usize));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let right = right.clone();
            spawn(move || -> io::Result<()> {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(20))?;
                s.set_read_timeout(Some(Duration::from_secs(20)))?;
                for round in 0..3u32 {
                    // Each client's bytes differ, and some exceed one 1024-byte read.
                    let len = 1 + (i * 7 + round as usize * 500) % 3000;
                    let msg: Vec<u8> = (0..len).map(|k| ((k + i) % 256) as u8).collect();
                    s.write_all(&msg)?;
                    let mut reply = vec![0; len];
                    s.read_exact(&mut reply)?;
                    assert_same(
                        &reply,
                        &upper_of(&msg),
                        &format!("client {i} round {round}"),
                    );
                }
                right.set(right.get() + 1);
                Ok(())
            })
        })
        .collect();
    joinall(&clients, JoinAll::new().timeout(Duration::from_secs(60))).unwrap();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    assert_eq!(right.get(), CLIENTS);
    let report = server.stop();
    assert_eq!(report.summary.connections, CLIENTS as u64);
    assert_eq!(report.panics, 0);
}

#[test]
fn a_client_reset_mid_message_does_not_disturb_the_others() {
    let server = start();
    let mut steady = std_client(&server);
    assert_eq!(round_trip(&mut steady, b"before"), b"BEFORE");

    let mut rude = std_client(&server);
    assert_eq!(round_trip(&mut rude, b"hello"), b"HELLO");
    rude.write_all(b"unread reply").unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the reply lands, unread
    rude.write_all(b"half a mess").unwrap();
    drop(rude); // unread data in its buffer: the kernel sends RST, not FIN

    for i in 0..20 {
        let msg = format!("still here {i}");
        assert_eq!(
            round_trip(&mut steady, msg.as_bytes()),
            msg.to_uppercase().as_bytes()
        );
    }
    let mut late = std_client(&server);
    assert_eq!(round_trip(&mut late, b"late"), b"LATE");
    drop((steady, late));
    std::thread::sleep(Duration::from_millis(100));
    let report = server.stop();
    assert_eq!(report.summary.connections, 3);
    assert!(
        report.summary.errors >= 1,
        "the reset was not counted: {report:?}"
    );
}

#[test]
fn half_close_still_gets_every_pending_reply() {
    let server = start();
    let mut s = std_client(&server);
    let sent: Vec<u8> = (0..200_000u32)
        .map(|i| b"abcxyz\n"[i as usize % 7])
        .collect();
    s.write_all(&sent).unwrap();
    s.shutdown(Shutdown::Write).unwrap(); // "no more from me", replies still welcome
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap(); // ends when the server closes after the last reply
    assert_same(&got, &upper_of(&sent), "replies after half-close");
}

#[test]
fn binary_and_non_utf8_come_back_byte_exact_with_only_ascii_letters_changed() {
    let server = start();
    let mut s = std_client(&server);
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let reply = round_trip(&mut s, &all);
    for (sent, got) in all.iter().zip(&reply) {
        if sent.is_ascii_lowercase() {
            assert_eq!(*got, sent - 32);
        } else {
            assert_eq!(got, sent, "byte {sent:#04x} changed");
        }
    }
    assert_eq!(
        round_trip(&mut s, "café ÿ ß".as_bytes()),
        "CAFé ÿ ß".as_bytes()
    );
}

#[test]
fn a_slow_reader_does_not_make_the_server_buffer_without_bound() {
    let server = start();
    let mut s = std_client(&server);
    s.set_nonblocking(true).unwrap();
    const PATTERN: &[u8] = b"slow reader ";
    // Byte `p` of the stream is always PATTERN[p % 12], whatever partial
    // writes happen: each write starts at the right phase of the pattern.
    let chunk: Vec<u8> = (0..64 * 1024 + 12).map(|i| PATTERN[i % 12]).collect();
    // Write without reading until the pipe stays full: the server must stop
    // reading once its replies cannot be sent, so our writes stall.
    let cap: usize = 256 << 20;
    let mut written = 0usize;
    let mut stalled_since: Option<Instant> = None;
    loop {
        match s.write(&chunk[written % 12..]) {
            Ok(n) => {
                written += n;
                stalled_since = None;
                assert!(
                    written < cap,
                    "wrote {written} bytes without reading and the server kept taking them"
                );
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    // What was taken fits in the kernel's socket buffers (a few MiB each
    // way) plus the handler's one chunk: nothing grew without bound.
    assert!(
        written < 64 << 20,
        "{written} bytes went in before writes stalled"
    );
    // And every byte of it comes back.
    s.set_nonblocking(false).unwrap();
    let mut got = vec![0u8; written];
    s.read_exact(&mut got).unwrap();
    let sent: Vec<u8> = (0..written).map(|p| PATTERN[p % 12]).collect();
    assert_same(&got, &upper_of(&sent), "slow reader's replies");
}

/// A handler with a bug: it panics on the word "boom".
fn fragile(stream: &mut TcpStream, echoed: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        assert!(
            !buf[..n].windows(4).any(|w| w == b"boom"),
            "the handler met a boom"
        );
        upper(&mut buf[..n]);
        stream.write_all(&buf[..n])?;
        *echoed += n as u64;
    }
}

#[test]
fn a_handler_that_panics_is_reported_and_the_server_keeps_serving() {
    let server = ServerThread::start("127.0.0.1:0", fragile).unwrap();
    let mut before = std_client(&server);
    assert_eq!(round_trip(&mut before, b"fine"), b"FINE");

    let mut victim = std_client(&server);
    victim.write_all(b"boom").unwrap();
    // Its connection is closed: EOF (or a reset), never a reply.
    assert_closed_by_server(&mut victim, "the panicking handler's client");

    assert_eq!(round_trip(&mut before, b"still fine"), b"STILL FINE");
    let mut after = std_client(&server);
    assert_eq!(round_trip(&mut after, b"new"), b"NEW");
    drop((before, after));
    let report = server.stop();
    assert_eq!(report.panics, 1);
    assert!(
        report
            .log
            .iter()
            .any(|l| l.contains("panicked") && l.contains("boom")),
        "{:?}",
        report.log
    );
}

#[test]
fn the_same_handler_serves_a_std_stream_in_a_thread() {
    // The "patching" lesson: the handler is generic over Read + Write.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut echoed = 0;
        serve_upper(&mut stream, &mut echoed).unwrap();
        echoed
    });
    let mut s = StdStream::connect(addr).unwrap();
    assert_eq!(round_trip(&mut s, b"threads too"), b"THREADS TOO");
    drop(s);
    assert_eq!(server.join().unwrap(), 11);
}

#[test]
fn stopping_the_server_closes_the_connections_still_open() {
    let server = start();
    let mut open = std_client(&server);
    assert_eq!(round_trip(&mut open, b"open"), b"OPEN");
    let report = server.stop();
    assert_eq!(report.summary.connections, 1);
    assert_eq!(report.summary.bytes, 4);
    // The greenlet serving it was unwound and its stream dropped: EOF.
    assert_closed_by_server(&mut open, "a connection open at stop");
}

#[test]
fn a_connection_that_gets_no_greenlet_is_closed_and_the_server_goes_on() {
    // A stack no machine can map: every connection greenlet fails to start,
    // as they would past vm.max_map_count. That must close the connection,
    // not take the server down.
    let server = EchoServer::bind("127.0.0.1:0")
        .unwrap()
        .quiet()
        .stack_size(1 << 46);
    let addr = server.local_addr();
    let stop = server.stop_handle();
    let counters = server.counters();
    let serving = spawn(move || server.serve());
    for i in 0..3 {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("client {i}: expected the connection closed, got {other:?}"),
        }
    }
    stop.stop();
    let summary = serving.join().expect("the server survives");
    assert_eq!((summary.connections, summary.errors), (3, 3));
    let log = counters.log();
    assert_eq!(log.len(), 1, "one line per episode: {log:?}");
    assert!(log[0].contains("cannot serve"), "{log:?}");
}
