//! The network listings as sub-commands of the stage binary: `echo-server`,
//! `echo-load`, `echo-threads`, `echo-client`, `hello-bye`, `crawl`,
//! `handshakes`, `serve-site`, `echo-bench`. Each parses its options, runs one listing and reports
//! failure as one line (the binary exits non-zero).

use std::error::Error;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use harness::report::human_seconds;
use harness::{CommonArgs, Output, Report};
use mio::Interest;

use super::handshakes::{handshakes, Settings as HandshakeSettings};
use super::{
    check_replies, crawl_and_compare, crawl_offline, load_row, no_reply_at_all, raise_open_files,
    CommandError, NOTES_URLS,
};
use crate::crawl::site::LessonSites;
use crate::crawl::tls::Tls;
use crate::crawl::{Client, Timeouts};
use crate::echo::bench::{self, BenchPlan};
use crate::echo::cpu::CpuTime;
use crate::echo::load::{hub_clients, Load};
use crate::echo::server::EchoServer;
use crate::echo::stats::{LoadSummary, ServerSummary};
use crate::echo::threads::{thread_clients, ThreadServer};
use crate::echo::tokio_server::TokioServer;
use crate::echo::{client, Flavor};
use crate::hub::io::Registration;
use crate::lesson::STAGE;

/// The network listings, as sub-commands of the stage binary.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Serve the upper-case echo protocol until SIGINT/SIGTERM: a greenlet per connection (or --flavor threads|tokio).
    EchoServer(EchoServerArgs),
    /// N clients in one hub ping-pong against an echo server: messages/s, latency, errors.
    EchoLoad(EchoLoadArgs),
    /// The notes' 500-thread client: one OS thread and blocking socket per client.
    EchoThreads(EchoThreadsArgs),
    /// Interactive client: each line typed is sent and the reply printed; EOF ends it.
    EchoClient(EchoClientArgs),
    /// The notes' from-memory exchange: a hub server says hello, thread clients say bye.
    HelloBye(HelloByeArgs),
    /// Fetch http:// and https:// URLs at once, then one by one (no URLs: crawl an offline local site).
    Crawl(CrawlArgs),
    /// Five TLS handshakes (rustls, unchanged) at once and one by one: why there is no monkey patch.
    Handshakes(HandshakesArgs),
    /// Serve the offline site (HTTPS pages, http:// redirects to them) until SIGINT/SIGTERM.
    ServeSite(ServeSiteArgs),
    /// Every echo server in its own process under echo-load: messages/s, latency, peak RSS.
    EchoBench(EchoBenchArgs),
}

/// `echo-server`.
#[derive(Debug, Args)]
pub struct EchoServerArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Which server: our hub, a thread per connection, or tokio current-thread.
    #[arg(long, value_enum, default_value = "hub")]
    pub flavor: Flavor,
}

/// Most clients a load may run: each needs a local port of its own.
const MAX_CLIENTS: u64 = 65_535;
/// Most client threads: one OS thread (and its stack) each.
const MAX_THREADS: u64 = 10_000;
/// Largest message, in bytes (the server echoes it in 1024-byte reads).
const MAX_SIZE: u64 = 65_536;
/// Largest process id Linux hands out (`PID_MAX_LIMIT` on 64-bit).
const MAX_PID: i64 = 4_194_304;

/// `echo-load`.
#[derive(Debug, Args)]
pub struct EchoLoadArgs {
    /// The echo server.
    #[arg(long)]
    pub addr: String,
    /// Concurrent clients, one greenlet each [range: 1..=65535]
    #[arg(long, default_value_t = 500, value_parser = harness::cli::count(1..=MAX_CLIENTS))]
    pub clients: usize,
    /// Seconds of ping-pong once every client is connected [range: 0.001..=3600]
    #[arg(long, default_value = "5", value_parser = harness::cli::seconds(0.001..=3600.0))]
    pub seconds: Duration,
    /// Bytes per message [range: 1..=65536]
    #[arg(long, default_value_t = 64, value_parser = harness::cli::count(1..=MAX_SIZE))]
    pub size: usize,
    /// The server's process id, if it runs on this machine: its CPU time is
    /// read over the same span as the clients' own and reported beside it
    /// (`--json`: `server_cpu`, `load_cpu`), which tells whether the
    /// server or this load generator set the rate (echo-bench passes it)
    /// [range: 1..=4194304]
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..=MAX_PID))]
    pub server_pid: Option<u32>,
}

/// `echo-threads`.
#[derive(Debug, Args)]
pub struct EchoThreadsArgs {
    /// The echo server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Client threads [range: 1..=10000]
    #[arg(long, default_value_t = 500, value_parser = harness::cli::count(1..=MAX_THREADS))]
    pub clients: usize,
    /// Seconds of ping-pong [range: 0.001..=3600]
    #[arg(long, default_value = "5", value_parser = harness::cli::seconds(0.001..=3600.0))]
    pub seconds: Duration,
    /// Bytes per message [range: 1..=65536]
    #[arg(long, default_value_t = 64, value_parser = harness::cli::count(1..=MAX_SIZE))]
    pub size: usize,
}

/// `echo-client`.
#[derive(Debug, Args)]
pub struct EchoClientArgs {
    /// The echo server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
}

/// `hello-bye`.
#[derive(Debug, Args)]
pub struct HelloByeArgs {
    /// Client threads [default: the notes' 500, or 50 with --quick] [range: 1..=1000]
    #[arg(long, value_parser = harness::cli::count(1..=1000))]
    pub clients: Option<usize>,
    /// Rounds of hello and bye per client [range: 1..=1000]
    #[arg(long, default_value_t = 2, value_parser = harness::cli::count(1..=1000))]
    pub rounds: usize,
}

/// `crawl`.
#[derive(Debug, Args)]
#[command(
    after_help = "Redirects (301, 302, 303, 307, 308) are followed as `requests` follows \
them, each hop shown. A URL counts as failed when no HTTP answer came (a 404 is an answer); the \
crawl exits 1 if any URL failed, saying how many, and compares the two crawls only over the URLs \
that answered both ways."
)]
pub struct CrawlArgs {
    /// http:// or https:// URLs; none: start a local site (HTTPS behind http:// redirects) that answers with delays.
    pub urls: Vec<String>,
    /// Crawl the notes' five sites (`http://www.baidu.com` and four more); needs a network.
    #[arg(long, conflicts_with = "urls")]
    pub notes: bool,
    /// Also trust the certificate authorities in this PEM file (e.g. the one `serve-site` writes).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The most redirects one URL may take.
    #[arg(long, default_value_t = crate::crawl::MAX_REDIRECTS as u16, value_parser = clap::value_parser!(u16).range(0..=100))]
    pub max_redirects: u16,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Seconds to wait for each read.
    #[arg(long, default_value_t = 10.0)]
    pub read_timeout: f64,
    /// Seconds the whole answer may take, however it trickles in.
    #[arg(long, default_value_t = 60.0)]
    pub answer_timeout: f64,
}

/// `handshakes`.
#[derive(Debug, Args)]
pub struct HandshakesArgs {
    /// Handshakes in each run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub count: u16,
    /// Milliseconds the server waits before its first flight (a stand-in network round trip) [default: 100; --quick: 20].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub round_trip_ms: Option<u64>,
}

/// `serve-site`.
#[derive(Debug, Args)]
pub struct ServeSiteArgs {
    /// Where to write the site's certificate authority (PEM), for `crawl --ca-file`.
    #[arg(long, value_name = "FILE")]
    pub ca_out: PathBuf,
    /// Pages to serve: /page/1 .. /page/N.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pages: u16,
    /// Page i answers after i times this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub step_ms: u64,
}

/// `echo-bench`.
#[derive(Debug, Args)]
pub struct EchoBenchArgs {
    /// Client counts to measure, comma-separated [default: 500,10000; --quick: 50,500]
    /// [range: 1..=65535]
    #[arg(long, value_delimiter = ',', value_parser = harness::cli::count(1..=MAX_CLIENTS))]
    pub clients: Vec<usize>,
    /// Seconds each load runs [default: 5; --quick: 1] [range: 0.001..=3600]
    #[arg(long, value_parser = harness::cli::seconds(0.001..=3600.0))]
    pub seconds: Option<Duration>,
    /// Bytes per message [range: 1..=65536]
    #[arg(long, default_value_t = 64, value_parser = harness::cli::count(1..=MAX_SIZE))]
    pub size: usize,
    /// Servers to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub flavors: Vec<Flavor>,
    /// Runs of each server at each count, the order rotating each turn;
    /// reports show the median turn and each turn's rate
    /// [default: 3; --quick: 1] [range: 1..=20]
    #[arg(long, value_parser = harness::cli::count(1..=MAX_TURNS))]
    pub turns: Option<usize>,
}

/// Most turns of echo-bench: each is a run of every server at every count.
const MAX_TURNS: u64 = 20;

fn seconds(s: f64, what: &str) -> Result<Duration, CommandError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CommandError(format!(
                "{what} must be a positive number of seconds, not {s}"
            ))
        })
}

/// The address `echo-server` is to listen on, or a line saying why `addr`
/// is not one.
fn listen_addr(addr: &str) -> Result<SocketAddr, CommandError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CommandError(format!(
                "`{addr}` is not an address to listen on: give HOST:PORT with a port up to \
                 65535, e.g. 127.0.0.1:8080 (port 0 picks a free one)"
            ))
        })
}

/// Why a server could not listen on `addr`, in one line: the system's
/// reason and, for the usual ones, what to do.
pub(crate) fn bind_failed(addr: SocketAddr, e: &io::Error) -> CommandError {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            ": another program listens there; stop it or pick another port (0 picks a free one)"
        }
        io::ErrorKind::PermissionDenied => {
            ": ports below 1024 need root (or CAP_NET_BIND_SERVICE); pick a port from 1024 up"
        }
        io::ErrorKind::AddrNotAvailable => {
            ": no interface of this machine has that address; try 127.0.0.1 or 0.0.0.0"
        }
        _ => "",
    };
    CommandError(format!("cannot listen on {addr}: {e}{hint}"))
}

fn socket_addr(addr: &str) -> Result<SocketAddr, CommandError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CommandError(format!(
                "`{addr}` is not an address to connect to (try 127.0.0.1:8080)"
            ))
        })
}

/// `pid`, if its CPU time can be read (`--server-pid`).
fn watched(pid: u32) -> Result<u32, CommandError> {
    match CpuTime::of(pid) {
        Some(_) => Ok(pid),
        None => Err(CommandError(format!(
            "--server-pid {pid}: no process {pid} whose CPU time can be read \
             (/proc/{pid}/stat); give the running server's id, or leave the option out"
        ))),
    }
}

impl NetCommand {
    /// Run the sub-command. An `Err` is the one line the binary prints
    /// before exiting non-zero (a wrong echo reply is one).
    pub fn run(self, common: &CommonArgs) -> Result<(), Box<dyn Error>> {
        let out = common.output();
        match self {
            NetCommand::EchoServer(a) => {
                // As many descriptors as the hard limit allows: one per client.
                let _ = rlimit::increase_nofile_limit(u64::MAX);
                let addr = listen_addr(&a.addr)?;
                let summary = match a.flavor {
                    Flavor::Hub => serve_hub(addr, out)?,
                    Flavor::Threads => {
                        let server =
                            ThreadServer::start(addr).map_err(|e| bind_failed(addr, &e))?;
                        // Watch for signals before saying where we listen:
                        // whoever reads that line may send SIGTERM at once.
                        let stopper = server.stopper();
                        on_signal(move || stopper.stop())?;
                        out.say(format!("listening on {}", server.local_addr()));
                        server.wait()
                    }
                    Flavor::Tokio => {
                        let server = TokioServer::start(addr).map_err(|e| bind_failed(addr, &e))?;
                        // Watch for signals before saying where we listen:
                        // whoever reads that line may send SIGTERM at once.
                        let stopper = server.stopper();
                        on_signal(move || stopper.stop())?;
                        out.say(format!("listening on {}", server.local_addr()));
                        server.wait()?
                    }
                };
                out.say(format!("echo server stopped: {summary}"));
                Ok(())
            }
            NetCommand::EchoLoad(a) => {
                let load = Load {
                    addr: socket_addr(&a.addr)?,
                    clients: a.clients,
                    size: a.size,
                    duration: a.seconds,
                    watch: a.server_pid.map(watched).transpose()?,
                };
                raise_open_files(load.clients as u64 + 64)?;
                let ticks = (load.duration.as_millis() / 100) as u64;
                let bar = out.progress(ticks, format!("echo-load: {} clients", load.clients));
                let summary = hub_clients(&load, &mut |t| {
                    bar.set_position((t.as_millis() / 100) as u64)
                })?;
                bar.finish_and_clear();
                no_reply_at_all(load.addr, &summary)?;
                report_load(out, "hub clients", &summary);
                check_replies(&summary)
            }
            NetCommand::EchoThreads(a) => {
                let addr = socket_addr(&a.addr)?;
                raise_open_files(a.clients as u64 + 64)?;
                out.say(format!(
                    "{} client threads for {} ...",
                    a.clients,
                    human_seconds(a.seconds.as_secs_f64())
                ));
                let start = std::time::Instant::now();
                let tally = thread_clients(addr, a.clients, a.size, a.seconds)?;
                let summary = tally.summary(a.clients, a.size, start.elapsed());
                no_reply_at_all(addr, &summary)?;
                report_load(out, "thread clients", &summary);
                check_replies(&summary)
            }
            NetCommand::EchoClient(a) => {
                let addr = socket_addr(&a.addr)?;
                let stdin = io::stdin();
                let sent = client::interactive(addr, stdin.lock(), &mut |reply| out.say(reply))
                    .map_err(|e| CommandError(format!("echo-client, talking to {addr}: {e}")))?;
                out.say(format!("sent {sent} lines; bye"));
                Ok(())
            }
            NetCommand::HelloBye(a) => {
                let clients = a.clients.unwrap_or(if common.quick { 50 } else { 500 });
                raise_open_files(2 * clients as u64 + 64)?;
                let lines = client::hello_bye(clients, a.rounds, move |line| out.say(line))?;
                out.say(format!(
                    "{} lines from {clients} clients and their server greenlets, interleaved as they happened",
                    lines.len()
                ));
                Ok(())
            }
            NetCommand::Crawl(a) => {
                let timeouts = Timeouts {
                    connect: seconds(a.connect_timeout, "--connect-timeout")?,
                    read: seconds(a.read_timeout, "--read-timeout")?,
                    answer: seconds(a.answer_timeout, "--answer-timeout")?,
                };
                let client = Client {
                    timeouts,
                    tls: match &a.ca_file {
                        Some(path) => Tls::with_ca_file(path)?,
                        None => Tls::bundled(),
                    },
                    max_redirects: usize::from(a.max_redirects),
                };
                let urls: Vec<String> = if a.notes {
                    NOTES_URLS.iter().map(|u| u.to_string()).collect()
                } else {
                    a.urls
                };
                let mut report = Report::new(STAGE, out);
                if urls.is_empty() {
                    crawl_offline(common.quick, &mut report)?;
                    report.finish();
                    return Ok(());
                }
                let outcome = crawl_and_compare(&urls, &client, &mut report, None);
                report.finish();
                match outcome.failure() {
                    Some(failure) => Err(Box::new(CommandError(failure))),
                    None => Ok(()),
                }
            }
            NetCommand::Handshakes(a) => {
                let mut settings = HandshakeSettings::new(common.quick);
                settings.handshakes = usize::from(a.count);
                if let Some(ms) = a.round_trip_ms {
                    settings.round_trip = Duration::from_millis(ms);
                }
                let mut report = Report::new(STAGE, out);
                handshakes(settings, &mut report)?;
                report.finish();
                Ok(())
            }
            NetCommand::ServeSite(a) => {
                let sites =
                    LessonSites::start(usize::from(a.pages), Duration::from_millis(a.step_ms))?;
                std::fs::write(&a.ca_out, sites.ca.pem()).map_err(|e| {
                    CommandError(format!("cannot write --ca-out {}: {e}", a.ca_out.display()))
                })?;
                let (stop, stopped) = std::sync::mpsc::channel();
                on_signal(move || {
                    let _ = stop.send(());
                })?;
                let pages = format!("/page/{{1..{}}}", a.pages);
                out.say(format!("HTTPS pages: {}", sites.https.url(&pages)));
                out.say(format!("redirects to them: {}", sites.http.url(&pages)));
                out.say(format!(
                    "certificate authority: {} (crawl --ca-file {} URL...); page i answers after \
                     i x {} ms; SIGINT or SIGTERM stops",
                    a.ca_out.display(),
                    a.ca_out.display(),
                    a.step_ms
                ));
                let _ = stopped.recv();
                drop(sites);
                out.say("site stopped");
                Ok(())
            }
            NetCommand::EchoBench(a) => {
                let plan = BenchPlan {
                    clients: if a.clients.is_empty() {
                        if common.quick {
                            vec![50, 500]
                        } else {
                            vec![500, 10_000]
                        }
                    } else {
                        a.clients
                    },
                    seconds: a
                        .seconds
                        .map_or(if common.quick { 1.0 } else { 5.0 }, |d| d.as_secs_f64()),
                    size: a.size,
                    flavors: if a.flavors.is_empty() {
                        Flavor::ALL.to_vec()
                    } else {
                        a.flavors
                    },
                    turns: a.turns.unwrap_or(if common.quick { 1 } else { 3 }),
                };
                let measured = bench::run(&bench::stage_binary()?, &plan, out)?;
                let mut report = Report::new(STAGE, out);
                report.push_rows(
                    Some(&format!(
                        "Echo servers under echo-load, each in its own process ({})",
                        LoadSummary::ROW_COLUMNS
                    )),
                    bench::rows(STAGE, &measured),
                );
                out.table(bench::table(&measured));
                out.table(bench::ratio_lines(&measured));
                let wrong: u64 = measured.iter().map(|m| m.load.wrong_replies).sum();
                report.finish();
                if wrong > 0 {
                    return Err(Box::new(CommandError(format!(
                        "{wrong} echo replies were wrong"
                    ))));
                }
                Ok(())
            }
        }
    }
}

/// Print a load run's line (or its JSON row).
fn report_load(out: Output, who: &str, summary: &LoadSummary) {
    out.say(format!("{who}: {summary}"));
    let mut report = Report::new(STAGE, out);
    report.push_rows(
        Some(&format!("{who} ({})", LoadSummary::ROW_COLUMNS)),
        vec![load_row(
            &format!("{} {who}", summary.clients),
            None,
            summary,
        )],
    );
}

// ANCHOR: serve_hub
/// `echo-server` on the hub: print the address, serve, and let a greenlet
/// that waits for SIGINT/SIGTERM (a signal pipe registered with the hub, like
/// any socket) stop the server.
fn serve_hub(addr: SocketAddr, out: Output) -> Result<ServerSummary, Box<dyn Error>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let server = EchoServer::bind(addr).map_err(|e| bind_failed(addr, &e))?;
    // Set up before serving: once clients use every descriptor there would
    // be none left for the signal pipe.
    let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
    let registration = Registration::new(&mut signals, Interest::READABLE)?;
    out.say(format!("listening on {}", server.local_addr()));
    let stop = server.stop_handle();
    let _watcher = crate::hub::spawn(move || -> io::Result<()> {
        loop {
            if signals.pending().next().is_some() {
                stop.stop();
                return Ok(());
            }
            registration.wait(Interest::READABLE, None)?;
        }
    });
    Ok(server.serve())
}
// ANCHOR_END: serve_hub

/// For the thread and tokio servers: a thread that waits for SIGINT/SIGTERM.
fn on_signal(stop: impl FnOnce() + Send + 'static) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop();
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_failure_names_the_address_the_reason_and_what_to_do() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        for (kind, hint) in [
            (io::ErrorKind::AddrInUse, "pick another port"),
            (io::ErrorKind::PermissionDenied, "below 1024 need root"),
            (io::ErrorKind::AddrNotAvailable, "no interface"),
        ] {
            let line = bind_failed(addr, &io::Error::from(kind)).to_string();
            assert!(
                line.starts_with("cannot listen on 127.0.0.1:80: "),
                "{line}"
            );
            assert!(line.contains(hint) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn a_malformed_address_is_named() {
        for bad in ["nonsense", "127.0.0.1:99999", "127.0.0.1"] {
            let line = listen_addr(bad).unwrap_err().to_string();
            assert!(line.contains(&format!("`{bad}`")), "{line}");
        }
    }
}
