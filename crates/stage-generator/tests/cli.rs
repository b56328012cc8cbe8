//! The command line is public interface: `--quick --json` pipes clean JSON,
//! `--help` lists the listings, bad input is one clear line and a failure.

use std::process::Output;
use std::time::Duration;

use test_support::assert_success;

const BIN: &str = env!("CARGO_BIN_EXE_stage-generator");

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
    let mut cases = Vec::new();
    let mut claims = Vec::new();
    let records = harness::json::read_report(&stdout).unwrap_or_else(|e| panic!("{e}"));
    for value in &records {
        match value["record"].as_str() {
            Some("row") => {
                assert_eq!(value["stage"], "stage-generator");
                if value["source"] == "measured" {
                    cases.push(value["case"].as_str().unwrap().to_string());
                }
            }
            Some("headline") => claims.push(value["claim"].as_str().unwrap().to_string()),
            other => unreachable!("read_report passed a {other:?} record"),
        }
    }
    for case in [
        stage_generator::INTERLEAVED_CASE,
        stage_generator::SEND_CASE,
        stage_generator::ITERATOR_CASE,
        stage_generator::ROUND_TRIP_CASE,
    ] {
        assert!(cases.iter().any(|c| c == case), "no row for {case}");
    }
    assert_eq!(claims.len(), 2, "{claims:?}");
    // The listings were narrated, on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("body: * aaa"), "{stderr}");
}

#[test]
fn help_lists_every_listing() {
    let out = stage(&["--help"]);
    assert_success(&out);
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "frozen",
        "send",
        "producer-consumer",
        "cpu",
        "switch-cost",
        "--quick",
        "--json",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn a_single_listing_runs_alone() {
    let out = stage(&["send"]);
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("send(\"aaa\") -> 2"), "{stdout}");
    assert!(!stdout.contains("func1"));
}

#[test]
fn bad_input_is_refused_naming_what_is_wrong() {
    for (bad, named) in [
        (&["--fast"][..], "--fast"),
        (&["--runs", "0"], "--runs"),
        (&["jump"], "jump"),
    ] {
        let first = test_support::refused(&stage(bad), "stage-generator", bad);
        assert!(first.contains(named), "{bad:?}: {first}");
    }
}

#[test]
fn trace_shows_the_body_running_only_between_resume_and_yield() {
    let (r, _) = test_support::traced(BIN, &["frozen"], HUNG);
    let (main, g) = (r.track("main").unwrap(), r.track("g").unwrap());
    let turns: Vec<(&str, &str)> = r
        .runs
        .iter()
        .map(|s| (r.name_of(s.track), s.entered_by()))
        .collect();
    // Three resumes run the body to its two yields and its return; main
    // runs in between. The fourth resume finds it finished: no switch.
    assert_eq!(
        turns,
        [
            ("main", "first seen"),
            ("g", "resume"),
            ("main", "yield"),
            ("g", "resume"),
            ("main", "yield"),
            ("g", "resume"),
            ("main", "return"),
        ]
    );
    assert_eq!(r.marks_of(g, "ends").len(), 1);
    assert!(r
        .slices_of(main)
        .last()
        .unwrap()
        .args
        .contains_key("still_running"));
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
    test_support::assert_one_heading_style(&String::from_utf8_lossy(&out.stdout), 5);
}
