//! The command line is public interface: `--quick --json` pipes clean JSON,
//! `--help` lists the listings, bad input is refused with clap's message
//! (its first line names the option at fault) and exit code 2.

use std::process::{Command, Output};
use std::time::Duration;

use test_support::assert_success;

const BIN: &str = env!("CARGO_BIN_EXE_stage-serial");

/// How long one run of the binary may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(300);

fn stage(args: &[&str]) -> Output {
    test_support::output_of(BIN, args, HUNG)
}

#[test]
fn quick_json_prints_only_json_lines_with_the_documented_fields() {
    let out = stage(&["--quick", "--json", "--runs", "1"]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut groups = Vec::new();
    let mut headlines = 0;
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    for value in &records {
        match value["record"].as_str() {
            Some("row") => {
                assert_eq!(value["stage"], "stage-serial");
                groups.push(value["group"].as_str().unwrap().to_string());
            }
            Some("headline") => headlines += 1,
            other => unreachable!("read_report passed a {other:?} record"),
        }
    }
    for group in ["cpu", "producer-consumer", "sleeps", "tasks"] {
        assert!(groups.iter().any(|g| g == group), "no {group} rows");
    }
    assert_eq!(headlines, 1);
    // The narration still happened, on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("long nap: wakes up"));
}

#[test]
fn help_lists_every_listing() {
    let out = stage(&["--help"]);
    assert_success(&out);
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "cpu",
        "producer-consumer",
        "sleeps",
        "tasks",
        "--scale",
        "--quick",
        "--json",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn a_single_listing_runs_alone_at_the_scale_given() {
    let out = stage(&["sleeps", "--scale", "0.001", "--runs", "1"]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("at scale 0.001"));
    assert!(stdout.contains("short nap: wakes up"));
    assert!(!stdout.contains("CPU work"));
}

#[test]
fn a_bad_scale_is_refused_with_the_reason() {
    for bad in [
        &["--scale", "0"][..],
        &["--scale", "soon"],
        &["--scale", "11"],
    ] {
        let first = test_support::refused(&stage(bad), "stage-serial", bad);
        assert!(
            first.contains("--scale") && first.contains("greater than 0"),
            "{bad:?}: {first}"
        );
    }
}

#[test]
fn an_unknown_option_is_named_with_clap_s_tip() {
    let out = stage(&["--quik"]);
    // Exit status 2, `stage-serial: error:` first, nothing on stdout.
    let first = test_support::refused(&out, "stage-serial", "--quik");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(first.contains("--quik"), "{stderr}");
    // The "did you mean" tip comes through, not only the first line.
    assert!(stderr.contains("'--quick'"), "{stderr}");
}

#[test]
fn every_count_states_its_range_and_refuses_values_outside_it() {
    let probed = harness::cli::check_stated_ranges(BIN.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(probed >= 2, "--runs states no range");
}

#[test]
fn a_wait_listing_honours_runs_and_the_table_says_so() {
    let out = stage(&["sleeps", "--scale", "0.001", "--runs", "2", "--json"]);
    assert_success(&out);
    let records = harness::json::read_report(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("{e}"));
    let row = records
        .iter()
        .find(|r| r["record"] == "row" && r["group"] == "sleeps")
        .expect("a sleeps row");
    assert_eq!(row["runs"], 2, "{row}");
    // Two runs of three naps each said so.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("long nap: wakes up").count(), 2, "{stderr}");
}

#[test]
fn the_first_table_explains_its_columns_once() {
    let out = stage(&["--quick", "--runs", "1", "--scale", "0.001"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("(runs: timed runs").count(), 1, "{stdout}");
    // One heading style across the stages: `## Title` for each listing.
    test_support::assert_one_heading_style(&stdout, 1);
    for column in ["median:", "per op:", "ratio:"] {
        assert!(
            stdout.contains(column),
            "no {column} in the legend:\n{stdout}"
        );
    }
}

/// What a person's terminal shows after `args` ran on it: the bytes the
/// binary wrote to a pseudo-terminal (util-linux `script` provides one, for
/// stdout and stderr both, as a terminal does), fed through a terminal
/// emulator tall enough that nothing scrolls away. `None` without `script`.
fn on_a_terminal(args: &str) -> Option<(String, String)> {
    let out = test_support::try_output_within(
        Command::new("script").args([
            "-qfec",
            &format!("stty cols 100 rows 200; exec {BIN} {args}"),
            "/dev/null",
        ]),
        b"",
        HUNG,
    );
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "script (util-linux) is needed: {e}"
            );
            eprintln!("no `script` (util-linux) for a pseudo-terminal: skipped ({e})");
            return None;
        }
    };
    assert_success(&out);
    let size = |n| std::num::NonZeroU16::new(n).expect("a terminal size above 0");
    let mut terminal = vt100::Parser::new(size(200), size(100), 0);
    terminal.process(&out.stdout);
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    Some((terminal.screen().contents(), raw))
}

#[test]
fn on_a_terminal_narration_prints_above_the_progress_bar() {
    let Some((screen, raw)) = on_a_terminal("sleeps --scale 0.1 --runs 1") else {
        return;
    };
    // The bar was drawn while the naps ran ...
    assert!(
        raw.contains("slept (ms) ["),
        "no progress bar was drawn:\n{raw}"
    );
    // ... yet every line of narration stands alone on its own line ...
    for line in [
        "short nap: falls asleep for 2 s",
        "short nap: wakes up",
        "middle nap: falls asleep for 3 s",
        "middle nap: wakes up",
        "long nap: falls asleep for 5 s",
        "long nap: wakes up",
    ] {
        assert!(
            screen.lines().any(|l| l.trim_end() == line),
            "`{line}` does not stand on a line of its own:\n{screen}"
        );
    }
    // ... and no stale bar is left behind once it is done.
    assert!(
        !screen.contains("slept (ms)"),
        "a stale bar is left:\n{screen}"
    );
}
