//! HTTPS for the crawler: rustls in its *blocking* form, wrapped around the
//! hub's [`TcpStream`].
//!
//! rustls has never heard of greenlets. Its blocking adaptor,
//! [`StreamOwned`], wants any `Read + Write` socket and calls `read` and
//! `write` on it the way it would on a `std::net::TcpStream` in a thread.
//! Ours has that shape, and each of those calls that would block waits in
//! the hub instead: the handshake's round trips overlap with every other
//! greenlet's, with no async adaptor and no change to rustls. This is what
//! gevent's monkey patch buys Python — blocking-style libraries become
//! cooperative — obtained here by handing a generic library our type.
//!
//! TLS is a layer around the stream, not a second client: [`Tls::wrap`]
//! turns the connected [`TcpStream`] into a [`Stream`], plain or encrypted,
//! and the one HTTP exchange runs over either.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::error::FetchError;
use super::url::{Scheme, Url};
use crate::net::TcpStream;

/// A TLS session over the hub's stream: rustls's own blocking wrapper.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// What the crawler trusts, and how it speaks TLS: ring's cryptography,
/// TLS 1.2 and 1.3, server name indication, no client certificate. Cheap
/// to clone (the configuration is shared).
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    roots: usize,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("trusted_roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls::bundled()
    }
}

/// A `--ca-file` that cannot be used, and why.
#[derive(Debug)]
pub struct CaFileError(String);

impl fmt::Display for CaFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaFileError {}

impl Tls {
    /// Trust the root authorities Mozilla ships with Firefox (bundled by
    /// `webpki-roots`, so the same on every machine).
    pub fn bundled() -> Tls {
        Tls::with_roots(bundled_roots())
    }

    /// Trust exactly `roots`: a test's own authority, say.
    pub fn with_roots(roots: RootCertStore) -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring's provider implements TLS 1.2 and 1.3")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Tls {
            config: Arc::new(config),
            roots: roots.len(),
        }
    }

    /// Trust the bundled roots and, besides them, every certificate in the
    /// PEM file at `path` (a private authority, like the one `serve-site`
    /// writes).
    pub fn with_ca_file(path: &Path) -> Result<Tls, CaFileError> {
        let shown = path.display();
        let bad = |why: String| CaFileError(format!("--ca-file {shown}: {why}"));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(pem_error(e)))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(pem_error(e)))?;
        if certs.is_empty() {
            return Err(bad(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
            ));
        }
        let mut roots = bundled_roots();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate in it is not usable as a root: {e}")))?;
        }
        Ok(Tls::with_roots(roots))
    }

    /// Put TLS around `tcp` when `url` is `https://` (handshake included),
    /// or pass it through when it is `http://`.
    pub fn wrap(&self, url: &Url, tcp: TcpStream) -> Result<Stream, FetchError> {
        match url.scheme {
            Scheme::Http => Ok(Stream::Plain(tcp)),
            Scheme::Https => Ok(Stream::Tls(Box::new(self.handshake(&url.host, tcp)?))),
        }
    }

    // ANCHOR: handshake
    /// Start TLS with `host` over `tcp` and finish the handshake. rustls
    /// reads and writes `tcp` as it would a blocking socket; every call that
    /// would block switches to the hub, so other greenlets' handshakes go on
    /// meanwhile. The host name is sent as SNI and checked against the
    /// server's certificate.
    pub fn handshake(&self, host: &str, mut tcp: TcpStream) -> Result<TlsStream, FetchError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| FetchError::Tls {
            host: host.to_string(),
            reason: format!("not a name TLS can check a certificate against ({e})"),
        })?;
        let mut tls =
            ClientConnection::new(self.config.clone(), name).map_err(|e| FetchError::Tls {
                host: host.to_string(),
                reason: e.to_string(),
            })?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)
                .map_err(|e| handshake_error(host, e))?;
        }
        Ok(StreamOwned::new(tls, tcp))
    }
    // ANCHOR_END: handshake
}

fn bundled_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// A connection to a server, plain or inside TLS: what the HTTP exchange
/// reads and writes.
#[derive(Debug)]
pub enum Stream {
    /// `http://`: the hub's stream itself.
    Plain(TcpStream),
    /// `https://`: rustls around the hub's stream.
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // Many servers close without TLS's close_notify once the
                // answer is sent; like browsers and `requests`, take it as
                // the end. A short body is still caught by its framing
                // (Content-Length, chunks).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What a failed handshake means, in one line naming the host.
fn handshake_error(host: &str, e: io::Error) -> FetchError {
    let host = host.to_string();
    if let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidCertificate(cert) => FetchError::Certificate {
                host,
                reason: certificate_reason(cert),
            },
            rustls::Error::AlertReceived(alert) => FetchError::Tls {
                host,
                reason: format!("the server sent the alert {alert:?}"),
            },
            rustls::Error::InvalidMessage(_) => FetchError::Tls {
                host,
                reason: "the server does not speak TLS there (plain http:// on that port?)".into(),
            },
            other => FetchError::Tls {
                host,
                reason: other.to_string(),
            },
        };
    }
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            FetchError::TimedOut("waiting for the TLS handshake")
        }
        ErrorKind::UnexpectedEof => FetchError::Tls {
            host,
            reason: "the server closed the connection in the middle of the handshake".into(),
        },
        _ => FetchError::Io(e),
    }
}

/// Why rustls refused a certificate, in words (its own `Display` names
/// several of these only by their variant).
fn certificate_reason(e: &CertificateError) -> String {
    const DAY: u64 = 86_400;
    match e {
        CertificateError::UnknownIssuer => "it is not signed by an authority we trust \
            (a self-signed or private certificate? trust its authority with --ca-file)"
            .into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "it expired {} days ago",
            time.as_secs().saturating_sub(not_after.as_secs()) / DAY
        ),
        CertificateError::Expired => "it has expired".into(),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "it is valid only in {} days (is this machine's clock right?)",
            not_before.as_secs().saturating_sub(time.as_secs()) / DAY
        ),
        CertificateError::NotValidYet => "it is not valid yet (is the clock right?)".into(),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "it was issued for {}, not for this name",
            if presented.is_empty() {
                "no name at all".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| plain_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::NotValidForName => "it was issued for another name".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        CertificateError::Revoked => "it has been revoked".into(),
        other => other.to_string(),
    }
}

/// rustls shows a certificate's names as `DnsName("a.test")` or
/// `IpAddress(…)`; a person wants `a.test`.
fn plain_name(shown: &str) -> &str {
    match (shown.find('('), shown.rfind(')')) {
        (Some(open), Some(close)) if open < close => shown[open + 1..close].trim_matches('"'),
        _ => shown,
    }
}
