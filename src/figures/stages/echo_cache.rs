//! Where an echo message's time goes when there are many connections: the
//! hub and tokio echo servers run under cachegrind's cache simulation, and
//! each message's instructions and cache misses are counted.
//!
//! This machine's CPU has no hardware counters to read (`perf` sees none in
//! the virtual machine), so the cache is simulated: cachegrind runs the
//! server on a model of this CPU's first-level data cache and its
//! last-level cache, and counts every access that misses. The last level is
//! modelled as the machine's L3 reports itself in sysfs (cachegrind's own
//! guess, from what the virtual CPU claims, can be far off). The model is
//! not the CPU, but the same model for both servers ranks them honestly.
//!
//! Each server is counted twice at each client count, with a short and a
//! long load, and the figures are the difference over the difference in
//! messages echoed: what both runs do once (start, accept every client,
//! stop) drops out, and what is left is the steady state of one message.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::io::BufReader;
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use stage_hub::echo::bench::{load_summary, read_address, Reaped};

use super::echo::stage_hub_binary;
use super::{Made, Run, Stage};
use crate::figures::results::{num, Results};
use crate::figures::snippets::{count, ratio};

pub(super) const STAGE: Stage = Stage {
    name: "echo-cache",
    about: "the hub and tokio echo servers under cachegrind's cache simulation at 500 and \
            10,000 clients, each twice (a few minutes)",
    run,
    make,
};

/// Client counts: where the hub keeps up with tokio, and where it does not.
const CLIENTS: [usize; 2] = [500, 10_000];
/// At quick scale (tests) one small count: valgrind's start-up is most of it.
const QUICK_CLIENTS: [usize; 1] = [10];

/// The two loads' lengths (seconds of ping-pong after every client is
/// connected): the difference between them is what is counted.
const SHORT_SECONDS: f64 = 2.0;
const LONG_SECONDS: f64 = 6.0;

/// The servers compared.
const FLAVORS: [&str; 2] = ["hub", "tokio"];

/// Bytes per message (`echo-load`'s default).
const MESSAGE_BYTES: u64 = 64;

/// The results' key for the counts (or why there are none).
const KEY: &str = "per_message";

/// The results' key for the last-level cache modelled, in words.
const LL_KEY: &str = "last_level_cache";

/// The machine's L3 as sysfs describes it: cachegrind's `--LL=` argument
/// and the same in words, or `None` where sysfs does not say.
fn last_level_cache() -> Option<(String, String)> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache/index3");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let size = read("size")?;
    let kib: u64 = size.trim().strip_suffix('K')?.parse().ok()?;
    let ways: u64 = read("ways_of_associativity")?.trim().parse().ok()?;
    let line: u64 = read("coherency_line_size")?.trim().parse().ok()?;
    // cachegrind needs a power-of-two number of sets.
    let sets = (kib * 1024) / (ways * line).max(1);
    if sets == 0 || !sets.is_power_of_two() {
        return None;
    }
    Some((
        format!("--LL={},{ways},{line}", kib * 1024),
        format!("{} MiB, {ways}-way, {line}-byte lines", kib / 1024),
    ))
}

/// One server at one client count: per message, in the steady state.
#[derive(Debug, Clone)]
struct PerMessage {
    server: String,
    clients: usize,
    instructions: f64,
    /// First-level data cache misses, reads and writes.
    d1_misses: f64,
    /// Last-level cache misses (data), reads and writes.
    ll_misses: f64,
}

impl PerMessage {
    fn to_json(&self) -> Value {
        json!({
            "server": self.server,
            "clients": self.clients,
            "instructions": self.instructions,
            "d1_misses": self.d1_misses,
            "ll_misses": self.ll_misses,
        })
    }

    fn from_json(v: &Value) -> Result<PerMessage, String> {
        let n = |f: &str| num(v, f);
        Ok(PerMessage {
            server: v["server"]
                .as_str()
                .ok_or("a row without its server")?
                .into(),
            clients: n("clients")? as usize,
            instructions: n("instructions")?,
            d1_misses: n("d1_misses")?,
            ll_misses: n("ll_misses")?,
        })
    }
}

/// What one counted run of a server adds up to.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    messages: f64,
    instructions: f64,
    d1_misses: f64,
    ll_misses: f64,
}

fn run(r: &Run) -> Result<Results, Box<dyn Error>> {
    // No harness rows: the counts are the results' only content.
    let mut results = r.results(&harness::Report::new("echo-cache", r.output()));
    results.stage = "echo-cache".into();
    let setting = std::env::var_os(harness::count::VALGRIND_ENV);
    let counted = match which_valgrind(setting.as_deref()) {
        Ok(valgrind) => count_all(r, &valgrind).map_err(|e| e.to_string()),
        Err(why) => Err(why),
    };
    let ll = last_level_cache();
    results.extra.insert(
        LL_KEY.into(),
        json!(ll
            .as_ref()
            .map_or("cachegrind's default (sysfs names no L3 here)", |l| l
                .1
                .as_str())),
    );
    match counted {
        Ok(rows) => results.extra.insert(
            KEY.into(),
            Value::Array(rows.iter().map(PerMessage::to_json).collect()),
        ),
        Err(why) => results.extra.insert(KEY.into(), json!(why)),
    };
    Ok(results)
}

/// The valgrind to run, or why there is none. `setting` is the harness's
/// switch (`HARNESS_VALGRIND`), read as every instruction count in the book
/// reads it (`harness::count::valgrind_from`).
fn which_valgrind(setting: Option<&OsStr>) -> Result<OsString, String> {
    let valgrind =
        harness::count::valgrind_from(setting).map_err(|why| format!("not counted: {why}"))?;
    match Command::new(&valgrind).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(valgrind),
        _ => Err(format!(
            "{} did not start; install valgrind to count cache misses",
            valgrind.to_string_lossy()
        )),
    }
}

fn count_all(r: &Run, valgrind: &OsStr) -> Result<Vec<PerMessage>, Box<dyn Error>> {
    let exe = stage_hub_binary()?;
    let clients: &[usize] = if r.quick { &QUICK_CLIENTS } else { &CLIENTS };
    let (short, long) = if r.quick {
        (0.2, 0.6)
    } else {
        (SHORT_SECONDS, LONG_SECONDS)
    };
    let ll = last_level_cache().map(|l| l.0);
    // Removed when dropped, on an error too.
    let scratch = harness::count::Scratch::new()
        .map_err(|e| format!("cannot create a scratch folder for cachegrind: {e}"))?;
    let mut rows = Vec::new();
    for &n in clients {
        for server in FLAVORS {
            let a = counted_run(
                valgrind,
                ll.as_deref(),
                &exe,
                scratch.path(),
                server,
                n,
                short,
            )?;
            let b = counted_run(
                valgrind,
                ll.as_deref(),
                &exe,
                scratch.path(),
                server,
                n,
                long,
            )?;
            let messages = b.messages - a.messages;
            if messages <= 0.0 {
                return Err(format!(
                    "the {server} server echoed no more messages in {long} s than in {short} s \
                     at {n} clients: nothing to count"
                )
                .into());
            }
            rows.push(PerMessage {
                server: server.into(),
                clients: n,
                instructions: (b.instructions - a.instructions) / messages,
                d1_misses: (b.d1_misses - a.d1_misses) / messages,
                ll_misses: (b.ll_misses - a.ll_misses) / messages,
            });
        }
    }
    Ok(rows)
}

/// Start `server` under cachegrind, load it with `clients` for `seconds`,
/// stop it, and read what it echoed and what cachegrind counted.
fn counted_run(
    valgrind: &OsStr,
    ll: Option<&str>,
    exe: &Path,
    scratch: &Path,
    server: &str,
    clients: usize,
    seconds: f64,
) -> Result<Totals, Box<dyn Error>> {
    let out_file = scratch.join(format!("cachegrind.{server}.{clients}.{seconds}"));
    let mut child = Command::new(valgrind)
        .args(["--tool=cachegrind", "--cache-sim=yes"])
        .args(ll)
        .arg(format!("--cachegrind-out-file={}", out_file.display()))
        .arg(exe)
        .args(["echo-server", "--flavor", server, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", valgrind.to_string_lossy()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the server under cachegrind has no stdout")?;
    let mut server_proc = Reaped(child);
    let (addr, mut lines) = read_address(stdout)?;
    let addr = addr.to_string();
    let load = Command::new(exe)
        .args(["echo-load", "--json", "--addr", &addr])
        .args(["--clients", &clients.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run echo-load: {e}"))?;
    if !load.status.success() {
        return Err(format!(
            "echo-load against the {server} server under cachegrind failed ({})",
            load.status
        )
        .into());
    }
    // A figure "at 10,000 clients" must be one: a server slowed down by
    // cachegrind can leave clients unconnected, and fewer connections fit
    // in a cache more easily.
    match load_summary(&load.stdout) {
        Some(summary) if summary.failed_connections == 0 => {}
        Some(summary) => {
            return Err(format!(
                "{} of {clients} clients could not connect to the {server} server under \
                 cachegrind (first: {}); its figures would be for fewer connections",
                summary.failed_connections,
                summary
                    .first_failure
                    .as_deref()
                    .unwrap_or("no reason given")
            )
            .into())
        }
        None => {
            return Err(format!("echo-load against the {server} server printed no result").into())
        }
    }
    // SIGTERM: the server stops cleanly, prints what it echoed, and
    // cachegrind writes its counts as the process exits.
    let pid = server_proc.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let echoed = echoed_bytes(&mut lines)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server_proc.0.try_wait()?.is_none() {
        if Instant::now() > deadline {
            return Err(format!("the {server} server under cachegrind did not exit").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("cachegrind wrote no {}: {e}", out_file.display()))?;
    let _ = std::fs::remove_file(&out_file);
    let mut totals = totals(&text)?;
    totals.messages = (echoed / MESSAGE_BYTES) as f64;
    Ok(totals)
}

/// The bytes in the server's last line: "echo server stopped: served N
/// connections, echoed B bytes, …".
fn echoed_bytes(lines: &mut std::io::Lines<BufReader<ChildStdout>>) -> Result<u64, Box<dyn Error>> {
    for line in lines {
        let line = line?;
        if let Some(rest) = line.split("echoed ").nth(1) {
            if let Some(n) = rest.split(' ').next().and_then(|n| n.parse().ok()) {
                return Ok(n);
            }
        }
    }
    Err("the server under cachegrind stopped without saying what it echoed".into())
}

/// The whole run's counts, from cachegrind's `events:` and `summary:` lines.
fn totals(text: &str) -> Result<Totals, Box<dyn Error>> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .ok_or(format!("cachegrind's output has no `{prefix}` line"))
    };
    let events = field("events:")?;
    let summary = field("summary:")?;
    let get = |name: &str| -> Result<f64, String> {
        let i = events.iter().position(|e| *e == name).ok_or(format!(
            "cachegrind counted no {name} (was --cache-sim=yes given?)"
        ))?;
        summary
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or(format!("cachegrind's summary has no number for {name}"))
    };
    Ok(Totals {
        messages: 0.0,
        instructions: get("Ir")?,
        d1_misses: get("D1mr")? + get("D1mw")?,
        ll_misses: get("DLmr")? + get("DLmw")?,
    })
}

fn make(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    let res = m.get("echo-cache")?;
    let mut out = m.out("echo-cache")?;
    out.value(
        "last_level",
        res.extra
            .get(LL_KEY)
            .and_then(Value::as_str)
            .unwrap_or("(not recorded)"),
    );
    let rows: Vec<PerMessage> = match res.extra.get(KEY) {
        Some(Value::String(why)) => {
            out.text(
                "per-message",
                &format!("*(not counted on the machine that recorded these figures: {why})*\n"),
            )?;
            for v in [
                "hub_d1_most",
                "tokio_d1_most",
                "d1_ratio_most",
                "d1_ratio_fewest",
                "instr_ratio_most",
                "hub_ll_most",
                "tokio_ll_most",
            ] {
                out.value(v, "(not counted)");
            }
            return out.finish();
        }
        Some(Value::Array(rows)) => rows
            .iter()
            .map(PerMessage::from_json)
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("the echo-cache results' counts are not a list".into()),
        None => {
            return Err("no per_message counts in the echo-cache results: run figures again".into())
        }
    };
    let mut table = String::from(
        "| clients | server | instructions per message | first-level data cache misses per message | last-level cache misses per message |\n|--:|:--|--:|--:|--:|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} |\n",
            count(r.clients as f64),
            r.server,
            count(r.instructions.round()),
            // A difference of two counts can come out a hair below zero.
            r.d1_misses.max(0.0),
            r.ll_misses.max(0.0)
        ));
    }
    out.text("per-message", &table)?;
    let find = |server: &str, clients: usize| {
        rows.iter()
            .find(|r| r.server == server && r.clients == clients)
            .ok_or(format!("no {server} row at {clients} clients"))
    };
    let most = rows.iter().map(|r| r.clients).max().unwrap_or(0);
    let fewest = rows.iter().map(|r| r.clients).min().unwrap_or(0);
    let (hub, tokio) = (find("hub", most)?, find("tokio", most)?);
    out.value("hub_d1_most", format!("{:.0}", hub.d1_misses));
    out.value("tokio_d1_most", format!("{:.0}", tokio.d1_misses));
    out.value("d1_ratio_most", miss_ratio(hub.d1_misses, tokio.d1_misses));
    out.value(
        "instr_ratio_most",
        ratio(hub.instructions / tokio.instructions),
    );
    out.value("hub_ll_most", format!("{:.1}", hub.ll_misses.max(0.0)));
    out.value("tokio_ll_most", format!("{:.1}", tokio.ll_misses.max(0.0)));
    let (hub, tokio) = (find("hub", fewest)?, find("tokio", fewest)?);
    out.value(
        "d1_ratio_fewest",
        miss_ratio(hub.d1_misses, tokio.d1_misses),
    );
    out.finish()
}

/// `a / b` as a ratio, unless `b` is under half a miss per message: then
/// both fit in the cache and there is nothing to compare.
fn miss_ratio(a: f64, b: f64) -> String {
    if b < 0.5 {
        "(too few misses to compare)".into()
    } else {
        ratio(a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_cachegrind_s_summary_by_event_name() {
        let text = "desc: I1 cache: 32768 B\ncmd: x\nevents: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw\nfl=a\n1 2 3\nsummary: 1000 1 1 400 30 3 200 10 2\n";
        let t = totals(text).unwrap();
        assert_eq!(
            (t.instructions, t.d1_misses, t.ll_misses),
            (1000.0, 40.0, 5.0)
        );
        let without_cache = "events: Ir\nsummary: 1000\n";
        let err = totals(without_cache).unwrap_err().to_string();
        assert!(err.contains("--cache-sim=yes"), "{err}");
    }

    #[test]
    fn the_harness_switch_turns_counting_off_or_names_the_valgrind() {
        for off in ["off", ""] {
            let why = which_valgrind(Some(off.as_ref())).unwrap_err();
            assert!(why.contains("HARNESS_VALGRIND=off"), "{why}");
        }
        let why = which_valgrind(Some("/nonexistent/valgrind".as_ref())).unwrap_err();
        assert!(why.contains("/nonexistent/valgrind did not start"), "{why}");
    }
}
