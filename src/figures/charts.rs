//! Charts, drawn with plotters' SVG backend: bars for "what does each one
//! cost", lines for "how does it scale". Text is SVG text, so the pictures
//! need no fonts to be made and stay sharp at any width.

use std::error::Error;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, SegmentedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordusize;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
    let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
    let root = canvas(path, height)?;
    let mut chart = row_chart(
        &root,
        title,
        &labels,
        ((lo..hi).log_scale(), 38),
        axis,
        DEFAULT_GRID,
    )?;
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
            text_after(),
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

/// A white canvas, the book's width and `height` pixels high, that draws
/// into the SVG file at `path` once presented.
pub(crate) fn canvas(
    path: &Path,
    height: u32,
) -> Result<DrawingArea<SVGBackend<'_>, Shift>, Box<dyn Error>> {
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// A chart of labelled rows across a value axis: the bars of [`bars`],
/// [`grouped_bars`] and [`stacked_bars`], a timeline's lanes. It has
/// `title` above, `labels` down the left (top first, as given, in a column
/// [`label_column_px`] wide) and, along the bottom, `x`'s numbers made
/// short over the name `axis`, in a band `x_area` pixels high; gridlines
/// cross the value axis only, as dark as `grid`. Row `i` from the bottom is
/// the segment `Exact(i)..Exact(i + 1)`.
pub(crate) fn row_chart<'a, X>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    labels: &[&str],
    (x, x_area): (X, u32),
    axis: &str,
    grid: RGBAColor,
) -> Result<RowChart<'a, X::CoordDescType>, Box<dyn Error>>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let n = labels.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(x_area)
        .y_label_area_size(label_column_px(labels))
        .build_cartesian_2d(x, (0..n - 1).into_segmented())?;
    // Segment 0 is at the bottom: the labels go up from the last.
    let bottom_up: Vec<&str> = labels.iter().rev().copied().collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bottom_up.get(*i).copied().unwrap_or_default().into(),
            _ => String::new(),
        })
        .y_label_style(("sans-serif", 14))
        .x_label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .x_label_formatter(&|v| short_number(*v))
        .x_desc(axis)
        .bold_line_style(grid)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    Ok(chart)
}

/// A [`row_chart`] with its value axis of coordinates `X`.
pub(crate) type RowChart<'a, X> =
    ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, SegmentedCoord<RangedCoordusize>>>;

/// Gridlines as dark as plotters draws them unless told otherwise.
pub(crate) const DEFAULT_GRID: RGBAColor = RGBAColor(0, 0, 0, 0.2);

/// The width of a [`row_chart`]'s label column: room for the longest of
/// `labels` (at 14 px, about 7 px a character) and a margin, at most half
/// the chart.
pub(crate) fn label_column_px(labels: &[&str]) -> u32 {
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(8);
    (chars as u32 * 7 + 16).min(WIDTH / 2)
}

/// Text that starts at its point, centred on it vertically: a figure after
/// its bar, a legend's name after its key.
fn text_after() -> TextStyle<'static> {
    ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center))
}

/// One row of a [`grouped_bars`] or [`stacked_bars`] chart: its label, and
/// a bar per series (`None` where a series has no figure for it).
#[derive(Debug, Clone)]
pub struct GroupRow {
    /// What the row is.
    pub label: String,
    /// Each series' length and the figure printed for it, in series order.
    pub bars: Vec<Option<(f64, String)>>,
}

/// A dashed vertical line across a bar chart, named in the legend.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Where it stands on the value axis.
    pub at: f64,
    /// Its name in the legend ("ideal: one hub's time ÷ 2").
    pub name: String,
}

/// Horizontal bars on a linear axis from zero, for "how much of it is
/// there" comparisons where half should look like half: a row per label,
/// a bar per series within it (in the palette's colours), and an optional
/// reference line. The legend sits under the axis, clear of the bars.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    axis: &str,
    series: &[&str],
    rows: &[GroupRow],
    reference: Option<&Reference>,
) -> Result<(), Box<dyn Error>> {
    horizontal_bars(path, title, axis, series, rows, reference, false)
}

/// Like [`grouped_bars`], but each row's series are laid end to end in one
/// bar (parts of a whole: who used the cores), their figures printed after
/// it, joined by `+`.
pub fn stacked_bars(
    path: &Path,
    title: &str,
    axis: &str,
    series: &[&str],
    rows: &[GroupRow],
    reference: Option<&Reference>,
) -> Result<(), Box<dyn Error>> {
    horizontal_bars(path, title, axis, series, rows, reference, true)
}

/// Pixels a label of `chars` characters takes at 13 px (an estimate: the
/// SVG names a font, the reader's browser picks it).
fn text_px(chars: usize) -> f64 {
    chars as f64 * 7.0
}

fn horizontal_bars(
    path: &Path,
    title: &str,
    axis: &str,
    series: &[&str],
    rows: &[GroupRow],
    reference: Option<&Reference>,
    stacked: bool,
) -> Result<(), Box<dyn Error>> {
    let n = rows.len().max(1);
    let lanes = if stacked { 1 } else { series.len().max(1) };
    let per_row = 14 + 22 * lanes as u32;
    let legend_items =
        if series.len() > 1 { series.len() } else { 0 } + usize::from(reference.is_some());
    let legend_px = if legend_items > 0 {
        12 + 20 * legend_items as u32
    } else {
        0
    };
    let x_area = 48;
    let height = 40 + x_area + per_row * n as u32 + legend_px;
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let label_px = label_column_px(&labels);
    // What each row draws: its bars' ends and the text after each.
    let ends: Vec<Vec<(f64, String)>> = rows
        .iter()
        .map(|r| {
            let present: Vec<(f64, String)> = r.bars.iter().flatten().cloned().collect();
            if stacked {
                let total = present.iter().map(|(v, _)| v).sum();
                let text = present
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ");
                vec![(total, text)]
            } else {
                present
            }
        })
        .collect();
    // The axis reaches far enough that every bar's figure fits after it.
    let plot_px = f64::from(WIDTH - label_px - 24 - 12);
    let hi = ends
        .iter()
        .flatten()
        .map(|(v, text)| {
            v * plot_px / (plot_px - 8.0 - text_px(text.chars().count())).max(plot_px / 4.0)
        })
        .chain(reference.map(|r| r.at * 1.05))
        .fold(f64::MIN_POSITIVE, f64::max);
    let root = canvas(path, height)?;
    let (upper, lower) = root.split_vertically(height - legend_px);
    let mut chart = row_chart(
        &upper,
        title,
        &labels,
        (0.0..hi, x_area),
        axis,
        BLACK.mix(0.12),
    )?;
    // Each row's segment is split in pixels: a tenth above and below, the
    // rest shared by its lanes, the first series on top.
    let (_, y_px) = chart.plotting_area().get_pixel_range();
    let segment = f64::from(y_px.end - y_px.start) / n as f64;
    let band = segment * 0.8 / lanes as f64;
    let margins = |lane: usize| {
        let top = segment * 0.1 + band * lane as f64;
        let bottom = (segment - top - band).max(0.0);
        (top.round() as u32, bottom.round() as u32)
    };
    for (k, _) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let lane = if stacked { 0 } else { k };
        let (top, bottom) = margins(lane);
        // (segment, from, to) of this series' bar in each row.
        let bars: Vec<(usize, f64, f64)> = rows
            .iter()
            .rev()
            .enumerate()
            .filter_map(|(i, row)| {
                let (value, _) = row.bars.get(k).cloned().flatten()?;
                let from = if stacked {
                    row.bars.iter().take(k).flatten().map(|(v, _)| v).sum()
                } else {
                    0.0
                };
                Some((i, from, from + value))
            })
            .collect();
        chart.draw_series(bars.iter().map(|&(i, from, to)| {
            let mut rect = Rectangle::new(
                [
                    (from, SegmentValue::Exact(i)),
                    (to, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            rect.set_margin(top, bottom, 0, 0);
            rect
        }))?;
    }
    // The figures, after each bar.
    for (i, row_ends) in ends.iter().rev().enumerate() {
        for (lane, (value, text)) in row_ends.iter().enumerate() {
            let (top, _) = margins(lane);
            let dy = (f64::from(top) + band / 2.0 - segment / 2.0).round() as i32;
            chart.draw_series(std::iter::once(
                EmptyElement::at((*value, SegmentValue::CenterOf(i)))
                    + Text::new(text.clone(), (5, dy), text_after()),
            ))?;
        }
    }
    if let Some(reference) = reference {
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![
                (reference.at, SegmentValue::Exact(0)),
                (reference.at, SegmentValue::Exact(n)),
            ],
            6,
            4,
            BLACK.stroke_width(2),
        )))?;
    }
    // The legend, under the axis: a key and a name per line.
    let x0 = label_px as i32 + 12;
    let mut y = 10;
    if series.len() > 1 {
        for (k, name) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            lower.draw(&Rectangle::new(
                [(x0, y - 6), (x0 + 16, y + 6)],
                color.filled(),
            ))?;
            lower.draw(&Text::new(name.to_string(), (x0 + 24, y), text_after()))?;
            y += 20;
        }
    }
    if let Some(reference) = reference {
        lower.draw(&DashedPathElement::new(
            vec![(x0, y), (x0 + 16, y)],
            4,
            3,
            BLACK.stroke_width(2),
        ))?;
        lower.draw(&Text::new(
            reference.name.clone(),
            (x0 + 24, y),
            text_after(),
        ))?;
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
    let root = canvas(path, 420)?;
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

    /// What `draw` writes to the SVG file it is given (named for `name`, in
    /// a scratch folder that is gone again before the checks run).
    fn drawn(name: &str, draw: impl FnOnce(&Path)) -> String {
        let dir = std::env::temp_dir().join(format!("charts-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.svg"));
        draw(&path);
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        svg
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(10_000.0), "10k");
        assert_eq!(short_number(0.05), "0.05");
        assert_eq!(short_number(2.0), "2");
    }

    #[test]
    fn grouped_bars_draw_every_bar_its_figure_and_the_legend() {
        let rows = [
            GroupRow {
                label: "one hub".into(),
                bars: vec![Some((10.0, "10 a".into())), Some((8.0, "8 b".into()))],
            },
            GroupRow {
                label: "two hubs".into(),
                bars: vec![Some((19.0, "19 a".into())), None],
            },
        ];
        let ideal = Reference {
            at: 20.0,
            name: "ideal".into(),
        };
        let svg = drawn("grouped", |path| {
            grouped_bars(path, "t", "x", &["few", "many"], &rows, Some(&ideal)).unwrap();
        });
        for text in [
            "one hub", "two hubs", "10 a", "8 b", "19 a", "few", "many", "ideal",
        ] {
            assert!(svg.contains(text), "no {text}");
        }
        // The first series: two bars and its legend key; the second: one
        // bar (none for the row without a figure) and its key.
        let fills = |c: RGBColor| {
            svg.matches(&format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2))
                .count()
        };
        assert_eq!((fills(PALETTE[0]), fills(PALETTE[1])), (3, 2), "{svg}");
    }

    #[test]
    fn stacked_bars_lay_a_row_s_parts_end_to_end_and_add_their_figures() {
        let rows = [GroupRow {
            label: "one hub".into(),
            bars: vec![Some((0.8, "0.80".into())), Some((0.2, "0.20".into()))],
        }];
        let svg = drawn("stacked", |path| {
            stacked_bars(path, "t", "cores", &["server", "load"], &rows, None).unwrap();
        });
        assert!(svg.contains("0.80 + 0.20"), "{svg}");
        // The second part starts where the first ends: both rectangles
        // share that edge's x.
        let rects: Vec<(f64, f64)> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| format!(" {}", r.split('>').next().unwrap_or_default()))
            .filter(|r| r.contains("fill=\"#1F77B4\"") || r.contains("fill=\"#FF7F0E\""))
            .filter_map(|r| {
                let attr = |name: &str| -> Option<f64> {
                    let at = r.find(&format!(" {name}=\""))? + name.len() + 3;
                    r[at..].split('"').next()?.parse().ok()
                };
                Some((attr("x")?, attr("x")? + attr("width")?))
            })
            .collect();
        assert!(rects.len() >= 2, "{rects:?}");
        assert!(
            (rects[0].1 - rects[1].0).abs() <= 1.0,
            "the parts do not meet: {rects:?}"
        );
    }

    #[test]
    fn a_row_chart_lists_its_labels_top_down_in_a_column_at_most_half_the_chart() {
        let labels = ["first", "second", "third"];
        let svg = drawn("rows", |path| {
            let root = SVGBackend::new(path, (WIDTH, 200)).into_drawing_area();
            row_chart(&root, "t", &labels, (0.0..1.0, 30), "x", DEFAULT_GRID).unwrap();
            root.present().unwrap();
        });
        // Each label is a <text> element; its y is where it stands.
        let y_of = |label: &str| -> f64 {
            let at = svg
                .find(&format!(">\n{label}\n</text>"))
                .unwrap_or_else(|| panic!("no {label}: {svg}"));
            let element = &svg[svg[..at].rfind("<text").unwrap()..at];
            let y = element
                .split(" y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            y.parse().unwrap()
        };
        let ys: Vec<f64> = labels.iter().map(|l| y_of(l)).collect();
        assert!(ys[0] < ys[1] && ys[1] < ys[2], "not top down: {ys:?}");
        assert_eq!(label_column_px(&["abc"]), 3 * 7 + 16);
        assert_eq!(label_column_px(&["x".repeat(200).as_str()]), WIDTH / 2);
    }

    #[test]
    fn a_bar_chart_is_an_svg_with_every_label() {
        let data = [
            Bar::measured("ours", 14.2, "14.2 ns"),
            Bar::quoted("CPython", 452.0, "452 ns"),
        ];
        let svg = drawn("bars", |path| bars(path, "cost", "ns", 1.0, &data).unwrap());
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for text in ["ours", "CPython (quoted)", "14.2 ns", "452 ns"] {
            assert!(svg.contains(text), "no {text}");
        }
    }
}
