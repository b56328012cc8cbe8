//! A local web site for the crawler to fetch offline: pages that answer
//! after a delay (so waiting can overlap), and the misbehaving peers a real
//! crawler meets — one that stalls, one that resets, one that sends garbage.
//!
//! It runs on plain threads, outside any hub: it stands in for the internet,
//! and the lesson is about the crawler.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
    /// Accept, read the request, never answer.
    Stall,
    /// Answer 200 with a long body, one byte every `every`, so that no
    /// single read ever times out.
    Drip {
        /// The pause between two bytes.
        every: Duration,
    },
    /// Accept and reset the connection without answering.
    Reset,
    /// Answer with bytes that are not HTTP.
    Garbage,
}

/// A running local site; stops when dropped.
#[derive(Debug)]
pub struct Site {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Site {
    /// Serve `routes` (path → behaviour) on 127.0.0.1, on a port of its own.
    /// Any other path gets a 404.
    pub fn start(routes: Vec<(String, Behaviour)>) -> io::Result<Site> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
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
                        let (routes, stop) = (routes.clone(), stop.clone());
                        let _ = thread::Builder::new().spawn(move || {
                            let _ = answer(stream, &routes, &stop);
                        });
                    }
                })?
        };
        Ok(Site {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The lesson's site: `pages` pages answering after growing delays
    /// (`step`, 2×`step`, …), with the body sizes the notes' crawl received.
    pub fn delayed_pages(pages: usize, step: Duration) -> io::Result<Site> {
        const SIZES: [usize; 3] = [49_312, 79_330, 510_966];
        let routes = (1..=pages)
            .map(|i| {
                let page = Behaviour::Page {
                    delay: step * i as u32,
                    bytes: SIZES[(i - 1) % SIZES.len()],
                };
                (format!("/page/{i}"), page)
            })
            .collect();
        Site::start(routes)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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

fn answer(
    mut stream: TcpStream,
    routes: &[(String, Behaviour)],
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // Peek rather than read: a socket closed with unread bytes resets.
    let mut head = [0u8; 4096];
    let n = stream.peek(&mut head)?;
    let path = request_path(&head[..n]).unwrap_or_default();
    let behaviour = routes
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| b.clone());
    if behaviour == Some(Behaviour::Reset) {
        return Ok(()); // dropped with the request unread: the kernel sends RST
    }
    read_head(&mut stream)?;
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

/// Read until the blank line that ends a request head (GETs have no body).
fn read_head(stream: &mut TcpStream) -> io::Result<()> {
    let mut seen = Vec::new();
    let mut byte = [0u8; 512];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&byte[..n]);
        if seen.len() > 64 * 1024 {
            break;
        }
    }
    Ok(())
}
