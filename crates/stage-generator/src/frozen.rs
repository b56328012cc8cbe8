//! A function frozen half-way, and a value sent into it.
//!
//! A generator body runs on a stack of its own. `resume` switches to that
//! stack; `yield_with` switches back, leaving the body's locals and its place
//! in the code exactly where they were — that is the "save state" half of
//! concurrency. The next `resume` picks up on the line after the yield.

use generator::Gn;
use stage_serial::Transcript;

use crate::traced::traced;

// ANCHOR: frozen
/// The first listing: a body that says 1, 2, 3 with a yield after each.
/// Creating the generator runs nothing; each `resume` runs the body up to its
/// next yield and no further.
pub fn frozen(t: &Transcript) {
    let body = Gn::<()>::new_scoped_local(|mut s| {
        t.say("  body: 1");
        s.yield_with("aaa");
        t.say("  body: 2");
        s.yield_with("bbb");
        t.say("  body: 3");
        "ccc" // the body's return value is handed out by the last resume
    });
    let mut g = traced("g", body); // its resumes and yields go on a timeline
    t.say("main: generator created, its body has not run");
    let first = g.resume();
    t.say(format!(
        "main: resume -> {first:?}; the body is frozen at its first yield"
    ));
    t.say("main: free to do anything else while it stays frozen");
    for _ in 0..3 {
        let value = g.resume();
        t.say(format!("main: resume -> {value:?}"));
    }
    t.say(format!(
        "main: the body has returned: done = {}",
        g.is_done()
    ));
}
// ANCHOR_END: frozen

// ANCHOR: send
/// The second listing: `send` passes a value in, and gets the next yielded
/// value out. The first resume only starts the body (there is no yield yet to
/// receive a value); from then on, what is sent is what the paused
/// `yield` hands to the body.
pub fn send(t: &Transcript) {
    let body = Gn::<&str>::new_scoped_local(|mut s| {
        s.yield_with(1);
        let x = s.get_yield(); // the value sent to wake this yield
        t.say(format!("  body: * {}", x.unwrap_or("(nothing sent)")));
        s.yield_with(2);
        3
    });
    let mut g = traced("g", body);
    let first = g.resume();
    t.say(format!(
        "main: resume -> {first:?} (the first resume starts the body)"
    ));
    let second = g.send("aaa");
    t.say(format!("main: send(\"aaa\") -> {second}"));
}
// ANCHOR_END: send

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_runs_only_up_to_each_yield() {
        let t = Transcript::silent();
        frozen(&t);
        assert_eq!(
            t.lines(),
            [
                "main: generator created, its body has not run",
                "  body: 1",
                "main: resume -> Some(\"aaa\"); the body is frozen at its first yield",
                "main: free to do anything else while it stays frozen",
                "  body: 2",
                "main: resume -> Some(\"bbb\")",
                "  body: 3",
                "main: resume -> Some(\"ccc\")",
                "main: resume -> None",
                "main: the body has returned: done = true",
            ]
        );
    }

    #[test]
    fn a_sent_value_is_what_the_paused_yield_returns() {
        let t = Transcript::silent();
        send(&t);
        assert_eq!(
            t.lines(),
            [
                "main: resume -> Some(1) (the first resume starts the body)",
                "  body: * aaa",
                "main: send(\"aaa\") -> 2",
            ]
        );
    }
}
