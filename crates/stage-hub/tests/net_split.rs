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
