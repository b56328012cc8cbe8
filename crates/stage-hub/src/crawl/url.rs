//! The URLs the crawler fetches: `http://` and `https://`, and the
//! resolution of a redirect's `Location` against the URL that sent it
//! (RFC 3986, section 5.2: absolute, `//host/…`, `/path`, `?query`, or a
//! path relative to the current directory, with `.` and `..` removed).
//!
//! Written here rather than taken from the `url` crate: the crawler needs
//! two schemes and reference resolution, and `url` brings IDNA's Unicode
//! tables (two dozen crates) for host names we would only hand to
//! `getaddrinfo` as they are. A host that is not ASCII is refused with a
//! message saying to write it in its `xn--` form.

use std::fmt;

use super::error::FetchError;

/// The two schemes the crawler speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP over TCP.
    Http,
    /// HTTP over TLS (rustls) over TCP.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An `http://` or `https://` URL, split the way a request needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or address, without brackets, lower-cased.
    pub host: String,
    /// Port (the scheme's default when the URL names none).
    pub port: u16,
    /// Path and query, starting with `/`; never a fragment.
    pub path: String,
}

impl Url {
    /// Parse a URL the crawler can fetch.
    ///
    /// ```
    /// use stage_hub::crawl::url::{Scheme, Url};
    /// let url = Url::parse("http://127.0.0.1:8000/a?b=1").unwrap();
    /// assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("127.0.0.1", 8000, "/a?b=1"));
    /// let url = Url::parse("https://Example.COM").unwrap();
    /// assert_eq!((url.scheme, url.host.as_str(), url.port), (Scheme::Https, "example.com", 443));
    /// assert!(Url::parse("ftp://example.com/").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Url, FetchError> {
        let bad = |why: &str| FetchError::BadUrl(format!("`{text}`: {why}"));
        let (scheme, rest) = match text.trim().split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, _)) => {
                return Err(bad(&format!(
                    "the scheme is `{s}`, but only http:// and https:// are supported"
                )))
            }
            None => return Err(bad("it should start with http:// or https://")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("user names in URLs are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` in the host"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad("junk after the `]` of the host")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host.is_ascii() {
            return Err(bad(
                "international host names are not supported: write the host in its xn-- form",
            ));
        }
        if host.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(bad("the host contains spaces or control characters"));
        }
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: request_target(path),
        })
    }

    /// The URL a redirect's `Location` points to, resolved against this one
    /// as RFC 3986 section 5.2 says.
    ///
    /// ```
    /// use stage_hub::crawl::url::Url;
    /// let here = Url::parse("http://a.test/b/c/d?q").unwrap();
    /// assert_eq!(here.join("../g").unwrap().to_string(), "http://a.test/b/g");
    /// assert_eq!(here.join("//b.test/x").unwrap().to_string(), "http://b.test/x");
    /// assert_eq!(here.join("https://a.test/").unwrap().to_string(), "https://a.test/");
    /// ```
    pub fn join(&self, reference: &str) -> Result<Url, FetchError> {
        let reference = reference.trim();
        if has_scheme(reference) {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme.as_str()));
        }
        let reference = reference.split('#').next().unwrap_or("");
        let (base_path, base_query) = split_query(&self.path);
        let (ref_path, ref_query) = split_query(reference);
        let path = if ref_path.is_empty() {
            let query = ref_query.or(base_query);
            return Ok(Url {
                path: request_target(&with_query(base_path, query)),
                ..self.clone()
            });
        } else if ref_path.starts_with('/') {
            remove_dot_segments(ref_path)
        } else {
            // Merge: the base's directory, then the reference.
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            remove_dot_segments(&format!("{dir}{ref_path}"))
        };
        Ok(Url {
            path: request_target(&with_query(&path, ref_query)),
            ..self.clone()
        })
    }

    /// `host[:port]` as a `Host` header wants it: the port only when it is
    /// not the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

/// Whether `text` starts with `scheme:` (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`).
fn has_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn split_query(path: &str) -> (&str, Option<&str>) {
    match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    }
}

fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

/// RFC 3986 section 5.2.4: resolve `.` and `..` segments in an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                // A trailing `.` or `..` still names a directory.
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// The path and query as the request line sends them: starting with `/`,
/// without the fragment, and with every byte that may not appear in a
/// request line (spaces, controls, non-ASCII) percent-encoded, as
/// `requests` re-quotes a `Location` before following it.
fn request_target(path: &str) -> String {
    let path = path.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for byte in path.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_what_a_request_needs() {
        let parts = |text: &str| {
            let u = Url::parse(text).unwrap();
            (u.scheme, u.host, u.port, u.path)
        };
        assert_eq!(
            parts("http://h"),
            (Scheme::Http, "h".into(), 80, "/".into())
        );
        assert_eq!(parts("http://h?q").3, "/?q");
        assert_eq!(parts("http://h#frag").3, "/");
        assert_eq!(parts("http://[::1]:81/p").1, "::1");
        assert_eq!(parts("https://[::1]/p").2, 443);
        assert_eq!(parts("https://h:/p").2, 443);
        assert_eq!(parts("http://h/a b/ü").3, "/a%20b/%C3%BC");
        assert_eq!(
            Url::parse("HTTP://h:81/p#frag").unwrap().to_string(),
            "http://h:81/p"
        );
        assert_eq!(
            Url::parse("https://h:443/").unwrap().to_string(),
            "https://h/"
        );
        for bad in [
            "ftp://h/",
            "h/",
            "http://:80/",
            "http://h:99999/",
            "http://h:0/",
            "http://u@h/",
            "http://[::1/",
            "http://[::1]x/",
            "http://bücher.example/",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(FetchError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn references_resolve_as_rfc_3986_section_5_4_says() {
        // The RFC's own "normal" and "abnormal" examples (with http: as
        // the only scheme we speak), against its base http://a/b/c/d;p?q.
        let base = Url::parse("http://a/b/c/d;p?q").unwrap();
        for (reference, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("https://a/b", "https://a/b"),
            ("HTTPS://A:8443", "https://a:8443/"),
        ] {
            assert_eq!(
                base.join(reference).map(|u| u.to_string()).ok().as_deref(),
                Some(want),
                "{reference}"
            );
        }
        assert!(base.join("mailto:x@y").is_err());
        // A scheme-relative reference keeps the scheme: https stays https.
        let secure = Url::parse("https://a/x").unwrap();
        assert_eq!(secure.join("//b/y").unwrap().to_string(), "https://b/y");
    }
}
