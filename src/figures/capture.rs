//! Recording a listing's timeline: run it on a fresh thread (so it gets a
//! hub of its own, made while the trace is active) with the greenlet
//! switch hook recording, and write the trace file the timeline is drawn
//! from. The file stays beside the picture, for Perfetto.

use std::error::Error;
use std::path::Path;

use trace::active::set_active;
use trace::Trace;

/// Run `listing` on a new thread named `thread` while a fresh trace (of at
/// most `limit` events: the file is committed beside its picture) is
/// active and the thread's switches are recorded; write the trace to
/// `file`, named after `program`.
pub fn capture<F>(
    file: &Path,
    program: &str,
    thread: &str,
    limit: usize,
    listing: F,
) -> Result<(), Box<dyn Error>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let trace = Trace::new(limit);
    let before = set_active(Some(trace.clone()));
    let recorder = trace.clone();
    let outcome = std::thread::Builder::new()
        .name(thread.to_string())
        .spawn(move || {
            stage_greenlet::hook::record(&recorder);
            let outcome = listing();
            stage_greenlet::hook::settrace(None);
            recorder.stop_running();
            outcome
        })?
        .join();
    set_active(before);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{program}: {e}").into()),
        Err(_) => return Err(format!("{program}: the listing panicked").into()),
    }
    let out =
        std::fs::File::create(file).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    trace.write(out, program)?;
    Ok(())
}
