//! The command line is public interface: `--quick --json` pipes clean JSON,
//! `--help` lists the listings, bad input is one clear line and a failure.

use std::process::{Command, Output};

fn stage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stage-generator"))
        .args(args)
        .output()
        .expect("the stage-generator binary runs")
}

#[test]
fn quick_json_prints_only_json_lines_with_the_documented_fields() {
    let out = stage(&["--quick", "--json", "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert!(out.status.success());
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
    assert!(out.status.success());
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
        let out = stage(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("stage-generator: error:"), "{stderr}");
        assert!(first.contains(named), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn trace_shows_the_body_running_only_between_resume_and_yield() {
    let file =
        std::env::temp_dir().join(format!("stage-generator-trace-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_stage-generator"))
        .args(["frozen", "--trace"])
        .arg(&file)
        .output()
        .expect("run stage-generator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = trace::read::Recorded::read(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&file);
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
    let probed = harness::cli::check_stated_ranges(env!("CARGO_BIN_EXE_stage-generator").as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(probed >= 2, "--runs states no range");
}

#[test]
fn every_listing_heading_has_the_one_style() {
    let out = stage(&["--quick", "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        harness::output::off_style_headings(&stdout),
        Vec::<String>::new()
    );
    assert!(stdout.matches("\n## ").count() >= 5, "{stdout}");
}
