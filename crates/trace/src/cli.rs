//! `--trace FILE` and `--trace-limit N`: the options every switching stage
//! binary takes, and the [`Session`] they start.
//!
//! A binary flattens [`TraceArgs`] into its parser and hands its work to
//! [`run`], which calls [`TraceArgs::start`] before the work (making the
//! trace [`active`](fn@crate::active) and creating the file at once, so a
//! path that cannot be written fails before any work is done) and
//! [`Session::finish`] when it is over, whatever the outcome.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::active::set_active;
use crate::write::Written;
use crate::Trace;

/// Events a trace keeps unless `--trace-limit` says otherwise: about 30 MB
/// in memory and a file Perfetto opens in a moment.
pub const DEFAULT_LIMIT: usize = 200_000;

/// The most events `--trace-limit` may ask for: about 1.5 GB in memory
/// (roughly 150 bytes an event), and a file near the largest JSON trace
/// Perfetto's browser tab can load.
pub const MAX_LIMIT: usize = 10_000_000;

/// The tracing options.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Record every switch into FILE: Chrome trace-event JSON, one track per
    /// greenlet (open it in ui.perfetto.dev or chrome://tracing).
    #[arg(long, global = true, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Keep at most N events in the trace (about 150 bytes each in memory);
    /// past that it counts what it dropped and says so [range: 1..=10000000]
    #[arg(long, global = true, value_name = "N", default_value_t = DEFAULT_LIMIT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=MAX_LIMIT as u64))]
    pub trace_limit: usize,
}

impl Default for TraceArgs {
    fn default() -> Self {
        TraceArgs {
            trace: None,
            trace_limit: DEFAULT_LIMIT,
        }
    }
}

/// Why a trace could not be written.
#[derive(Debug)]
pub struct TraceError(String);

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

/// A recording in progress: the active trace and the file it goes to.
#[derive(Debug)]
pub struct Session {
    trace: Trace,
    file: File,
    path: PathBuf,
    program: String,
}

/// `program` followed by this process's arguments: what a trace is named after.
pub fn command_line(program: &str) -> String {
    std::iter::once(program.to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

impl TraceArgs {
    /// With `--trace FILE`: create FILE, make a new trace active and return
    /// the session; without it, `None`. `program` names the recording (see
    /// [`command_line`]).
    pub fn start(&self, program: &str) -> Result<Option<Session>, TraceError> {
        let Some(path) = &self.trace else {
            return Ok(None);
        };
        let file = File::create(path).map_err(|e| {
            TraceError(format!(
                "cannot write the trace to {}: {e} (is the directory there and writable?)",
                path.display()
            ))
        })?;
        let trace = Trace::new(self.trace_limit);
        set_active(Some(trace.clone()));
        Ok(Some(Session {
            trace,
            file,
            path: path.clone(),
            program: program.to_string(),
        }))
    }
}

impl Session {
    /// The trace being recorded.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Stop recording and write the file; returns the line to tell the user.
    pub fn finish(self) -> Result<String, TraceError> {
        set_active(None);
        let Session {
            trace,
            file,
            path,
            program,
        } = self;
        let Written {
            events,
            dropped,
            limit,
        } = trace
            .write(file, &program)
            .map_err(|e| TraceError(format!("writing the trace to {}: {e}", path.display())))?;
        let dropped = if dropped > 0 {
            format!(" ({dropped} more dropped at the limit of {limit}; raise --trace-limit)")
        } else {
            String::new()
        };
        Ok(format!(
            "trace: {events} events written to {}{dropped}; open it in ui.perfetto.dev or chrome://tracing",
            path.display()
        ))
    }
}

/// A stage binary's `main` with `--trace FILE`: run `command` and turn its
/// outcome into the exit code, recording into FILE when `tracing` asks for
/// one. `command` is handed the trace being recorded, if any (a stage whose
/// switches a hook reports installs it for the run, and removes it before
/// returning); what consults [`active`](fn@crate::active) records with no
/// help.
///
/// Each failure is one line on stderr, `PROGRAM: error: what went wrong`
/// (as clap says a bad command line), and a non-zero exit: a FILE that
/// cannot be created fails before `command` runs; a failed `command` still
/// writes what the trace recorded; a FILE that cannot be written fails the
/// run even if `command` succeeded. Otherwise the trace's summary line goes
/// to stderr. `program` with this process's arguments names the recording.
///
/// ```
/// use std::process::ExitCode;
///
/// let file = std::env::temp_dir().join(format!("trace-run-{}.json", std::process::id()));
/// let tracing = trace::TraceArgs { trace: Some(file.clone()), ..Default::default() };
/// let code = trace::cli::run("demo", &tracing, |recording| {
///     let trace = recording.ok_or("--trace was given: a trace is being recorded")?;
///     trace.instant(1, "hello", trace::Args::none());
///     Ok::<(), &str>(())
/// });
/// assert_eq!(code, ExitCode::SUCCESS);
/// assert!(std::fs::read_to_string(&file)?.contains("hello"));
/// std::fs::remove_file(&file)?;
///
/// // A trace that cannot be created: the command never runs.
/// let tracing = trace::TraceArgs { trace: Some("/nonexistent-dir/t.json".into()), ..Default::default() };
/// let code = trace::cli::run("demo", &tracing, |_| -> Result<(), String> { unreachable!() });
/// assert_eq!(code, ExitCode::FAILURE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<E: std::fmt::Display>(
    program: &str,
    tracing: &TraceArgs,
    command: impl FnOnce(Option<&Trace>) -> Result<(), E>,
) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("{program}: error: {e}");
        ExitCode::FAILURE
    };
    let session = match tracing.start(&command_line(program)) {
        Ok(session) => session,
        Err(e) => return fail(&e),
    };
    let mut code = match command(session.as_ref().map(Session::trace)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    };
    if let Some(session) = session {
        match session.finish() {
            Ok(summary) => eprintln!("{summary}"),
            Err(e) => code = fail(&e),
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Demo {
        #[command(flatten)]
        trace: TraceArgs,
    }

    #[test]
    fn the_limit_must_be_a_number_in_its_stated_range() {
        let ok = Demo::try_parse_from(["demo", "--trace", "t.json", "--trace-limit", "5"]).unwrap();
        assert_eq!(ok.trace.trace_limit, 5);
        let most = MAX_LIMIT.to_string();
        let ok = Demo::try_parse_from(["demo", "--trace-limit", &most]).unwrap();
        assert_eq!(ok.trace.trace_limit, MAX_LIMIT);
        let range = format!("1..={MAX_LIMIT}");
        for bad in ["0", "10000001"] {
            let err = Demo::try_parse_from(["demo", "--trace-limit", bad])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--trace-limit") && err.contains(&range),
                "{bad}: {err}"
            );
        }
        for bad in ["many", "1.5", "-3", "99999999999999999999"] {
            let flag = format!("--trace-limit={bad}");
            let err = Demo::try_parse_from(["demo", &flag])
                .unwrap_err()
                .to_string();
            assert!(err.contains("--trace-limit"), "{bad}: {err}");
        }
        assert_eq!(
            Demo::try_parse_from(["demo"]).unwrap().trace.trace_limit,
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn an_unwritable_path_fails_before_anything_runs() {
        let args = TraceArgs {
            trace: Some("/nonexistent-dir/t.json".into()),
            ..TraceArgs::default()
        };
        let err = args.start("demo").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/t.json"), "{err}");
        assert!(!crate::is_active());
    }
}
