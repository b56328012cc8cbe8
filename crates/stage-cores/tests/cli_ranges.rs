//! Every count and duration flag states its range in `--help`, and a value
//! just outside it is refused naming the flag and the range (exit 2).

#[test]
fn every_count_states_its_range_and_refuses_values_outside_it() {
    let probed = harness::cli::check_stated_ranges(env!("CARGO_BIN_EXE_stage-cores").as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    // --runs, --work, --cores, --clients, --seconds, --hubs, --procs.
    assert!(
        probed >= 2 * 7 - 2,
        "only {probed} out-of-range values probed"
    );
}
