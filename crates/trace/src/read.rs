//! Reading a trace file back: the slices each track ran and the waits
//! between them. The tests of every stage check their lessons with it, and
//! `figures` draws its timelines from it, so both read exactly what a
//! learner opens in Perfetto.
//!
//! One convention ties waits to slices: an instant named [`PARK`] (with the
//! reason in its `on` argument) starts a wait, which lasts until the track
//! next runs.

use std::path::Path;

use serde_json::{Map, Value};

/// The instant that starts a wait (the hub records one at every park).
pub const PARK: &str = "park";

/// A track, as the file names it: (`pid`, `tid`).
pub type TrackId = (u64, u64);

/// One track of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Its id.
    pub id: TrackId,
    /// The greenlet's (or generator's) name.
    pub name: String,
    /// The name of the OS thread (the "process" in the file) it ran on.
    pub thread: String,
}

/// A complete event: a slice a track ran, or a span nested in one.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// The track.
    pub track: TrackId,
    /// The event's name (for a run, the track's name).
    pub name: String,
    /// Start, in microseconds since the trace began.
    pub start: f64,
    /// Length, in microseconds.
    pub dur: f64,
    /// Its `args`.
    pub args: Map<String, Value>,
}

impl Slice {
    /// End, in microseconds since the trace began.
    pub fn end(&self) -> f64 {
        self.start + self.dur
    }

    /// How the track got the CPU (`start`, `switch`, `throw`, `resume`, …).
    pub fn entered_by(&self) -> &str {
        self.args
            .get("entered_by")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// A text argument.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Value::as_str)
    }
}

/// An instant event.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The track.
    pub track: TrackId,
    /// Its name (`park`, `ends`, …).
    pub name: String,
    /// When, in microseconds since the trace began.
    pub at: f64,
    /// Its `args`.
    pub args: Map<String, Value>,
}

/// A wait: from a [`PARK`] instant until the track next ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// Start, in microseconds.
    pub start: f64,
    /// End, in microseconds (the trace's end if it never ran again).
    pub end: f64,
    /// What it waited on (the park's `on` argument).
    pub on: String,
}

/// A trace file, read back.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Every named track, in the file's order.
    pub tracks: Vec<Track>,
    /// Slices the tracks ran, by start time.
    pub runs: Vec<Slice>,
    /// Nested spans (the hub's polls), by start time.
    pub spans: Vec<Slice>,
    /// Instants, by time.
    pub marks: Vec<Mark>,
    /// Events the recorder dropped at its limit.
    pub dropped: u64,
    /// The program that wrote it.
    pub program: String,
}

/// A file that is not a trace this crate wrote.
#[derive(Debug)]
pub struct ReadError(String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a trace file: {}", self.0)
    }
}

impl std::error::Error for ReadError {}

fn num(v: &Value, field: &str) -> Result<f64, ReadError> {
    v.get(field)
        .and_then(Value::as_f64)
        .ok_or_else(|| ReadError(format!("an event without a numeric `{field}`: {v}")))
}

fn id(v: &Value) -> Result<TrackId, ReadError> {
    let get = |f: &str| {
        v.get(f)
            .and_then(Value::as_u64)
            .ok_or_else(|| ReadError(format!("an event without `{f}`: {v}")))
    };
    Ok((get("pid")?, get("tid")?))
}

impl Recorded {
    /// Read the file at `path`.
    pub fn read(path: &Path) -> Result<Recorded, ReadError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ReadError(format!("cannot read {}: {e}", path.display())))?;
        Recorded::parse(&bytes)
    }

    /// Parse a trace file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Recorded, ReadError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ReadError(format!("not JSON: {e}")))?;
        let events = value["traceEvents"]
            .as_array()
            .ok_or_else(|| ReadError("no `traceEvents` array".into()))?;
        let mut out = Recorded {
            dropped: value["otherData"]["dropped_events"].as_u64().unwrap_or(0),
            program: value["otherData"]["program"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            ..Recorded::default()
        };
        let mut threads = std::collections::HashMap::new();
        for e in events {
            let name = e["name"].as_str().unwrap_or_default().to_string();
            let args = e["args"].as_object().cloned().unwrap_or_default();
            match (e["ph"].as_str(), e["cat"].as_str()) {
                (Some("M"), _) if name == "process_name" => {
                    let label = args.get("name").and_then(Value::as_str).unwrap_or("");
                    let thread = label.rsplit_once(": thread ").map_or(label, |(_, t)| t);
                    threads.insert(id(e)?.0, thread.to_string());
                }
                (Some("M"), _) if name == "thread_name" => out.tracks.push(Track {
                    id: id(e)?,
                    name: args
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    thread: String::new(),
                }),
                (Some("X"), cat) => {
                    let slice = Slice {
                        track: id(e)?,
                        name,
                        start: num(e, "ts")?,
                        dur: num(e, "dur")?,
                        args,
                    };
                    if cat == Some("run") {
                        out.runs.push(slice);
                    } else {
                        out.spans.push(slice);
                    }
                }
                (Some("i"), _) => out.marks.push(Mark {
                    track: id(e)?,
                    name,
                    at: num(e, "ts")?,
                    args,
                }),
                _ => {}
            }
        }
        for track in &mut out.tracks {
            track.thread = threads.get(&track.id.0).cloned().unwrap_or_default();
        }
        out.runs.sort_by(|a, b| a.start.total_cmp(&b.start));
        out.spans.sort_by(|a, b| a.start.total_cmp(&b.start));
        out.marks.sort_by(|a, b| a.at.total_cmp(&b.at));
        Ok(out)
    }

    /// The first track called `name`.
    pub fn track(&self, name: &str) -> Option<TrackId> {
        self.tracks.iter().find(|t| t.name == name).map(|t| t.id)
    }

    /// The name of track `id`.
    pub fn name_of(&self, id: TrackId) -> &str {
        self.tracks
            .iter()
            .find(|t| t.id == id)
            .map_or("", |t| t.name.as_str())
    }

    /// The slices `track` ran, in order.
    pub fn slices_of(&self, track: TrackId) -> Vec<&Slice> {
        self.runs.iter().filter(|s| s.track == track).collect()
    }

    /// The instants on `track` called `name`, in order.
    pub fn marks_of(&self, track: TrackId, name: &str) -> Vec<&Mark> {
        self.marks
            .iter()
            .filter(|m| m.track == track && m.name == name)
            .collect()
    }

    /// Where the trace ends: the latest end of any event.
    pub fn end(&self) -> f64 {
        let runs = self.runs.iter().chain(&self.spans).map(Slice::end);
        runs.chain(self.marks.iter().map(|m| m.at))
            .fold(0.0, f64::max)
    }

    /// `track`'s waits: from each [`PARK`] until it next ran.
    pub fn waits(&self, track: TrackId) -> Vec<Wait> {
        let runs = self.slices_of(track);
        self.marks_of(track, PARK)
            .into_iter()
            .map(|park| Wait {
                start: park.at,
                end: runs
                    .iter()
                    .find(|r| r.start >= park.at)
                    .map_or_else(|| self.end(), |r| r.start),
                on: park
                    .args
                    .get("on")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arg, Args, Trace};

    #[test]
    fn what_was_written_reads_back_with_its_waits() {
        let trace = Trace::new(100);
        let name = |k: u64| ["main", "sleeper"][k as usize].to_string();
        trace.running(0, || "main".into());
        trace.switch(0, 1, "start", name);
        trace.instant(1, PARK, Args::one("on", Arg::Str("sleep".into())));
        trace.switch(1, 0, "switch", name);
        std::thread::sleep(std::time::Duration::from_millis(2));
        trace.switch(0, 1, "switch", name);
        let mut bytes = Vec::new();
        trace.write(&mut bytes, "test").unwrap();
        let r = Recorded::parse(&bytes).unwrap();
        assert_eq!(r.program, "test");
        let sleeper = r.track("sleeper").unwrap();
        let runs = r.slices_of(sleeper);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].entered_by(), "start");
        assert_eq!(runs[1].arg("from"), Some("main"));
        let waits = r.waits(sleeper);
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].on, "sleep");
        assert!(waits[0].end - waits[0].start >= 2000.0, "{waits:?}");
        assert_eq!(r.tracks[0].thread, std::thread::current().name().unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_trace_says_so() {
        let err = Recorded::parse(b"{\"x\":1}").unwrap_err();
        assert!(err.to_string().contains("traceEvents"), "{err}");
    }
}
