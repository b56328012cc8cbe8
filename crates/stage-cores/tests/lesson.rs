//! The lesson's command line: `--help` lists the listings, `--quick --json`
//! prints only JSON with every group and headline, the hidden worker stays
//! hidden, and a port that is taken is a clear error.

use std::time::Duration;

use test_support::{assert_success, output_of};

const BIN: &str = env!("CARGO_BIN_EXE_stage-cores");

#[test]
fn help_lists_the_listings_and_the_server_but_not_the_worker() {
    let out = output_of(BIN, &["--help"], Duration::from_secs(30));
    assert_success(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "cpu",
        "hand-off",
        "echo",
        "echo-server",
        "--quick",
        "--json",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    assert!(!help.contains("__cores-worker"), "{help}");
}

#[test]
fn the_quick_lesson_prints_only_json_with_every_group_and_headline() {
    let out = output_of(
        BIN,
        &["--quick", "--json", "--runs", "1"],
        Duration::from_secs(300),
    );
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let rows = |group: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["record"] == "row" && r["group"] == group)
            .collect()
    };
    let cpu = rows("cpu");
    assert_eq!(cpu.len(), 3, "{stdout}");
    assert!(cpu[0]["ratio"].is_null() && cpu[1]["ratio"].is_f64() && cpu[2]["ratio"].is_f64());
    let echo = rows("echo-cores");
    assert_eq!(echo.len(), 12, "six servers at two client counts: {stdout}");
    for row in &echo {
        assert_eq!(row["wrong_replies"], 0, "{row}");
        assert!(row["messages"].as_u64().unwrap() > 0, "{row}");
        assert!(row["load_cores"].as_f64().unwrap() >= 0.0, "{row}");
    }
    let servers: Vec<&str> = echo[..6]
        .iter()
        .map(|r| r["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["hub", "hub", "hub", "hub", "tokio", "threads"]);
    let headlines = records.iter().filter(|r| r["record"] == "headline").count();
    assert_eq!(headlines, 3, "{stdout}");
    // Narration went to stderr, the core count with it.
    assert!(stderr.contains("This machine offers"), "{stderr}");
}

#[test]
fn a_port_another_program_holds_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for procs in ["1", "2"] {
        let out = output_of(
            BIN,
            &["echo-server", "--addr", &addr, "--procs", procs],
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--procs {procs}: {stderr}");
        assert!(
            stderr.contains("in use") || stderr.contains("cannot bind"),
            "--procs {procs}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--procs {procs} claimed to listen");
    }
}

#[test]
fn trace_shows_jobs_running_on_the_hub_threads_they_were_handed_to() {
    let (recorded, _) =
        test_support::traced(BIN, &["hand-off", "--quick"], Duration::from_secs(60));
    let threads: std::collections::BTreeSet<&str> =
        recorded.tracks.iter().map(|t| t.thread.as_str()).collect();
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    for hub in (0..n).map(|i| format!("hub-{i}")) {
        let hub = hub.as_str();
        assert!(threads.contains(hub), "no track on {hub}: {threads:?}");
        // Each hub thread ran a job greenlet that parked in its sleep.
        let ran = recorded
            .tracks
            .iter()
            .filter(|t| t.thread == hub)
            .any(|t| !recorded.slices_of(t.id).is_empty());
        assert!(ran, "nothing ran on {hub}");
    }
}

#[test]
fn the_echo_listing_takes_its_sizes_from_the_command_line_and_refuses_absurd_ones() {
    let out = output_of(
        BIN,
        &[
            "echo",
            "--json",
            "--runs",
            "1",
            "--cores",
            "3",
            "--clients",
            "20",
            "--seconds",
            "0.2",
            "--work",
            "100",
        ],
        Duration::from_secs(120),
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<_> = records.iter().filter(|r| r["record"] == "row").collect();
    assert_eq!(rows.len(), 6, "{stdout}");
    for row in &rows {
        assert_eq!(
            (row["clients"].as_u64(), row["work"].as_u64()),
            (Some(20), Some(100)),
            "{row}"
        );
    }
    assert_eq!(rows[1]["case"], "3 hub threads, 20 clients");
    assert_eq!(
        (rows[3]["procs"].as_u64(), rows[3]["hubs"].as_u64()),
        (Some(3), Some(3))
    );
    // Printed for a person, the table's title says what its columns mean:
    // a load row's median is the time 100,000 messages take at its rate.
    let out = output_of(
        BIN,
        &[
            "echo",
            "--runs",
            "1",
            "--cores",
            "1",
            "--clients",
            "2",
            "--seconds",
            "0.1",
            "--work",
            "10",
        ],
        Duration::from_secs(120),
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "2 clients (median = the time 100,000 messages take at the rate measured; \
             per op = per message; ratio: time per message against one hub"
        ),
        "{stdout}"
    );
    for bad in [
        &["echo", "--clients", "0"][..],
        &["echo", "--clients", "50000"][..],
        &["echo", "--seconds", "0"][..],
        &["echo", "--seconds", "soon"][..],
        &["cpu", "--cores", "0"][..],
    ] {
        let out = output_of(BIN, bad, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains(bad[1]), "{bad:?}: {stderr}");
    }
}
