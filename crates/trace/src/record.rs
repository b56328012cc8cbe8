//! The recorder: tracks, slices, instants and spans, kept up to a cap.
//!
//! One [`Trace`] may be fed from several OS threads (a hub on each); every
//! call records on behalf of the calling thread, which keeps its own
//! "running" slice. All of it sits behind one mutex: recording is a few
//! dozen nanoseconds, which the lessons measure and state.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One argument of an event, as the trace file shows it under `args`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Text.
    Str(Cow<'static, str>),
    /// A whole number.
    Int(i64),
    /// A number, such as milliseconds.
    Float(f64),
    /// Another track of the same thread, by key: written as its name.
    Track(u64),
}

/// Up to two named arguments: enough for every event the stages record,
/// and no allocation for the list itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(pub(crate) [Option<(&'static str, Arg)>; 2]);

impl Args {
    /// No arguments.
    pub fn none() -> Args {
        Args::default()
    }

    /// One argument.
    pub fn one(name: &'static str, value: Arg) -> Args {
        Args([Some((name, value)), None])
    }

    /// Add a second argument (replacing the second if there was one).
    pub fn and(mut self, name: &'static str, value: Arg) -> Args {
        let at = usize::from(self.0[0].is_some());
        self.0[at] = Some((name, value));
        self
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(&'static str, Arg)> {
        self.0.iter().flatten()
    }
}

/// What an event is.
#[derive(Debug, Clone)]
pub(crate) enum What {
    /// The track ran for `dur` nanoseconds; named after the track.
    Run {
        dur: u64,
        entered_by: &'static str,
        from: Option<u64>,
        still_running: bool,
    },
    /// A nested interval on the track (a poll, say). Boxed, as instants
    /// are, so that the frequent runs keep events small.
    Span {
        dur: u64,
        name: Cow<'static, str>,
        args: Box<Args>,
    },
    /// A moment on the track.
    Instant {
        name: Cow<'static, str>,
        args: Box<Args>,
    },
}

impl What {
    fn is_mark(&self) -> bool {
        !matches!(self, What::Run { .. })
    }
}

/// One recorded event.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) thread: u32,
    pub(crate) key: u64,
    /// Nanoseconds since the trace began.
    pub(crate) at: u64,
    pub(crate) what: What,
}

/// A track: one thing that runs on one OS thread.
#[derive(Debug, Clone)]
pub(crate) struct TrackInfo {
    pub(crate) name: String,
    /// Order of first appearance: the file lists tracks in this order.
    pub(crate) order: u32,
}

/// The slice a thread is in the middle of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    pub(crate) key: u64,
    pub(crate) start: u64,
    pub(crate) entered_by: &'static str,
    pub(crate) from: Option<u64>,
}

/// An OS thread that recorded something.
#[derive(Debug, Clone)]
pub(crate) struct ThreadInfo {
    pub(crate) name: String,
    pub(crate) order: u32,
    pub(crate) running: Option<Open>,
}

/// Hashes our own small integer keys with one multiply per word: every
/// switch looks two tracks up, and SipHash would be most of its cost.
#[derive(Debug, Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Everything behind the mutex.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    pub(crate) events: Vec<Event>,
    pub(crate) dropped: u64,
    pub(crate) tracks: KeyMap<(u32, u64), TrackInfo>,
    pub(crate) threads: KeyMap<u32, ThreadInfo>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) epoch: Instant,
    pub(crate) cap: usize,
    pub(crate) buffer: Mutex<Buffer>,
}

/// A recording of who ran when. Cloning gives another handle to the same
/// recording; it may be fed from any thread.
#[derive(Debug, Clone)]
pub struct Trace(pub(crate) Arc<Shared>);

/// This thread's number in every trace (1 for the first thread that records).
pub(crate) fn thread_ordinal() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static ORDINAL: Cell<u32> = const { Cell::new(0) };
    }
    ORDINAL.with(|o| {
        if o.get() == 0 {
            o.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        o.get()
    })
}

impl Trace {
    /// An empty trace that keeps at most `cap` events (at least one).
    pub fn new(cap: usize) -> Trace {
        let cap = cap.max(1);
        // Room up front (address space only, until used): growing by
        // doubling would copy every event recorded so far, again and again.
        let buffer = Buffer {
            events: Vec::with_capacity(cap.min(1 << 20)),
            ..Buffer::default()
        };
        Trace(Arc::new(Shared {
            epoch: Instant::now(),
            cap,
            buffer: Mutex::new(buffer),
        }))
    }

    /// Nanoseconds since the trace began: the clock every event is stamped with.
    pub fn now(&self) -> u64 {
        self.stamp(Instant::now())
    }

    /// `at` on the trace's clock (0 if it is before the trace began).
    pub fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.0.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// At most this many events are kept.
    pub fn cap(&self) -> usize {
        self.0.cap
    }

    /// Events kept so far.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether nothing was kept yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events not kept because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while recording leaves nothing half-written that matters.
        self.0.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Name (or rename) the track `key` of this thread.
    pub fn name_track(&self, key: u64, name: impl Into<String>) {
        let thread = thread_ordinal();
        let mut buf = self.lock();
        let order = buf.tracks.len() as u32;
        let name = name.into();
        buf.tracks
            .entry((thread, key))
            .and_modify(|t| t.name.clone_from(&name))
            .or_insert(TrackInfo { name, order });
    }

    /// Control moves from track `from` to track `to` on this thread, now:
    /// the running slice ends and `to`'s begins, entered by `entered_by`.
    /// `name` names a track seen for the first time.
    pub fn switch(
        &self,
        from: u64,
        to: u64,
        entered_by: &'static str,
        mut name: impl FnMut(u64) -> String,
    ) {
        let at = self.now();
        let thread = thread_ordinal();
        let mut buf = self.lock();
        for key in [from, to] {
            ensure_track(&mut buf, thread, key, &mut name);
        }
        let info = ensure_thread(&mut buf, thread);
        let ended = info.running.replace(Open {
            key: to,
            start: at,
            entered_by,
            from: Some(from),
        });
        if let Some(open) = ended {
            self.push(&mut buf, thread, closed(open, thread, at, false));
        }
    }

    /// Say that `key` is running on this thread from now, if nothing is
    /// yet (the first track of a recording: `main`, usually).
    pub fn running(&self, key: u64, name: impl FnOnce() -> String) {
        let at = self.now();
        let thread = thread_ordinal();
        let mut buf = self.lock();
        let mut name = Some(name);
        ensure_track(&mut buf, thread, key, &mut |_| {
            name.take().map_or_else(String::new, |f| f())
        });
        let info = ensure_thread(&mut buf, thread);
        if info.running.is_none() {
            info.running = Some(Open {
                key,
                start: at,
                entered_by: "first seen",
                from: None,
            });
        }
    }

    /// End this thread's running slice now (before it stops recording).
    pub fn stop_running(&self) {
        let at = self.now();
        let thread = thread_ordinal();
        let mut buf = self.lock();
        if let Some(open) = buf.threads.get_mut(&thread).and_then(|t| t.running.take()) {
            self.push(&mut buf, thread, closed(open, thread, at, false));
        }
    }

    /// A moment on track `key` of this thread.
    pub fn instant(&self, key: u64, name: impl Into<Cow<'static, str>>, args: Args) {
        let at = self.now();
        let thread = thread_ordinal();
        let mut buf = self.lock();
        let event = Event {
            thread,
            key,
            at,
            what: What::Instant {
                name: name.into(),
                args: Box::new(args),
            },
        };
        self.push(&mut buf, thread, event);
    }

    /// A nested interval on track `key` of this thread, from `start` to
    /// `end` (both from [`Trace::now`] or [`Trace::stamp`]).
    pub fn span(
        &self,
        key: u64,
        name: impl Into<Cow<'static, str>>,
        start: u64,
        end: u64,
        args: Args,
    ) {
        let thread = thread_ordinal();
        let mut buf = self.lock();
        let event = Event {
            thread,
            key,
            at: start,
            what: What::Span {
                dur: end.saturating_sub(start),
                name: name.into(),
                args: Box::new(args),
            },
        };
        self.push(&mut buf, thread, event);
    }

    fn push(&self, buf: &mut Buffer, thread: u32, event: Event) {
        if event.what.is_mark() {
            ensure_thread(buf, thread); // a run's thread is known already
        }
        if buf.events.len() < self.0.cap {
            buf.events.push(event);
        } else {
            buf.dropped += 1;
        }
    }
}

/// The slice `open` of `thread` described, ended at `end`.
pub(crate) fn closed(open: Open, thread: u32, end: u64, still_running: bool) -> Event {
    Event {
        thread,
        key: open.key,
        at: open.start,
        what: What::Run {
            dur: end.saturating_sub(open.start),
            entered_by: open.entered_by,
            from: open.from,
            still_running,
        },
    }
}

fn ensure_track(buf: &mut Buffer, thread: u32, key: u64, name: &mut impl FnMut(u64) -> String) {
    if !buf.tracks.contains_key(&(thread, key)) {
        let order = buf.tracks.len() as u32;
        buf.tracks.insert(
            (thread, key),
            TrackInfo {
                name: name(key),
                order,
            },
        );
    }
}

fn ensure_thread(buf: &mut Buffer, thread: u32) -> &mut ThreadInfo {
    let order = buf.threads.len() as u32;
    buf.threads.entry(thread).or_insert_with(|| {
        let current = std::thread::current();
        ThreadInfo {
            name: current
                .name()
                .map_or_else(|| format!("thread {thread}"), str::to_string),
            order,
            running: None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(key: u64) -> String {
        format!("t{key}")
    }

    #[test]
    fn a_switch_ends_one_slice_and_begins_the_next() {
        let trace = Trace::new(100);
        trace.running(0, || "main".into());
        trace.switch(0, 1, "start", name);
        trace.switch(1, 0, "return", name);
        let buf = trace.lock();
        let runs: Vec<(u64, &str)> = buf
            .events
            .iter()
            .map(|e| match e.what {
                What::Run { entered_by, .. } => (e.key, entered_by),
                _ => panic!("only runs were recorded"),
            })
            .collect();
        assert_eq!(runs, [(0, "first seen"), (1, "start")]);
        assert_eq!(buf.tracks[&(thread_ordinal(), 0)].name, "main");
        assert_eq!(buf.tracks[&(thread_ordinal(), 1)].name, "t1");
        // main is running again, not yet recorded as a slice.
        let open = buf.threads[&thread_ordinal()].running.unwrap();
        assert_eq!((open.key, open.entered_by), (0, "return"));
    }

    #[test]
    fn past_the_cap_events_are_counted_not_kept() {
        let trace = Trace::new(3);
        for i in 0..10 {
            trace.instant(0, "tick", Args::one("i", Arg::Int(i)));
        }
        assert_eq!((trace.len(), trace.dropped()), (3, 7));
    }

    #[test]
    fn threads_keep_their_own_running_slice() {
        let trace = Trace::new(100);
        trace.running(0, || "main".into());
        let t = trace.clone();
        std::thread::spawn(move || {
            t.running(0, || "main".into());
            t.switch(0, 7, "start", name);
            t.stop_running();
        })
        .join()
        .unwrap();
        let buf = trace.lock();
        assert_eq!(buf.threads.len(), 2);
        // The other thread's two slices were closed; ours is still open.
        assert_eq!(buf.events.len(), 2);
        assert!(buf.threads[&thread_ordinal()].running.is_some());
    }

    #[test]
    fn args_hold_two_and_the_second_can_be_added() {
        let args = Args::one("a", Arg::Int(1)).and("b", Arg::Str("x".into()));
        let names: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(Args::none().iter().count(), 0);
    }
}
