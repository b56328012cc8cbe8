//! Just enough HTTP/1.1 for the crawler: send a `GET`, read the answer with
//! `httparse` (never by hand), honour `Content-Length`, chunked bodies, or
//! read-to-close, and hand back a redirect's `Location` for the crawler to
//! follow.
//!
//! Generic over `Read + Write`, like the echo handler: the crawler runs it
//! over our cooperative stream, plain or wrapped in TLS, and the tests over
//! anything.

use std::io::{ErrorKind, Read, Write};

use super::error::FetchError;
use super::url::Url;

/// The largest response head we accept before calling the answer malformed.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body we keep reading (the crawler only counts bytes).
pub const MAX_BODY: u64 = 256 * 1024 * 1024;

/// The statuses a redirect is followed on, as `requests` does by default:
/// moved permanently, found, see other, temporary and permanent redirect.
pub const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// What came back: the status and how big the body was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, 200 for OK.
    pub status: u16,
    /// The reason phrase the server sent.
    pub reason: String,
    /// Body bytes received (after de-chunking); 0 for a redirect, whose
    /// body is not read.
    pub body_bytes: u64,
    /// Where a redirect points (its `Location`, as sent): set only when the
    /// status is one of [`REDIRECTS`] and the header is there.
    pub location: Option<String>,
}

/// The request we send: `GET`, HTTP/1.1, one request per connection.
pub fn request(url: &Url) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stage-hub-crawl/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority()
    )
}

// ANCHOR: exchange
/// Send the `GET` for `url` over `stream` and read the whole answer — or,
/// for a redirect, only its head: the crawler follows the `Location` on a
/// new connection and this one closes, its body unread.
pub fn exchange<S: Read + Write + ?Sized>(
    stream: &mut S,
    url: &Url,
) -> Result<Response, FetchError> {
    stream
        .write_all(request(url).as_bytes())
        .map_err(|e| FetchError::from_io(e, "sending the request"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = read_some(stream, &mut chunk, "waiting for the response head")?;
        if n == 0 {
            return Err(if buf.is_empty() {
                FetchError::Malformed("the server closed the connection without answering".into())
            } else {
                FetchError::Malformed(
                    "the connection closed in the middle of the response head".into(),
                )
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut headers);
        match head.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = head.code.unwrap_or(0);
                let reason = head.reason.unwrap_or("").to_string();
                let location = header(head.headers, "location")
                    .filter(|_| REDIRECTS.contains(&status))
                    .map(|l| l.trim().to_string());
                let body_bytes = match location {
                    Some(_) => 0,
                    None => {
                        let framing = Framing::of(head.headers, status)?;
                        read_body(stream, framing, buf[len..].to_vec())?
                    }
                };
                return Ok(Response {
                    status,
                    reason,
                    body_bytes,
                    location,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(FetchError::Malformed(format!(
                    "the response head is over {MAX_HEAD} bytes"
                )))
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => {
                return Err(FetchError::Malformed(format!(
                    "not an HTTP/1.x response ({e})"
                )))
            }
        }
    }
}
// ANCHOR_END: exchange

fn read_some<S: Read + ?Sized>(
    stream: &mut S,
    buf: &mut [u8],
    phase: &'static str,
) -> Result<usize, FetchError> {
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(FetchError::from_io(e, phase)),
        }
    }
}

/// How the body's end is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// The first header called `name`, as text (bytes that are not UTF-8 are
/// replaced, not trusted).
fn header(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

impl Framing {
    fn of(headers: &[httparse::Header<'_>], status: u16) -> Result<Framing, FetchError> {
        if status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(Framing::Length(0));
        }
        let value = |name: &str| header(headers, name).map(|v| v.trim().to_ascii_lowercase());
        if let Some(te) = value("transfer-encoding") {
            if te.split(',').any(|t| t.trim() == "chunked") {
                return Ok(Framing::Chunked);
            }
        }
        match value("content-length") {
            Some(len) => len.parse().map(Framing::Length).map_err(|_| {
                FetchError::Malformed(format!("Content-Length `{len}` is not a number"))
            }),
            None => Ok(Framing::UntilClose),
        }
    }
}

fn read_body<S: Read + ?Sized>(
    stream: &mut S,
    framing: Framing,
    mut buf: Vec<u8>,
) -> Result<u64, FetchError> {
    let mut chunk = [0u8; 16 * 1024];
    match framing {
        Framing::Length(len) if len > MAX_BODY => Err(FetchError::Malformed(format!(
            "the body would be {len} bytes, over the {MAX_BODY} we read"
        ))),
        Framing::Length(len) => {
            let mut got = buf.len() as u64;
            while got < len {
                let n = read_some(stream, &mut chunk, "reading the body")?;
                if n == 0 {
                    return Err(FetchError::Malformed(format!(
                        "the body stopped after {got} of {len} bytes"
                    )));
                }
                got += n as u64;
            }
            Ok(len)
        }
        Framing::UntilClose => {
            let mut got = buf.len() as u64;
            loop {
                let n = read_some(stream, &mut chunk, "reading the body")?;
                if n == 0 {
                    return Ok(got);
                }
                got += n as u64;
                if got > MAX_BODY {
                    return Err(FetchError::Malformed(format!(
                        "the body is over {MAX_BODY} bytes"
                    )));
                }
            }
        }
        Framing::Chunked => {
            let mut total = 0u64;
            loop {
                // Parse a chunk-size line from what we have, reading more as needed.
                let (used, size) = loop {
                    match httparse::parse_chunk_size(&buf) {
                        Ok(httparse::Status::Complete((used, size))) => break (used, size),
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                            return Err(FetchError::Malformed(
                                "a chunk-size line is too long".into(),
                            ))
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => {
                            return Err(FetchError::Malformed("a bad chunk-size line".into()))
                        }
                    }
                    let n = read_some(stream, &mut chunk, "reading a chunk")?;
                    if n == 0 {
                        return Err(FetchError::Malformed(
                            "the connection closed mid-chunk".into(),
                        ));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                buf.drain(..used);
                if size == 0 {
                    return Ok(total); // trailers, if any, are not needed
                }
                // The size is the peer's word: check it before trusting it
                // with arithmetic or memory.
                if size > MAX_BODY - total {
                    return Err(FetchError::Malformed(format!(
                        "the body is over {MAX_BODY} bytes"
                    )));
                }
                // Skip the chunk's data (only its size matters), then its CRLF.
                let mut skip = size;
                loop {
                    let have = skip.min(buf.len() as u64);
                    buf.drain(..have as usize);
                    skip -= have;
                    if skip == 0 && buf.len() >= 2 {
                        break;
                    }
                    let n = read_some(stream, &mut chunk, "reading a chunk")?;
                    if n == 0 {
                        return Err(FetchError::Malformed(
                            "the connection closed mid-chunk".into(),
                        ));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(FetchError::Malformed(
                        "a chunk does not end with CRLF".into(),
                    ));
                }
                buf.drain(..2);
                total += size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// A canned server: reads go from `answer`, writes are kept.
    struct Canned {
        answer: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Canned {
        fn new(answer: &[u8]) -> Self {
            Canned {
                answer: io::Cursor::new(answer.to_vec()),
                sent: Vec::new(),
            }
        }
    }

    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // Two bytes at a time, to exercise every partial path.
            let n = buf.len().min(2);
            self.answer.read(&mut buf[..n])
        }
    }

    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn url() -> Url {
        Url::parse("http://localhost:8080/x").unwrap()
    }

    #[test]
    fn content_length_body() {
        let mut s = Canned::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let r = exchange(&mut s, &url()).unwrap();
        assert_eq!((r.status, r.body_bytes), (200, 5));
        assert!(s
            .sent
            .starts_with(b"GET /x HTTP/1.1\r\nHost: localhost:8080\r\n"));
    }

    #[test]
    fn a_redirect_hands_back_its_location_without_reading_the_body() {
        for status in REDIRECTS {
            let answer = format!(
                "HTTP/1.1 {status} Moved\r\nLocation: /next \r\nContent-Length: 9999\r\n\r\nx"
            );
            let r = exchange(&mut Canned::new(answer.as_bytes()), &url()).unwrap();
            assert_eq!(
                (r.status, r.body_bytes, r.location.as_deref()),
                (status, 0, Some("/next"))
            );
        }
        // Not a redirect status, or no Location: an ordinary answer.
        for answer in [
            &b"HTTP/1.1 300 Multiple Choices\r\nLocation: /a\r\nContent-Length: 2\r\n\r\nab"[..],
            b"HTTP/1.1 302 Found\r\nContent-Length: 2\r\n\r\nab",
        ] {
            let r = exchange(&mut Canned::new(answer), &url()).unwrap();
            assert_eq!((r.body_bytes, r.location), (2, None));
        }
    }

    #[test]
    fn chunked_body() {
        let mut s = Canned::new(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n");
        let r = exchange(&mut s, &url()).unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body_bytes),
            (404, "Not Found", 13)
        );
    }

    #[test]
    fn sizes_the_peer_announces_are_checked_before_they_are_trusted() {
        // A chunk of 2^64 - 1 bytes once overflowed `size + 2`; a huge
        // Content-Length would have been read for as long as bytes came.
        for answer in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000001\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
        ] {
            let err = exchange(&mut Canned::new(answer), &url()).unwrap_err();
            assert!(
                err.to_string().contains("over"),
                "{err} for {:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[test]
    fn body_until_close() {
        let mut s = Canned::new(b"HTTP/1.0 200 OK\r\n\r\nabcdefg");
        assert_eq!(exchange(&mut s, &url()).unwrap().body_bytes, 7);
    }

    #[test]
    fn garbage_and_truncation_are_malformed() {
        for answer in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        ] {
            let err = exchange(&mut Canned::new(answer), &url()).unwrap_err();
            assert_eq!(
                err.kind(),
                "malformed",
                "{err} for {:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
