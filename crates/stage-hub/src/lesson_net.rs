//! The network half of the lesson: the part the whole lesson runs at its
//! end — one thread serving 500 clients, and a crawl done at once and one
//! page at a time — and its sub-commands ([`NetCommand`], in `commands.rs`).

mod commands;
mod crawl;
pub mod handshakes;

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use harness::{Report, Row};

pub use commands::{
    CrawlArgs, EchoBenchArgs, EchoClientArgs, EchoLoadArgs, EchoServerArgs, EchoThreadsArgs,
    HandshakesArgs, HelloByeArgs, NetCommand, ServeSiteArgs,
};
pub use crawl::{crawl_and_compare, crawl_offline, CrawlOutcome, NOTES_URLS};
pub use handshakes::{handshakes, HandshakeTimes};

use crate::echo::load::{hub_clients, Load};
use crate::echo::protocol::serve_upper;
use crate::echo::server::ServerThread;
use crate::echo::stats::LoadSummary;
use crate::echo::threads::thread_clients;
use crate::lesson::STAGE;
use crate::net::TcpStream;

/// A failure a sub-command reports as its one line.
#[derive(Debug)]
pub struct CommandError(pub String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for CommandError {}

/// Make room for `needed` open files, or say how.
pub(crate) fn raise_open_files(needed: u64) -> Result<(), CommandError> {
    let got = rlimit::increase_nofile_limit(needed)
        .map_err(|e| CommandError(format!("cannot raise the open-file limit: {e}")))?;
    if got < needed {
        return Err(CommandError(format!(
            "this needs {needed} open files but the limit is {got}: raise the hard limit \
             (`ulimit -Hn {needed}` as root, or LimitNOFILE= in a service) and run again"
        )));
    }
    Ok(())
}

/// A load in which no client got a single reply measured nothing: say why
/// in one line (the first failed connection's reason), instead of a table
/// of infinite times.
pub(crate) fn no_reply_at_all(addr: SocketAddr, summary: &LoadSummary) -> Result<(), CommandError> {
    if summary.messages + summary.wrong_replies > 0 {
        return Ok(()); // replies came, right or wrong: check_replies judges them
    }
    Err(CommandError(match &summary.first_failure {
        Some(reason) if summary.failed_connections == summary.clients as u64 => format!(
            "cannot connect to {addr}: {reason}; is the echo server running there? \
             (`stage-hub echo-server --addr {addr}` starts one)"
        ),
        Some(reason) => format!(
            "none of the {} clients got a reply from {addr} ({} failed connections, the first: {reason})",
            summary.clients, summary.failed_connections
        ),
        None => format!(
            "none of the {} clients got a reply from {addr} in {:.3} s: is it an echo server, \
             and is --seconds long enough?",
            summary.clients, summary.seconds
        ),
    }))
}

pub(crate) fn check_replies(summary: &LoadSummary) -> Result<(), Box<dyn Error>> {
    if summary.wrong_replies > 0 {
        return Err(Box::new(CommandError(format!(
            "{} replies were not the upper-cased message: the server is wrong",
            summary.wrong_replies
        ))));
    }
    Ok(())
}

/// A harness row for a load run ([`LoadSummary::row`]).
pub fn load_row(case: &str, baseline: Option<&str>, s: &LoadSummary) -> Row {
    s.row(STAGE, "echo-load", case, baseline)
}

/// How big the network part of the lesson is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetSettings {
    /// Echo clients of each kind.
    pub clients: usize,
    /// How long each kind ping-pongs.
    pub echo_for: Duration,
    /// Pages of the offline site.
    pub pages: usize,
    /// Page `i` answers after `i` times this.
    pub page_step: Duration,
}

impl NetSettings {
    /// 500 clients for 3 s each way and pages of 0.1 s to 0.5 s, or, with
    /// `--quick`, 50 clients for 0.5 s and pages five times faster.
    pub fn new(quick: bool) -> NetSettings {
        if quick {
            NetSettings {
                clients: 50,
                echo_for: Duration::from_millis(500),
                pages: 5,
                page_step: Duration::from_millis(20),
            }
        } else {
            NetSettings {
                clients: 500,
                echo_for: Duration::from_secs(3),
                pages: 5,
                page_step: Duration::from_millis(100),
            }
        }
    }
}

/// The network part of the lesson, run at the end of the whole lesson:
/// the echo server with greenlet clients and thread clients, the offline
/// crawl, then five TLS handshakes at once and one by one.
pub fn run(quick: bool, report: &mut Report) -> Result<(), Box<dyn Error>> {
    echo_lesson(NetSettings::new(quick), report)?;
    crawl_offline(quick, report)?;
    handshakes(handshakes::Settings::new(quick), report)?;
    Ok(())
}

// ANCHOR: echo_lesson
/// One hub server thread; first `clients` greenlet clients in this thread's
/// hub, then as many OS-thread clients, against it.
pub fn echo_lesson(s: NetSettings, report: &mut Report) -> Result<(), Box<dyn Error>> {
    let out = report.output();
    out.say(format!(
        "\n## One thread serves {} clients: the upper-case echo server",
        s.clients
    ));
    raise_open_files(2 * s.clients as u64 + 64)?;
    let server = ServerThread::start("127.0.0.1:0", serve_upper::<TcpStream>)?;
    let addr = server.local_addr();
    out.say(format!(
        "a hub server listens on {addr}, one greenlet per connection"
    ));
    let load = Load {
        addr,
        clients: s.clients,
        size: 64,
        duration: s.echo_for,
        watch: None,
    };
    let greenlets = hub_clients(&load, &mut |_| {})?;
    out.say(format!("  {} greenlet clients: {greenlets}", s.clients));
    // Blocking threads must not run on the hub's thread: hand them to the pool.
    let (n, d) = (s.clients, s.echo_for);
    let start = std::time::Instant::now();
    let tally = crate::hub::spawn_blocking(move || thread_clients(addr, n, 64, d))??;
    let threads = tally.summary(n, 64, start.elapsed());
    out.say(format!("  {} thread clients: {threads}", s.clients));
    let served = server.stop();
    out.say(format!("  the server: {}", served.summary));
    no_reply_at_all(addr, &greenlets)?;
    no_reply_at_all(addr, &threads)?;
    let hub_case = format!("{} clients, one greenlet each", s.clients);
    let thread_case = format!("{} clients, one thread each", s.clients);
    report.push_rows(
        Some(&format!(
            "Echo round trips: clients in one hub vs a thread per client ({})",
            LoadSummary::ROW_COLUMNS
        )),
        vec![
            load_row(&thread_case, None, &threads),
            load_row(&hub_case, Some(&thread_case), &greenlets),
        ],
    );
    report.headline(
        format!("one thread serves {} echo clients", s.clients),
        format!(
            "{:.0} messages/s to greenlet clients, {:.0}/s to thread clients, {} wrong",
            greenlets.messages_per_s,
            threads.messages_per_s,
            greenlets.wrong_replies + threads.wrong_replies
        ),
        None,
    );
    check_replies(&greenlets)?;
    check_replies(&threads)
}
// ANCHOR_END: echo_lesson
