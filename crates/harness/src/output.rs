//! Where a stage's words and figures go.
//!
//! A lesson prints two kinds of thing: narration (what the listing does, the
//! lines it prints) and the report (the table of figures). A person wants
//! both on the terminal; a script piping `--json` wants only the report on
//! stdout. [`Output`] keeps that rule in one place: with `--json`, narration
//! moves to stderr and stdout carries nothing but JSON lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Narration and tables on stdout.
    Human,
    /// JSON lines on stdout, narration on stderr.
    Json,
    /// Nothing at all (tests, the tour's inner runs).
    Silent,
    /// Nothing but progress bars (`figures`, whose results go to files).
    Quiet,
}

/// Where narration, tables and JSON lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    mode: Mode,
}

impl Output {
    /// Narration and tables on stdout, for a person at a terminal.
    pub fn human() -> Self {
        Output { mode: Mode::Human }
    }

    /// JSON lines on stdout; narration on stderr so the report can be piped.
    pub fn json() -> Self {
        Output { mode: Mode::Json }
    }

    /// Print nothing: for tests and for runs whose rows are read by code.
    pub fn silent() -> Self {
        Output { mode: Mode::Silent }
    }

    /// Print nothing but progress bars: for a long run whose figures are
    /// written elsewhere (`cargo run --release -- figures`).
    pub fn quiet() -> Self {
        Output { mode: Mode::Quiet }
    }

    /// Whether the report is JSON lines.
    pub fn is_json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// Whether anything is printed at all.
    pub fn is_silent(&self) -> bool {
        self.mode == Mode::Silent
    }

    /// One line of narration (or of a listing's own output). While a
    /// progress bar is on screen the line is printed through it, above it.
    pub fn say(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        match self.mode {
            Mode::Human => above_the_bar(|| println!("{line}")),
            Mode::Json => above_the_bar(|| eprintln!("{line}")),
            Mode::Silent | Mode::Quiet => {}
        }
    }

    /// A human-readable table: shown only when the report is not JSON.
    pub fn table(&self, text: impl AsRef<str>) {
        if self.mode == Mode::Human {
            above_the_bar(|| {
                print!("{}", text.as_ref());
                let _ = std::io::stdout().flush();
            });
        }
    }

    /// One JSON line: written only when the report is JSON.
    pub fn json_line(&self, value: &serde_json::Value) {
        if self.mode == Mode::Json {
            println!("{value}");
        }
    }

    /// A progress bar on stderr for a long wait of `len` steps, shown only to
    /// a person at a terminal (hidden when silent or when stderr is piped).
    pub fn progress(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        if self.mode == Mode::Silent || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message.into());
        if let Ok(mut shown) = SHOWN.lock() {
            *shown = Some(bar.clone());
        }
        bar
    }
}

/// The progress bar drawn last, if any. Narration and tables printed while
/// it is on screen go through [`ProgressBar::suspend`]: the bar is wiped,
/// the text printed, the bar drawn again below it. Printed past it instead,
/// the text would land on the bar's line and the bar's next redraw would
/// leave a stale copy of itself in the scrollback.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Print with `print`, above the progress bar if one is on screen.
fn above_the_bar(print: impl FnOnce()) {
    let bar = SHOWN
        .lock()
        .ok()
        .and_then(|shown| shown.clone())
        .filter(|bar| !bar.is_finished() && !bar.is_hidden());
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

impl Default for Output {
    fn default() -> Self {
        Output::human()
    }
}

/// Lines of a stage's narration that break its one heading style: a
/// listing's heading is `## Title` (the tour adds `# stage-x` above each
/// stage). Anything else that looks like a heading (`# …`, `### …`,
/// `== … ==`) is returned, for the stages' CLI tests.
///
/// ```
/// let text = "Stage 1\n\n## CPU work\nfunc1 counts\n\n== naps ==\n# cost\n";
/// assert_eq!(harness::output::off_style_headings(text), ["== naps ==", "# cost"]);
/// ```
pub fn off_style_headings(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let l = l.trim_end();
            (l.starts_with('#') && !l.starts_with("## "))
                || l.starts_with("###")
                || l.starts_with("==")
        })
        .map(str::to_string)
        .collect()
}
