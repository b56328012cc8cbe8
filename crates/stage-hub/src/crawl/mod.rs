//! The crawler: fetch many pages at once in one thread, one greenlet per
//! URL, then the same pages one after another, and compare.
//!
//! While one greenlet waits for a slow server, the others send their
//! requests and read their answers: the waits overlap, so the concurrent
//! crawl takes about as long as the slowest page, the sequential one the sum.

pub mod http;
pub mod site;

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use http::{exchange, FetchError, Response, Url};

use crate::hub;
use crate::net::{resolve, TcpStream};

/// How long the crawler waits before calling a URL dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP connect, per address.
    pub connect: Duration,
    /// For each read (and write) once connected.
    pub read: Duration,
    /// For the whole answer, however it trickles in: a server that sends a
    /// byte just inside every read timeout would otherwise hold a fetch for
    /// ever.
    pub answer: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            answer: Duration::from_secs(60),
        }
    }
}

/// One URL's outcome.
#[derive(Debug)]
pub struct Fetched {
    /// The URL as given.
    pub url: String,
    /// The answer, or why there is none.
    pub result: Result<Response, FetchError>,
    /// From the start of the fetch to its end.
    pub elapsed: Duration,
}

impl fmt::Display for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        match &self.result {
            Ok(r) => write!(
                f,
                "{} bytes received from {} ({} {}) in {ms:.0} ms",
                r.body_bytes, self.url, r.status, r.reason
            ),
            Err(e) => write!(f, "{} failed after {ms:.0} ms: {e}", self.url),
        }
    }
}

// ANCHOR: fetch
/// Fetch one URL: resolve (off the hub thread), connect, send the `GET`,
/// read the answer. Every wait is cooperative; every step has a timeout,
/// and so has the whole answer.
pub fn fetch(url: &str, timeouts: Timeouts) -> Fetched {
    let start = Instant::now();
    let result = Url::parse(url).and_then(|parsed| {
        let mut stream = connect(&parsed, timeouts)?;
        stream
            .set_read_timeout(Some(timeouts.read))
            .and_then(|()| stream.set_write_timeout(Some(timeouts.read)))
            .map_err(FetchError::Io)?;
        match hub::with_timeout(timeouts.answer, || exchange(&mut stream, &parsed)) {
            Ok(answer) => answer,
            Err(e) if e.is_timeout() => Err(FetchError::TimedOut("receiving the answer")),
            Err(e) => Err(FetchError::Io(std::io::Error::other(e.to_string()))),
        }
    });
    Fetched {
        url: url.to_string(),
        result,
        elapsed: start.elapsed(),
    }
}
// ANCHOR_END: fetch

fn connect(url: &Url, timeouts: Timeouts) -> Result<TcpStream, FetchError> {
    let addrs = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => resolve((url.host.clone(), url.port)).map_err(FetchError::Resolve)?,
    };
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeouts.connect) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = Some(FetchError::TimedOut("connecting"))
            }
            Err(e) => last = Some(FetchError::Connect(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        FetchError::Resolve(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} resolved to no address", url.host),
        ))
    }))
}

/// What one crawl produced: every URL's outcome, in the order given, and
/// the wall-clock time of the whole crawl.
#[derive(Debug)]
pub struct Crawl {
    /// One per URL, in the order the URLs were given.
    pub fetched: Vec<Fetched>,
    /// Start to end of the crawl.
    pub elapsed: Duration,
}

impl Crawl {
    /// URLs that answered (any status).
    pub fn answered(&self) -> usize {
        self.fetched.iter().filter(|f| f.result.is_ok()).count()
    }

    /// Body bytes received in all.
    pub fn bytes(&self) -> u64 {
        self.fetched
            .iter()
            .filter_map(|f| f.result.as_ref().ok())
            .map(|r| r.body_bytes)
            .sum()
    }
}

// ANCHOR: concurrent
/// Fetch every URL at once, a greenlet each; each greenlet hands its
/// outcome to `done` as soon as it has it (fastest first). Must run inside
/// the hub.
pub fn crawl_concurrent<F: FnMut(&Fetched) + 'static>(
    urls: &[String],
    timeouts: Timeouts,
    done: F,
) -> Crawl {
    let start = Instant::now();
    let done = Rc::new(RefCell::new(done));
    let greenlets: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let done = done.clone();
            hub::spawn(move || {
                let fetched = fetch(&url, timeouts);
                (done.borrow_mut())(&fetched);
                fetched
            })
        })
        .collect();
    let fetched = greenlets
        .into_iter()
        .zip(urls)
        .map(|(greenlet, url)| {
            greenlet.join().unwrap_or_else(|e| Fetched {
                url: url.clone(),
                result: Err(FetchError::Io(std::io::Error::other(format!(
                    "the fetching greenlet failed: {e}"
                )))),
                elapsed: start.elapsed(),
            })
        })
        .collect();
    Crawl {
        fetched,
        elapsed: start.elapsed(),
    }
}
// ANCHOR_END: concurrent

/// Fetch the URLs one after another, each waiting for the one before.
pub fn crawl_sequential(
    urls: &[String],
    timeouts: Timeouts,
    mut done: impl FnMut(&Fetched),
) -> Crawl {
    let start = Instant::now();
    let fetched = urls
        .iter()
        .map(|url| {
            let f = fetch(url, timeouts);
            done(&f);
            f
        })
        .collect();
    Crawl {
        fetched,
        elapsed: start.elapsed(),
    }
}
