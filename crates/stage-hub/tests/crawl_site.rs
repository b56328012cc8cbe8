//! The crawler against a local site that misbehaves in every way a real
//! one can: each failure is reported as what it is, and the rest finish.

mod black_hole;

use std::time::Duration;

use black_hole::black_hole;
use stage_hub::crawl::site::{Behaviour, Site};
use stage_hub::crawl::{
    crawl_concurrent, crawl_sequential, fetch, Client, Comparison, Crawl, Timeouts,
};

fn bad_site() -> Site {
    Site::start(vec![
        (
            "/ok".into(),
            Behaviour::Page {
                delay: Duration::from_millis(50),
                bytes: 1000,
            },
        ),
        ("/stall".into(), Behaviour::Stall),
        ("/reset".into(), Behaviour::Reset),
        ("/garbage".into(), Behaviour::Garbage),
    ])
    .unwrap()
}

fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/", l.local_addr().unwrap())
}

// The read timeout is what a stalled page costs; it is also all the time a
// healthy page gets to answer, so it must outlast a 50 ms page served on a
// machine whose two cores are busy with other work (400 ms did not, once).
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    read: Duration::from_millis(1500),
    answer: Duration::from_secs(10),
};

fn client(timeouts: Timeouts) -> Client {
    Client {
        timeouts,
        ..Client::default()
    }
}

fn kinds(crawl: &Crawl) -> Vec<String> {
    crawl
        .fetched
        .iter()
        .map(|f| match &f.result {
            Ok(r) => format!("{} {}", r.status, r.body_bytes),
            Err(e) => e.kind().to_string(),
        })
        .collect()
}

#[test]
fn each_failure_is_reported_and_the_rest_finish() {
    let site = bad_site();
    let urls = vec![
        site.url("/ok"),
        site.url("/stall"),
        site.url("/reset"),
        site.url("/garbage"),
        refused_url(),
        "ftp://example.invalid/".to_string(),
        site.url("/missing"),
    ];
    let want = [
        "200 1000",
        "timeout",
        "reset",
        "malformed",
        "refused",
        "bad-url",
        "404 13",
    ];

    let mut seen = Vec::new();
    let concurrent = crawl_concurrent(&urls, &client(TIMEOUTS), |f| println!("{f}"));
    assert_eq!(kinds(&concurrent), want);
    // Waits overlapped: about the stall's read timeout, not the sum of all.
    assert!(
        concurrent.elapsed < TIMEOUTS.read + Duration::from_secs(2),
        "{:?}",
        concurrent.elapsed
    );

    let sequential = crawl_sequential(&urls, &client(TIMEOUTS), |f| seen.push(f.url.clone()));
    assert_eq!(kinds(&sequential), want);
    assert_eq!(seen, urls, "one by one, in order");
    assert_eq!(concurrent.answered(), 2);
    assert_eq!(concurrent.bytes(), 1013);
    for f in &concurrent.fetched {
        // Every outcome prints as one readable line naming its URL.
        assert!(f.to_string().contains(&f.url), "{f}");
    }

    // The comparison counts only the two URLs that answered both ways: the
    // stall's read timeout and the refusal's instant are no fetch times.
    let c = Comparison::of(&concurrent, &sequential).unwrap();
    assert_eq!(
        (c.urls, c.bytes_at_once, c.bytes_one_by_one),
        (2, 1013, 1013)
    );
    let answered = |crawl: &Crawl| -> Vec<Duration> {
        crawl
            .fetched
            .iter()
            .filter(|f| f.result.is_ok())
            .map(|f| f.elapsed)
            .collect()
    };
    assert_eq!(
        c.one_by_one,
        answered(&sequential).into_iter().sum::<Duration>()
    );
    assert!(c.one_by_one < sequential.elapsed - TIMEOUTS.read);
    assert!(c.at_once >= answered(&concurrent).into_iter().max().unwrap());
}

#[test]
fn a_crawl_where_nothing_answered_has_nothing_to_compare() {
    let urls = vec![refused_url(), refused_url()];
    let concurrent = crawl_concurrent(&urls, &client(TIMEOUTS), |_| {});
    let sequential = crawl_sequential(&urls, &client(TIMEOUTS), |_| {});
    assert_eq!((concurrent.failed(), sequential.failed()), (2, 2));
    assert_eq!(Comparison::of(&concurrent, &sequential), None);
}

#[test]
fn the_offline_site_overlaps_its_delays_when_crawled_at_once() {
    let site = Site::delayed_pages(4, Duration::from_millis(60)).unwrap();
    let urls: Vec<String> = (1..=4).map(|i| site.url(&format!("/page/{i}"))).collect();
    let concurrent = crawl_concurrent(&urls, &Client::default(), |_| {});
    let sequential = crawl_sequential(&urls, &Client::default(), |_| {});
    assert_eq!(concurrent.answered(), 4);
    assert_eq!(concurrent.bytes(), sequential.bytes());
    // 60+120+180+240 = 600 ms one by one; about 240 ms at once.
    assert!(sequential.elapsed >= Duration::from_millis(600));
    assert!(
        concurrent.elapsed < sequential.elapsed * 3 / 4,
        "{:?} at once vs {:?} one by one",
        concurrent.elapsed,
        sequential.elapsed
    );
}

#[test]
fn a_connect_timeout_is_reported_as_a_timeout() {
    let (listener, _fillers) = black_hole();
    let addr = listener.local_addr().unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_millis(300),
        read: Duration::from_millis(300),
        answer: Duration::from_secs(10),
    };
    let f = fetch(&format!("http://{addr}/"), &client(timeouts));
    let err = f.result.unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(err.to_string().contains("connecting"), "{err}");
}

#[test]
fn a_server_that_drips_its_answer_is_cut_off_by_the_answer_timeout() {
    // A byte every 50 ms: no read ever waits its read timeout, but the answer
    // (a million bytes) would take 14 hours.
    let site = Site::start(vec![(
        "/drip".into(),
        Behaviour::Drip {
            every: Duration::from_millis(50),
        },
    )])
    .unwrap();
    let timeouts = Timeouts {
        answer: Duration::from_millis(600),
        ..TIMEOUTS
    };
    let f = fetch(&site.url("/drip"), &client(timeouts));
    let err = f.result.unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(err.to_string().contains("answer"), "{err}");
    assert!(
        f.elapsed >= Duration::from_millis(600) && f.elapsed < Duration::from_secs(5),
        "{:?}",
        f.elapsed
    );
}
