//! What a listing printed, in order: shown to the learner as it happens and
//! kept for the tests, which assert the order of events.

use std::cell::RefCell;

use harness::Output;

/// The lines a listing has said so far.
///
/// A listing never prints directly: it calls [`Transcript::say`], which
/// writes through the harness [`Output`] (stdout, or stderr under `--json`)
/// and also keeps the line. Saying takes `&self`, so the two sides of a
/// coroutine listing (the caller and the generator body) can both narrate
/// into one transcript.
///
/// ```
/// let t = stage_serial::Transcript::silent();
/// t.say("first");
/// t.say(format!("second {}", 2));
/// assert_eq!(t.lines(), ["first", "second 2"]);
/// ```
#[derive(Debug, Default)]
pub struct Transcript {
    output: Output,
    lines: RefCell<Vec<String>>,
}

impl Transcript {
    /// A transcript that also shows each line through `output`.
    pub fn new(output: Output) -> Self {
        Transcript {
            output,
            lines: RefCell::new(Vec::new()),
        }
    }

    /// A transcript that only keeps its lines (for tests).
    pub fn silent() -> Self {
        Transcript::new(Output::silent())
    }

    /// Say one line: show it and keep it.
    pub fn say(&self, line: impl Into<String>) {
        let line = line.into();
        self.output.say(&line);
        self.lines.borrow_mut().push(line);
    }

    /// Every line said so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// Where the lines are shown.
    pub fn output(&self) -> Output {
        self.output
    }
}
