//! The stackless peer: the same echo server on tokio's current-thread
//! runtime, the choice a Rust user would make today. One thread, like the
//! hub; each connection is a future (a state machine of its own size)
//! instead of a greenlet (a stack of at least a page).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::protocol::{upper, CHUNK};
use super::stats::ServerSummary;
use super::threads::{Backoff, Stopper};

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// A running tokio current-thread echo server, on a thread of its own.
#[derive(Debug)]
pub struct TokioServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    runtime: Option<JoinHandle<io::Result<()>>>,
}

impl TokioServer {
    /// Bind `addr` and serve on a new thread running a current-thread runtime.
    pub fn start(addr: impl ToSocketAddrs) -> io::Result<TokioServer> {
        let listener = crate::net::std_listener(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let runtime = {
            let (stop, counters) = (stop.clone(), counters.clone());
            thread::Builder::new()
                .name("tokio-echo".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_io()
                        .enable_time()
                        .build()?;
                    rt.block_on(serve(listener, stop, counters))
                })?
        };
        Ok(TokioServer {
            addr,
            stop,
            counters,
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops it from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            addr: self.addr,
            stop: self.stop.clone(),
        }
    }

    /// Serve until stopped, then return the summary.
    pub fn wait(mut self) -> io::Result<ServerSummary> {
        if let Some(rt) = self.runtime.take() {
            rt.join()
                .map_err(|_| io::Error::other("the tokio server thread panicked"))??;
        }
        Ok(self.summary())
    }

    /// Stop and return the summary.
    pub fn stop(self) -> io::Result<ServerSummary> {
        self.stopper().stop();
        self.wait()
    }

    fn summary(&self) -> ServerSummary {
        ServerSummary {
            connections: self.counters.connections.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            self.stopper().stop();
            let _ = rt.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut backoff = Backoff::default();
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(pause) = backoff.failed(&e) {
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        backoff.succeeded();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // The same socket options as the hub's and the thread server's
        // connections, so the comparison is of the runtimes alone.
        let _ = stream.set_nodelay(true);
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; CHUNK];
            let result: io::Result<()> = async {
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    upper(&mut buf[..n]);
                    stream.write_all(&buf[..n]).await?;
                    counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            .await;
            if result.is_err() {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Give connections a moment to finish what they were writing.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn tokio_server_upper_cases() {
        let server = TokioServer::start("127.0.0.1:0").unwrap();
        let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"abc\xff").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ABC\xff");
        drop(s);
        let summary = server.stop().unwrap();
        assert_eq!(summary.connections, 1);
    }
}
