//! The tour: every stage's lesson in order, at quick scale, then one table of
//! what each stage showed beside what the lesson notes measured.
//!
//! `cargo run --release` at the workspace root runs it. Each stage prints its
//! own narration and tables as it goes (exactly as `cargo run -p stage-x --
//! --quick` would); the closing table gathers every stage's headline.

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use harness::{CommonArgs, Headline, Report};

/// A stage's whole lesson, as its crate exposes it.
type Lesson = fn(&CommonArgs) -> Result<Report, Box<dyn Error>>;

/// Every stage, in lesson order. A new stage adds one line here.
const STAGES: &[(&str, Lesson)] = &[
    ("stage-serial", stage_serial::lesson),
    ("stage-generator", stage_generator::lesson),
    ("stage-greenlet", stage_greenlet::lesson),
    ("stage-hub", stage_hub::lesson),
];

/// The tour of the coroutine lessons: runs every stage's lesson in order at
/// quick scale (counts and waits scaled down), then prints one table of each
/// stage's headline result beside the lesson notes' figure.
///
/// Run it optimized (`cargo run --release`): a debug build's figures are
/// marked as such but distort the ratios the lessons are about.
#[derive(Debug, Parser)]
#[command(name = "coroutines", version)]
struct Cli {
    /// Print every stage's report as JSON lines on stdout (narration goes to
    /// stderr); the closing table is left out.
    #[arg(long)]
    json: bool,

    /// Timed runs per case (the median is reported) [default: 3]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    runs: Option<u16>,

    /// Run only the stages named (e.g. --only stage-generator); repeatable
    #[arg(long, value_name = "STAGE", value_parser = stage_names())]
    only: Vec<String>,
}

fn stage_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(STAGES.iter().map(|(name, _)| *name))
}

fn main() -> ExitCode {
    let cli: Cli = harness::cli::parse("coroutines");
    let common = CommonArgs {
        quick: true,
        json: cli.json,
        runs: cli.runs,
    };
    let output = common.output();
    let mut headlines = Vec::new();
    let mut failed = Vec::new();
    for &(name, lesson) in STAGES {
        if !cli.only.is_empty() && !cli.only.iter().any(|o| o == name) {
            continue;
        }
        output.say(format!("\n# {name}\n"));
        match lesson(&common) {
            Ok(report) => headlines.extend_from_slice(report.headlines()),
            Err(e) => {
                eprintln!("coroutines: {name} failed: {e}");
                failed.push(name);
            }
        }
    }
    output.table(closing_table(&headlines));
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("coroutines: failed stages: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// One line per headline: stage, claim, our figure, the notes' figure.
fn closing_table(headlines: &[Headline]) -> String {
    let header = ["stage", "claim", "ours", "the notes (CPython)"];
    let rows: Vec<[&str; 4]> = headlines
        .iter()
        .map(|h| {
            [
                h.stage.as_str(),
                h.claim.as_str(),
                h.ours.as_str(),
                h.notes.as_deref().unwrap_or("-"),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::from(" ");
        for (cell, w) in cells.iter().zip(widths) {
            s.push_str(&format!(" {cell:<w$} "));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!(
        "\n# What each stage showed (quick scale, {})\n",
        harness::Profile::current()
    );
    out.push_str(&line(header));
    out.push_str(&line(
        widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str),
    ));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_listed_once_in_lesson_order() {
        let names: Vec<&str> = STAGES.iter().map(|(n, _)| *n).collect();
        assert_eq!(&names[..2], ["stage-serial", "stage-generator"]);
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names);
    }

    #[test]
    fn the_closing_table_has_a_line_per_headline() {
        let h = Headline {
            stage: "stage-x".into(),
            claim: "claim".into(),
            ours: "2.00x".into(),
            notes: None,
        };
        let table = closing_table(&[h.clone(), h]);
        assert_eq!(table.lines().filter(|l| l.contains("stage-x")).count(), 2);
        assert!(table.contains("the notes (CPython)"));
    }
}
