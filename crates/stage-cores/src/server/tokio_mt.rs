//! The stackless peer on every core: tokio's multi-thread runtime with T
//! worker threads, a task per connection, the same protocol and the same
//! work per message. Its scheduler moves tasks between workers (work
//! stealing); our hubs never move a greenlet.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use stage_hub::echo::protocol::{upper, CHUNK};
use stage_hub::echo::threads::Backoff;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{listener, Counters, Running};
use crate::work::Work;

/// Start tokio's multi-thread runtime with `workers` workers serving `addr`.
pub fn start(
    addr: SocketAddr,
    workers: usize,
    work: Work,
    counters: Arc<Counters>,
) -> io::Result<Running> {
    let listener = listener::reuseport_listener(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_io()
        .enable_time()
        .thread_name("tokio-echo")
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = {
        let counters = counters.clone();
        thread::Builder::new()
            .name("tokio-echo-main".into())
            .spawn(move || -> io::Result<()> {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    tokio::select! {
                        _ = stopped => Ok(()),
                        r = accept_loop(listener, work, counters) => r,
                    }
                })?;
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
                Ok(())
            })?
    };
    Ok(Running::new(bound, counters, move || {
        let _ = stop.send(());
        if let Ok(Err(e)) = driver.join() {
            eprintln!("echo server: the tokio runtime failed: {e}");
        }
    }))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    work: Work,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                counters.error();
                if let Some(pause) = backoff.failed(&e) {
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        backoff.succeeded();
        counters.connection();
        let counters = counters.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut buf = [0u8; CHUNK];
            let result: io::Result<()> = async {
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    if work.iterations > 0 {
                        std::hint::black_box(work.run());
                    }
                    upper(&mut buf[..n]);
                    stream.write_all(&buf[..n]).await?;
                    counters.echoed(n as u64);
                }
            }
            .await;
            if result.is_err() {
                counters.error();
            }
        });
    }
}
