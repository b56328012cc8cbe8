//! The tour's command line is public interface too: `--json` pipes nothing
//! but JSON lines, and a plain run ends with the table of headlines.
//!
//! Only the first two stages run here (`--only`), with one timed run per
//! case: each stage's own lesson is tested in its crate.

use std::process::{Command, Output};
use std::time::Duration;

use test_support::{assert_success, output_within};

const BIN: &str = env!("CARGO_BIN_EXE_coroutines");

/// How long one run of the tour may take before the test calls it hung:
/// the four runs here took 10 s together on a 2-core machine busy with
/// other builds; this allows for a far heavier load.
const HUNG: Duration = Duration::from_secs(300);

/// `cmd`'s output, run to its end within [`HUNG`].
fn run(cmd: &mut Command) -> Output {
    output_within(cmd, b"", HUNG)
}

fn tour(args: &[&str]) -> Output {
    run(Command::new(BIN)
        .args([
            "--only",
            "stage-serial",
            "--only",
            "stage-generator",
            "--runs",
            "1",
        ])
        .args(args))
}

/// The table of headlines a plain run ends with (the test fails without it).
fn closing_table(stdout: &str) -> &str {
    stdout
        .rsplit_once("# What each stage showed")
        .map(|(_, table)| table)
        .unwrap_or_else(|| panic!("no closing table:\n{stdout}"))
}

#[test]
fn json_prints_only_json_lines_with_every_stage_headline() {
    let out = tour(&["--json"]);
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    for stage in ["stage-serial", "stage-generator"] {
        let headline = records
            .iter()
            .any(|r| r["record"] == "headline" && r["stage"] == stage);
        assert!(headline, "no headline from {stage}:\n{stdout}");
    }
    // Narration, the tour's own included, went to stderr.
    assert!(stderr.contains("The tour:"), "{stderr}");
}

#[test]
fn a_plain_run_ends_with_the_table_of_headlines() {
    let out = tour(&[]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let table = closing_table(&stdout);
    assert!(table.contains("stage-serial") && table.contains("stage-generator"));
    assert!(table.contains("switching on every iteration"), "{table}");
}

#[test]
fn every_count_states_its_range_and_refuses_values_outside_it() {
    let probed = harness::cli::check_stated_ranges(BIN.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(probed >= 2, "--runs states no range");
}

#[test]
fn the_closing_table_says_where_cpython_s_figures_come_from() {
    let out = run(Command::new(BIN)
        .args(["--only", "stage-generator", "--runs", "1"])
        .env("COROUTINES_PYTHON", "none"));
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let table = closing_table(&stdout);
    assert!(
        table.contains("CPython (measured here, or quoted)"),
        "{table}"
    );
    assert!(table.contains("quoted: CPython,"), "{table}");
}
