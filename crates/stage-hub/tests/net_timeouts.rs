//! Cooperative sockets: timeouts fire, waiting never blocks the other
//! greenlets, host names resolve off the hub.

mod black_hole;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use black_hole::black_hole;
use stage_hub::net::{TcpListener, TcpStream};
use stage_hub::{sleep, spawn};

#[test]
fn connect_timeout_fires() {
    let (listener, _fillers) = black_hole();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    let err = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn read_timeout_fires_and_the_hub_keeps_running_meanwhile() {
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = quiet.local_addr().unwrap();
    let ticks = Rc::new(Cell::new(0u32));
    let done = Rc::new(Cell::new(false));
    let ticker = {
        let (ticks, done) = (ticks.clone(), done.clone());
        spawn(move || {
            while !done.get() {
                sleep(Duration::from_millis(20));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    let _held = quiet.accept().unwrap(); // accepted, never written to
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let ticks_before = ticks.get();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // While we waited for bytes, the other greenlet kept waking up. Its
    // 20 ms timer is due before the read's 250 ms one, so it ticks at least
    // once even on a machine too busy to run us for the whole 250 ms.
    assert!(
        ticks.get() > ticks_before,
        "no tick while the read waited ({ticks_before} before, {} after)",
        ticks.get()
    );
    done.set(true);
    ticker.join().unwrap();
    assert!(
        s.set_read_timeout(Some(Duration::ZERO)).is_err(),
        "a zero timeout is refused, as in std"
    );
}

#[test]
fn connect_by_host_name_resolves_on_the_blocking_pool() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hi").unwrap();
    });
    let mut s = TcpStream::connect(("localhost".to_string(), port)).unwrap();
    let mut got = [0u8; 2];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    server.join().unwrap();
}

#[test]
fn connecting_where_nobody_listens_is_refused() {
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_listener_and_its_clients_share_one_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let mut served = 0;
        for conn in listener.incoming().take(3) {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 8];
            let n = conn.read(&mut buf).unwrap();
            conn.write_all(&buf[..n]).unwrap();
            conn.shutdown(std::net::Shutdown::Both).unwrap();
            served += 1;
        }
        served
    });
    for i in 0..3u8 {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.write_all(&[i]).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, [i]);
    }
    assert_eq!(server.join().unwrap(), 3);
}

#[test]
fn a_read_after_a_peek_sees_the_bytes_the_peek_waited_for() {
    // A short read leaves the stream expecting a fresh readiness edge before
    // its next read; a peek that waits consumes that edge. The read after
    // the peek must still find the bytes instead of waiting for an edge
    // that already came (here it would time out rather than hang).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"a").unwrap();
        std::thread::sleep(Duration::from_millis(50)); // so the peek has to wait
        conn.write_all(b"b").unwrap();
        let mut end = [0u8; 1];
        let _ = conn.read(&mut end); // hold the connection until the client closes
    });
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 1, "a short read: 'a'");
    assert_eq!(s.peek(&mut buf).unwrap(), 1, "the peek waits for 'b'");
    let n = s.read(&mut buf).expect("the bytes the peek saw");
    assert_eq!(&buf[..n], b"b");
    drop(s);
    peer.join().unwrap();
}
