//! Watching the switches: a per-thread hook in the spirit of python-greenlet's
//! `settrace`, and the tracer that records a timeline with it.
//!
//! [`settrace`] installs a function that every transfer of control on this
//! thread calls, just before the stack switch, with a [`SwitchEvent`]: what
//! kind of transfer it is and which greenlets it goes from and to.
//!
//! - [`SwitchKind::Switch`]: a `switch` (the first one starts the target);
//! - [`SwitchKind::Throw`]: a kill, unwinding the target from its switch;
//! - [`SwitchKind::Exit`]: the origin's function ended (returned, panicked
//!   or was killed) and its outcome goes to the target, its first live
//!   ancestor. python-greenlet reports that as a `switch`; we say what it is.
//!
//! With no hook installed, a switch pays for this with one test of a
//! thread-local flag, a branch the CPU always predicts: the switch-cost
//! table shows a switch with no hook beside one with a hook that does
//! nothing. The hook itself runs on the origin's stack, with the switch not
//! yet made: it must not switch greenlets itself (switches it makes are not
//! reported, and the switch it interrupted is re-checked afterwards). A hook
//! that panics is removed; the panic goes on from the `switch` that called
//! it, except at an `Exit`, where nothing can unwind, and it is printed.
//!
//! [`record`] is such a hook: it draws the timeline `--trace FILE` writes,
//! and [`run_traced`] is the `main` every binary from this stage on shares
//! to offer that option.
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//! use stage_greenlet::{hook, Greenlet};
//!
//! let seen = Rc::new(RefCell::new(Vec::new()));
//! let log = seen.clone();
//! hook::settrace(Some(Rc::new(move |e: &hook::SwitchEvent<'_>| {
//!     log.borrow_mut().push(format!("{:?} {} -> {}", e.kind, e.origin.name(), e.target.name()));
//! })));
//! let g = Greenlet::builder().name("child").spawn(|x: u32| x + 1)?;
//! assert_eq!(g.switch::<u32, u32>(1)?, 2);
//! hook::settrace(None);
//! assert_eq!(*seen.borrow(), ["Switch main -> child", "Exit child -> main"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::rc::Rc;

use crate::switch::{self, Inner};

/// What kind of transfer a [`SwitchEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchKind {
    /// `origin.switch` to `target` (the first one starts it).
    Switch,
    /// `origin` kills `target`: it unwinds from its pending switch.
    Throw,
    /// `origin`'s function ended; its outcome goes to `target`.
    Exit,
}

/// A greenlet as a hook sees it: who it is, without a handle to it (a hook
/// runs in the middle of a switch, where making or dropping handles would
/// be a switch of its own).
#[derive(Clone, Copy)]
pub struct GreenletInfo<'a>(&'a Inner);

impl GreenletInfo<'_> {
    /// Its id, as [`Greenlet::id`](crate::Greenlet::id) says (main is 0).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Its name, as [`Greenlet::name`](crate::Greenlet::name) says.
    pub fn name(&self) -> String {
        self.0.display_name()
    }

    /// Whether its function was ever called.
    pub fn is_started(&self) -> bool {
        self.0.was_started.get()
    }

    /// Whether it is the thread's main greenlet.
    pub fn is_main(&self) -> bool {
        self.0.is_main()
    }
}

impl std::fmt::Debug for GreenletInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{}", self.name(), self.id())
    }
}

/// One transfer of control, reported just before the stack switch.
#[derive(Debug, Clone, Copy)]
pub struct SwitchEvent<'a> {
    /// What kind of transfer.
    pub kind: SwitchKind,
    /// The greenlet giving up the CPU (the running one).
    pub origin: GreenletInfo<'a>,
    /// The greenlet getting it.
    pub target: GreenletInfo<'a>,
}

/// A switch hook.
pub type Tracer = Rc<dyn Fn(&SwitchEvent<'_>)>;

thread_local! {
    /// Set while the tracer runs: the switches it makes are not reported.
    static IN_TRACER: Cell<bool> = const { Cell::new(false) };
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
}

/// Install `tracer` for this thread's switches (`None` removes it); returns
/// the one it replaces.
pub fn settrace(tracer: Option<Tracer>) -> Option<Tracer> {
    let on = tracer.is_some();
    let old = TRACER.with(|t| t.replace(tracer));
    switch::set_reporting(on);
    old
}

/// This thread's switch hook, if one is installed.
pub fn gettrace() -> Option<Tracer> {
    TRACER.with(|t| t.borrow().clone())
}

// ANCHOR: record
/// Record this thread's switches into `trace`: one track per greenlet, a
/// slice for every interval each one runs. Replaces (and returns) any hook
/// installed before. The running greenlet's slice begins now.
pub fn record(trace: &trace::Trace) -> Option<Tracer> {
    let me = crate::current();
    trace.running(me.id(), || me.name());
    let trace = trace.clone();
    settrace(Some(Rc::new(move |e: &SwitchEvent<'_>| {
        let entered_by = match e.kind {
            SwitchKind::Switch if !e.target.is_started() => "start",
            SwitchKind::Switch => "switch",
            SwitchKind::Throw => "throw",
            SwitchKind::Exit => "return",
        };
        let (origin, target) = (e.origin, e.target);
        if e.kind == SwitchKind::Exit {
            trace.instant(origin.id(), "ends", trace::Args::none());
        }
        trace.switch(origin.id(), target.id(), entered_by, |id| {
            if id == origin.id() {
                origin.name()
            } else {
                target.name()
            }
        });
    })))
}
// ANCHOR_END: record

/// A stage binary's `main` with `--trace FILE`: run `command` and set the
/// exit code, recording this thread's switches (see [`record`]) into FILE
/// when `tracing` asks for one.
///
/// The rest is [`trace::cli::run`]'s: each failure is one line on stderr,
/// `PROGRAM: error: what went wrong`, and a non-zero exit, the trace written
/// whatever the command's outcome. The hook is removed once `command`
/// returns.
///
/// ```
/// use std::process::ExitCode;
/// use stage_greenlet::{hook, Greenlet};
///
/// let file = std::env::temp_dir().join(format!("run-traced-{}.json", std::process::id()));
/// let tracing = trace::TraceArgs { trace: Some(file.clone()), ..Default::default() };
/// let code = hook::run_traced("demo", &tracing, || {
///     let child = Greenlet::builder().name("child").spawn(|x: u32| x + 1)?;
///     assert_eq!(child.switch::<u32, u32>(1)?, 2);
///     Ok::<(), Box<dyn std::error::Error>>(())
/// });
/// assert_eq!(code, ExitCode::SUCCESS);
/// let recorded = trace::read::Recorded::read(&file)?;
/// assert!(recorded.track("child").is_some());
/// std::fs::remove_file(&file)?;
///
/// // A trace that cannot be created: the command never runs.
/// let tracing = trace::TraceArgs { trace: Some("/nonexistent-dir/t.json".into()), ..Default::default() };
/// let code = hook::run_traced("demo", &tracing, || -> Result<(), String> { unreachable!() });
/// assert_eq!(code, ExitCode::FAILURE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_traced<E: std::fmt::Display>(
    program: &str,
    tracing: &trace::TraceArgs,
    command: impl FnOnce() -> Result<(), E>,
) -> ExitCode {
    trace::cli::run(program, tracing, |recording| {
        let Some(trace) = recording else {
            return command();
        };
        record(trace);
        let outcome = command();
        settrace(None);
        outcome
    })
}

/// Whether a tracer is installed on this thread. The flag lives with the
/// switch's own per-thread state: a switch tests it together with that in
/// one byte.
#[inline(always)]
pub(crate) fn on() -> bool {
    switch::reporting()
}

/// Call this thread's tracer for one transfer. Reports made while it runs
/// (switches the tracer itself makes) are suppressed.
#[cold]
#[inline(never)]
pub(crate) fn report(kind: SwitchKind, origin: &Inner, target: &Inner) {
    if IN_TRACER.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let Some(tracer) = TRACER.try_with(|t| t.borrow().clone()).ok().flatten() else {
        return;
    };
    /// Turns reports back on once the tracer is done, however it ends.
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = IN_TRACER.try_with(|t| t.set(false));
        }
    }
    IN_TRACER.with(|t| t.set(true));
    let resume = Resume;
    let event = SwitchEvent {
        kind,
        origin: GreenletInfo(origin),
        target: GreenletInfo(target),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| tracer(&event)));
    drop(tracer);
    if let Err(payload) = outcome {
        let _ = TRACER.try_with(|t| t.replace(None));
        switch::set_reporting(false);
        drop(resume);
        if kind == SwitchKind::Exit {
            eprintln!(
                "stage-greenlet: the switch hook panicked as `{}` ended; it has been removed",
                origin.display_name()
            );
        } else {
            resume_unwind(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Greenlet;

    /// Install a hook that logs `kind origin -> target`; returns the log.
    fn logging() -> Rc<RefCell<Vec<String>>> {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        settrace(Some(Rc::new(move |e: &SwitchEvent<'_>| {
            let line = format!("{:?} {} -> {}", e.kind, e.origin.name(), e.target.name());
            l.borrow_mut().push(line);
        })));
        log
    }

    #[test]
    fn a_kill_by_drop_is_a_throw_and_then_an_exit() {
        let g = Greenlet::builder()
            .name("sleeper")
            .spawn(|()| {
                let _: Result<(), _> = crate::switch_to_parent(());
            })
            .unwrap();
        let log = logging();
        g.switch::<(), ()>(()).unwrap();
        drop(g);
        settrace(None);
        assert_eq!(
            *log.borrow(),
            [
                "Switch main -> sleeper",
                "Switch sleeper -> main",
                "Throw main -> sleeper",
                "Exit sleeper -> main"
            ]
        );
    }

    #[test]
    fn a_switch_to_yourself_is_not_reported() {
        let log = logging();
        assert_eq!(crate::current().switch::<u8, u8>(3).unwrap(), 3);
        settrace(None);
        assert!(log.borrow().is_empty(), "{:?}", log.borrow());
    }

    #[test]
    fn a_hook_that_panics_is_removed_and_the_switch_does_not_happen() {
        let g = Greenlet::new(|x: u8| x).unwrap();
        settrace(Some(Rc::new(|_: &SwitchEvent<'_>| panic!("hook failed"))));
        let outcome = catch_unwind(AssertUnwindSafe(|| g.switch::<u8, u8>(1)));
        assert!(outcome.is_err());
        assert!(gettrace().is_none() && !on());
        assert!(!g.is_started());
        assert_eq!(g.switch::<u8, u8>(2).unwrap(), 2);
    }

    #[test]
    fn a_hook_that_panics_as_a_greenlet_ends_is_removed_and_the_value_arrives() {
        let g = Greenlet::new(|x: u8| x + 1).unwrap();
        settrace(Some(Rc::new(|e: &SwitchEvent<'_>| {
            if e.kind == SwitchKind::Exit {
                panic!("hook failed at the exit");
            }
        })));
        assert_eq!(g.switch::<u8, u8>(1).unwrap(), 2);
        assert!(gettrace().is_none());
    }

    #[test]
    fn switches_a_hook_makes_are_not_reported_to_it() {
        let side = Greenlet::new(|()| loop {
            if crate::switch_to_parent::<(), ()>(()).is_err() {
                return;
            }
        })
        .unwrap();
        let calls = Rc::new(Cell::new(0));
        let (c, s) = (calls.clone(), side.clone());
        settrace(Some(Rc::new(move |e: &SwitchEvent<'_>| {
            c.set(c.get() + 1);
            if e.kind == SwitchKind::Switch {
                // From main's stack: a round trip of its own, unreported.
                s.switch::<(), ()>(()).unwrap();
            }
        })));
        let g = Greenlet::new(|x: u8| x).unwrap();
        assert_eq!(g.switch::<u8, u8>(7).unwrap(), 7);
        settrace(None);
        assert_eq!(calls.get(), 2); // main -> g, and g's exit
    }
}
