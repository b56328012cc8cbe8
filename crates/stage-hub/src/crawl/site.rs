//! A local web site for the crawler to fetch offline: pages that answer
//! after a delay (so waiting can overlap), redirects, HTTPS with a
//! certificate made at run time, and the misbehaving peers a real crawler
//! meets — one that stalls, one that resets, one that sends garbage, one
//! that never finishes its TLS handshake.
//!
//! It runs on plain threads, outside any hub: it stands in for the internet,
//! and the lesson is about the crawler.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::cert::{LocalCa, Validity};

/// What the site does for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Wait `delay`, then answer 200 with a body of `bytes` bytes.
    Page {
        /// How long the "server" takes to answer.
        delay: Duration,
        /// Body size.
        bytes: usize,
    },
    /// Answer `status` (301, 302, …) with this `Location`.
    Redirect {
        /// The redirect's status.
        status: u16,
        /// Where it points, as sent (absolute or relative).
        location: String,
    },
    /// Accept, read the request, never answer.
    Stall,
    /// Answer 200 with a long body, one byte every `every`, so that no
    /// single read ever times out.
    Drip {
        /// The pause between two bytes.
        every: Duration,
    },
    /// Accept and reset the connection without answering (over TLS: close
    /// it without answering).
    Reset,
    /// Answer with bytes that are not HTTP.
    Garbage,
}

/// How the site speaks.
#[derive(Debug, Clone, Default)]
pub enum Protocol {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTPS with this server configuration (see [`cert::Identity`](super::cert::Identity)).
    Https(Arc<ServerConfig>),
    /// Accept, read what comes, and never send a byte: to a TLS client, a
    /// server stalled in the middle of the handshake.
    Silent,
}

/// A site's protocol and its pace.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plain, HTTPS or silent.
    pub protocol: Protocol,
    /// How long after accepting a connection the server starts answering
    /// it (for HTTPS: its first handshake flight): a stand-in for a network
    /// round trip, which a TLS 1.3 handshake costs one of.
    pub first_flight_delay: Duration,
}

/// A running local site; stops when dropped.
#[derive(Debug)]
pub struct Site {
    addr: SocketAddr,
    scheme: &'static str,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Site {
    /// Serve `routes` (path → behaviour) over plain HTTP on 127.0.0.1, on a
    /// port of its own. Any other path gets a 404.
    pub fn start(routes: Vec<(String, Behaviour)>) -> io::Result<Site> {
        Site::start_with(routes, Options::default())
    }

    /// Serve `routes` as [`Options`] say.
    pub fn start_with(routes: Vec<(String, Behaviour)>, options: Options) -> io::Result<Site> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let scheme = match options.protocol {
            Protocol::Https(_) | Protocol::Silent => "https",
            Protocol::Http => "http",
        };
        let acceptor = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("local-site".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (routes, stop, options) =
                            (routes.clone(), stop.clone(), options.clone());
                        let _ = thread::Builder::new().spawn(move || {
                            let _ = serve(stream, &routes, &stop, &options);
                        });
                    }
                })?
        };
        Ok(Site {
            addr,
            scheme,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The lesson's site: `pages` pages answering after growing delays
    /// (`step`, 2×`step`, …), with the body sizes the notes' crawl received.
    pub fn delayed_pages(pages: usize, step: Duration) -> io::Result<Site> {
        Site::start(delayed_routes(pages, step))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The body sizes the notes' crawl received (python.org, github.com,
/// yahoo.com), given to the offline pages in turn.
pub const NOTES_SIZES: [usize; 3] = [49_312, 79_330, 510_966];

/// `/page/1` … `/page/{pages}`: page `i` answers after `i` × `step`.
pub fn delayed_routes(pages: usize, step: Duration) -> Vec<(String, Behaviour)> {
    (1..=pages)
        .map(|i| {
            let page = Behaviour::Page {
                delay: step * i as u32,
                bytes: NOTES_SIZES[(i - 1) % NOTES_SIZES.len()],
            };
            (format!("/page/{i}"), page)
        })
        .collect()
}

/// The offline lesson's web: an HTTPS site with the delayed pages, under a
/// certificate authority made for this run, and a plain HTTP site whose
/// pages redirect (301) to their HTTPS twins — as the notes' `http://`
/// sites send a browser to `https://`.
#[derive(Debug)]
pub struct LessonSites {
    /// The authority that signed the HTTPS site's certificate.
    pub ca: LocalCa,
    /// The pages themselves, over HTTPS.
    pub https: Site,
    /// `http://…/page/i`, each a redirect to `https://…/page/i`.
    pub http: Site,
    pages: usize,
}

impl LessonSites {
    /// Start both sites: `pages` pages, page `i` answering after `i` ×
    /// `step`.
    pub fn start(pages: usize, step: Duration) -> io::Result<LessonSites> {
        let ca = LocalCa::new("stage-hub offline site CA").map_err(io::Error::other)?;
        let config = ca
            .issue(&["127.0.0.1", "localhost"], Validity::Always)
            .map_err(io::Error::other)?
            .server_config()
            .map_err(io::Error::other)?;
        let https = Site::start_with(
            delayed_routes(pages, step),
            Options {
                protocol: Protocol::Https(config),
                ..Options::default()
            },
        )?;
        let redirects = (1..=pages)
            .map(|i| {
                let path = format!("/page/{i}");
                let to = Behaviour::Redirect {
                    status: 301,
                    location: https.url(&path),
                };
                (path, to)
            })
            .collect();
        let http = Site::start(redirects)?;
        Ok(LessonSites {
            ca,
            https,
            http,
            pages,
        })
    }

    /// The URLs to crawl: the plain ones, which redirect to HTTPS.
    pub fn urls(&self) -> Vec<String> {
        (1..=self.pages)
            .map(|i| self.http.url(&format!("/page/{i}")))
            .collect()
    }
}

fn serve(
    stream: TcpStream,
    routes: &[(String, Behaviour)],
    stop: &AtomicBool,
    options: &Options,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    thread::sleep(options.first_flight_delay);
    match &options.protocol {
        Protocol::Http => serve_plain(stream, routes, stop),
        Protocol::Https(config) => {
            let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
            let mut tls = StreamOwned::new(conn, stream);
            // The handshake happens inside the first read.
            let head = read_head(&mut tls)?;
            let behaviour = route(routes, &head);
            if behaviour != Some(Behaviour::Reset) {
                respond(&mut tls, behaviour, stop)?;
            }
            tls.conn.send_close_notify();
            tls.flush()
        }
        Protocol::Silent => {
            let mut stream = stream;
            let mut sink = [0u8; 4096];
            let until = Instant::now() + Duration::from_secs(60);
            stream.set_read_timeout(Some(Duration::from_millis(20)))?;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                match stream.read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }
}

fn serve_plain(
    mut stream: TcpStream,
    routes: &[(String, Behaviour)],
    stop: &AtomicBool,
) -> io::Result<()> {
    // Peek rather than read: a socket closed with unread bytes resets.
    let mut head = [0u8; 4096];
    let n = stream.peek(&mut head)?;
    let behaviour = route(routes, &head[..n]);
    if behaviour == Some(Behaviour::Reset) {
        return Ok(()); // dropped with the request unread: the kernel sends RST
    }
    let head = read_head(&mut stream)?;
    if request_path(&head).is_none() {
        // Not HTTP (a TLS ClientHello, say): answer as a web server does.
        return stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    }
    respond(&mut stream, behaviour, stop)
}

fn route(routes: &[(String, Behaviour)], head: &[u8]) -> Option<Behaviour> {
    let path = request_path(head).unwrap_or_default();
    routes
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| b.clone())
}

fn respond<S: Write>(
    stream: &mut S,
    behaviour: Option<Behaviour>,
    stop: &AtomicBool,
) -> io::Result<()> {
    match behaviour {
        Some(Behaviour::Page { delay, bytes }) => {
            thread::sleep(delay);
            let body = vec![b'x'; bytes];
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
            )?;
            stream.write_all(&body)?;
        }
        Some(Behaviour::Redirect { status, location }) => write!(
            stream,
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
        Some(Behaviour::Stall) => {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
        }
        Some(Behaviour::Drip { every }) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n"
            )?;
            let until = Instant::now() + Duration::from_secs(60);
            // Until the client gives up (the write fails) or the site stops.
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                stream.write_all(b"x")?;
                stream.flush()?;
                thread::sleep(every);
            }
        }
        Some(Behaviour::Garbage) => {
            stream.write_all(b"\x00\x01garbage, not HTTP at all\r\n\r\n")?
        }
        Some(Behaviour::Reset) => {}
        None => {
            let body = b"no such page\n";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
    }
    stream.flush()
}

/// The path of a request head, if the head parses.
fn request_path(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    req.path.map(str::to_string)
}

/// Read until the blank line that ends a request head (GETs have no body),
/// or until what came cannot be an HTTP request; return what was read.
fn read_head<S: Read>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut byte = [0u8; 512];
    let is_http = |seen: &[u8]| {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        httparse::Request::new(&mut headers).parse(seen).is_ok()
    };
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && (seen.is_empty() || is_http(&seen)) {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&byte[..n]);
        if seen.len() > 64 * 1024 {
            break;
        }
    }
    Ok(seen)
}
