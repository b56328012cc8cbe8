//! The lesson's protocol: read up to 1024 bytes, send them back upper-cased.
//!
//! Written once, for anything that is `Read + Write`. A `std::net::TcpStream`
//! in a thread and our [`crate::net::TcpStream`] in a greenlet both run this
//! very function: that is the Rust shape of gevent's monkey-patching. Python
//! swaps the socket module under unchanged code; Rust hands unchanged generic
//! code a different stream.

use std::io::{self, ErrorKind, Read, Write};

/// How many bytes one read takes at most, as the notes' `recv(1024)`.
pub const CHUNK: usize = 1024;

// ANCHOR: upper
/// Upper-case ASCII letters in place and leave every other byte alone, as
/// Python's `bytes.upper` does: `b"caf\xc3\xa9 42"` becomes
/// `b"CAF\xc3\xa9 42"`. Non-UTF-8 input is fine: bytes are bytes.
///
/// ```
/// let mut msg = *b"hi \xff\xfe z!";
/// stage_hub::echo::protocol::upper(&mut msg);
/// assert_eq!(&msg, b"HI \xff\xfe Z!");
/// ```
pub fn upper(bytes: &mut [u8]) {
    bytes.make_ascii_uppercase();
}
// ANCHOR_END: upper

// ANCHOR: handler
/// Serve one connection until the peer closes it: read up to [`CHUNK`]
/// bytes, upper-case them, write every one of them back, repeat.
///
/// `echoed` counts the bytes written back, so a caller still knows how much
/// was served when the connection ends in an error. The handler holds at
/// most one chunk: while the peer is slow to read, `write_all` waits and no
/// more is read, so a slow reader cannot make the server buffer without
/// bound.
pub fn serve_upper<S: Read + Write + ?Sized>(stream: &mut S, echoed: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; CHUNK];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()), // the peer closed (or shut its write side)
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        upper(&mut buf[..n]);
        stream.write_all(&buf[..n])?; // continues a partial write, never drops
        *echoed += n as u64;
    }
}
// ANCHOR_END: handler

/// Whether an error only means the peer went away (reset, broken pipe):
/// worth counting, not worth a log line per connection.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake stream: reads come from `input`, writes go to `output`, and
    /// every write accepts at most 3 bytes (a partial write each time).
    struct Trickle {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn only_ascii_letters_change() {
        let mut all: Vec<u8> = (0..=255).collect();
        upper(&mut all);
        for (i, b) in all.iter().enumerate() {
            let i = i as u8;
            let want = if i.is_ascii_lowercase() { i - 32 } else { i };
            assert_eq!(*b, want, "byte {i:#x}");
        }
    }

    #[test]
    fn partial_writes_are_continued_and_every_byte_comes_back() {
        let input: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = Trickle {
            input: io::Cursor::new(input.clone()),
            output: Vec::new(),
        };
        let mut echoed = 0;
        serve_upper(&mut stream, &mut echoed).unwrap();
        let mut want = input;
        upper(&mut want);
        assert_eq!(stream.output, want);
        assert_eq!(echoed, 5000);
    }
}
