//! A split stream is full duplex: one greenlet reads while another writes,
//! gevent's pattern of two greenlets sharing a socket.

use std::io::{BufRead, BufReader, Read, Write};

use stage_hub::net::{TcpListener, TcpStream};
use stage_hub::{spawn, Handle};

/// Bytes each side sends: far more than the kernel buffers both ways, so a
/// side that wrote everything before reading anything would deadlock with
/// its peer doing the same.
const BYTES: usize = 8 << 20;

/// Write `BYTES` in one greenlet while another reads `BYTES` from the same
/// connection; returns (bytes read, checksum of them).
fn full_duplex(stream: TcpStream, seed: u8) -> Handle<std::io::Result<(usize, u64)>> {
    spawn(move || {
        let (mut read, mut write) = stream.into_split();
        let writer = spawn(move || -> std::io::Result<()> {
            let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i as u8) ^ seed).collect();
            let mut sent = 0;
            while sent < BYTES {
                write.write_all(&chunk)?;
                sent += chunk.len();
            }
            write.shutdown()
        });
        let mut got = 0usize;
        let mut sum = 0u64;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = read.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n;
            sum = buf[..n]
                .iter()
                .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
        }
        writer.join().map_err(std::io::Error::other)??;
        Ok((got, sum))
    })
}

fn checksum_of(seed: u8) -> u64 {
    let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i as u8) ^ seed).collect();
    let mut sum = 0u64;
    for _ in 0..BYTES / chunk.len() {
        sum = chunk
            .iter()
            .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
    }
    sum
}

#[test]
fn both_ends_read_and_write_at_once_through_split_halves() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        full_duplex(conn, 0x5a).join().unwrap()
    });
    let client = full_duplex(TcpStream::connect(addr).unwrap(), 0x33);
    let (client_got, client_sum) = client.join().unwrap().unwrap();
    let (server_got, server_sum) = server.join().unwrap().unwrap();
    assert_eq!((client_got, server_got), (BYTES, BYTES));
    assert_eq!(
        client_sum,
        checksum_of(0x5a),
        "the client read what the server wrote"
    );
    assert_eq!(
        server_sum,
        checksum_of(0x33),
        "the server read what the client wrote"
    );
}

#[test]
fn halves_work_with_bufread_and_write_and_reunite() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = spawn(move || -> std::io::Result<Vec<String>> {
        let (conn, _) = listener.accept()?;
        let (read, mut write) = conn.into_split();
        let mut lines = Vec::new();
        for line in BufReader::new(read).lines() {
            let line = line?;
            writeln!(write, "{}", line.to_uppercase())?;
            lines.push(line);
        }
        Ok(lines)
    });
    let (read_a, write_a) = TcpStream::connect(addr).unwrap().into_split();
    let (read_b, write_b) = TcpStream::connect(addr).unwrap().into_split();
    // Halves of two different streams do not reunite: both come back.
    let (read_a, write_b) = TcpStream::reunite(read_a, write_b).unwrap_err();
    drop((read_b, write_b));
    let mut a = TcpStream::reunite(read_a, write_a)
        .unwrap_or_else(|_| panic!("halves of one stream reunite"));
    writeln!(a, "hello").unwrap();
    writeln!(a, "bye").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let replies: Vec<String> = BufReader::new(&mut a).lines().map(Result::unwrap).collect();
    assert_eq!(replies, ["HELLO", "BYE"]);
    assert_eq!(echo.join().unwrap().unwrap(), ["hello", "bye"]);
}

/// Write into a peer that never reads until a write fails; the error and
/// how many bytes went before it. Bounded: a peer's buffers hold a few MiB.
fn write_until_it_fails(mut write: impl Write) -> (std::io::Error, usize) {
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    while sent < 256 << 20 {
        match write.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => return (e, sent),
        }
    }
    panic!("{sent} bytes went to a peer that reads nothing");
}

#[test]
fn a_stream_and_its_halves_keep_each_side_s_timeout() {
    use std::io::ErrorKind::TimedOut;
    use std::time::Duration;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The server accepts two connections and neither reads nor writes.
    let server = spawn(move || {
        let first = listener.accept().unwrap();
        let second = listener.accept().unwrap();
        stage_hub::sleep(Duration::from_secs(30));
        drop((first, second));
    });
    let short = Some(Duration::from_millis(100));

    let mut whole = TcpStream::connect(addr).unwrap();
    whole.set_write_timeout(short).unwrap();
    let (e, sent) = write_until_it_fails(&mut whole);
    assert_eq!(e.kind(), TimedOut, "{e}");
    assert!(sent > 0 && e.to_string() == "write timed out", "{e}");

    let (mut read, mut write) = TcpStream::connect(addr).unwrap().into_split();
    read.set_read_timeout(short).unwrap();
    write.set_write_timeout(short).unwrap();
    let e = read.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string()),
        (TimedOut, "read timed out".into())
    );
    let (e, sent) = write_until_it_fails(&mut write);
    assert_eq!(
        (e.kind(), e.to_string()),
        (TimedOut, "write timed out".into())
    );
    assert!(sent > 0);
    server.kill();
}
