//! What a load run measures and what a server counts: latency histograms,
//! message tallies, the one-line server summary.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::cpu::CpuTime;
use super::protocol::upper;

/// What a server counted, printed as its one-line summary when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes echoed back.
    pub bytes: u64,
    /// Connections that ended in an error (reset, panic, …), plus failed accepts.
    pub errors: u64,
}

impl fmt::Display for ServerSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "served {} connections, echoed {} bytes, {} errors",
            self.connections, self.bytes, self.errors
        )
    }
}

/// The load generator's running tally: every round trip's latency, and what
/// went wrong.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Round-trip latencies in microseconds.
    pub latency_us: Histogram<u64>,
    /// Replies that came back byte-for-byte right.
    pub messages: u64,
    /// Replies that differed from what the protocol promises.
    pub wrong_replies: u64,
    /// Clients that could not connect, or whose connection broke mid-run.
    pub failed_connections: u64,
    /// What the first of those failures said (the system's reason).
    pub first_failure: Option<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// An empty tally. Two significant figures keep a histogram at ~20 KiB,
    /// small enough for one per client thread.
    pub fn new() -> Self {
        // 1 µs .. 10 min at two significant figures: constants that
        // `new_with_bounds` accepts, so this cannot fail.
        let latency_us =
            Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds");
        Tally {
            latency_us,
            messages: 0,
            wrong_replies: 0,
            failed_connections: 0,
            first_failure: None,
        }
    }

    /// Count a client that could not connect or whose connection broke,
    /// keeping the reason if it is the first.
    pub fn failed(&mut self, reason: &dyn fmt::Display) {
        self.failed_connections += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(reason.to_string());
        }
    }

    /// Record one round trip: how long it took and whether the reply was right.
    pub fn record(&mut self, latency: Duration, right: bool) {
        if right {
            self.messages += 1;
            self.latency_us
                .saturating_record(latency.as_micros().max(1) as u64);
        } else {
            self.wrong_replies += 1;
        }
    }

    /// Add another tally (one client thread's) into this one.
    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so `add` cannot overflow the range.
        let _ = self.latency_us.add(&other.latency_us);
        self.messages += other.messages;
        self.wrong_replies += other.wrong_replies;
        self.failed_connections += other.failed_connections;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
    }

    /// The figures `echo-load` prints, for `clients` clients over `elapsed`.
    pub fn summary(&self, clients: usize, size: usize, elapsed: Duration) -> LoadSummary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let q = |q: f64| {
            if self.messages == 0 {
                0
            } else {
                self.latency_us.value_at_quantile(q)
            }
        };
        LoadSummary {
            clients,
            size,
            seconds: secs,
            messages: self.messages,
            messages_per_s: self.messages as f64 / secs,
            p50_us: q(0.50),
            p99_us: q(0.99),
            max_us: if self.messages == 0 {
                0
            } else {
                self.latency_us.max()
            },
            failed_connections: self.failed_connections,
            wrong_replies: self.wrong_replies,
            first_failure: self.first_failure.clone(),
            load_cpu: None,
            server_cpu: None,
        }
    }
}

/// The result of a load run, as printed and as the JSON `echo-bench` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Concurrent clients.
    pub clients: usize,
    /// Bytes per message.
    pub size: usize,
    /// Wall-clock seconds the clients ran.
    pub seconds: f64,
    /// Right replies received.
    pub messages: u64,
    /// Right replies per second, all clients together.
    pub messages_per_s: f64,
    /// Median round trip, µs.
    pub p50_us: u64,
    /// 99th percentile round trip, µs.
    pub p99_us: u64,
    /// Slowest round trip, µs.
    pub max_us: u64,
    /// Clients that could not connect or whose connection broke.
    pub failed_connections: u64,
    /// Replies that were not the upper-cased message.
    pub wrong_replies: u64,
    /// What the first failed connection said, if one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// The CPU time of the thread that ran the clients while they
    /// ping-ponged (the `seconds` above), if it could be read: with the
    /// server's, it says which of the two was the busier, and so which
    /// one set the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_cpu: Option<CpuTime>,
    /// The server's CPU time over the same span, if the load was told the
    /// server's process ([`Load::watch`](super::load::Load::watch)) and
    /// could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<CpuTime>,
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clients x {:.1} s: {:.0} messages/s ({} messages of {} bytes); \
             latency p50 {} µs, p99 {} µs, max {} µs; {} failed connections, {} wrong replies",
            self.clients,
            self.seconds,
            self.messages_per_s,
            self.messages,
            self.size,
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.failed_connections,
            self.wrong_replies
        )?;
        if let Some(busy) = self.load_busy() {
            write!(
                f,
                "; the load generator's own CPU {:.0}% of the run",
                busy * 100.0
            )?;
        }
        Ok(())
    }
}

impl LoadSummary {
    /// The share of the run the load generator kept a core busy, if its CPU
    /// time was read: near 1, it was as fast as it could go, and a faster
    /// server could not have raised the rate.
    pub fn load_busy(&self) -> Option<f64> {
        Some(self.load_cpu?.busy(self.seconds))
    }

    /// The share of the run the server kept a core busy, if its CPU time
    /// was read.
    pub fn server_busy(&self) -> Option<f64> {
        Some(self.server_cpu?.busy(self.seconds))
    }

    /// The load generator's CPU time (user and system) per right reply, µs,
    /// if it was read.
    pub fn load_us_per_message(&self) -> Option<f64> {
        let (user, system) = self.load_cpu?.per_message_us(self.messages);
        Some(user + system)
    }

    /// Messages one harness row stands for: rows from runs of different
    /// lengths compare by the time each would take for this many messages,
    /// so "per op" is the time per message and the ratio compares rates.
    pub const ROW_MESSAGES: u64 = 100_000;

    /// What a load row's columns mean, for the title of its table: the
    /// "median" of such a row is no run's time but the time
    /// [`ROW_MESSAGES`](Self::ROW_MESSAGES) messages take at the rate measured.
    pub const ROW_COLUMNS: &'static str =
        "median = the time 100,000 messages take at the rate measured; per op = per message";

    /// This run as a harness row; the summary's figures ride along as
    /// extra JSON fields (`messages_per_s`, `p50_us`, …).
    pub fn row(
        &self,
        stage: &str,
        group: &str,
        case: &str,
        baseline: Option<&str>,
    ) -> harness::Row {
        let ops = Self::ROW_MESSAGES;
        let median_seconds = if self.messages_per_s > 0.0 {
            ops as f64 / self.messages_per_s
        } else {
            f64::INFINITY
        };
        let mut extra = std::collections::BTreeMap::new();
        if let Some(fields) = serde_json::to_value(self)
            .ok()
            .as_ref()
            .and_then(|v| v.as_object())
        {
            extra.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        harness::Row {
            baseline: baseline.map(str::to_string),
            extra,
            ..harness::Row::measured(stage, group, case, ops, median_seconds)
        }
    }
}

/// The `seq`-th message client `client` sends: the notes' "… say hello N",
/// padded with lower-case letters (so upper-casing shows) to `size` bytes.
///
/// ```
/// let m = stage_hub::echo::stats::message(7, 3, 24);
/// assert_eq!(m.len(), 24);
/// assert!(m.starts_with(b"client-7 say hello 3 "));
/// ```
pub fn message(client: usize, seq: u64, size: usize) -> Vec<u8> {
    let mut msg = format!("client-{client} say hello {seq} ").into_bytes();
    let mut letter = (seq % 26) as u8;
    while msg.len() < size {
        msg.push(b'a' + letter);
        letter = (letter + 1) % 26;
    }
    msg.truncate(size.max(1));
    msg
}

// ANCHOR: ping_pong
/// One client's side of the load: send a message, read the reply, check it
/// byte for byte, time the round trip; until `until`. Generic over the
/// stream, so the same loop drives a std socket in a thread and ours in a
/// greenlet.
///
/// Returns after the first wrong reply (the stream may be out of step after
/// it). `on_reply(latency, right)` sees every reply.
pub fn ping_pong<S: Read + Write + ?Sized>(
    stream: &mut S,
    client: usize,
    size: usize,
    until: Instant,
    on_reply: &mut dyn FnMut(Duration, bool),
) -> io::Result<()> {
    // One spare byte: a reply that is too long shows, and a read that comes
    // back short tells the stream the socket is empty.
    let mut reply = vec![0u8; size.max(1) + 1];
    let mut seq = 0u64;
    while Instant::now() < until {
        let msg = message(client, seq, size);
        let mut want = msg.clone();
        upper(&mut want);
        let start = Instant::now();
        stream.write_all(&msg)?;
        let mut got = 0;
        while got < msg.len() {
            match stream.read(&mut reply[got..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the server closed the connection mid-reply",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let right = reply[..got] == want[..];
        on_reply(start.elapsed(), right);
        if !right {
            return Ok(());
        }
        seq += 1;
    }
    Ok(())
}
// ANCHOR_END: ping_pong

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_exactly_sized_and_differ_per_round() {
        assert_eq!(message(1, 0, 64).len(), 64);
        assert_eq!(message(123_456, 99, 5).len(), 5);
        assert_ne!(message(1, 0, 64), message(1, 1, 64));
    }

    #[test]
    fn tally_percentiles_and_merge() {
        let mut a = Tally::new();
        for us in 1..=100 {
            a.record(Duration::from_micros(us), true);
        }
        let mut b = Tally::new();
        b.record(Duration::from_micros(5), false);
        b.failed_connections = 2;
        a.merge(&b);
        let s = a.summary(3, 64, Duration::from_secs(2));
        assert_eq!(
            (s.messages, s.wrong_replies, s.failed_connections),
            (100, 1, 2)
        );
        assert!((49..=51).contains(&s.p50_us), "{}", s.p50_us);
        assert!((98..=100).contains(&s.p99_us), "{}", s.p99_us);
        assert!((s.messages_per_s - 50.0).abs() < 1e-9);
    }
}
