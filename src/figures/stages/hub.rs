//! Stage 4: the hub. Its tables (naps, tasks, costs, sleepers), the echo
//! lesson and the crawl, the listings' transcripts, and the naps and echo
//! server timelines.

use std::error::Error;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use harness::Output;
use serde_json::{json, Value};
use stage_hub::echo::load::{hub_clients, Load};
use stage_hub::echo::protocol::serve_upper;
use stage_hub::echo::server::ServerThread;
use stage_hub::lesson::{self, Listing, Settings, SPAWN_JOIN_CASE, SYNC_CASE};
use stage_hub::net::TcpStream;
use stage_serial::waits::NAPS;
use stage_serial::{Transcript, SLEEPS_CASE};

use super::{ratio_of, Made, Run, Stage};
use crate::figures::capture::capture;
use crate::figures::results::{num, Results};
use crate::figures::snippets::{bytes, count, nanos, ratio, seconds, source_words};
use crate::figures::timelines;

pub(super) const STAGE: Stage = Stage {
    name: "stage-hub",
    about: "the whole lesson with the notes' waits, 500 echo clients and the crawl, \
            transcripts, two timelines (about two minutes)",
    run,
    make,
};

/// Echo clients in the echo server's timeline, and how long they run.
const TIMELINE_CLIENTS: usize = 5;

fn run(r: &Run) -> Result<Results, Box<dyn Error>> {
    let settings = Settings::from_common(&r.common(), None);
    let report = lesson::run(&settings, r.output(), &Listing::ALL)?;
    let mut results = r.results(&report);
    let scale = settings.scale;
    // The listings' transcripts, at the lesson's scale.
    let transcripts = std::thread::spawn(move || -> Result<Value, String> {
        let said = |f: &dyn Fn(&Rc<Transcript>) -> Result<(), stage_hub::HubError>| {
            let t = Rc::new(Transcript::new(Output::silent()));
            f(&t).map_err(|e| e.to_string())?;
            Ok::<_, String>(t.lines())
        };
        Ok(json!({
            "eat-play": said(&|t| lesson::eat_play(scale, t).map(drop))?,
            "blocking": said(&|t| lesson::eat_play_blocking(scale, t).map(drop))?,
            "cooperative": said(&|t| lesson::eat_play_cooperative(scale, t).map(drop))?,
            "names": said(&|t| lesson::names(scale, t).map(drop))?,
        }))
    })
    .join()
    .map_err(|_| "the hub's transcripts panicked")??;
    results.extra.insert("transcripts".into(), transcripts);
    // The soak (not part of the lesson run): its rows join the lesson's.
    let mut soak = harness::Report::new(stage_hub::STAGE, r.output());
    stage_hub::soak::run(settings.soak, &mut soak)?;
    let soak = soak.finish();
    results.rows.extend(
        soak.rows()
            .iter()
            .map(|row| serde_json::to_value(row).unwrap_or_default()),
    );
    results.extra.insert("scale".into(), json!(scale.factor()));
    let dir = r.folder("hub")?;
    capture(
        &dir.join("naps.trace.json"),
        "stage-hub sleepers",
        "main",
        1_000,
        move || {
            let t = Rc::new(Transcript::new(Output::silent()));
            lesson::sleepers(scale, &t)
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )?;
    let duration = Duration::from_millis(if r.quick { 20 } else { 50 });
    capture(
        &dir.join("echo.trace.json"),
        "stage-hub echo server, 5 clients",
        "clients",
        4_000,
        move || {
            let server = ServerThread::start("127.0.0.1:0", serve_upper::<TcpStream>)
                .map_err(|e| e.to_string())?;
            let load = Load {
                addr: server.local_addr(),
                clients: TIMELINE_CLIENTS,
                size: 64,
                duration,
                watch: None,
            };
            let summary = hub_clients(&load, &mut |_| {}).map_err(|e| e.to_string())?;
            server.stop();
            if summary.wrong_replies > 0 || summary.messages == 0 {
                return Err(format!("the traced echo run went wrong: {summary}"));
            }
            Ok(())
        },
    )?;
    Ok(results)
}

fn transcript(res: &Results, name: &str) -> String {
    res.extra["transcripts"][name]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .fold(String::new(), |mut out, l| {
                    let _ = writeln!(out, "{l}");
                    out
                })
        })
        .unwrap_or_default()
}

fn make(m: &Made<'_>) -> Result<(), Box<dyn Error>> {
    let res = m.get("stage-hub")?;
    let mut out = m.out("hub")?;
    for group in ["sleeps", "tasks", "hub-costs", "sleepers", "tls-handshakes"] {
        out.table(group, &res.group(group))?;
    }
    for name in ["eat-play", "blocking", "cooperative", "names"] {
        out.transcript(name, &transcript(res, name))?;
    }
    make_soak(&mut out, res)?;
    let naps = res.row("sleeps", "hub: the three naps overlap")?;
    out.value("naps_hub", seconds(num(naps, "median_seconds")?));
    out.value("naps_ratio", ratio(ratio_of(naps)?));
    out.value(
        "naps_serial",
        seconds(num(res.row("sleeps", SLEEPS_CASE)?, "median_seconds")?),
    );
    let gevent = res.cpython("sleeps", lesson::GEVENT_NAPS_CASE)?;
    out.value(
        "naps_gevent",
        format!(
            "{} with gevent, {}",
            seconds(num(gevent, "median_seconds")?),
            source_words(gevent)
        ),
    );
    let sync = res.row("tasks", SYNC_CASE)?;
    let spawned = res.row("tasks", "hub: 10 tasks spawned, then joined")?;
    out.value("tasks_sync", seconds(num(sync, "median_seconds")?));
    out.value("tasks_async", seconds(num(spawned, "median_seconds")?));
    out.value(
        "spawn_join",
        nanos(num(res.row("hub-costs", SPAWN_JOIN_CASE)?, "ns_per_op")?),
    );
    // Instructions where valgrind counted them (the table's instr/op).
    let instructions = |case: &str| -> String {
        res.row("hub-costs", case)
            .ok()
            .and_then(|row| num(row, harness::report::INSTRUCTIONS_PER_OP).ok())
            .map_or_else(|| "(not counted: no valgrind)".into(), |n| count(n.round()))
    };
    out.value("spawn_join_instructions", instructions(SPAWN_JOIN_CASE));
    out.value("yield_instructions", instructions(lesson::YIELD_CASE));
    let sleepers = res.rows_like("sleepers", "run each until it parks");
    let sleeper = sleepers.first().ok_or("stage-hub: no sleepers row")?;
    out.value("sleeper_rss", bytes(num(sleeper, "rss_bytes_per_op")?));
    out.value("sleepers", count(num(sleeper, "ops")?));
    out.finish()?;
    make_net(m, res)?;
    // The timelines.
    let rec = trace::read::Recorded::read(&out.path("naps.trace.json"))?;
    let mut names: Vec<(String, String)> = vec![("main".into(), "main (joinall)".into())];
    names.push(("Hub".into(), "Hub".into()));
    for (i, nap) in NAPS.iter().enumerate() {
        names.push((
            format!("Greenlet-{}", i + 1),
            format!("{} ({} s)", nap.name, nap.seconds),
        ));
    }
    let refs: Vec<(&str, Option<&str>)> = names
        .iter()
        .map(|(n, l)| (n.as_str(), Some(l.as_str())))
        .collect();
    let lanes = timelines::lanes(&rec, &refs)?;
    timelines::draw(
        &out.path("naps.svg"),
        "Three naps in three greenlets: they sleep side by side",
        &rec,
        &lanes,
        timelines::extent(&rec, &lanes),
    )?;
    let rec = trace::read::Recorded::read(&out.path("echo.trace.json"))?;
    let mut names = vec![
        ("main".to_string(), "accept loop".to_string()),
        ("Hub".to_string(), "Hub".to_string()),
    ];
    for i in 1..=TIMELINE_CLIENTS {
        names.push((format!("Greenlet-{i}"), format!("connection {i}")));
    }
    let refs: Vec<(&str, Option<&str>)> = names
        .iter()
        .map(|(n, l)| (n.as_str(), Some(l.as_str())))
        .collect();
    let lanes = timelines::lanes_on(&rec, "hub-echo-server", &refs)?;
    let first = rec
        .slices_of(lanes[2].track)
        .first()
        .map_or(0.0, |s| s.start);
    timelines::draw(
        &out.path("echo.svg"),
        "The echo server's first milliseconds with five clients: one thread, one greenlet each",
        &rec,
        &lanes,
        (first - 100.0, first + 1_500.0),
    )?;
    Ok(())
}

/// The soak's table (memory and descriptors before and after each phase)
/// and its counts.
fn make_soak(out: &mut crate::figures::snippets::Out, res: &Results) -> Result<(), Box<dyn Error>> {
    let rows = res.group("soak");
    if rows.len() != 2 {
        return Err("stage-hub: the soak's two rows are missing".into());
    }
    let mut table = String::from(
        "| phase | took | resident at start | at end | change | descriptors | hubs |\n\
         |:--|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in &rows {
        let start = num(row, "rss_start_bytes")?;
        let end = num(row, "rss_end_bytes")?;
        let change = if end >= start {
            format!("+{}", bytes(end - start))
        } else {
            format!("−{}", bytes(start - end))
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {change} | {} → {} | {} → {} |",
            row["case"].as_str().unwrap_or("?"),
            seconds(num(row, "median_seconds")?),
            bytes(start),
            bytes(end),
            row["fds_start"],
            row["fds_end"],
            row["hubs_start"],
            row["hubs_end"],
        );
    }
    out.text("soak", &table)?;
    out.value("soak_waits", count(num(rows[0], "ops")?));
    out.value("soak_hubs", count(num(rows[1], "ops")?));
    let several = |n: f64, one: &str, many: &str| {
        format!("{} {}", count(n), if n == 1.0 { one } else { many })
    };
    out.value(
        "soak_left",
        format!(
            "{} and {} ({})",
            several(num(rows[0], "greenlets_left")?, "greenlet", "greenlets"),
            several(num(rows[0], "timers_left")?, "timer", "timers"),
            several(
                num(rows[0], "timer_entries_left")?,
                "timer-heap entry",
                "timer-heap entries"
            ),
        ),
    );
    Ok(())
}

/// Part 2's figures: the echo lesson and the crawl.
fn make_net(m: &Made<'_>, res: &Results) -> Result<(), Box<dyn Error>> {
    let mut out = m.out("hub-net")?;
    let echo = res.group("echo-load");
    let mut table = String::from(
        "| clients | each one | messages/s | p50 | p99 | max | failed | wrong |\n\
         |--:|:--|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in &echo {
        let us = |f: &str| nanos(row[f].as_f64().unwrap_or(0.0) * 1e3);
        let kind = if row["case"].as_str().is_some_and(|c| c.contains("greenlet")) {
            "a greenlet"
        } else {
            "a thread"
        };
        let _ = writeln!(
            table,
            "| {} | {kind} | {} | {} | {} | {} | {} | {} |",
            count(row["clients"].as_f64().unwrap_or(0.0)),
            count(row["messages_per_s"].as_f64().unwrap_or(0.0)),
            us("p50_us"),
            us("p99_us"),
            us("max_us"),
            row["failed_connections"],
            row["wrong_replies"],
        );
    }
    out.text("echo-lesson", &table)?;
    let greenlets = echo
        .iter()
        .find(|r| r["case"].as_str().is_some_and(|c| c.contains("greenlet")))
        .ok_or("stage-hub: no greenlet clients' row")?;
    out.value("echo_clients", count(num(greenlets, "clients")?));
    out.value("echo_seconds", seconds(num(greenlets, "seconds")?));
    out.value("echo_ratio", ratio(1.0 / ratio_of(greenlets)?));
    out.value(
        "prefetch_lines",
        count(stage_hub::hub::PREFETCH_LINES as f64),
    );
    out.table("crawl", &res.group("crawl"))?;
    let once = res.row("crawl", "URLs at once, a greenlet each")?;
    let seq = res.row("crawl", "URLs one after another")?;
    out.value("crawl_at_once", seconds(num(once, "median_seconds")?));
    out.value("crawl_one_by_one", seconds(num(seq, "median_seconds")?));
    let notes_once = res.quoted("crawl", "URLs at once, a greenlet each")?;
    let notes_seq = res.quoted("crawl", "URLs one after another")?;
    out.value(
        "notes_crawl_at_once",
        seconds(num(notes_once, "median_seconds")?),
    );
    out.value(
        "notes_crawl_one_by_one",
        seconds(num(notes_seq, "median_seconds")?),
    );
    out.finish()
}
