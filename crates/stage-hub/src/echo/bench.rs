//! `echo-bench`: every server in a process of its own, loaded by `echo-load`
//! in another, so each figure is one server's alone: messages/s, latency,
//! and the server's peak resident memory (its `VmHWM`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use harness::report::{human_bytes, Row};
use harness::Output;

use super::stats::LoadSummary;
use super::Flavor;

/// What went wrong running a benchmark process.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn err(what: impl Into<String>) -> BenchError {
    BenchError(what.into())
}

/// One server flavor at one client count, as measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Which server.
    pub flavor: Flavor,
    /// What `echo-load` reported.
    pub load: LoadSummary,
    /// The server's resident memory before any client came, bytes.
    pub idle_rss: u64,
    /// The server's peak resident memory, bytes.
    pub peak_rss: u64,
}

impl Measured {
    /// Peak memory the connections added, per connection.
    pub fn rss_per_connection(&self) -> f64 {
        self.peak_rss.saturating_sub(self.idle_rss) as f64 / self.load.clients.max(1) as f64
    }
}

/// The plan: which servers, how many clients, for how long.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Client counts, one run per server each.
    pub clients: Vec<usize>,
    /// Seconds each load runs.
    pub seconds: f64,
    /// Bytes per message.
    pub size: usize,
    /// The servers to measure.
    pub flavors: Vec<Flavor>,
}

/// Run every server at every client count. `exe` is the stage-hub binary.
pub fn run(exe: &Path, plan: &BenchPlan, out: Output) -> Result<Vec<Measured>, BenchError> {
    let mut all = Vec::new();
    for &clients in &plan.clients {
        for &flavor in &plan.flavors {
            out.say(format!(
                "echo-bench: {} server, {clients} clients, {} s ...",
                flavor.name(),
                plan.seconds
            ));
            let m = measure_one(exe, flavor, clients, plan)?;
            out.say(format!(
                "  {:.0} messages/s, p50 {} µs, p99 {} µs, server peak RSS {} ({}/connection), {} failed, {} wrong",
                m.load.messages_per_s,
                m.load.p50_us,
                m.load.p99_us,
                human_bytes(m.peak_rss),
                human_bytes(m.rss_per_connection() as u64),
                m.load.failed_connections,
                m.load.wrong_replies
            ));
            all.push(m);
        }
    }
    Ok(all)
}

/// A child that is killed if we leave early (an error, a panic): a server
/// under measurement (here, and in the book's cachegrind figures).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure_one(
    exe: &Path,
    flavor: Flavor,
    clients: usize,
    plan: &BenchPlan,
) -> Result<Measured, BenchError> {
    let mut server = Reaped(
        Command::new(exe)
            .args([
                "echo-server",
                "--flavor",
                flavor.name(),
                "--addr",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                err(format!(
                    "cannot start the {} server ({}): {e}",
                    flavor.name(),
                    exe.display()
                ))
            })?,
    );
    let pid = server.0.id();
    let stdout = server
        .0
        .stdout
        .take()
        .ok_or_else(|| err("the server's stdout was not captured"))?;
    let (addr, mut lines) = read_address(stdout)?;
    let idle_rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0) * 1024;

    let load = Command::new(exe)
        .args(["echo-load", "--json", "--addr", &addr.to_string()])
        .args([
            "--clients",
            &clients.to_string(),
            "--seconds",
            &plan.seconds.to_string(),
        ])
        .args(["--size", &plan.size.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| err(format!("cannot run echo-load: {e}")))?;
    let peak_rss = proc_status_kib(pid, "VmHWM:").unwrap_or(0) * 1024;
    let summary = String::from_utf8_lossy(&load.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("record").and_then(|r| r.as_str()) == Some("row"))
        .and_then(|v| serde_json::from_value::<LoadSummary>(v).ok())
        .ok_or_else(|| {
            err(format!(
                "echo-load against the {} server printed no result (exit {})",
                flavor.name(),
                load.status
            ))
        })?;

    // A clean stop: SIGTERM, and the server prints its summary line.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = lines.next(); // the summary line, if it came; not needed here
    Ok(Measured {
        flavor,
        load: summary,
        idle_rss,
        peak_rss,
    })
}

/// Read the server's first stdout line, "listening on ADDR"; the lines
/// after it are returned for the caller to read on.
pub fn read_address(
    stdout: ChildStdout,
) -> Result<(SocketAddr, std::io::Lines<BufReader<ChildStdout>>), BenchError> {
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .ok_or_else(|| err("the server exited before printing its address"))?
        .map_err(|e| err(format!("reading the server's address: {e}")))?;
    let addr = first
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| err(format!("the server's first line has no address: {first:?}")))?;
    Ok((addr, lines))
}

/// A `kB` figure from `/proc/<pid>/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The harness rows for the measured runs: one per server and client count,
/// compared with the thread server at the same count (see
/// [`LoadSummary::row`]: "per op" is the time per message).
pub fn rows(stage: &str, measured: &[Measured]) -> Vec<Row> {
    measured
        .iter()
        .map(|m| {
            let case = case_name(m.flavor, m.load.clients);
            let baseline =
                (m.flavor != Flavor::Threads).then(|| case_name(Flavor::Threads, m.load.clients));
            let mut row = m.load.row(stage, "echo-bench", &case, baseline.as_deref());
            row.extra.insert("server".into(), m.flavor.name().into());
            row.extra
                .insert("server_idle_rss_bytes".into(), m.idle_rss.into());
            row.extra
                .insert("server_peak_rss_bytes".into(), m.peak_rss.into());
            row.extra.insert(
                "server_rss_bytes_per_connection".into(),
                m.rss_per_connection().into(),
            );
            row
        })
        .collect()
}

fn case_name(flavor: Flavor, clients: usize) -> String {
    format!("{} server, {clients} clients", flavor.name())
}

/// A plain table of the figures the harness table leaves out.
pub fn table(measured: &[Measured]) -> String {
    let mut out = String::from(
        "\n  server    clients   messages/s   p50 µs   p99 µs   max µs   peak RSS   RSS/conn  failed  wrong\n",
    );
    for m in measured {
        out.push_str(&format!(
            "  {:<8} {:>8} {:>12.0} {:>8} {:>8} {:>8} {:>10} {:>10} {:>7} {:>6}\n",
            m.flavor.name(),
            m.load.clients,
            m.load.messages_per_s,
            m.load.p50_us,
            m.load.p99_us,
            m.load.max_us,
            human_bytes(m.peak_rss),
            human_bytes(m.rss_per_connection() as u64),
            m.load.failed_connections,
            m.load.wrong_replies
        ));
    }
    out
}

/// The stage-hub binary to run children from: this one, if it is it.
pub fn stage_binary() -> Result<PathBuf, BenchError> {
    std::env::current_exe().map_err(|e| err(format!("cannot find our own binary: {e}")))
}
