//! Why there is no monkey patch, measured: rustls, a TLS library that never
//! heard of greenlets, does five handshakes at once in one thread because
//! the socket it reads and writes is ours.
//!
//! The server is the offline site over HTTPS, answering each connection's
//! first flight after a delay that stands in for a network round trip (a
//! TLS 1.3 handshake costs one). One by one, the round trips add up; at
//! once, they overlap, and what is left is the handshakes' CPU work, which
//! one thread still does one after another. The same pair with no delay
//! shows that second part alone.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::report::human_seconds;
use harness::{Report, Row};

use super::CommandError;
use crate::crawl::cert::{LocalCa, Validity};
use crate::crawl::site::{Options, Protocol, Site};
use crate::crawl::tls::{Tls, TlsStream};
use crate::crawl::FetchError;
use crate::lesson::STAGE;
use crate::net::TcpStream;

/// How many handshakes, and how long the stand-in round trip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Handshakes in each run.
    pub handshakes: usize,
    /// The delay before the server's first flight.
    pub round_trip: Duration,
}

impl Settings {
    /// Five handshakes with a 100 ms round trip (20 ms with `--quick`).
    pub fn new(quick: bool) -> Settings {
        Settings {
            handshakes: 5,
            round_trip: Duration::from_millis(if quick { 20 } else { 100 }),
        }
    }
}

/// One measurement: the same handshakes at once and one by one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HandshakeTimes {
    /// The round trip the server stood in for.
    pub round_trip: Duration,
    /// How many handshakes.
    pub handshakes: usize,
    /// All of them at once, a greenlet each.
    pub at_once: Duration,
    /// One after another.
    pub one_by_one: Duration,
}

// ANCHOR: handshakes
/// Connect to `addr` and do a TLS handshake with it, checking its
/// certificate for 127.0.0.1. Nothing here knows about the hub but
/// `TcpStream`: the handshake is rustls's own blocking code.
fn handshake(addr: SocketAddr, tls: &Tls) -> Result<TlsStream, FetchError> {
    let mut tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(FetchError::Connect)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(FetchError::Io)?;
    tls.handshake("127.0.0.1", tcp)
}

/// `n` handshakes at once, a greenlet each, in this thread's hub.
fn at_once(n: usize, addr: SocketAddr, tls: &Tls) -> Result<Duration, Box<dyn Error>> {
    let start = Instant::now();
    let greenlets: Vec<_> = (0..n)
        .map(|_| {
            let tls = tls.clone();
            crate::hub::spawn(move || handshake(addr, &tls).map(drop))
        })
        .collect();
    for greenlet in greenlets {
        greenlet.join()??;
    }
    Ok(start.elapsed())
}

/// The same `n` handshakes, one after another.
fn one_by_one(n: usize, addr: SocketAddr, tls: &Tls) -> Result<Duration, Box<dyn Error>> {
    let start = Instant::now();
    for _ in 0..n {
        handshake(addr, tls)?;
    }
    Ok(start.elapsed())
}
// ANCHOR_END: handshakes

/// Measure `n` handshakes at once and one by one against a local HTTPS
/// server whose first flight comes `round_trip` after each connection.
pub fn measure(n: usize, round_trip: Duration) -> Result<HandshakeTimes, Box<dyn Error>> {
    let ca = LocalCa::new("stage-hub handshake lesson CA")?;
    let config = ca
        .issue(&["127.0.0.1"], Validity::Always)?
        .server_config()?;
    let site = Site::start_with(
        Vec::new(),
        Options {
            protocol: Protocol::Https(config),
            first_flight_delay: round_trip,
        },
    )?;
    let tls = Tls::with_roots(ca.trust());
    // One handshake first, untimed: the first one pays for one-time setup
    // (the server's thread stacks, the certificate's parsing caches).
    one_by_one(1, site.addr(), &tls)?;
    let one_by_one = one_by_one(n, site.addr(), &tls)?;
    let at_once = at_once(n, site.addr(), &tls)?;
    Ok(HandshakeTimes {
        round_trip,
        handshakes: n,
        at_once,
        one_by_one,
    })
}

/// The lesson's listing: `s.handshakes` handshakes at once and one by one,
/// with the stand-in round trip and without one; two rows each, and the
/// headline.
pub fn handshakes(s: Settings, report: &mut Report) -> Result<Vec<HandshakeTimes>, Box<dyn Error>> {
    let out = report.output();
    out.say(format!(
        "\n## {n} TLS handshakes (rustls, unchanged) at once vs one by one, in one thread",
        n = s.handshakes
    ));
    if s.handshakes == 0 {
        return Err(Box::new(CommandError("no handshakes to make".into())));
    }
    let mut all = Vec::new();
    for round_trip in [s.round_trip, Duration::ZERO] {
        let t = measure(s.handshakes, round_trip)?;
        out.say(format!(
            "  {}: at once {}, one by one {}",
            delay_label(round_trip),
            human_seconds(t.at_once.as_secs_f64()),
            human_seconds(t.one_by_one.as_secs_f64())
        ));
        report.push_rows(
            Some(&format!(
                "TLS handshakes to a local server, {} (per op = per handshake)",
                delay_label(round_trip)
            )),
            rows(&t),
        );
        all.push(t);
    }
    let main = all[0];
    report.headline(
        format!(
            "{} TLS handshakes at once vs one by one ({})",
            main.handshakes,
            delay_label(main.round_trip)
        ),
        format!(
            "{} against {}",
            human_seconds(main.at_once.as_secs_f64()),
            human_seconds(main.one_by_one.as_secs_f64())
        ),
        None,
    );
    Ok(all)
}

fn rows(t: &HandshakeTimes) -> Vec<Row> {
    let n = t.handshakes as u64;
    let rt = delay_label(t.round_trip);
    let one_by_one = format!("{n} handshakes one by one, {rt}");
    let at_once = format!("{n} handshakes at once, a greenlet each, {rt}");
    let row = |case: &str, baseline: Option<&str>, took: Duration| Row {
        baseline: baseline.map(str::to_string),
        extra: [(
            "round_trip_seconds".to_string(),
            t.round_trip.as_secs_f64().into(),
        )]
        .into_iter()
        .collect(),
        ..Row::measured(STAGE, "tls-handshakes", case, n.max(1), took.as_secs_f64())
    };
    vec![
        row(&one_by_one, None, t.one_by_one),
        row(&at_once, Some(&one_by_one), t.at_once),
    ]
}

/// "round trip 100 ms", or "no round trip" for the CPU-only run.
fn delay_label(round_trip: Duration) -> String {
    if round_trip.is_zero() {
        "no round trip".into()
    } else {
        format!("round trip {}", human_seconds(round_trip.as_secs_f64()))
    }
}
