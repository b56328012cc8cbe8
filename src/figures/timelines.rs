//! Timelines: a trace file drawn as one lane per greenlet (or generator),
//! time running left to right in real units.
//!
//! Solid bars are the intervals a lane ran (red when it ran only to be
//! unwound by a kill); pale bars are its waits, labelled with what it
//! waited on; thin dark bars on the hub's lane are its polls; a tick marks
//! where a lane's function ended. Runs far shorter than a pixel are drawn a
//! pixel wide, so that every switch stays visible.

use std::error::Error;
use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use trace::read::{Recorded, TrackId};

use super::charts::{canvas, label_column_px, row_chart, DEFAULT_GRID, PALETTE, WIDTH};

/// One lane: a track of the trace, and the name to show.
#[derive(Debug, Clone)]
pub struct Lane {
    /// The track.
    pub track: TrackId,
    /// Its label (the track's name, or a clearer one).
    pub label: String,
}

/// The lanes called `names` (in that order), each labelled as `labels`
/// says (`None`: its own name). Missing tracks are an error naming them.
pub fn lanes(rec: &Recorded, names: &[(&str, Option<&str>)]) -> Result<Vec<Lane>, String> {
    names
        .iter()
        .map(|(name, label)| {
            let track = rec
                .track(name)
                .ok_or_else(|| format!("the trace has no track `{name}`"))?;
            Ok(Lane {
                track,
                label: label.unwrap_or(name).to_string(),
            })
        })
        .collect()
}

/// Like [`lanes`], but only tracks of the OS thread called `thread` (a
/// trace of several threads has a `main` and a `Hub` on each).
pub fn lanes_on(
    rec: &Recorded,
    thread: &str,
    names: &[(&str, Option<&str>)],
) -> Result<Vec<Lane>, String> {
    names
        .iter()
        .map(|(name, label)| {
            let track = rec
                .tracks
                .iter()
                .find(|t| t.thread == thread && t.name == *name)
                .ok_or_else(|| format!("the trace has no track `{name}` on thread `{thread}`"))?;
            Ok(Lane {
                track: track.id,
                label: label.unwrap_or(name).to_string(),
            })
        })
        .collect()
}

/// The unit times up to `until` µs read best in: (divisor, name).
fn unit(until: f64) -> (f64, &'static str) {
    if until < 2_000.0 {
        (1.0, "µs")
    } else if until < 2_000_000.0 {
        (1e3, "ms")
    } else {
        (1e6, "s")
    }
}

/// Draw `lanes` of `rec` from `start` to `end` (µs since the trace began).
pub fn draw(
    path: &Path,
    title: &str,
    rec: &Recorded,
    lanes: &[Lane],
    (start, end): (f64, f64),
) -> Result<(), Box<dyn Error>> {
    let n = lanes.len();
    let (div, unit_name) = unit(end);
    let x = |t: f64| t / div;
    let (x0, x1) = (x(start), x(end));
    let labels: Vec<&str> = lanes.iter().map(|l| l.label.as_str()).collect();
    let label_px = label_column_px(&labels);
    let height = 124 + 40 * n as u32;
    let root = canvas(path, height)?;
    let mut chart = row_chart(
        &root,
        title,
        &labels,
        (x0..x1, 40),
        &format!("time since the trace began ({unit_name})"),
        DEFAULT_GRID,
    )?;
    let plot_px = f64::from(WIDTH - label_px - 24).max(100.0);
    let pixel = (x1 - x0) / plot_px; // one pixel, in axis units
    let clip = |a: f64, b: f64| (x(a).max(x0), x(b).min(x1));
    for (i, lane) in lanes.iter().enumerate() {
        let row = n - 1 - i;
        let color = PALETTE[i % PALETTE.len()];
        let band = |a: f64, b: f64, style: ShapeStyle, (top, bottom): (u32, u32)| {
            let mut r = Rectangle::new(
                [
                    (a, SegmentValue::Exact(row)),
                    (b.max(a + pixel), SegmentValue::Exact(row + 1)),
                ],
                style,
            );
            r.set_margin(top, bottom, 0, 0);
            r
        };
        for wait in rec.waits(lane.track) {
            let (a, b) = clip(wait.start, wait.end);
            if b <= a {
                continue;
            }
            chart.draw_series(std::iter::once(band(
                a,
                b,
                color.mix(0.18).filled(),
                (10, 10),
            )))?;
            // Label the wait if the text fits in it (about 7 px a character).
            if (b - a) / pixel > 7.0 * wait.on.chars().count() as f64 + 8.0 {
                chart.draw_series(std::iter::once(Text::new(
                    wait.on.clone(),
                    ((a + b) / 2.0, SegmentValue::CenterOf(row)),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK.mix(0.7))
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
            }
        }
        for run in rec.slices_of(lane.track) {
            let (a, b) = clip(run.start, run.end());
            if b < a || (b == a && (a <= x0 || a >= x1)) {
                continue;
            }
            let fill = if run.entered_by() == "throw" {
                RGBColor(214, 39, 40).filled()
            } else {
                color.filled()
            };
            chart.draw_series(std::iter::once(band(a, b, fill, (6, 6))))?;
        }
        for span in rec.spans.iter().filter(|s| s.track == lane.track) {
            let (a, b) = clip(span.start, span.end());
            if b > a {
                chart.draw_series(std::iter::once(band(
                    a,
                    b,
                    BLACK.mix(0.55).filled(),
                    (26, 8),
                )))?;
            }
        }
        for end_mark in rec.marks_of(lane.track, "ends") {
            let at = x(end_mark.at);
            if (x0..=x1).contains(&at) {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![
                        (at, SegmentValue::Exact(row)),
                        (at, SegmentValue::Exact(row + 1)),
                    ],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
    }
    root.draw(&Text::new(
        "solid: running (red: unwound by a kill) · pale: waiting, and on what · \
         thin dark: the hub polling · bar: the function ended",
        (12, height as i32 - 12),
        ("sans-serif", 13).into_font().color(&BLACK.mix(0.6)),
    ))?;
    root.present()?;
    Ok(())
}

/// Where `lanes` first and last did anything: the whole story.
pub fn extent(rec: &Recorded, lanes: &[Lane]) -> (f64, f64) {
    let mine = |t: TrackId| lanes.iter().any(|l| l.track == t);
    let times = rec
        .runs
        .iter()
        .filter(|s| mine(s.track))
        .flat_map(|s| [s.start, s.end()]);
    let (lo, hi) = times.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if lo > hi {
        (0.0, rec.end())
    } else {
        let pad = (hi - lo) * 0.02;
        ((lo - pad).max(0.0), hi + pad)
    }
}
