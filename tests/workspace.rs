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
