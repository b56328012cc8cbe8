//! The hub's narration has the stages' one heading style (`## Title` per
//! listing), the network part included.

use std::process::Command;
use std::time::Duration;

#[test]
fn every_listing_heading_has_the_one_style() {
    let out = test_support::output_within(
        Command::new(env!("CARGO_BIN_EXE_stage-hub")).args(["--quick", "--runs", "1"]),
        b"",
        Duration::from_secs(300),
    );
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
    // The seven listings and the network part's headings.
    assert!(stdout.matches("\n## ").count() >= 8, "{stdout}");
}
