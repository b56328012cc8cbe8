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
    ("stage-cores", stage_cores::lesson),
];

/// The tour of the coroutine lessons: runs every stage's lesson in order at
/// quick scale (counts and waits scaled down), then prints one table of each
/// stage's headline result beside CPython's (measured here, or quoted).
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

    /// Exactly N timed runs per case (the median is reported) [default: at
    /// least 3, filling 0.1 s] [range: 1..=1000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=harness::cli::MAX_RUNS))]
    runs: Option<u16>,

    /// Run only the stages named (e.g. --only stage-generator); repeatable
    #[arg(long, value_name = "STAGE", value_parser = stage_names())]
    only: Vec<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the lessons once at full scale and write the book's figures
    /// (results JSON, tables, values, SVG charts and timelines) into DIR.
    Figures(coroutines::figures::FiguresArgs),
}

/// Every group a stage counts instructions of, by name.
fn counted_group(name: &str, scale: u64) -> Option<harness::Group> {
    stage_greenlet::cost::counted_group(name, scale)
        .or_else(|| stage_hub::lesson::counted_group(name, scale))
}

fn stage_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(STAGES.iter().map(|(name, _)| *name))
}

fn main() -> ExitCode {
    // Stage 5 re-executes this program as its worker processes.
    if let Some(code) = stage_cores::main_if_worker() {
        return code;
    }
    // Re-run under callgrind to count a group's instructions (harness::count).
    if let Some(code) = harness::count::serve(counted_group) {
        return code;
    }
    let cli: Cli = harness::cli::parse("coroutines");
    if let Some(Command::Figures(args)) = &cli.command {
        return match coroutines::figures::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("coroutines figures: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let common = CommonArgs {
        quick: true,
        json: cli.json,
        runs: cli.runs,
    };
    let output = common.output();
    output.say(
        "The tour: every stage's lesson in order, at quick scale (counts and waits \
         scaled down so it all takes seconds), then one table of what each stage showed.",
    );
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

/// Widest each column may grow before its cells wrap (stage, claim, ours,
/// the notes): the table fits a 110-column terminal, and a headline that
/// needs more (the hub's echo figures) takes two or three lines instead of
/// pushing the table off screen. Every row starts with its stage, so a
/// wrapped row is still easy to tell from the next one.
const MAX_WIDTHS: [usize; 4] = [15, 30, 30, 26];

/// One row per headline: stage, claim, our figure, CPython's figure and where it comes from.
fn closing_table(headlines: &[Headline]) -> String {
    let header = [
        "stage",
        "claim",
        "ours",
        "CPython (measured here, or quoted)",
    ];
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
    let cells: Vec<[Vec<String>; 4]> = rows
        .iter()
        .map(|row| {
            let mut i = 0;
            row.map(|cell| {
                let lines = wrap(cell, MAX_WIDTHS[i]);
                i += 1;
                lines
            })
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, lines) in widths.iter_mut().zip(row) {
            for line in lines {
                *w = (*w).max(line.chars().count());
            }
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
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            out.push_str(&line(
                row.each_ref()
                    .map(|lines| lines.get(k).map_or("", String::as_str)),
            ));
        }
    }
    out
}

/// `text` broken at spaces into lines of at most `width` characters (a
/// single word longer than that keeps a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed = current.chars().count() + 1 + word.chars().count();
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_listed_once_in_lesson_order() {
        let names: Vec<&str> = STAGES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "stage-serial",
                "stage-generator",
                "stage-greenlet",
                "stage-hub",
                "stage-cores"
            ]
        );
    }

    #[test]
    fn every_baseline_names_a_case_of_its_group() {
        // The groups the benches and the lessons measure, at both scales;
        // building them runs nothing.
        for quick in [true, false] {
            for groups in [
                stage_serial::groups,
                stage_generator::groups,
                stage_greenlet::groups,
                stage_hub::groups,
                stage_cores::groups,
            ] {
                for group in groups(quick) {
                    let missing = group.missing_baselines();
                    assert!(missing.is_empty(), "{}: {missing:?}", group.name());
                }
            }
        }
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
        assert!(table.contains("CPython (measured here, or quoted)"));
    }

    #[test]
    fn long_cells_wrap_and_every_word_is_kept() {
        let ours = "51064 messages/s to greenlet clients, 48530/s to thread clients, 0 wrong";
        let lines = wrap(ours, 30);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), ours);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("unbreakable-word", 4), ["unbreakable-word"]);
        let table = closing_table(&[Headline {
            stage: "stage-hub".into(),
            claim: "one thread serves 50 echo clients".into(),
            ours: ours.into(),
            notes: None,
        }]);
        // The title names the build and may be long; the table itself fits.
        let rows = table.lines().filter(|l| !l.starts_with('#'));
        assert!(rows.clone().all(|l| l.chars().count() <= 110), "{table}");
        // Header, rule, and the one headline wrapped onto three lines.
        assert_eq!(rows.filter(|l| !l.is_empty()).count(), 2 + 3);
    }
}
