//! A child's output, line by line, with deadlines.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A child's stdout or stderr, read line by line on a thread of its own, so
/// that a test can wait for a line without hanging if it never comes.
#[derive(Debug)]
pub struct Lines {
    received: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Start reading `pipe`.
    pub fn of(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, received) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            received,
            seen: Vec::new(),
        }
    }

    /// The next line, waiting up to `within`; the test fails, naming every
    /// line seen so far, if none comes.
    pub fn next_within(&mut self, within: Duration) -> String {
        match self.received.recv_timeout(within) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => panic!("no line within {within:?} ({e}); saw {:?}", self.seen),
        }
    }

    /// The next line that contains `needle`, skipping the others, waiting
    /// up to `within` in all; the test fails, naming every line seen so
    /// far, if none comes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut lines = test_support::Lines::of(&b"one\ntwo\nthree\n"[..]);
    /// assert_eq!(lines.next_containing("th", Duration::from_secs(5)), "three");
    /// ```
    pub fn next_containing(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The lines still to come: until the pipe closes (the child and every
    /// process that shares the pipe are gone) or `quiet` passes without one.
    pub fn rest(&mut self, quiet: Duration) -> Vec<String> {
        let rest: Vec<String> =
            std::iter::from_fn(|| self.received.recv_timeout(quiet).ok()).collect();
        self.seen.extend(rest.iter().cloned());
        rest
    }
}
