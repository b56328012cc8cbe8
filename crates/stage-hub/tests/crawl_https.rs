//! The crawler over HTTPS and through redirects, against local sites on
//! 127.0.0.1 whose certificates are made at run time: exact bytes both
//! ways, http → https chains, loops, refused certificates, and a server
//! that stalls in the middle of the handshake while the rest carry on.

use std::time::{Duration, Instant};

use stage_hub::crawl::cert::{LocalCa, Validity};
use stage_hub::crawl::site::{Behaviour, LessonSites, Options, Protocol, Site, NOTES_SIZES};
use stage_hub::crawl::tls::Tls;
use stage_hub::crawl::{crawl_concurrent, crawl_sequential, fetch, Client, Fetched, Timeouts};

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    read: Duration::from_millis(500),
    answer: Duration::from_secs(10),
};

fn page(bytes: usize) -> Behaviour {
    Behaviour::Page {
        delay: Duration::ZERO,
        bytes,
    }
}

fn redirect(status: u16, location: &str) -> Behaviour {
    Behaviour::Redirect {
        status,
        location: location.into(),
    }
}

/// An HTTPS site serving `routes` under a certificate from `ca` for `names`.
fn https_site(
    ca: &LocalCa,
    names: &[&str],
    validity: Validity,
    routes: Vec<(String, Behaviour)>,
) -> Site {
    let config = ca.issue(names, validity).unwrap().server_config().unwrap();
    Site::start_with(
        routes,
        Options {
            protocol: Protocol::Https(config),
            ..Options::default()
        },
    )
    .unwrap()
}

fn trusting(ca: &LocalCa) -> Client {
    Client {
        timeouts: TIMEOUTS,
        tls: Tls::with_roots(ca.trust()),
        ..Client::default()
    }
}

fn outcome(f: &Fetched) -> String {
    match &f.result {
        Ok(r) => format!("{} {}", r.status, r.body_bytes),
        Err(e) => e.kind().to_string(),
    }
}

#[test]
fn the_lesson_sites_give_exact_bytes_both_ways_through_a_redirect_to_https() {
    let sites = LessonSites::start(4, Duration::from_millis(10)).unwrap();
    let client = trusting(&sites.ca);
    let urls = sites.urls();
    let want: Vec<String> = (0..4)
        .map(|i| format!("200 {}", NOTES_SIZES[i % 3]))
        .collect();
    let concurrent = crawl_concurrent(&urls, &client, |f| println!("{f}"));
    let sequential = crawl_sequential(&urls, &client, |_| {});
    for crawl in [&concurrent, &sequential] {
        let got: Vec<String> = crawl.fetched.iter().map(outcome).collect();
        assert_eq!(got, want);
        for (i, f) in crawl.fetched.iter().enumerate() {
            assert!(f.url.starts_with("http://127.0.0.1:"), "{}", f.url);
            assert_eq!(f.hops.len(), 1, "{f}");
            assert_eq!(f.hops[0].status, 301);
            assert_eq!(f.final_url(), sites.https.url(&format!("/page/{}", i + 1)));
            assert!(f.to_string().contains("301 → https://127.0.0.1:"), "{f}");
        }
    }
    let total: u64 = (0..4).map(|i| NOTES_SIZES[i % 3] as u64).sum();
    assert_eq!((concurrent.bytes(), sequential.bytes()), (total, total));
}

#[test]
fn a_redirect_chain_goes_from_http_to_https_hop_by_hop() {
    let ca = LocalCa::new("test CA").unwrap();
    let secure = https_site(
        &ca,
        &["127.0.0.1"],
        Validity::Always,
        vec![
            ("/dir/landing".into(), redirect(308, "../final?x=1")),
            ("/final?x=1".into(), page(4321)),
        ],
    );
    let plain = Site::start(vec![
        ("/start".into(), redirect(302, "/next")),
        ("/next".into(), redirect(303, "again")),
        ("/again".into(), redirect(307, &secure.url("/dir/landing"))),
    ])
    .unwrap();
    let f = fetch(&plain.url("/start"), &trusting(&ca));
    assert_eq!(outcome(&f), "200 4321", "{f}");
    let hops: Vec<(u16, String)> = f
        .hops
        .iter()
        .map(|h| (h.status, h.to.to_string()))
        .collect();
    assert_eq!(
        hops,
        [
            (302, plain.url("/next")),
            (303, plain.url("/again")),
            (307, secure.url("/dir/landing")),
            (308, secure.url("/final?x=1")),
        ]
    );
    assert_eq!(f.final_url(), secure.url("/final?x=1"));
}

#[test]
fn a_redirect_loop_and_too_many_redirects_are_errors() {
    let mut routes = vec![
        ("/a".into(), redirect(301, "/b")),
        ("/b".into(), redirect(302, "/a")),
        ("/self".into(), redirect(307, "/self")),
    ];
    // /chain/0 -> /chain/1 -> ... -> /chain/11, which answers.
    for i in 0..11 {
        routes.push((
            format!("/chain/{i}"),
            redirect(302, &format!("/chain/{}", i + 1)),
        ));
    }
    routes.push(("/chain/11".into(), page(7)));
    let site = Site::start(routes).unwrap();
    let client = Client {
        timeouts: TIMEOUTS,
        ..Client::default()
    };
    for (path, hops) in [("/a", 2), ("/self", 1)] {
        let f = fetch(&site.url(path), &client);
        assert_eq!(outcome(&f), "redirect-loop", "{f}");
        assert_eq!(f.hops.len(), hops, "{f}");
        assert!(f.to_string().contains("visited before"), "{f}");
    }
    // Eleven redirects: one more than the default limit of ten.
    let f = fetch(&site.url("/chain/0"), &client);
    assert_eq!(outcome(&f), "too-many-redirects", "{f}");
    assert!(f.to_string().contains("more than 10 redirects"), "{f}");
    // Ten are allowed.
    let f = fetch(&site.url("/chain/1"), &client);
    assert_eq!((outcome(&f), f.hops.len()), ("200 7".into(), 10), "{f}");
    // An empty Location points back at the same URL.
    let bare = Site::start(vec![(
        "/moved".into(),
        Behaviour::Redirect {
            status: 302,
            location: String::new(),
        },
    )])
    .unwrap();
    let f = fetch(&bare.url("/moved"), &client);
    assert_eq!(outcome(&f), "redirect-loop", "{f}");
}

#[test]
fn certificates_that_must_not_be_trusted_are_refused_in_one_line_naming_host_and_reason() {
    let ca = LocalCa::new("the trusted CA").unwrap();
    let stranger = LocalCa::new("somebody else's CA").unwrap();
    let routes = || vec![("/".to_string(), page(10))];
    let unknown = https_site(&stranger, &["127.0.0.1"], Validity::Always, routes());
    let expired = https_site(&ca, &["127.0.0.1"], Validity::Expired, routes());
    let wrong_name = https_site(&ca, &["example.test"], Validity::Always, routes());
    let good = https_site(&ca, &["127.0.0.1"], Validity::Always, routes());
    let cases = [
        (&unknown, "not signed by an authority we trust"),
        (&expired, "expired"),
        (&wrong_name, "issued for example.test"),
    ];
    for (site, reason) in cases {
        let f = fetch(&site.url("/"), &trusting(&ca));
        assert_eq!(outcome(&f), "certificate", "{f}");
        let line = f.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("the certificate of 127.0.0.1 was refused"),
            "{line}"
        );
        assert!(line.contains(reason), "{line}");
    }
    // The bundled Mozilla roots do not trust a certificate made here either.
    let f = fetch(&good.url("/"), &Client::default());
    assert_eq!(outcome(&f), "certificate", "{f}");
    // And the same site is fine once its authority is trusted.
    assert_eq!(outcome(&fetch(&good.url("/"), &trusting(&ca))), "200 10");
}

#[test]
fn https_to_a_plain_http_port_says_the_server_does_not_speak_tls_there() {
    let plain = Site::start(vec![("/".into(), page(10))]).unwrap();
    let url = plain.url("/").replacen("http://", "https://", 1);
    let client = Client {
        timeouts: TIMEOUTS,
        ..Client::default()
    };
    let f = fetch(&url, &client);
    assert_eq!(outcome(&f), "tls", "{f}");
    assert!(f.to_string().contains("does not speak TLS"), "{f}");
}

#[test]
fn a_server_stalled_mid_handshake_times_out_and_the_rest_of_the_crawl_carries_on() {
    let ca = LocalCa::new("test CA").unwrap();
    let good = https_site(
        &ca,
        &["127.0.0.1"],
        Validity::Always,
        vec![("/".into(), page(2000))],
    );
    let stalled = Site::start_with(
        Vec::new(),
        Options {
            protocol: Protocol::Silent,
            ..Options::default()
        },
    )
    .unwrap();
    let urls = vec![good.url("/"), stalled.url("/"), good.url("/")];
    let start = Instant::now();
    let crawl = crawl_concurrent(&urls, &trusting(&ca), |f| println!("{f}"));
    let got: Vec<String> = crawl.fetched.iter().map(outcome).collect();
    assert_eq!(got, ["200 2000", "timeout", "200 2000"]);
    let stall = crawl.fetched[1].to_string();
    assert!(stall.contains("TLS handshake"), "{stall}");
    // It gave up after its read timeout, not after the answer's 10 s.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn five_handshakes_overlap_in_one_thread() {
    // The lesson: rustls's blocking handshake, five at once in greenlets,
    // against a server whose every first flight comes 100 ms after the
    // connection. One by one that is at least 500 ms; at once about 100 ms
    // plus the handshakes' CPU work (a bound generous for a debug build on
    // a loaded machine).
    let t = stage_hub::lesson_net::handshakes::measure(5, Duration::from_millis(100)).unwrap();
    assert!(t.one_by_one >= Duration::from_millis(500), "{t:?}");
    assert!(t.at_once < t.one_by_one / 2, "{t:?}");
}
