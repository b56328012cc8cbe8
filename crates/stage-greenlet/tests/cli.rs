//! The binary's public command lines: `--help`, single listings, and
//! `--quick --json` printing nothing but JSON lines on stdout.

use std::process::{Command, Output};
use std::time::Duration;

use test_support::assert_success;

const BIN: &str = env!("CARGO_BIN_EXE_stage-greenlet");

/// How long one run of the binary may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(300);

fn stage(args: &[&str]) -> Output {
    test_support::output_of(BIN, args, HUNG)
}

#[test]
fn help_lists_every_listing() {
    let out = stage(&["--help"]);
    assert_success(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "eat-play",
        "test1-test2",
        "switching",
        "switch-cost",
        "--quick",
        "--json",
        "--full",
    ] {
        assert!(help.contains(sub), "--help does not mention {sub}:\n{help}");
    }
}

#[test]
fn eat_play_prints_the_four_lines_in_the_notes_order() {
    let out = stage(&["eat-play"]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("egon"))
        .collect();
    assert_eq!(
        lines,
        ["egon eat 1", "egon play 1", "egon eat 2", "egon play 2"]
    );
}

#[test]
fn test1_test2_never_prints_78() {
    let out = stage(&["test1-test2"]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    assert_eq!(numbers, ["12", "56", "34"]);
    assert!(text.contains("test2's local dropped"), "{text}");
}

#[test]
fn quick_json_prints_only_json_lines_with_rows_and_headlines() {
    let out = stage(&["--quick", "--json"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<&str> = records
        .iter()
        .filter(|r| r["record"] == "row" && r["source"] == "measured")
        .filter_map(|r| r["case"].as_str())
        .collect();
    for case in [
        "f1 then f2",
        "f1 <-> f2, switch per iteration",
        "raw context resume",
        "greenlet switch",
        "generator: send round trip",
        "corosensei resume",
        "greenlet create+run+drop",
    ] {
        assert!(cases.contains(&case), "no row for {case}: {cases:?}");
    }
    assert!(records.iter().any(|r| r["record"] == "headline"));
    // The narration went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("egon eat 1"));
}

#[test]
fn every_count_states_its_range_and_refuses_values_outside_it() {
    let probed = harness::cli::check_stated_ranges(BIN.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(probed >= 2, "--runs states no range");
}

#[test]
fn every_listing_heading_has_the_one_style() {
    let out = stage(&["--quick", "--runs", "1"]);
    assert_success(&out);
    test_support::assert_one_heading_style(&String::from_utf8_lossy(&out.stdout), 4);
}

#[test]
fn cpython_figures_name_their_source_measured_or_quoted() {
    // Without Python: the fallback, labelled as quoted, with its source and
    // with what would measure it instead.
    let out = test_support::output_within(
        Command::new(BIN)
            .args(["switch-cost", "--quick", "--runs", "1"])
            .env("COROUTINES_PYTHON", "none"),
        b"",
        HUNG,
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("(quoted: worked out from the notes' f1/f2 runs"),
        "{stdout}"
    );
    assert!(stdout.contains("pip install greenlet"), "{stdout}");
    // No figure is shown as the notes' that the notes do not contain.
    assert!(!stdout.contains(" 452 ns"), "{stdout}");
    // With python3 and greenlet: measured here, and said so.
    if test_support::python_can_import("greenlet") {
        let out = stage(&["switch-cost", "--quick", "--runs", "1"]);
        assert_success(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let row = stdout
            .lines()
            .find(|l| l.contains("round trip (CPython greenlet)"))
            .unwrap_or_else(|| panic!("no CPython row:\n{stdout}"));
        assert!(
            row.contains("+ greenlet ") && row.ends_with("measured here)"),
            "{row}"
        );
    }
}
