//! [`FetchError`]: why one URL could not be fetched, in words a person can
//! act on. The crawler prints it on the URL's line and carries on.

use std::fmt;
use std::io::{self, ErrorKind};

/// Why one URL could not be fetched. The crawler prints it and carries on.
#[derive(Debug)]
pub enum FetchError {
    /// The URL (or a redirect's `Location`) is not one we can fetch.
    BadUrl(String),
    /// The host name did not resolve.
    Resolve(io::Error),
    /// Nobody accepted the connection (refused, unreachable).
    Connect(io::Error),
    /// The connect, the TLS handshake, a read or the whole answer took
    /// longer than its timeout; the text says which.
    TimedOut(&'static str),
    /// The server's certificate was refused: `reason` says why (not signed
    /// by a trusted authority, expired, issued for another name, …).
    Certificate {
        /// The host name the certificate was checked against.
        host: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TLS handshake failed for another reason (an alert from the
    /// server, no protocol version or cipher suite in common, garbage).
    Tls {
        /// The host the handshake was with.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// Redirects led back to a URL already visited.
    RedirectLoop(String),
    /// More redirects than the limit (10, as the issue asks; `requests`
    /// allows 30).
    TooManyRedirects(usize),
    /// The connection broke (reset, closed mid-answer).
    Io(io::Error),
    /// The answer was not HTTP we understand.
    Malformed(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::BadUrl(why) => write!(f, "bad URL {why}"),
            FetchError::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            FetchError::Connect(e) if e.kind() == ErrorKind::ConnectionRefused => {
                write!(f, "connection refused (nothing listens there)")
            }
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::TimedOut(phase) => write!(f, "timed out while {phase}"),
            FetchError::Certificate { host, reason } => {
                write!(f, "the certificate of {host} was refused: {reason}")
            }
            FetchError::Tls { host, reason } => {
                write!(f, "the TLS handshake with {host} failed: {reason}")
            }
            FetchError::RedirectLoop(url) => {
                write!(f, "a redirect loop: {url} was visited before")
            }
            FetchError::TooManyRedirects(limit) => {
                write!(f, "more than {limit} redirects")
            }
            FetchError::Io(e) if e.kind() == ErrorKind::ConnectionReset => {
                write!(f, "connection reset by the server")
            }
            FetchError::Io(e) => write!(f, "connection broke: {e}"),
            FetchError::Malformed(why) => write!(f, "malformed answer: {why}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Resolve(e) | FetchError::Connect(e) | FetchError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl FetchError {
    /// Classify an IO error met while `phase` (reading, writing).
    pub fn from_io(e: io::Error, phase: &'static str) -> FetchError {
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => FetchError::TimedOut(phase),
            _ => FetchError::Io(e),
        }
    }

    /// A short word for tables, `--json` and tests: `refused`, `timeout`,
    /// `certificate`, …
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::BadUrl(_) => "bad-url",
            FetchError::Resolve(_) => "resolve",
            FetchError::Connect(e) if e.kind() == ErrorKind::ConnectionRefused => "refused",
            FetchError::Connect(e) if is_unreachable(e) => "unreachable",
            FetchError::Connect(_) => "connect",
            FetchError::TimedOut(_) => "timeout",
            FetchError::Certificate { .. } => "certificate",
            FetchError::Tls { .. } => "tls",
            FetchError::RedirectLoop(_) => "redirect-loop",
            FetchError::TooManyRedirects(_) => "too-many-redirects",
            FetchError::Io(e) if e.kind() == ErrorKind::ConnectionReset => "reset",
            FetchError::Io(_) => "io",
            FetchError::Malformed(_) => "malformed",
        }
    }

    /// Whether this failure says the network itself is missing — the name
    /// did not resolve, or no route leads to the host — rather than that
    /// one server misbehaved.
    pub fn is_no_network(&self) -> bool {
        match self {
            FetchError::Resolve(_) => true,
            FetchError::Connect(e) => is_unreachable(e),
            _ => false,
        }
    }
}

fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable | ErrorKind::NetworkDown
    )
}
