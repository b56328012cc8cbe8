//! The lesson's listings say what the notes say, in the notes' order, and
//! the binary's `--quick --json` prints only JSON.

use std::process::Output;
use std::rc::Rc;
use std::time::Duration;

use stage_hub::lesson;
use stage_serial::{Scale, Transcript};
use test_support::assert_success;

/// How long one run of the stage binary may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(120);

fn stage(args: &[&str]) -> Output {
    test_support::output_of(env!("CARGO_BIN_EXE_stage-hub"), args, HUNG)
}

fn quick() -> Scale {
    Scale::new(0.01).unwrap()
}

#[test]
fn the_sleepers_overlap() {
    let t = Rc::new(Transcript::silent());
    let start = std::time::Instant::now();
    // A tenth of the notes' time: 0.2 s, 0.3 s and 0.5 s, which add up to 1 s.
    assert_eq!(lesson::sleepers(Scale::new(0.1).unwrap(), &t).unwrap(), 3);
    let took = start.elapsed();
    assert!(took >= std::time::Duration::from_millis(500), "{took:?}");
    assert!(
        took < std::time::Duration::from_millis(900),
        "well under the 1 s sum: {took:?}"
    );
    let lines = t.lines();
    assert!(
        lines[..3].iter().all(|l| l.contains("falls asleep")),
        "{lines:?}"
    );
    assert!(lines[3].starts_with("short nap: wakes"), "{lines:?}");
}

#[test]
fn eat_and_play_interleave_with_the_hubs_sleep() {
    let t = Rc::new(Transcript::silent());
    lesson::eat_play(quick(), &t).unwrap();
    assert_eq!(
        t.lines(),
        ["eat food 1", "play 1", "play 2", "eat food 2", "main"]
    );
}

#[test]
fn eat_and_play_go_in_turn_with_a_blocking_sleep_and_are_named() {
    let t = Rc::new(Transcript::silent());
    let warned = lesson::eat_play_blocking(quick(), &t).unwrap();
    assert_eq!(warned, 2);
    let lines: Vec<String> = t
        .lines()
        .into_iter()
        .filter(|l| !l.contains("warning"))
        .collect();
    assert_eq!(lines, ["eating1", "eating2", "playing1", "playing2"]);
    assert!(t
        .lines()
        .iter()
        .any(|l| l.contains("warning") && l.contains("Greenlet-")));
}

#[test]
fn eating_and_playing_alternate_with_the_hubs_sleep() {
    // The notes' listing with gevent.sleep(1): eating1, playing1, eating2,
    // playing2, both done in about one nap.
    let t = Rc::new(Transcript::silent());
    let took = lesson::eat_play_cooperative(Scale::new(0.3).unwrap(), &t).unwrap();
    assert_eq!(t.lines(), ["eating1", "playing1", "eating2", "playing2"]);
    assert!(
        took < 0.5,
        "the two 0.3 s naps overlapped, not 0.6 s: {took} s"
    );
}

#[test]
fn each_greenlet_says_its_own_name() {
    let t = Rc::new(Transcript::silent());
    let names = lesson::names(quick(), &t).unwrap();
    assert!(names[0].starts_with("Greenlet-") && names[1].starts_with("Greenlet-"));
    assert_ne!(names[0], names[1]);
    assert_eq!(names[2], "named by its builder");
    assert_eq!(t.lines()[0], format!("{}: eat food 1", names[0]));
}

#[test]
fn asynchronous_tasks_take_about_one_task() {
    let t = Rc::new(Transcript::silent());
    let start = std::time::Instant::now();
    // Ten tasks of 50 ms: 0.5 s one after another, about 50 ms at once.
    assert_eq!(
        lesson::asynchronous(Scale::new(0.1).unwrap(), &t).unwrap(),
        10
    );
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_millis(300), "{took:?}");
    assert_eq!(t.lines().last().map(String::as_str), Some("DONE"));
}

#[test]
fn many_sleepers_report_their_memory() {
    let run = lesson::many_sleepers(2_000).unwrap();
    assert_eq!(run.woke, 2_000);
    if stage_hub::lesson::SLEEPERS > 0 && std::path::Path::new("/proc/self/statm").exists() {
        assert!(run.rss_bytes > 0);
    }
}

#[test]
fn quick_json_prints_only_json_lines_with_every_figure() {
    let out = stage(&["--quick", "--json"]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut cases = Vec::new();
    for value in harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}")) {
        if let Some(case) = value.get("case").and_then(|c| c.as_str()) {
            cases.push(case.to_string());
        }
        if value["case"].as_str().is_some_and(|c| c.contains("asleep")) {
            assert!(value["rss_bytes_per_op"].is_number(), "{value}");
        }
        // A CPython figure beside a headline says where it comes from.
        if let Some(notes) = value["notes"].as_str() {
            assert!(
                notes.contains("quoted") || notes.contains("measured here"),
                "{value}"
            );
        }
    }
    for wanted in [
        "hub: the three naps overlap",
        "spawn + join a trivial greenlet",
        "yield_now round trip",
    ] {
        assert!(
            cases.iter().any(|c| c.starts_with(wanted)),
            "{wanted} missing from {cases:?}"
        );
    }
    assert!(cases.iter().any(|c| c.contains("30000")), "{cases:?}");
}

#[test]
fn the_soak_reports_memory_and_descriptors_before_and_after() {
    // Descriptors and hubs come back exactly (that is correctness, not a
    // figure); resident memory is only reported here, and the bound it
    // stays within is the chapter's.
    let out = stage(&["soak", "--quick", "--json"]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<_> = harness::json::read_report(&stdout)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|v| v["group"] == "soak")
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in &rows {
        assert!(row["rss_start_bytes"].is_number(), "{row}");
        assert!(row["rss_end_bytes"].is_number(), "{row}");
        assert_eq!(row["fds_start"], row["fds_end"], "{row}");
        assert_eq!(row["hubs_start"], row["hubs_end"], "{row}");
    }
    assert_eq!(
        rows[0]["timers_left"], 1,
        "only the long sleeper's: {}",
        rows[0]
    );
}

#[test]
fn help_lists_the_listings() {
    let out = stage(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "sleepers",
        "eat-play",
        "blocking",
        "cooperative",
        "names",
        "tasks",
        "costs",
        "many",
        "soak",
        "echo-server",
        "echo-load",
        "echo-threads",
        "echo-client",
        "hello-bye",
        "crawl",
        "handshakes",
        "serve-site",
        "echo-bench",
    ] {
        assert!(text.contains(sub), "{sub} missing from --help:\n{text}");
    }
}

#[test]
fn past_the_map_limit_spawning_fails_with_how_to_raise_it() {
    let Some(limit) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    else {
        return; // not Linux
    };
    if limit > 200_000 {
        return; // raised already: too many greenlets to try in a test
    }
    // Two mappings per stack: half the limit plus some is past it.
    let n = limit / 2 + 2_000;
    let out = stage(&["many", "--runs", "1", "--sleepers", &n.to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vm.max_map_count"), "{stderr}");
    assert!(stderr.contains("sysctl"), "{stderr}");
}

#[test]
fn hello_bye_lines_come_out_interleaved_as_they_happen() {
    // Each client's round is: it gets "hello", then the server hears its
    // "bye"; the transcript keeps that order for every connection, server
    // and client lines mixed, not all of one side first.
    let (clients, rounds) = (20, 3);
    let lines = stage_hub::echo::client::hello_bye(clients, rounds, |_| {}).unwrap();
    assert_eq!(lines.len(), 2 * clients * rounds);
    let port_of = |line: &str| -> String {
        line.split("port ")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    };
    let mut by_port: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for line in &lines {
        let side = if line.starts_with("server") {
            "server"
        } else {
            "client"
        };
        by_port.entry(port_of(line)).or_default().push(side);
    }
    assert_eq!(by_port.len(), clients);
    for sides in by_port.values() {
        assert_eq!(*sides, ["client", "server"].repeat(rounds), "{lines:#?}");
    }
    let first_server = lines.iter().position(|l| l.starts_with("server")).unwrap();
    let last_client = lines.iter().rposition(|l| l.starts_with("client")).unwrap();
    assert!(
        first_server < last_client,
        "interleaved, not one side first"
    );
}
