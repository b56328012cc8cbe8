//! `cargo run --release -- figures [DIR]` is how the book gets its figures.
//! Here it runs at quick scale into a temporary folder (the whole lesson in
//! seconds, echo-bench included), and every file the committed figures have
//! must be made again, with the results naming their machine: a figure the
//! code can no longer make fails here, not in front of a reader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use test_support::{assert_success, output_of, output_within};

const BIN: &str = env!("CARGO_BIN_EXE_coroutines");

/// How long `figures --quick` may take before the test calls it hung: it
/// took 71 s on a 2-core machine already busy with other builds, and a
/// heavier load, or the rest of `cargo test` beside it, can take several
/// times that.
const HUNG: Duration = Duration::from_secs(15 * 60);

fn files(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("a readable folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("below dir");
                found.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn figures_at_quick_scale_remakes_every_committed_figure() {
    // Removed however the test ends, a failed assertion included.
    let scratch = test_support::TempDir::new("coroutines-figures");
    let dir: PathBuf = scratch.path().to_path_buf();
    let out = output_within(
        Command::new(BIN).args(["figures", "--quick"]).arg(&dir),
        b"",
        HUNG,
    );
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("figures [1/"),
        "no progress shown: {stderr}"
    );
    let made = files(&dir);
    let committed = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/figures"));
    let missing: Vec<_> = committed.difference(&made).collect();
    assert!(
        missing.is_empty(),
        "committed figures that `figures` no longer makes (remove them, or make them again): {missing:?}"
    );
    let not_committed: Vec<_> = made.difference(&committed).collect();
    assert!(
        not_committed.is_empty(),
        "figures made but not committed: run `cargo run --release -- figures` and commit docs/src/figures: {not_committed:?}"
    );
    for name in made
        .iter()
        .filter(|f| f.ends_with(".json") && !f.contains('/'))
    {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        for field in ["cpu", "cores", "os", "rustc", "profile", "date"] {
            assert!(!v["machine"][field].is_null(), "{name}: no machine {field}");
        }
        assert_eq!(v["scale"], "quick", "{name}");
        // Harness rows, or (a stage measured outside the harness, like
        // echo-cache's cachegrind counts) what it recorded beside them.
        let rows = v["rows"].as_array().map_or(0, Vec::len);
        let extra = v["extra"].as_object().map_or(0, |m| m.len());
        assert!(rows + extra > 0, "{name}: nothing recorded");
    }
    for name in made.iter().filter(|f| f.ends_with(".svg")) {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(svg.contains("<text"), "{name} has no labels");
    }
    let machine = std::fs::read_to_string(dir.join("machine.md")).unwrap();
    assert!(machine.contains("quick scale"), "{machine}");
}

#[test]
fn a_bad_folder_is_one_clear_line() {
    // It fails before measuring anything.
    let out = output_of(
        BIN,
        &["figures", "--quick", "/proc/no-such-place/figures"],
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot create /proc/no-such-place/figures"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
