//! Which machine made the figures: CPU, cores, OS, compiler, build, date,
//! and how busy the machine was while it ran.

use serde_json::{json, Value};

/// What the results files say about the machine that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// Cores this process may run on.
    pub cores: usize,
    /// The OS and kernel.
    pub os: String,
    /// `rustc --version` of the compiler that built this binary.
    pub rustc: String,
    /// `release` or `debug`.
    pub profile: String,
    /// When the run began, UTC (`2026-01-31 14:05 UTC`).
    pub date: String,
    /// The 1-minute load average as the run began.
    pub load_before: Option<f64>,
    /// And as it ended.
    pub load_after: Option<f64>,
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v)
            })
            .map_or_else(|| "unknown CPU".to_string(), |v| v.trim().to_string());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let pretty = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .ok();
        let os = match (pretty, kernel) {
            (Some(p), Some(k)) => format!("{p}, {k}"),
            (p, k) => p.or(k).unwrap_or_else(|| std::env::consts::OS.to_string()),
        };
        Machine {
            cpu,
            cores,
            os,
            rustc: env!("COROUTINES_RUSTC_VERSION").to_string(),
            profile: harness::Profile::current().name().to_string(),
            date: utc_now(),
            load_before: load_average(),
            load_after: None,
        }
    }

    /// As JSON, for the results files.
    pub fn to_json(&self) -> Value {
        json!({
            "cpu": self.cpu, "cores": self.cores, "os": self.os, "rustc": self.rustc,
            "profile": self.profile, "date": self.date,
            "load_average_before": self.load_before, "load_average_after": self.load_after,
        })
    }

    /// Read back what [`Machine::to_json`] wrote.
    pub fn from_json(v: &Value) -> Machine {
        let s = |k: &str| v[k].as_str().unwrap_or("unknown").to_string();
        Machine {
            cpu: s("cpu"),
            cores: v["cores"].as_u64().unwrap_or(0) as usize,
            os: s("os"),
            rustc: s("rustc"),
            profile: s("profile"),
            date: s("date"),
            load_before: v["load_average_before"].as_f64(),
            load_after: v["load_average_after"].as_f64(),
        }
    }

    /// When and how busy, for a chapter whose figures were recorded apart
    /// from the others (`figures --only`): "on 2026-12-04 09:30 UTC, with
    /// a load average of 1.20 as it began and 1.45 as it ended".
    pub fn when(&self) -> String {
        match (self.load_before, self.load_after) {
            (Some(b), Some(a)) => format!(
                "on {}, with a load average of {b:.2} as it began and {a:.2} as it ended",
                self.date
            ),
            _ => format!("on {}", self.date),
        }
    }

    /// The machine itself, without the time: "a machine with 2 cores
    /// (CPU; OS), built by rustc … (release build)".
    pub fn setup(&self) -> String {
        format!(
            "a machine with {} cores ({}; {}), built by {} ({} build)",
            self.cores, self.cpu, self.os, self.rustc, self.profile
        )
    }

    /// One sentence for the book.
    pub fn sentence(&self) -> String {
        let load = match (self.load_before, self.load_after) {
            (Some(b), Some(a)) => format!(
                "; the load average was {b:.2} as it began and {a:.2} as it ended (other \
                 work shares this machine, so expect figures to move by tens of percent)"
            ),
            _ => String::new(),
        };
        format!(
            "These figures were recorded by `cargo run --release -- figures` on {}, on {}{load}.",
            self.date,
            self.setup()
        )
    }
}

/// What `machine.md` says, from each stage's results: one sentence when
/// every stage was recorded in the same run; when some were recorded apart
/// (`figures --only`), the machine once and then each stage's own time and
/// load, so no figure is credited to a run that did not make it.
pub fn book_text<'a>(stages: impl IntoIterator<Item = (&'a str, &'a Machine)>) -> String {
    let stages: Vec<(&str, &Machine)> = stages.into_iter().collect();
    let Some(&(_, first)) = stages.first() else {
        return String::new();
    };
    if stages.iter().all(|(_, m)| m.when() == first.when()) {
        return first.sentence();
    }
    let mut text = format!(
        "These figures were recorded by `cargo run --release -- figures` on {}, not all \
         in one run: some stages were recorded again on their own (`figures --only`), so \
         each stage's figures come from the run named beside it (other work shares this \
         machine, so expect figures to move by tens of percent):\n",
        first.setup()
    );
    for (name, m) in &stages {
        text.push_str(&format!("\n- {name}: {}", m.when()));
        if m.setup() != first.setup() {
            text.push_str(&format!(", on {}", m.setup()));
        }
    }
    text.push('\n');
    text
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `YYYY-MM-DD HH:MM UTC`, from the system clock.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The calendar date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn the_machine_reads_back_as_written() {
        let mut m = Machine::here();
        m.load_after = Some(1.5);
        assert_eq!(Machine::from_json(&m.to_json()), m);
        assert!(m.sentence().contains(&m.rustc));
    }

    #[test]
    fn stages_recorded_apart_each_get_their_own_time() {
        let mut a = Machine::here();
        a.date = "2026-12-04 08:37 UTC".into();
        a.load_before = Some(3.33);
        a.load_after = Some(3.9);
        let mut b = a.clone();
        b.date = "2026-12-04 10:40 UTC".into();
        b.load_before = Some(2.4);
        b.load_after = Some(2.5);

        let together = book_text([("stage-serial", &a), ("stage-hub", &a)]);
        assert_eq!(together, a.sentence());

        let apart = book_text([("stage-serial", &a), ("stage-greenlet", &b)]);
        let serial = "- stage-serial: on 2026-12-04 08:37 UTC, with a load average of 3.33";
        let greenlet = "- stage-greenlet: on 2026-12-04 10:40 UTC, with a load average of 2.40";
        assert!(apart.contains(serial), "{apart}");
        assert!(apart.contains(greenlet), "{apart}");
        assert_eq!(
            apart.matches(&a.rustc).count(),
            1,
            "machine named once: {apart}"
        );

        let mut elsewhere = b.clone();
        elsewhere.cores = 64;
        let mixed = book_text([("stage-serial", &a), ("stage-cores", &elsewhere)]);
        assert!(
            mixed.contains("- stage-cores: on 2026-12-04 10:40 UTC"),
            "{mixed}"
        );
        assert!(mixed.contains("64 cores"), "{mixed}");
        assert_eq!(book_text([]), "");
    }
}
