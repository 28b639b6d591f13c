//! SVG charts written next to the report (plotters' SVG backend, no
//! browser): per store, acquire + release throughput of verrou, Node's
//! Verrou and the same-work floor (and, on single Redis and Valkey servers,
//! the same scripts on redis-rs); and the hand-off latency distribution of
//! every store. Figures are medians over rounds, as in the report.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::StoreRun;
use crate::sample::{CDF_QUANTILES, Sample, Workload};
use crate::stats::median;

/// verrou's colour in every chart.
const VERROU: RGBColor = RGBColor(31, 119, 180);
/// Node's Verrou.
const NODE: RGBColor = RGBColor(255, 127, 14);
/// The floors.
const FLOOR: RGBColor = RGBColor(120, 120, 120);
/// The same work on redis-rs, beside fred's floor.
const OTHER_DRIVER: RGBColor = RGBColor(185, 185, 185);
/// One colour per store in the hand-off chart.
const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// A chart written, for the report to link.
#[derive(Debug, Clone)]
pub struct Chart {
    /// What it shows.
    pub title: String,
    /// Its file name, next to the report.
    pub file: String,
    /// The store it belongs to (`None`: every store).
    pub store: Option<verrou_testkit::StoreKind>,
}

/// Writes every chart the runs have data for into `dir`.
///
/// # Errors
/// A chart could not be drawn or written.
pub fn write(dir: &Path, runs: &[StoreRun]) -> Result<Vec<Chart>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut charts = Vec::new();
    for run in runs {
        let bars = throughput_bars(run);
        if bars.is_empty() {
            continue;
        }
        let file = format!("{}.svg", run.kind.name());
        let title = format!(
            "{}: acquire+release per second (median over rounds)",
            run.kind
        );
        draw_bars(&dir.join(&file), &title, &bars)?;
        charts.push(Chart {
            title,
            file,
            store: Some(run.kind),
        });
    }
    let lines = handoff_lines(runs);
    if !lines.is_empty() {
        let file = "handoff.svg".to_owned();
        let title =
            "hand-off latency, 1000 waiters on one key (CDF, median over rounds)".to_owned();
        draw_cdf(&dir.join(&file), &title, &lines)?;
        charts.push(Chart {
            title,
            file,
            store: None,
        });
    }
    Ok(charts)
}

/// One bar: its label, value (ops/s) and colour.
struct Bar {
    label: String,
    value: f64,
    color: RGBColor,
}

fn median_rate(samples: &[Option<Sample>]) -> Option<f64> {
    median(samples.iter().flatten().map(Sample::per_sec)).filter(|v| *v > 0.0)
}

/// The throughput bars of one store, those it has figures for.
fn throughput_bars(run: &StoreRun) -> Vec<Bar> {
    let ours = |w: Workload| median_rate(run.ours.get(&w).map_or(&[], Vec::as_slice));
    let theirs = |w: Workload| median_rate(run.peer.get(&w).map_or(&[], Vec::as_slice));
    let floor_shape = run
        .same_work
        .as_ref()
        .and_then(|floor| floor.third.as_deref())
        .unwrap_or("server-bound");
    let candidates = [
        (
            "sequential: verrou".to_owned(),
            ours(Workload::Sequential),
            VERROU,
        ),
        (
            "sequential: Node Verrou".to_owned(),
            theirs(Workload::Sequential),
            NODE,
        ),
        (
            "sequential: same-work floor".to_owned(),
            ours(Workload::FloorSequential),
            FLOOR,
        ),
        (
            "sequential: same scripts on redis-rs".to_owned(),
            ours(Workload::FloorSequentialRedisRs),
            OTHER_DRIVER,
        ),
        (
            format!("floor: {}", run.round_trip_label),
            ours(Workload::RoundTrip).filter(|_| run.kind == verrou_testkit::StoreKind::Memory),
            FLOOR,
        ),
        (
            "64 tasks: verrou".to_owned(),
            ours(Workload::Concurrent),
            VERROU,
        ),
        (
            "64 tasks: Node Verrou".to_owned(),
            theirs(Workload::Concurrent),
            NODE,
        ),
        (
            "64 tasks: same-work floor".to_owned(),
            ours(Workload::FloorConcurrent),
            FLOOR,
        ),
        (
            "64 tasks: same scripts on redis-rs".to_owned(),
            ours(Workload::FloorConcurrentRedisRs),
            OTHER_DRIVER,
        ),
        (
            format!("same-work floor, {floor_shape}"),
            ours(Workload::FloorServerBound),
            FLOOR,
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(label, value, color)| {
            value.map(|value| Bar {
                label,
                value,
                color,
            })
        })
        .collect()
}

fn drawing<E: std::fmt::Debug>(what: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("drawing {}: {e:?}", what.display())
}

/// Horizontal bars, first on top, each with its value at its end.
fn draw_bars(path: &Path, title: &str, bars: &[Bar]) -> Result<(), String> {
    let rows = bars.len();
    let height = 90 + 34 * u32::try_from(rows).unwrap_or(20);
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(300)
        .build_cartesian_2d(0.0..max * 1.2, (0..rows - 1).into_segmented())
        .map_err(drawing(path))?;
    // Row i is drawn at rows - 1 - i so that the first bar is on top.
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(row) if *row < rows => bars[rows - 1 - row].label.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&label_of)
        .x_label_formatter(&|v| short_rate(*v))
        .x_desc("acquire + release per second")
        .draw()
        .map_err(drawing(path))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let row = rows - 1 - i;
            let mut rect = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (bar.value, SegmentValue::Exact(row + 1)),
                ],
                bar.color.filled(),
            );
            rect.set_margin(5, 5, 0, 0);
            rect
        }))
        .map_err(drawing(path))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            Text::new(
                format!(" {}", short_rate(bar.value)),
                (bar.value, SegmentValue::CenterOf(rows - 1 - i)),
                TextStyle::from(("sans-serif", 13).into_font())
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )
        }))
        .map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}

/// One line of the hand-off chart: its label, colour, whether dashed, and
/// its (latency µs, quantile) points.
struct Line {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// Per quantile, the median over rounds of the hand-off latency.
fn median_cdf(samples: &[Option<Sample>]) -> Vec<(f64, f64)> {
    let rounds: Vec<&Vec<f64>> = samples
        .iter()
        .flatten()
        .map(|s| &s.cdf_us)
        .filter(|cdf| cdf.len() == CDF_QUANTILES.len())
        .collect();
    if rounds.is_empty() {
        return Vec::new();
    }
    CDF_QUANTILES
        .iter()
        .enumerate()
        .filter_map(|(i, &q)| {
            let us = median(rounds.iter().map(|cdf| cdf[i]))?;
            // The axis is logarithmic: a sub-microsecond hand-off sits at 0.1 µs.
            Some((us.max(0.1), q))
        })
        .collect()
}

fn handoff_lines(runs: &[StoreRun]) -> Vec<Line> {
    let mut lines = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let ours = median_cdf(run.ours.get(&Workload::Handoff).map_or(&[], Vec::as_slice));
        if !ours.is_empty() {
            lines.push(Line {
                label: format!("{}: verrou", run.kind),
                color,
                dashed: false,
                points: ours,
            });
        }
        let theirs = median_cdf(run.peer.get(&Workload::Handoff).map_or(&[], Vec::as_slice));
        if !theirs.is_empty() {
            lines.push(Line {
                label: format!("{}: Node Verrou", run.kind),
                color,
                dashed: true,
                points: theirs,
            });
        }
    }
    lines
}

/// Cumulative distributions on a logarithmic latency axis.
fn draw_cdf(path: &Path, title: &str, lines: &[Line]) -> Result<(), String> {
    let all = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = (lo / 1.5, (hi * 1.5).max(lo * 10.0));
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(drawing(path))?;
    chart
        .configure_mesh()
        .x_desc("hand-off latency (µs, log scale)")
        .y_desc("fraction of hand-offs at or below")
        .x_label_formatter(&|v| short_micros(*v))
        .draw()
        .map_err(drawing(path))?;
    for line in lines {
        let style = line.color.stroke_width(2);
        let points = line.points.clone();
        // The legend draws each line's own stroke: dashed for Node's Verrou.
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))
                .map_err(drawing(path))?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
                });
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(drawing(path))?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}

/// `1.2M`, `63k`, `850`.
fn short_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `120 µs`, `2.5 ms`, `0.3 µs`.
fn short_micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} µs", trim(us))
    }
}

fn trim(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Where the charts go: next to the report.
pub fn dir_of(report: &Path) -> PathBuf {
    report
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
