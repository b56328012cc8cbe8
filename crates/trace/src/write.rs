//! The Chrome trace-event format, as Perfetto and `chrome://tracing` read it.
//!
//! One JSON object: `traceEvents` holds the events, `otherData` what the
//! recording was (program, limit, events kept and dropped). Each OS thread
//! is a "process" (`pid`) so that its tracks are grouped together; each
//! track is a "thread" (`tid`) named after the greenlet or generator. A
//! slice the track ran is a complete event (`"ph":"X"`, category `run`)
//! named after the track, with `entered_by` and `from` in its `args`; a
//! nested span is also `X` (category `span`); an instant is `"ph":"i"`.
//! Times are microseconds since the trace began.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::record::{closed, Arg, Args, Buffer, Event, What};
use crate::Trace;

/// What [`Trace::write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Events written (slices still running at the end included).
    pub events: usize,
    /// Events the limit made the trace drop.
    pub dropped: u64,
    /// The limit.
    pub limit: usize,
}

impl Trace {
    /// Write the trace as Chrome trace-event JSON, naming it after
    /// `program`. Slices still running are written as ending now, marked
    /// `still_running`.
    pub fn write(&self, out: impl Write, program: &str) -> io::Result<Written> {
        let now = self.now();
        let buf = self.lock();
        let mut out = io::BufWriter::new(out);
        let mut first = true;
        let mut emit = |out: &mut io::BufWriter<_>, value: Value| -> io::Result<()> {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            serde_json::to_writer(&mut *out, &value).map_err(io::Error::other)
        };
        out.write_all(b"{\"traceEvents\":[")?;
        for value in metadata(&buf, program) {
            emit(&mut out, value)?;
        }
        let mut written = 0;
        for event in &buf.events {
            emit(&mut out, event_json(&buf, event))?;
            written += 1;
        }
        let mut open: Vec<(u32, _)> = buf
            .threads
            .iter()
            .filter_map(|(thread, info)| info.running.map(|o| (*thread, o)))
            .collect();
        open.sort_by_key(|(thread, _)| *thread);
        for (thread, slice) in open {
            emit(
                &mut out,
                event_json(&buf, &closed(slice, thread, now, true)),
            )?;
            written += 1;
        }
        if buf.dropped > 0 {
            emit(
                &mut out,
                json!({
                    "name": format!(
                        "trace full: {} events dropped (limit {}; raise it with --trace-limit)",
                        buf.dropped, self.cap()
                    ),
                    "cat": "mark", "ph": "i", "s": "g", "ts": micros(now), "pid": 1, "tid": 0,
                }),
            )?;
        }
        out.write_all(b"\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":")?;
        let other = json!({
            "program": program,
            "event_limit": self.cap(),
            "events": written,
            "dropped_events": buf.dropped,
        });
        serde_json::to_writer(&mut out, &other).map_err(io::Error::other)?;
        out.write_all(b"}\n")?;
        out.flush()?;
        Ok(Written {
            events: written,
            dropped: buf.dropped,
            limit: self.cap(),
        })
    }
}

/// Nanoseconds as the format's microseconds.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn pid(buf: &Buffer, thread: u32) -> u32 {
    buf.threads.get(&thread).map_or(0, |t| t.order) + 1
}

fn tid(buf: &Buffer, thread: u32, key: u64) -> u32 {
    buf.tracks.get(&(thread, key)).map_or(0, |t| t.order) + 1
}

fn track_name(buf: &Buffer, thread: u32, key: u64) -> String {
    buf.tracks
        .get(&(thread, key))
        .map_or_else(|| format!("#{key}"), |t| t.name.clone())
}

/// Names and order of every thread (`process_name`) and track (`thread_name`).
fn metadata(buf: &Buffer, program: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut threads: Vec<_> = buf.threads.iter().collect();
    threads.sort_by_key(|(_, t)| t.order);
    for (thread, info) in threads {
        let pid = pid(buf, *thread);
        out.push(
            json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": format!("{program}: thread {}", info.name)}}),
        );
        out.push(
            json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
            "args": {"sort_index": info.order}}),
        );
    }
    let mut tracks: Vec<_> = buf.tracks.iter().collect();
    tracks.sort_by_key(|(_, t)| t.order);
    for ((thread, _), info) in tracks {
        let (pid, tid) = (pid(buf, *thread), info.order + 1);
        out.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": info.name}}),
        );
        out.push(
            json!({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
            "args": {"sort_index": info.order}}),
        );
    }
    out
}

fn args_json(buf: &Buffer, thread: u32, args: &Args) -> Map<String, Value> {
    args.iter()
        .map(|(name, arg)| {
            let value = match arg {
                Arg::Str(s) => Value::from(s.as_ref()),
                Arg::Int(i) => Value::from(*i),
                Arg::Float(f) => Value::from(*f),
                Arg::Track(key) => Value::from(track_name(buf, thread, *key)),
            };
            (name.to_string(), value)
        })
        .collect()
}

fn event_json(buf: &Buffer, e: &Event) -> Value {
    let (pid, tid, ts) = (pid(buf, e.thread), tid(buf, e.thread, e.key), micros(e.at));
    match &e.what {
        What::Run {
            dur,
            entered_by,
            from,
            still_running,
        } => {
            let mut args = Map::new();
            args.insert("entered_by".into(), Value::from(*entered_by));
            if let Some(from) = from {
                args.insert("from".into(), track_name(buf, e.thread, *from).into());
            }
            if *still_running {
                args.insert("still_running".into(), true.into());
            }
            json!({"name": track_name(buf, e.thread, e.key), "cat": "run", "ph": "X",
                "ts": ts, "dur": micros(*dur), "pid": pid, "tid": tid, "args": args})
        }
        What::Span { dur, name, args } => {
            json!({"name": name, "cat": "span", "ph": "X", "ts": ts, "dur": micros(*dur),
                "pid": pid, "tid": tid, "args": args_json(buf, e.thread, args)})
        }
        What::Instant { name, args } => {
            json!({"name": name, "cat": "mark", "ph": "i", "s": "t", "ts": ts,
                "pid": pid, "tid": tid, "args": args_json(buf, e.thread, args)})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trace;

    fn name(key: u64) -> String {
        ["main", "g1", "g2"][key as usize].to_string()
    }

    #[test]
    fn the_file_is_one_json_object_with_named_tracks_and_slices() {
        let trace = Trace::new(100);
        trace.running(0, || "main".into());
        trace.switch(0, 1, "start", name);
        trace.instant(1, "park", Args::one("on", Arg::Str("sleep".into())));
        trace.switch(1, 2, "start", name);
        let mut out = Vec::new();
        let written = trace.write(&mut out, "test").unwrap();
        assert_eq!(written.events, 4); // main, g1, the instant, g2 still running
        let value: Value = serde_json::from_slice(&out).unwrap();
        let events = value["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["main", "g1", "g2"]);
        let g1 = events
            .iter()
            .find(|e| e["cat"] == "run" && e["name"] == "g1")
            .unwrap();
        assert_eq!(g1["ph"], "X");
        assert_eq!(g1["args"]["from"], "main");
        assert_eq!(g1["args"]["entered_by"], "start");
        let last = events.iter().rev().find(|e| e["cat"] == "run").unwrap();
        assert_eq!(last["args"]["still_running"], true);
        assert_eq!(value["otherData"]["dropped_events"], 0);
    }

    #[test]
    fn a_full_trace_says_how_many_events_it_dropped() {
        let trace = Trace::new(2);
        for _ in 0..5 {
            trace.instant(0, "tick", Args::none());
        }
        let mut out = Vec::new();
        let written = trace.write(&mut out, "test").unwrap();
        assert_eq!((written.events, written.dropped), (2, 3));
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["otherData"]["dropped_events"], 3);
        let marker = value["traceEvents"].as_array().unwrap().iter().any(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.contains("3 events dropped"))
        });
        assert!(marker, "{value}");
    }
}
