//! What to measure: cases, the groups that compare them, and the figures we
//! quote from the lesson notes beside them.

use std::fmt;

/// What one run of a workload hands back to the harness.
///
/// `check` is the workload's result (a sum, a count): the harness compares it
/// with [`Case::expect`] after every run, so a workload the optimizer removed
/// or a bug cut short cannot pass unnoticed. Memory cases also report the
/// resident memory they held at their peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The workload's result, compared with the case's expected value.
    pub check: u64,
    /// Resident memory the workload added at its peak, in bytes, if it measured it.
    pub rss_bytes: Option<u64>,
}

impl Outcome {
    /// An outcome that also reports peak resident memory.
    pub fn with_rss(check: u64, rss_bytes: u64) -> Self {
        Outcome {
            check,
            rss_bytes: Some(rss_bytes),
        }
    }
}

impl From<u64> for Outcome {
    fn from(check: u64) -> Self {
        Outcome {
            check,
            rss_bytes: None,
        }
    }
}

impl From<usize> for Outcome {
    fn from(check: usize) -> Self {
        Outcome::from(check as u64)
    }
}

/// A workload returned something other than what its case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// The case whose workload misbehaved.
    pub case: String,
    /// What the case declared with [`Case::expect`].
    pub expected: u64,
    /// What the workload returned.
    pub got: u64,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "case `{}` returned {} but {} was expected: the workload did not do all its work \
             (a bug in the workload, or the optimizer removed it)",
            self.case, self.got, self.expected
        )
    }
}

impl std::error::Error for CheckError {}

/// One workload to time: a name, how many operations one run performs, the
/// baseline it is compared with and the result it must return.
pub struct Case {
    pub(crate) name: String,
    pub(crate) ops: u64,
    pub(crate) baseline: Option<String>,
    pub(crate) expected: Option<u64>,
    pub(crate) once: bool,
    pub(crate) waits: bool,
    body: Box<dyn FnMut() -> Outcome>,
}

impl Case {
    /// A case named `name` whose workload `body` performs `ops` operations
    /// per run (iterations, switches, messages: whatever "per op" should mean
    /// in the table).
    pub fn new<F, O>(name: impl Into<String>, ops: u64, mut body: F) -> Self
    where
        F: FnMut() -> O + 'static,
        O: Into<Outcome>,
    {
        Case {
            name: name.into(),
            ops: ops.max(1),
            baseline: None,
            expected: None,
            once: false,
            waits: false,
            body: Box::new(move || body().into()),
        }
    }

    /// Compare this case with the case named `baseline` in the same group:
    /// the table shows this case's cost per op over the baseline's (for equal
    /// `ops`, `median(this) / median(baseline)`).
    pub fn baseline(mut self, baseline: impl Into<String>) -> Self {
        self.baseline = Some(baseline.into());
        self
    }

    /// The result every run must return; a different one is a [`CheckError`].
    pub fn expect(mut self, expected: u64) -> Self {
        self.expected = Some(expected);
        self
    }

    /// Run this case once, with no warm-up (or exactly `--runs N` times,
    /// still cold, when the plan asks for N): for workloads that take
    /// seconds of wall-clock time by design (the lessons' sleeps).
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    /// This case measures waiting, not work: criterion benches skip it, since
    /// sampling a five-second sleep a hundred times teaches nothing.
    pub fn waits(mut self) -> Self {
        self.waits = true;
        self.once = true;
        self
    }

    /// The case's name, as the table and the JSON rows show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Operations one run performs.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// The baseline this case is compared with, if any.
    pub fn baseline_name(&self) -> Option<&str> {
        self.baseline.as_deref()
    }

    /// Whether this case measures waiting rather than work (see [`Case::waits`]).
    pub fn is_wait(&self) -> bool {
        self.waits
    }

    /// Run the workload once and check its result.
    ///
    /// ```
    /// let mut case = harness::Case::new("two", 1, || 2u64).expect(3);
    /// let err = case.run_once().unwrap_err();
    /// assert_eq!((err.expected, err.got), (3, 2));
    /// ```
    pub fn run_once(&mut self) -> Result<Outcome, CheckError> {
        let outcome = (self.body)();
        match self.expected {
            Some(expected) if expected != outcome.check => Err(CheckError {
                case: self.name.clone(),
                expected,
                got: outcome.check,
            }),
            _ => Ok(outcome),
        }
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("ops", &self.ops)
            .field("baseline", &self.baseline)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// A CPython figure shown as a row beside ours: quoted from where it was
/// measured (the lesson notes, say, named by `source`), or measured on this
/// machine by the group's [`Script`](crate::cpython::Script).
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub(crate) source: String,
    pub(crate) case: String,
    pub(crate) seconds: f64,
    pub(crate) ops: u64,
    pub(crate) baseline: Option<String>,
    /// Timed runs behind the figure, when it was measured here.
    pub(crate) runs: usize,
    /// Measured on this machine by a [`Script`](crate::cpython::Script),
    /// not quoted from elsewhere.
    pub(crate) measured: bool,
}

impl Quote {
    /// The notes measured `seconds` for `case`, performing `ops` operations,
    /// on `source` (say, "CPython, the notes").
    pub fn new(source: impl Into<String>, case: impl Into<String>, seconds: f64, ops: u64) -> Self {
        Quote {
            source: source.into(),
            case: case.into(),
            seconds,
            ops: ops.max(1),
            baseline: None,
            runs: 0,
            measured: false,
        }
    }

    /// This figure was measured on this machine (by a CPython script),
    /// taking `runs` timed runs: its row says "measured here", not "quoted".
    pub fn measured(mut self, runs: usize) -> Self {
        self.measured = true;
        self.runs = runs;
        self
    }

    /// The quoted case this one is compared with (another quote in the group).
    pub fn baseline(mut self, baseline: impl Into<String>) -> Self {
        self.baseline = Some(baseline.into());
        self
    }
}

/// The cases that answer one question ("does switching slow CPU work?"),
/// measured together so their ratios come from one run on one machine.
#[derive(Debug)]
pub struct Group {
    pub(crate) name: String,
    pub(crate) title: Option<String>,
    pub(crate) cases: Vec<Case>,
    pub(crate) quotes: Vec<Quote>,
    pub(crate) counted: bool,
    pub(crate) cpython: Option<crate::cpython::Script>,
}

impl Group {
    /// An empty group called `name` (short, used in JSON rows and bench ids).
    pub fn new(name: impl Into<String>) -> Self {
        Group {
            name: name.into(),
            title: None,
            cases: Vec::new(),
            quotes: Vec::new(),
            counted: false,
            cpython: None,
        }
    }

    /// The question the group answers, printed above its table.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Add a case.
    pub fn case(mut self, case: Case) -> Self {
        self.cases.push(case);
        self
    }

    /// Add a figure quoted from the notes.
    pub fn quote(mut self, quote: Quote) -> Self {
        self.quotes.push(quote);
        self
    }

    /// Also count each case's instructions per operation under callgrind
    /// (see [`crate::count`]): the table gains an `instr/op` column, or a
    /// footnote saying why it could not be counted. The program must call
    /// [`crate::count::serve`] with a function that rebuilds this group.
    pub fn count_instructions(mut self) -> Self {
        self.counted = true;
        self
    }

    /// Time the group without counting its instructions: for a repeat of a
    /// group already counted once in the run (the count does not change;
    /// `figures` repeats groups to state their timings' spread).
    pub fn timed_only(mut self) -> Self {
        self.counted = false;
        self
    }

    /// Whether [`Group::count_instructions`] was asked for.
    pub fn counts_instructions(&self) -> bool {
        self.counted
    }

    /// Measure the group's CPython figures here with `script` when Python
    /// can run it; the quotes are the fallback, shown when it cannot.
    pub fn cpython(mut self, script: crate::cpython::Script) -> Self {
        self.cpython = Some(script);
        self
    }

    /// The same group with its quotes only: no CPython script is run (the
    /// fallback a machine without Python gets; for tests).
    pub fn without_cpython(mut self) -> Self {
        self.cpython = None;
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cases, for the criterion benches to drive.
    pub fn cases_mut(&mut self) -> &mut [Case] {
        &mut self.cases
    }

    /// Baselines named in this group that name nothing: a measured case must
    /// be compared with a measured case of the group, a quote with a quote.
    /// A misspelt baseline would otherwise just leave its ratio blank.
    ///
    /// ```
    /// use harness::{Case, Group};
    /// let group = Group::new("g")
    ///     .case(Case::new("serial", 1, || 1u64))
    ///     .case(Case::new("switching", 1, || 1u64).baseline("serail"));
    /// assert_eq!(group.missing_baselines(), ["serail"]);
    /// ```
    pub fn missing_baselines(&self) -> Vec<String> {
        let measured = self.cases.iter().filter_map(|c| {
            let found = self
                .cases
                .iter()
                .any(|other| Some(other.name()) == c.baseline_name());
            c.baseline.clone().filter(|_| !found)
        });
        let quoted = self.quotes.iter().filter_map(|q| {
            let found = self
                .quotes
                .iter()
                .any(|other| Some(&other.case) == q.baseline.as_ref());
            q.baseline.clone().filter(|_| !found)
        });
        measured.chain(quoted).collect()
    }
}
