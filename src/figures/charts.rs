//! Charts, drawn with plotters' SVG backend: bars for "what does each one
//! cost", lines for "how does it scale". Text is SVG text, so the pictures
//! need no fonts to be made and stay sharp at any width.

use std::error::Error;
use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Chart width in pixels: the book's text column.
pub const WIDTH: u32 = 760;

/// Colors for measured bars and lines, in order.
/// (No red: a timeline keeps red for a greenlet unwound by a kill.)
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
];

/// Quoted figures (the notes', CPython's) are grey.
pub const QUOTED: RGBColor = RGBColor(150, 150, 150);

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// What it is.
    pub label: String,
    /// Its length.
    pub value: f64,
    /// The figure printed at its end.
    pub text: String,
    /// Quoted rather than measured here (drawn grey).
    pub quoted: bool,
    /// CPython's, measured here (drawn in the second colour, apart from ours).
    pub python: bool,
}

impl Bar {
    /// A measured bar.
    pub fn measured(label: impl Into<String>, value: f64, text: impl Into<String>) -> Bar {
        Bar {
            label: label.into(),
            value,
            text: text.into(),
            quoted: false,
            python: false,
        }
    }

    /// CPython's figure, measured here (its label says so).
    pub fn python(label: impl Into<String>, value: f64, text: impl Into<String>) -> Bar {
        Bar {
            label: format!("{} (measured here)", label.into()),
            python: true,
            ..Bar::measured("", value, text)
        }
    }

    /// A quoted bar (its label says so).
    pub fn quoted(label: impl Into<String>, value: f64, text: impl Into<String>) -> Bar {
        Bar {
            label: format!("{} (quoted)", label.into()),
            value,
            text: text.into(),
            quoted: true,
            python: false,
        }
    }
}

/// Horizontal bars on a log axis, from `from` (1 for ratios, so that bars
/// left of it are "faster", right of it "slower").
pub fn bars(
    path: &Path,
    title: &str,
    axis: &str,
    from: f64,
    bars: &[Bar],
) -> Result<(), Box<dyn Error>> {
    let n = bars.len();
    let height = 96 + 34 * n as u32;
    let lo = bars.iter().map(|b| b.value).fold(from, f64::min) / 2.0;
    let hi = bars.iter().map(|b| b.value).fold(from, f64::max) * 4.0;
    let label_px = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(8) as u32
        * 7
        + 16;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(label_px.min(WIDTH / 2))
        .build_cartesian_2d((lo..hi).log_scale(), (0..n - 1).into_segmented())?;
    // Segment 0 is at the bottom: list the bars top down, as given.
    let labels: Vec<String> = bars.iter().rev().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_style(("sans-serif", 14))
        .x_label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .x_label_formatter(&|v| short_number(*v))
        .x_desc(axis)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, bar) in bars.iter().rev().enumerate() {
        let color = match (bar.quoted, bar.python) {
            (true, _) => QUOTED,
            (false, true) => PALETTE[1],
            (false, false) => PALETTE[0],
        };
        let mut rect = Rectangle::new(
            [
                (from, SegmentValue::Exact(i)),
                (bar.value, SegmentValue::Exact(i + 1)),
            ],
            color.filled(),
        );
        rect.set_margin(6, 6, 0, 0);
        chart.draw_series(std::iter::once(rect))?;
        let at = if bar.value >= from {
            bar.value * 1.08
        } else {
            from * 1.08
        };
        chart.draw_series(std::iter::once(Text::new(
            bar.text.clone(),
            (at, SegmentValue::CenterOf(i)),
            ("sans-serif", 13).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ),
            ),
        )))?;
    }
    if from > lo {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (from, SegmentValue::Exact(0)),
                (from, SegmentValue::Exact(n)),
            ],
            BLACK.stroke_width(1),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Lines on log-log axes.
pub fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(), Box<dyn Error>> {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = bounds(all().map(|p| p.0));
    let (y0, y1) = bounds(all().map(|p| p.1));
    let root = SVGBackend::new(path, (WIDTH, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| short_number(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (1.0, 10.0)
    } else {
        (lo, hi)
    }
}

/// `1500` → `1.5k`, `0.05` → `0.05`: axis labels that fit.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(10_000.0), "10k");
        assert_eq!(short_number(0.05), "0.05");
        assert_eq!(short_number(2.0), "2");
    }

    #[test]
    fn a_bar_chart_is_an_svg_with_every_label() {
        let dir = std::env::temp_dir().join(format!("charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bars.svg");
        let data = [
            Bar::measured("ours", 14.2, "14.2 ns"),
            Bar::quoted("CPython", 452.0, "452 ns"),
        ];
        bars(&path, "cost", "ns", 1.0, &data).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for text in ["ours", "CPython (quoted)", "14.2 ns", "452 ns"] {
            assert!(svg.contains(text), "no {text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
