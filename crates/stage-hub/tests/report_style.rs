//! The hub's narration has the stages' one heading style (`## Title` per
//! listing), the network part included.

use std::time::Duration;

#[test]
fn every_listing_heading_has_the_one_style() {
    let out = test_support::output_of(
        env!("CARGO_BIN_EXE_stage-hub"),
        &["--quick", "--runs", "1"],
        Duration::from_secs(300),
    );
    test_support::assert_success(&out);
    // The seven listings and the network part's headings.
    test_support::assert_one_heading_style(&String::from_utf8_lossy(&out.stdout), 8);
}
