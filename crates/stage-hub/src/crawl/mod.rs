//! The crawler: fetch many pages at once in one thread, one greenlet per
//! URL, then the same pages one after another, and compare.
//!
//! While one greenlet waits for a slow server, the others send their
//! requests and read their answers: the waits overlap, so the concurrent
//! crawl takes about as long as the slowest page, the sequential one the sum.
//!
//! `http://` and `https://` take one code path: connect, let [`tls::Tls`]
//! wrap the stream (or not), run the one HTTP exchange over it, and follow
//! redirects as `requests` does.
//!
//! # Layout
//!
//! - `mod.rs`: [`fetch`] (one URL, redirects followed) and the two crawls.
//! - [`url`]: `http`/`https` URLs and resolving a `Location` against them.
//! - [`http`]: the HTTP/1.1 exchange over any `Read + Write`.
//! - [`tls`]: rustls's blocking stream around the hub's `TcpStream`.
//! - [`error`]: [`FetchError`], why a URL failed.
//! - [`cert`]: a certificate authority made at run time, for the offline site.
//! - [`site`]: the offline site (plain and HTTPS) and its misbehaving pages.

pub mod cert;
pub mod error;
pub mod http;
pub mod site;
pub mod tls;
pub mod url;

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use error::FetchError;
use http::{exchange, Response};
use tls::Tls;
use url::Url;

use crate::hub;
use crate::net::{resolve, TcpStream};

/// How long the crawler waits before calling a URL dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For resolving the host name, and for the TCP connect, per address.
    pub connect: Duration,
    /// For each read (and write) once connected, the TLS handshake's too.
    pub read: Duration,
    /// For each answer (handshake included), however it trickles in: a
    /// server that sends a byte just inside every read timeout would
    /// otherwise hold a fetch for ever.
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

/// Everything a fetch needs besides the URL: timeouts, what TLS trusts,
/// and how many redirects to follow.
#[derive(Debug, Clone)]
pub struct Client {
    /// When to give up.
    pub timeouts: Timeouts,
    /// The TLS configuration for `https://` URLs.
    pub tls: Tls,
    /// The most redirects one fetch follows ([`MAX_REDIRECTS`] by default).
    pub max_redirects: usize,
}

/// How many redirects a fetch follows by default before giving up.
pub const MAX_REDIRECTS: usize = 10;

impl Default for Client {
    fn default() -> Self {
        Client {
            timeouts: Timeouts::default(),
            tls: Tls::bundled(),
            max_redirects: MAX_REDIRECTS,
        }
    }
}

/// One redirect on the way to the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The URL that answered with a redirect.
    pub from: Url,
    /// Its status (301, 302, 303, 307 or 308).
    pub status: u16,
    /// Where it sent us (its `Location`, resolved).
    pub to: Url,
}

/// One URL's outcome.
#[derive(Debug)]
pub struct Fetched {
    /// The URL as given.
    pub url: String,
    /// The redirects followed, in order (empty if none).
    pub hops: Vec<Hop>,
    /// The final answer, or why there is none.
    pub result: Result<Response, FetchError>,
    /// From the start of the fetch to its end.
    pub elapsed: Duration,
    /// From the start of the whole crawl to the end of this fetch.
    pub done_after: Duration,
}

impl Fetched {
    /// The URL that gave the final answer (the given one, or where the
    /// redirects led).
    pub fn final_url(&self) -> String {
        self.hops
            .last()
            .map_or_else(|| self.url.clone(), |hop| hop.to.to_string())
    }
}

impl fmt::Display for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        match &self.result {
            Ok(r) => write!(
                f,
                "{} bytes received from {} ({} {}) in {ms:.0} ms",
                r.body_bytes, self.url, r.status, r.reason
            )?,
            Err(e) => write!(f, "{} failed after {ms:.0} ms: {e}", self.url)?,
        }
        for hop in &self.hops {
            write!(f, "; {} → {}", hop.status, hop.to)?;
        }
        Ok(())
    }
}

// ANCHOR: fetch
/// Fetch one URL, following redirects: for each hop resolve (off the hub
/// thread), connect, put TLS around the stream for `https://`, send the
/// `GET`, read the answer. Every wait is cooperative; every step has a
/// timeout, and so has each answer as a whole.
pub fn fetch(url: &str, client: &Client) -> Fetched {
    let start = Instant::now();
    let mut hops = Vec::new();
    let result = Url::parse(url).and_then(|first| follow(first, client, &mut hops));
    Fetched {
        url: url.to_string(),
        hops,
        result,
        elapsed: start.elapsed(),
        done_after: start.elapsed(),
    }
}

/// Fetch `url`; while the answer is a redirect, record the hop and fetch
/// where it points, as `requests` does: at most `max_redirects`, relative
/// or absolute, http to https and back; a URL seen before is a loop.
fn follow(mut url: Url, client: &Client, hops: &mut Vec<Hop>) -> Result<Response, FetchError> {
    loop {
        let response = fetch_one(&url, client)?;
        let Some(location) = &response.location else {
            return Ok(response);
        };
        let next = url.join(location)?;
        hops.push(Hop {
            from: url,
            status: response.status,
            to: next.clone(),
        });
        if hops.iter().any(|hop| hop.from == next) {
            return Err(FetchError::RedirectLoop(next.to_string()));
        }
        if hops.len() > client.max_redirects {
            return Err(FetchError::TooManyRedirects(client.max_redirects));
        }
        url = next;
    }
}

/// One request and its answer, on a connection of its own.
fn fetch_one(url: &Url, client: &Client) -> Result<Response, FetchError> {
    let timeouts = client.timeouts;
    let mut tcp = connect(url, timeouts)?;
    tcp.set_read_timeout(Some(timeouts.read))
        .and_then(|()| tcp.set_write_timeout(Some(timeouts.read)))
        .map_err(FetchError::Io)?;
    let answer = hub::with_timeout(timeouts.answer, || {
        let mut stream = client.tls.wrap(url, tcp)?;
        exchange(&mut stream, url)
    });
    match answer {
        Ok(answer) => answer,
        Err(e) if e.is_timeout() => Err(FetchError::TimedOut("receiving the answer")),
        Err(e) => Err(FetchError::Io(std::io::Error::other(e.to_string()))),
    }
}
// ANCHOR_END: fetch

fn connect(url: &Url, timeouts: Timeouts) -> Result<TcpStream, FetchError> {
    let addrs = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => {
            let target = (url.host.clone(), url.port);
            match hub::with_timeout(timeouts.connect, || resolve(target)) {
                Ok(resolved) => resolved.map_err(FetchError::Resolve)?,
                Err(e) if e.is_timeout() => {
                    return Err(FetchError::TimedOut("resolving the host name"))
                }
                Err(e) => return Err(FetchError::Resolve(std::io::Error::other(e.to_string()))),
            }
        }
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

    /// URLs that got no answer.
    pub fn failed(&self) -> usize {
        self.fetched.len() - self.answered()
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
    client: &Client,
    done: F,
) -> Crawl {
    let start = Instant::now();
    let done = Rc::new(RefCell::new(done));
    let greenlets: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let (done, client) = (done.clone(), client.clone());
            hub::spawn(move || {
                let mut fetched = fetch(&url, &client);
                fetched.done_after = start.elapsed();
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
                hops: Vec::new(),
                result: Err(FetchError::Io(std::io::Error::other(format!(
                    "the fetching greenlet failed: {e}"
                )))),
                elapsed: start.elapsed(),
                done_after: start.elapsed(),
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
pub fn crawl_sequential(urls: &[String], client: &Client, mut done: impl FnMut(&Fetched)) -> Crawl {
    let start = Instant::now();
    let fetched = urls
        .iter()
        .map(|url| {
            let mut f = fetch(url, client);
            f.done_after = start.elapsed();
            done(&f);
            f
        })
        .collect();
    Crawl {
        fetched,
        elapsed: start.elapsed(),
    }
}

/// The two crawls compared over the URLs that answered both ways only, so
/// that a failure's time (a refusal in a millisecond, a timeout after
/// seconds) never counts as a fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// How many URLs answered both at once and one by one.
    pub urls: usize,
    /// Those URLs at once: from the crawl's start until the last of them
    /// was done (they ran together, so the longest one sets the time).
    pub at_once: Duration,
    /// Those URLs one by one: the sum of their fetch times.
    pub one_by_one: Duration,
    /// Their body bytes (the same both ways, or the comparison says so).
    pub bytes_at_once: u64,
    /// Their body bytes one by one.
    pub bytes_one_by_one: u64,
}

impl Comparison {
    /// Compare `concurrent` and `sequential` (the same URLs in the same
    /// order) over the URLs that answered both times; `None` if none did.
    pub fn of(concurrent: &Crawl, sequential: &Crawl) -> Option<Comparison> {
        let both: Vec<(&Fetched, &Fetched)> = concurrent
            .fetched
            .iter()
            .zip(&sequential.fetched)
            .filter(|(c, s)| c.result.is_ok() && s.result.is_ok())
            .collect();
        if both.is_empty() {
            return None;
        }
        let bytes = |f: &Fetched| f.result.as_ref().map_or(0, |r| r.body_bytes);
        Some(Comparison {
            urls: both.len(),
            at_once: both.iter().map(|(c, _)| c.done_after).max()?,
            one_by_one: both.iter().map(|(_, s)| s.elapsed).sum(),
            bytes_at_once: both.iter().map(|(c, _)| bytes(c)).sum(),
            bytes_one_by_one: both.iter().map(|(_, s)| bytes(s)).sum(),
        })
    }
}
