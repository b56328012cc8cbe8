//! Promises the workspace's manifests make to a new user, checked where a
//! reader of `Cargo.toml` would look.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The root package and every crate under `crates/`.
fn packages() -> Vec<PathBuf> {
    let mut found = vec![root().to_path_buf()];
    for entry in fs::read_dir(root().join("crates")).expect("crates/ is readable") {
        let dir = entry.expect("directory entry").path();
        if dir.join("Cargo.toml").is_file() {
            found.push(dir);
        }
    }
    found.sort();
    found
}

/// The lines of each `[header]` section of a manifest, header included.
fn sections<'a>(manifest: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            found.extend(current.take());
            if trimmed == header {
                current = Some(Vec::new());
            }
            continue;
        }
        if let Some(lines) = current.as_mut() {
            lines.push(trimmed);
        }
    }
    found.extend(current);
    found
}

fn bench_off(section: &[&str]) -> bool {
    section.iter().any(|l| l.replace(' ', "") == "bench=false")
}

/// `cargo bench` must end with the summary table the README promises: only
/// the criterion benches may run, so every library and binary target says
/// `bench = false` (their empty libtest harnesses would print a page of
/// "ignored" tests after the table).
#[test]
fn only_the_criterion_benches_run_under_cargo_bench() {
    let mut missing = Vec::new();
    for dir in packages() {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("readable manifest");
        let name = dir
            .strip_prefix(root())
            .unwrap_or(&dir)
            .display()
            .to_string();
        if dir.join("src/lib.rs").is_file()
            && !sections(&manifest, "[lib]").iter().any(|s| bench_off(s))
        {
            missing.push(format!("{name}: [lib] needs `bench = false`"));
        }
        let mut bins = 0;
        if dir.join("src/main.rs").is_file() {
            bins += 1;
        }
        if let Ok(entries) = fs::read_dir(dir.join("src/bin")) {
            bins += entries.count();
        }
        let off = sections(&manifest, "[[bin]]")
            .iter()
            .filter(|s| bench_off(s))
            .count();
        if off < bins {
            missing.push(format!(
                "{name}: {bins} binary target(s) but {off} [[bin]] section(s) with `bench = false`"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The README may say the chapters read well as plain files (on GitHub,
/// say) only while no chapter shows its listings through an mdbook
/// `{{#include}}` line, which a plain viewer prints as it is.
#[test]
fn the_readme_says_how_the_book_reads() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let claims_plain = readme.to_lowercase().contains("read well on github");
    let mut with_includes = Vec::new();
    for entry in fs::read_dir(root().join("docs/src")).expect("docs/src") {
        let path = entry.expect("directory entry").path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "md") && text.contains("{{#include") {
            with_includes.push(path.display().to_string());
        }
    }
    assert!(
        !claims_plain || with_includes.is_empty(),
        "README.md says the chapters read well on GitHub, but these show raw \
         {{{{#include}}}} lines there: {with_includes:?}"
    );
    if !with_includes.is_empty() {
        assert!(
            readme.contains("mdbook serve docs"),
            "README.md must say how to read the book with its listings filled in"
        );
    }
}

/// `python3`, which `.ci/run` installs; without it (a bare machine running
/// plain `cargo test`) the script's own tests are skipped, except in CI.
fn python3() -> Option<std::process::Command> {
    let found = test_support::try_output_within(
        std::process::Command::new("python3").arg("--version"),
        b"",
        std::time::Duration::from_secs(60),
    )
    .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is missing, and CI needs it for .ci/check-rust-version"
        );
        eprintln!("python3 is missing: skipping the .ci/check-rust-version tests");
        return None;
    }
    Some(std::process::Command::new("python3"))
}

/// Run `.ci/check-rust-version` on a made-up locked graph: a workspace at
/// `ours` with dependencies of the given rust-versions, and a README saying
/// `readme`. Returns (success, stdout, stderr), or `None` without python3.
fn check_rust_version(
    ours: &str,
    deps: &[(&str, Option<&str>)],
    readme: &str,
) -> Option<(bool, String, String)> {
    let mut python = python3()?;
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("check-rust-version-{}-{call}", std::process::id()));
    fs::create_dir_all(&dir).expect("a temporary directory");
    let member = serde_json::json!({"id": "ws", "name": "coroutines", "version": "0.1.0",
                                    "rust_version": ours});
    let mut packages = vec![member];
    let mut nodes = vec![serde_json::json!({"id": "ws"})];
    for (name, rust_version) in deps {
        packages.push(
            serde_json::json!({"id": name, "name": name, "version": "1.2.3",
                                         "rust_version": rust_version}),
        );
        nodes.push(serde_json::json!({ "id": name }));
    }
    let metadata = serde_json::json!({"packages": packages, "workspace_members": ["ws"],
                                      "resolve": {"nodes": nodes}});
    let (meta_path, readme_path) = (dir.join(format!("{ours}.json")), dir.join("README.md"));
    fs::write(&meta_path, metadata.to_string()).expect("write the metadata");
    fs::write(&readme_path, readme).expect("write the README");
    // Given the metadata and the rustc version, the script starts neither
    // cargo nor rustc and reads two small files: a minute is for a machine
    // loaded by other builds, and only a hung script takes longer.
    let out = test_support::output_within(
        python
            .arg(root().join(".ci/check-rust-version"))
            .args(["--metadata".as_ref(), meta_path.as_os_str()])
            .args(["--readme".as_ref(), readme_path.as_os_str()])
            .args(["--rustc", "1.95.0"]),
        b"",
        std::time::Duration::from_secs(60),
    );
    let _ = fs::remove_dir_all(&dir);
    Some(test_support::outcome(&out))
}

const README_195: &str = "You need a Rust toolchain (1.95 or newer, via rustup).";

#[test]
fn the_rust_version_check_names_a_dependency_that_needs_a_newer_rust() {
    let deps = [
        ("old", Some("1.70")),
        ("newer", Some("1.99")),
        ("quiet", None),
    ];
    let Some((ok, _, stderr)) = check_rust_version("1.95", &deps, README_195) else {
        return;
    };
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("newer 1.2.3 needs Rust 1.99, above the promised 1.95"),
        "{stderr}"
    );
    assert!(!stderr.contains("old 1.2.3"), "{stderr}");
    // It says what to do, both ways out.
    assert!(
        stderr.contains("cargo update -p NAME --precise VERSION"),
        "{stderr}"
    );
    assert!(stderr.contains("raise the promise to 1.99"), "{stderr}");
}

#[test]
fn the_rust_version_check_passes_when_every_dependency_fits() {
    let deps = [
        ("old", Some("1.70")),
        ("same", Some("1.95")),
        ("quiet", None),
    ];
    let Some((ok, stdout, stderr)) = check_rust_version("1.95", &deps, README_195) else {
        return;
    };
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("rust-version 1.95 holds for all 3 locked dependencies"),
        "{stdout}"
    );
    assert!(stdout.contains("is the stated minimum"), "{stdout}");
}

#[test]
fn the_rust_version_check_holds_the_readme_to_the_same_number() {
    let readme = "You need a Rust toolchain (1.85 or newer, via rustup).";
    let Some((ok, _, stderr)) = check_rust_version("1.95", &[], readme) else {
        return;
    };
    assert!(!ok);
    assert!(
        stderr.contains("says Rust 1.85 or newer but Cargo.toml's rust-version is 1.95"),
        "{stderr}"
    );
}

/// The real README and Cargo.toml state the same minimum (the script checks
/// the locked dependencies in `.ci/run`; this needs no cargo metadata).
#[test]
fn the_readme_states_the_rust_version_of_cargo_toml() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let ours = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("[workspace.package] rust-version");
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(
        readme.contains(&format!("Rust toolchain ({ours} or newer")),
        "README.md must say \"Rust toolchain ({ours} or newer\""
    );
}
