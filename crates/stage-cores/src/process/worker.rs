//! The worker side: what the re-executed program does.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::{Report, WORKER_ARG};
use crate::server::{self, Flavor, ServerConfig};
use crate::work::{self, Work};

/// How often a serving worker sends its counts (when they changed).
pub const REPORT_EVERY: Duration = Duration::from_millis(200);

/// A worker's command line (after [`WORKER_ARG`]).
#[derive(Debug, Parser)]
#[command(name = "__cores-worker")]
struct WorkerCli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Run TASKS CPU tasks of ITERATIONS each in this process's hub; print their sum.
    Cpu {
        #[arg(long)]
        tasks: u64,
        #[arg(long)]
        iterations: u64,
    },
    /// Serve the echo protocol on ADDR until stdin closes, reporting on stdout.
    Echo {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, value_enum)]
        flavor: Flavor,
        #[arg(long)]
        hubs: usize,
        #[arg(long)]
        work: u64,
    },
}

/// The arguments that start a CPU worker.
pub fn cpu_args(tasks: u64, iterations: u64) -> Vec<String> {
    vec![
        WORKER_ARG.into(),
        "cpu".into(),
        format!("--tasks={tasks}"),
        format!("--iterations={iterations}"),
    ]
}

/// The arguments that start an echo worker.
pub fn echo_args(addr: SocketAddr, config: &ServerConfig) -> Vec<String> {
    vec![
        WORKER_ARG.into(),
        "echo".into(),
        format!("--addr={addr}"),
        format!("--flavor={}", config.flavor.name()),
        format!("--hubs={}", config.hubs),
        format!("--work={}", config.work.iterations),
    ]
}

/// If this process was started as a worker, be one and return its exit
/// code; otherwise `None`, and `main` goes on as usual.
pub fn main_if_worker() -> Option<ExitCode> {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(WORKER_ARG)) {
        return None;
    }
    let cli = match WorkerCli::try_parse_from(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("worker: {}", e.render().to_string().trim());
            return Some(ExitCode::from(2));
        }
    };
    let result = match cli.role {
        Role::Cpu { tasks, iterations } => cpu(tasks, iterations),
        Role::Echo {
            addr,
            flavor,
            hubs,
            work,
        } => echo(
            addr,
            &ServerConfig {
                flavor,
                hubs,
                work: Work::new(work),
            },
        ),
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    })
}

/// CPU tasks, one greenlet each, in this process's one hub: they take turns.
fn cpu(tasks: u64, iterations: u64) -> io::Result<()> {
    stage_hub::set_blocking_threshold(None); // they hold the hub on purpose
    let handles: Vec<_> = (0..tasks)
        .map(|_| stage_hub::spawn(move || work::task(iterations)))
        .collect();
    stage_hub::joinall(&handles, stage_hub::JoinAll::new()).map_err(io::Error::other)?;
    let mut sum = 0u64;
    for h in handles {
        sum += h.join().map_err(io::Error::other)?;
    }
    writeln!(io::stdout().lock(), "{sum}")
}

/// Send one report line. A supervisor that is gone (its end of the pipe
/// closed) is not an error worth a panic: the worker is stopping anyway.
fn send(report: &Report) {
    if let Ok(line) = serde_json::to_string(report) {
        let _ = writeln!(io::stdout().lock(), "{line}");
    }
}

// ANCHOR: echo_worker
/// Serve until stdin reaches end-of-file (the supervisor closed it, or
/// died), sending counts as they change and the final counts at the end.
fn echo(addr: SocketAddr, config: &ServerConfig) -> io::Result<()> {
    // As many descriptors as the hard limit allows: one per client.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let running = server::start(addr, config)?;
    send(&Report::Ready {
        pid: std::process::id(),
    });
    let counters = running.counters();
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let done = done.clone();
        thread::Builder::new()
            .name("reporter".into())
            .spawn(move || {
                let mut last = counters.summary();
                while !done.load(Ordering::Acquire) {
                    thread::sleep(REPORT_EVERY);
                    let now = counters.summary();
                    if now != last {
                        send(&Report::Counts(now));
                        last = now;
                    }
                }
            })?
    };
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Err(e) if e.kind() != io::ErrorKind::Interrupted => break,
            _ => {}
        }
    }
    done.store(true, Ordering::Release);
    let _ = reporter.join();
    send(&Report::Stopped(running.stop()));
    Ok(())
}
// ANCHOR_END: echo_worker
