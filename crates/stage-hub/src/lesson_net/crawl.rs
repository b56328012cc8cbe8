//! The crawl in the lesson and in `crawl`: fetch the URLs at once, then one
//! by one, print every outcome, and compare the two over the URLs that
//! answered both ways — never over failures.

use std::error::Error;

use harness::report::human_seconds;
use harness::{Output, Report, Row};
use serde_json::{json, Value};

use super::{CommandError, NetSettings};
use crate::crawl::site::LessonSites;
use crate::crawl::tls::Tls;
use crate::crawl::{crawl_concurrent, crawl_sequential, Client, Comparison, Crawl, Fetched};
use crate::lesson::STAGE;

/// The notes' second crawl listing: five sites by plain `http://` (each
/// answers today by sending the browser on to `https://`).
pub const NOTES_URLS: [&str; 5] = [
    "http://www.baidu.com",
    "http://www.sogou.com",
    "http://www.sohu.com",
    "http://www.qq.com",
    "http://www.cnblogs.com",
];

/// Both crawls and what they compare to.
#[derive(Debug)]
pub struct CrawlOutcome {
    /// The URLs at once, a greenlet each.
    pub concurrent: Crawl,
    /// The URLs one after another.
    pub sequential: Crawl,
    /// The two over the URLs that answered both ways (`None`: no URL did).
    pub comparison: Option<Comparison>,
}

impl CrawlOutcome {
    /// How many URLs failed at least one of the two times.
    pub fn failed_urls(&self) -> usize {
        self.concurrent
            .fetched
            .iter()
            .zip(&self.sequential.fetched)
            .filter(|(c, s)| c.result.is_err() || s.result.is_err())
            .count()
    }

    /// The one line a failed crawl ends with, or `None` if every URL
    /// answered both ways. When every failure says the network itself is
    /// missing (no name resolved, no route), it says that instead.
    pub fn failure(&self) -> Option<String> {
        let failed = self.failed_urls();
        if failed == 0 {
            return None;
        }
        let total = self.concurrent.fetched.len();
        let all = self
            .concurrent
            .fetched
            .iter()
            .chain(&self.sequential.fetched);
        let offline = self.comparison.is_none()
            && all
                .clone()
                .all(|f| f.result.as_ref().is_err_and(|e| e.is_no_network()));
        if offline {
            let first = all
                .filter_map(|f| f.result.as_ref().err())
                .next()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Some(format!(
                "no network: none of the {total} URLs could be reached — no host name resolved \
                 and no route led anywhere{first}. This machine looks offline (or the names are \
                 wrong); `crawl` with no URLs crawls a local site instead"
            ));
        }
        Some(format!(
            "{failed} of {total} URLs failed (at once: {}, one by one: {}); see the lines above",
            self.concurrent.failed(),
            self.sequential.failed()
        ))
    }
}

/// Crawl `urls` concurrently, then sequentially, printing each outcome,
/// both totals and the comparison; add the comparison's two rows (with the
/// notes' figures when `notes_pages` says the crawl is the lesson's) and,
/// with `--json`, a row per URL per crawl.
pub fn crawl_and_compare(
    urls: &[String],
    client: &Client,
    report: &mut Report,
    notes_pages: Option<usize>,
) -> CrawlOutcome {
    let out = report.output();
    out.say(format!(
        "fetching {} URLs at once, a greenlet each:",
        urls.len()
    ));
    for url in urls {
        out.say(format!("  GET: {url}"));
    }
    let concurrent = crawl_concurrent(urls, client, move |f| out.say(format!("  {f}")));
    say_total(out, "at once", &concurrent);
    out.say("fetching them one after another:");
    let sequential = crawl_sequential(urls, client, |f| out.say(format!("  {f}")));
    say_total(out, "one by one", &sequential);
    for (how, crawl) in [("at once", &concurrent), ("one by one", &sequential)] {
        for fetched in &crawl.fetched {
            out.json_line(&fetch_row(how, fetched));
        }
    }
    let comparison = Comparison::of(&concurrent, &sequential);
    match &comparison {
        Some(c) => {
            out.say(format!(
                "compared over the {} of {} URLs that answered both ways: {} at once, {} one by one",
                c.urls,
                urls.len(),
                human_seconds(c.at_once.as_secs_f64()),
                human_seconds(c.one_by_one.as_secs_f64())
            ));
            push_rows(report, c, notes_pages);
        }
        None => out.say("no URL answered both ways: there is nothing to compare"),
    }
    CrawlOutcome {
        concurrent,
        sequential,
        comparison,
    }
}

fn say_total(out: Output, how: &str, crawl: &Crawl) {
    out.say(format!(
        "  {how}: {} of {} answered, {} bytes, in {}",
        crawl.answered(),
        crawl.fetched.len(),
        crawl.bytes(),
        human_seconds(crawl.elapsed.as_secs_f64())
    ));
}

/// One URL's outcome as a `--json` row: a fetch that answered has its time
/// and bytes; one that failed has `null` times, its error and when it gave
/// up — never a time that could be mistaken for a fetch.
fn fetch_row(how: &str, f: &Fetched) -> Value {
    let hops: Vec<Value> = f
        .hops
        .iter()
        .map(|h| json!({"from": h.from.to_string(), "status": h.status, "to": h.to.to_string()}))
        .collect();
    let (seconds, outcome) = match &f.result {
        Ok(r) => (
            json!(f.elapsed.as_secs_f64()),
            json!({"ok": true, "status": r.status, "bytes": r.body_bytes}),
        ),
        Err(e) => (
            Value::Null,
            json!({"ok": false, "error": e.to_string(), "error_kind": e.kind(),
                   "failed_after_seconds": f.elapsed.as_secs_f64()}),
        ),
    };
    let mut row = json!({
        "record": "row",
        "stage": STAGE,
        "group": "crawl-url",
        "case": format!("{} ({how})", f.url),
        "baseline": null,
        "ops": 1,
        "median_seconds": seconds,
        "ns_per_op": seconds.as_f64().map(|s| s * 1e9),
        "ratio": null,
        "runs": 1,
        "source": "measured",
        "profile": harness::Profile::current().name(),
        "url": f.url,
        "final_url": f.final_url(),
        "crawl": how,
        "redirects": hops,
    });
    if let (Some(row), Some(outcome)) = (row.as_object_mut(), outcome.as_object()) {
        row.extend(outcome.clone());
    }
    row
}

fn push_rows(report: &mut Report, c: &Comparison, notes_pages: Option<usize>) {
    let n = c.urls as u64;
    let row = |case: &str, baseline: Option<&str>, secs: f64| Row {
        baseline: baseline.map(str::to_string),
        ..Row::measured(STAGE, "crawl", case, n.max(1), secs)
    };
    let (at_once, one_by_one) = ("URLs at once, a greenlet each", "URLs one after another");
    let mut measured = vec![
        row(one_by_one, None, c.one_by_one.as_secs_f64()),
        row(at_once, Some(one_by_one), c.at_once.as_secs_f64()),
    ];
    for (r, bytes) in measured
        .iter_mut()
        .zip([c.bytes_one_by_one, c.bytes_at_once])
    {
        r.extra.insert("bytes".into(), bytes.into());
    }
    report.push_rows(
        Some("A crawl: at once vs one after another (URLs that answered both ways)"),
        measured,
    );
    if notes_pages == Some(5) && n == 5 {
        // The notes crawled five real sites: 0.83 s one by one, 0.24 s with gevent.
        let quoted = |row: Row| Row {
            runs: 0,
            source: "quoted".into(),
            profile: stage_serial::NOTES.into(),
            ..row
        };
        report.push_rows(
            Some("The notes' crawl of five sites"),
            vec![
                quoted(row(one_by_one, None, 0.8322)),
                quoted(row(at_once, Some(one_by_one), 0.2365)),
            ],
        );
    }
}

/// Start the offline sites and crawl them, at once and one by one: plain
/// `http://` pages that redirect to their `https://` twins, under a
/// certificate authority made for this run.
pub fn crawl_offline(quick: bool, report: &mut Report) -> Result<(), Box<dyn Error>> {
    let s = NetSettings::new(quick);
    let sites = LessonSites::start(s.pages, s.page_step)?;
    let urls = sites.urls();
    report.output().say(format!(
        "\n## A crawler: {} pages at once vs one after another (a local site over HTTPS, reached \
         by a redirect from http://; page i answers after i x {})",
        s.pages,
        human_seconds(s.page_step.as_secs_f64()),
    ));
    let client = Client {
        tls: Tls::with_roots(sites.ca.trust()),
        ..Client::default()
    };
    let outcome = crawl_and_compare(&urls, &client, report, Some(s.pages));
    // Our own site answers every page: anything less is a bug, and a crawl
    // of failures would time nothing worth comparing.
    if let Some(failure) = outcome.failure() {
        return Err(Box::new(CommandError(format!(
            "the offline crawl of our own site: {failure}"
        ))));
    }
    let (concurrent, sequential) = (&outcome.concurrent, &outcome.sequential);
    if concurrent.bytes() != sequential.bytes() {
        return Err(Box::new(CommandError(format!(
            "the offline crawl received {} bytes at once but {} one by one",
            concurrent.bytes(),
            sequential.bytes()
        ))));
    }
    report.headline(
        format!("{} pages fetched at once vs one by one", s.pages),
        format!(
            "{} against {}",
            human_seconds(concurrent.elapsed.as_secs_f64()),
            human_seconds(sequential.elapsed.as_secs_f64())
        ),
        Some("quoted, the notes: 0.24 s against 0.83 s for 5 real sites".into()),
    );
    Ok(())
}
