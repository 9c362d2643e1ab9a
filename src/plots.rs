//! SVG pictures of the three reports (`hottest.svg`, `window.svg`, `forecast.svg`), because a
//! month of temperatures is easier to grasp drawn than as lines of numbers.
//!
//! Pure functions from the report types to SVG text (plotters' SVG backend: no fonts, browser or
//! network needed). Plots summarise: one point per day for the hottest times, and series thinned
//! to at most [`MAX_POINTS`] points (or monthly lines), so a large input never makes a large
//! picture.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::date::{hhmm, Day, Month};
use crate::error::PlotError;
use crate::tasks::hottest::{DayMax, MonthMean};
use crate::tasks::window::{HiLow, Hit, WindowParams};
use crate::tenths::Tenths;

/// Width and height of every plot, in pixels: readable on a 1200 px wide screen.
pub const SIZE: (u32, u32) = (1200, 700);

/// Most points drawn per series; longer series are averaged in consecutive groups.
pub const MAX_POINTS: usize = 1500;

/// One reading of a window day (Outside Temperature), the input of the forecast.
pub type Sample = (Day, u16, Tenths);

const HI: RGBColor = RGBColor(200, 60, 40);
const LOW: RGBColor = RGBColor(40, 90, 200);
const FONT: &str = "sans-serif";

/// `hottest.svg`: each day's hottest time (top, with each month's mean hottest time as a line)
/// and that day's maximum (bottom).
///
/// `days` (in date order) is walked a few times rather than collected: the analysis state already
/// holds every day in 4 bytes, and copies of it as points (12 bytes a day, then 16 for each of the
/// two series) were what made a run's memory grow with the days its input spans (70 MB at 1.6 M
/// days); only the at most [`MAX_POINTS`] averaged points are kept.
pub fn hottest(
    days: impl Iterator<Item = (Day, DayMax)> + Clone,
    monthly: &[MonthMean],
) -> Result<String, PlotError> {
    let fail = |e: String| PlotError { plot: "hottest.svg", detail: e };
    let per_point = group(days.clone().count());
    let times = thin_groups(days.clone().map(|(d, m)| (f64::from(d.0), f64::from(m.minute))), per_point);
    let maxima = thin_groups(days.clone().map(|(d, m)| (f64::from(d.0), m.max.as_f64())), per_point);
    let (first, last) = day_span(days.map(|(d, _)| d));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let (top, bottom) = root.split_vertically(SIZE.1 * 58 / 100);
        let mut caption = format!("Hottest time of each day, {} to {}", first.dmy(), last.dmy());
        if per_point > 1 {
            caption += &format!(" (each point: the mean of {per_point} days)");
        }
        hottest_times(&top, &caption, (first, last), &times, monthly).map_err(fail)?;
        daily_maxima(&bottom, (first, last), &maxima).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

fn hottest_times(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    (first, last): (Day, Day),
    times: &[(f64, f64)],
    monthly: &[MonthMean],
) -> Result<(), String> {
    let mut chart = chart_on(area, Some(caption), 40, (x_days(first, last), 0.0..1440.0))?;
    let axes = Axes {
        x_labels: 10,
        y_labels: 13,
        x_text: &|x| Day(x.round() as i32).dmy().to_string(),
        y_text: &|y| hhmm(y.round().clamp(0.0, 1439.0) as u16),
        x_desc: "Date (dd/mm/yyyy)",
        y_desc: "Hottest time (HH:MM, local)",
    };
    draw_axes(&mut chart, &axes)?;
    chart
        .draw_series(times.iter().map(|&p| Circle::new(p, 3, HI.filled())))
        .map_err(|e| e.to_string())?
        .label("hottest time of the day")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, HI.filled()));
    let months = group(monthly.len());
    chart
        .draw_series(monthly.chunks(months).map(|ms| {
            let (from, to) =
                (month_span(ms[0].month, first, last).0, month_span(ms[ms.len() - 1].month, first, last).1);
            let y = mean_minute(ms);
            PathElement::new(vec![(from, y), (to, y)], BLACK.stroke_width(3))
        }))
        .map_err(|e| e.to_string())?
        .label(match months {
            1 => "monthly mean hottest time".to_string(),
            n => format!("mean hottest time of each {n} months"),
        })
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
    legend(&mut chart)
}

fn daily_maxima(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    (first, last): (Day, Day),
    maxima: &[(f64, f64)],
) -> Result<(), String> {
    let mut chart = chart_on(area, None, 40, (x_days(first, last), y_range(maxima.iter().map(|p| p.1))))?;
    let axes = Axes {
        x_labels: 10,
        y_labels: 10,
        x_text: &|x| Day(x.round() as i32).dmy().to_string(),
        y_text: &|y| format!("{y:.0}"),
        x_desc: "Date (dd/mm/yyyy)",
        y_desc: "Daily maximum (°C)",
    };
    draw_axes(&mut chart, &axes)?;
    chart
        .draw_series(
            LineSeries::new(maxima.iter().copied(), HI.stroke_width(2)).point_size(if maxima.len() > 400 {
                0
            } else {
                2
            }),
        )
        .map_err(|e| e.to_string())?
        .label("maximum Outside Temperature of the day")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], HI.stroke_width(2)));
    legend(&mut chart)
}

/// `window.svg`: every window-day reading's Hi and Low Temperature as two curves, the two bands
/// shaded, and the matching readings marked: a filled mark is a temperature inside its band, a
/// hollow one outside it.
pub fn window(hits: &[Hit], all: &[HiLow], params: &WindowParams) -> Result<String, PlotError> {
    let fail = |e: String| PlotError { plot: "window.svg", detail: e };
    let at = |h: &Hit| f64::from(h.reading.day.0 - params.first.0) + f64::from(h.reading.minute) / 1440.0;
    let span = f64::from(params.last.0 - params.first.0 + 1);
    let (hi_band, low_band) = (params.hi_band(), params.low_band());
    let at_all = |r: &HiLow| f64::from(r.day.0 - params.first.0) + f64::from(r.minute) / 1440.0;
    let hi_curve: Vec<(f64, f64)> = all.iter().map(|r| (at_all(r), r.hi.as_f64())).collect();
    let low_curve: Vec<(f64, f64)> = all.iter().map(|r| (at_all(r), r.low.as_f64())).collect();
    let temps = hi_curve.iter().chain(&low_curve).map(|p| p.1);
    let bands = [hi_band.0, hi_band.1, low_band.0, low_band.1].map(Tenths::as_f64);
    let y = legend_room(y_range(temps.chain(bands)), 0.3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let caption = format!(
            "Hi and Low Temperature of the window days, {} to {} ({} reading{} in the bands)",
            params.first.dmy(),
            params.last.dmy(),
            hits.len(),
            if hits.len() == 1 { "" } else { "s" }
        );
        let mut chart = chart_on(&root, Some(&caption), 50, (0.0..span, y)).map_err(fail)?;
        let first = params.first;
        let axes = Axes {
            x_labels: (span as usize + 1).min(15),
            y_labels: 10,
            x_text: &|x| window_label(first, *x),
            y_text: &|y| format!("{y:.1}"),
            x_desc: "Date and time (dd/mm/yyyy HH:MM)",
            y_desc: "Temperature (°C)",
        };
        draw_axes(&mut chart, &axes).map_err(fail)?;
        draw_band(&mut chart, span, hi_band, HI, "Hi Temperature band").map_err(fail)?;
        draw_band(&mut chart, span, low_band, LOW, "Low Temperature band").map_err(fail)?;
        for (curve, color, name) in [(&hi_curve, HI, "Hi Temperature"), (&low_curve, LOW, "Low Temperature")]
        {
            let style = color.mix(0.55).stroke_width(1);
            chart
                .draw_series(LineSeries::new(thin(curve), style))
                .map_err(|e| fail(e.to_string()))?
                .label(format!("{name}, every reading"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        let marks = |value: fn(&Hit) -> (Tenths, bool), color: RGBColor| {
            hits.iter().map(move |h| {
                let (t, matched) = value(h);
                let style = if matched { color.filled() } else { color.stroke_width(1) };
                Circle::new((at(h), t.as_f64()), 4, style)
            })
        };
        chart
            .draw_series(marks(|h| (h.reading.hi, h.by_hi), HI))
            .map_err(|e| fail(e.to_string()))?
            .label("Hi Temperature of a matching reading")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, HI.filled()));
        chart
            .draw_series(marks(|h| (h.reading.low, h.by_low), LOW))
            .map_err(|e| fail(e.to_string()))?
            .label("Low Temperature of a matching reading")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, LOW.filled()));
        legend(&mut chart).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart laid out as every plot here is (margins, room for the axis labels), with an optional
/// caption above it.
fn chart_on<'a, 'b: 'a>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: Option<&str>,
    x_label_area: u32,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
) -> Result<Chart<'a, 'b>, String> {
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = caption {
        builder.caption(caption, (FONT, 26));
    }
    builder
        .margin(16)
        .margin_right(48)
        .x_label_area_size(x_label_area)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())
}

/// How one plot labels its axes: tick counts, tick text, and the axis descriptions with units.
struct Axes<'f> {
    x_labels: usize,
    y_labels: usize,
    x_text: &'f dyn Fn(&f64) -> String,
    y_text: &'f dyn Fn(&f64) -> String,
    x_desc: &'f str,
    y_desc: &'f str,
}

/// Draws the grid and axes in the style all plots share.
fn draw_axes(chart: &mut Chart<'_, '_>, a: &Axes<'_>) -> Result<(), String> {
    chart
        .configure_mesh()
        .x_labels(a.x_labels)
        .y_labels(a.y_labels)
        .x_label_formatter(a.x_text)
        .y_label_formatter(a.y_text)
        .x_desc(a.x_desc)
        .y_desc(a.y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_band(
    chart: &mut Chart<'_, '_>,
    span: f64,
    (lo, hi): (Tenths, Tenths),
    color: RGBColor,
    name: &str,
) -> Result<(), String> {
    let label = format!("{name} {:.1} to {:.1} °C", lo.as_f64(), hi.as_f64());
    chart
        .draw_series([Rectangle::new([(0.0, lo.as_f64()), (span, hi.as_f64())], color.mix(0.18).filled())])
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.mix(0.3).filled()));
    Ok(())
}

/// `forecast.svg`: the window days' readings (month M) and the forecast made from them for the
/// same days and times of month M+1, on one axis of day of month and time.
pub fn forecast(samples: &[Sample], lines: &[(Day, u16, Option<f64>)]) -> Result<String, PlotError> {
    let fail = |e: String| PlotError { plot: "forecast.svg", detail: e };
    let first_of = |d: Day| d.month().first_day();
    let at = |d: Day, minute: u16| f64::from(d.0 - first_of(d).0) + f64::from(minute) / 1440.0;
    let read: Vec<(f64, f64)> = samples.iter().map(|&(d, m, t)| (at(d, m), t.as_f64())).collect();
    let made: Vec<(f64, f64)> = lines.iter().filter_map(|&(d, m, v)| Some((at(d, m), v?))).collect();
    let span = read.iter().chain(&made).map(|p| p.0.ceil()).fold(1.0, f64::max);
    let y = legend_room(y_range(read.iter().chain(&made).map(|p| p.1)), 0.15);
    let months = (samples.first().map(|s| s.0.month()), lines.first().map(|l| l.0.month()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = chart_on(&root, Some(&forecast_caption(months)), 50, (0.0..span, y)).map_err(fail)?;
        let axes = Axes {
            x_labels: (span as usize + 1).min(15),
            y_labels: 10,
            x_text: &|x| forecast_label(months, *x),
            y_text: &|y| format!("{y:.1}"),
            x_desc: "Day of month (dd/mm: reading → forecast)",
            y_desc: "Outside Temperature (°C)",
        };
        draw_axes(&mut chart, &axes).map_err(fail)?;
        let month_name = |m: Option<Month>| m.map_or_else(String::new, |m| format!(" ({})", month_name(m)));
        chart
            .draw_series(LineSeries::new(thin(&read), LOW.stroke_width(1)))
            .map_err(|e| fail(e.to_string()))?
            .label(format!("window readings{}", month_name(months.0)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LOW.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(thin(&made), HI.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label(format!("forecast{}", month_name(months.1)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], HI.stroke_width(2)));
        legend(&mut chart).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

fn forecast_caption(months: (Option<Month>, Option<Month>)) -> String {
    match months {
        (Some(m), Some(n)) => {
            format!("Forecast for {} from the window readings of {}", month_name(n), month_name(m))
        }
        _ => "Forecast: no window readings".to_string(),
    }
}

/// `01/06 → 01/07` for the x position `x` (days from the first of the month).
fn forecast_label(months: (Option<Month>, Option<Month>), x: f64) -> String {
    let day = x.floor() as i32;
    let dm = |m: Option<Month>| {
        m.map(|m| {
            let (_, mo, d) = m.first_day().plus(day).ymd();
            format!("{d:02}/{mo:02}")
        })
    };
    match (dm(months.0), dm(months.1)) {
        (Some(a), Some(b)) => format!("{a} → {b}"),
        (a, b) => a.or(b).unwrap_or_default(),
    }
}

/// `dd/mm/yyyy HH:MM` at midnight, the time only within a day.
fn window_label(first: Day, x: f64) -> String {
    let minute = ((x.fract() * 1440.0).round() as u16).min(1439);
    let day = first.plus(x.floor() as i32);
    if minute == 0 {
        day.dmy().to_string()
    } else {
        format!("{} {}", day.dmy(), hhmm(minute))
    }
}

/// `June 2006`.
fn month_name(m: Month) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format!("{} {}", NAMES[(m.month as usize + 11) % 12], m.year)
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// The x range of a run of days, half a day of margin each side.
fn x_days(first: Day, last: Day) -> std::ops::Range<f64> {
    f64::from(first.0) - 0.5..f64::from(last.0) + 0.5
}

/// The part of `month` inside `first..=last`, as an x range of [`x_days`].
fn month_span(month: Month, first: Day, last: Day) -> (f64, f64) {
    let from = month.first_day().max(first);
    let to = month.next().first_day().plus(-1).min(last);
    (f64::from(from.0) - 0.4, f64::from(to.0) + 0.4)
}

/// The mean hottest time, in minutes, of the days of consecutive months (each month's mean
/// weighted by its days).
fn mean_minute(months: &[MonthMean]) -> f64 {
    let days: f64 = months.iter().map(|m| f64::from(m.days)).sum();
    let seconds: f64 = months.iter().map(|m| f64::from(m.mean_second) * f64::from(m.days)).sum();
    seconds / days.max(1.0) / 60.0
}

fn day_span(mut days: impl Iterator<Item = Day>) -> (Day, Day) {
    let first = days.next().unwrap_or(Day(0));
    let last = days.last().unwrap_or(first);
    (first, last)
}

/// A y range around `values` with a margin, or 0..1 without values.
fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.08).max(0.5);
    (lo - pad).floor()..(hi + pad).ceil()
}

/// `range` raised by `share` of its height, so the legend (upper right) sits above the data.
fn legend_room(range: std::ops::Range<f64>, share: f64) -> std::ops::Range<f64> {
    let top = range.end + (range.end - range.start) * share;
    range.start..top.ceil()
}

/// How many consecutive points [`thin`] averages into one.
fn group(len: usize) -> usize {
    len.div_ceil(MAX_POINTS).max(1)
}

/// At most [`MAX_POINTS`] points: consecutive groups averaged, so a long series keeps its shape
/// without one SVG element per reading.
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    thin_groups(points.iter().copied(), group(points.len()))
}

/// The points averaged in consecutive groups of `per_point` (the last group may be shorter), read
/// one at a time so that a series need not be held whole to be thinned. A group of one is the
/// point itself: the sums start at -0.0, which adds nothing to any value.
fn thin_groups(points: impl Iterator<Item = (f64, f64)>, per_point: usize) -> Vec<(f64, f64)> {
    let mut thinned = Vec::with_capacity(MAX_POINTS.min(points.size_hint().0) + 1);
    let (mut x, mut y, mut n) = (-0.0, -0.0, 0usize);
    for point in points {
        (x, y, n) = (x + point.0, y + point.1, n + 1);
        if n == per_point {
            thinned.push((x / n as f64, y / n as f64));
            (x, y, n) = (-0.0, -0.0, 0);
        }
    }
    if n > 0 {
        thinned.push((x / n as f64, y / n as f64));
    }
    thinned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Reading;

    fn june(d: u32) -> Day {
        Day::from_ymd(2006, 6, d).unwrap()
    }

    fn days(n: u32) -> Vec<(Day, DayMax)> {
        (1..=n).map(|d| (june(d), DayMax { max: Tenths(200 + d as i32), minute: 840 + d as u16 })).collect()
    }

    fn circles(svg: &str) -> usize {
        svg.matches("<circle").count()
    }

    #[test]
    fn hottest_has_axis_labels_dates_as_people_write_them_and_one_point_per_day() {
        let month = Month { year: 2006, month: 6 };
        let svg =
            hottest(days(30).into_iter(), &[MonthMean { month, mean_second: 50_000, days: 30 }]).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        for text in ["Hottest time (HH:MM, local)", "Daily maximum (°C)", "Date (dd/mm/yyyy)", "01/06/2006"]
        {
            assert!(svg.contains(text), "{text} missing");
        }
        // 30 days, plus one legend mark each for the time points and the maxima line's points.
        assert_eq!(circles(&svg), 30 + 1 + 30);
        assert!(svg.contains("width=\"1200\""));
    }

    /// Thinning one point at a time gives what averaging the slices of a held series gives (the
    /// way it was done before), for series shorter than, equal to and longer than the bound.
    #[test]
    fn thinning_as_points_arrive_equals_averaging_held_slices() {
        for len in [0, 1, 2, MAX_POINTS - 1, MAX_POINTS, MAX_POINTS + 1, 2 * MAX_POINTS + 7, 36_500] {
            let points: Vec<(f64, f64)> =
                (0..len).map(|i| (i as f64 * 1.5 - 7.0, ((i * 37) % 101) as f64 / 10.0)).collect();
            let want: Vec<(f64, f64)> = if len <= MAX_POINTS {
                points.clone()
            } else {
                points
                    .chunks(len.div_ceil(MAX_POINTS))
                    .map(|c| {
                        let n = c.len() as f64;
                        (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
                    })
                    .collect()
            };
            assert_eq!(thin(&points), want, "{len} points");
            assert!(want.len() <= MAX_POINTS);
        }
    }

    #[test]
    fn a_century_of_days_is_thinned_to_a_bounded_picture() {
        let many: Vec<(Day, DayMax)> =
            (0..36_500).map(|i| (june(1).plus(i), DayMax { max: Tenths(i % 300), minute: 800 })).collect();
        let svg = hottest(many.into_iter(), &[]).unwrap();
        assert!(circles(&svg) <= 2 * MAX_POINTS + 2, "{} circles", circles(&svg));
        assert!(svg.len() < 1 << 20, "{} bytes", svg.len());
        assert!(svg.contains("(each point: the mean of 25 days)"), "the thinning is said");
    }

    /// 3,000 months (as a 1 GiB export has 3,380): their mean lines are grouped two by two, each
    /// group at the mean over its days, and the legend says so.
    #[test]
    fn thousands_of_months_are_drawn_as_grouped_mean_lines() {
        let months: Vec<MonthMean> = (0..3000)
            .map(|i| MonthMean {
                month: Month { year: 1800 + i / 12, month: (i % 12 + 1) as u32 },
                mean_second: 50_000,
                days: 28,
            })
            .collect();
        let days: Vec<(Day, DayMax)> = [months[0].month.first_day(), months[2999].month.first_day()]
            .map(|d| (d, DayMax { max: Tenths(1), minute: 1 }))
            .to_vec();
        let lines = |months: &[MonthMean]| {
            hottest(days.iter().copied(), months).unwrap().matches("<polyline").count()
        };
        // 1,500 mean lines more than the same plot without months (axes, ticks, legend marks).
        assert_eq!(lines(&months) - lines(&[]), 1500);
        let svg = hottest(days.iter().copied(), &months).unwrap();
        assert!(svg.contains("mean hottest time of each 2 months"));
        let weighted = [
            MonthMean { month: Month { year: 2006, month: 6 }, mean_second: 600, days: 30 },
            MonthMean { month: Month { year: 2006, month: 7 }, mean_second: 1200, days: 10 },
        ];
        assert_eq!(mean_minute(&weighted), 12.5); // (600 * 30 + 1200 * 10) / 40 s = 750 s
    }

    fn hit(day: u32, minute: u16, hi: i32, low: i32, by_hi: bool, by_low: bool) -> Hit {
        let reading = Reading {
            line: 1,
            day: june(day),
            minute,
            outside: Tenths(hi),
            hi: Tenths(hi),
            low: Tenths(low),
        };
        Hit { reading, by_hi, by_low }
    }

    #[test]
    fn window_shades_both_bands_and_marks_each_reading() {
        let p = WindowParams::new(
            Month { year: 2006, month: 6 },
            9,
            Tenths(223),
            Tenths(10),
            Tenths(103),
            Tenths(2),
        );
        let hits = [hit(1, 600, 220, 150, true, false), hit(2, 60, 300, 103, false, true)];
        let all: Vec<HiLow> = (0..20)
            .map(|i| HiLow {
                day: june(1 + i / 10),
                minute: (i % 10) as u16 * 60,
                line: 0,
                hi: Tenths(250),
                low: Tenths(90),
            })
            .collect();
        let svg = window(&hits, &all, &p).unwrap();
        assert!(
            svg.contains("Hi Temperature, every reading") && svg.contains("Low Temperature, every reading")
        );
        assert!(svg.contains("Hi Temperature band 21.3 to 23.3 °C"), "{svg}");
        assert!(svg.contains("Low Temperature band 10.1 to 10.5 °C"));
        assert!(svg.contains("Temperature (°C)") && svg.contains("01/06/2006"));
        assert_eq!(circles(&svg), 2 * 2 + 2, "a Hi and a Low mark per reading, plus two legend marks");
        assert!(svg.contains("opacity=\"0.18\""), "the bands are shaded");
    }

    #[test]
    fn forecast_draws_both_curves_with_day_labels() {
        let samples: Vec<Sample> =
            (0..48).map(|i| (june(1 + i / 24), (i % 24) as u16 * 60, Tenths(150 + i as i32))).collect();
        let july = |d: Day| Day::from_ymd(2006, 7, d.ymd().2).unwrap();
        let lines: Vec<(Day, u16, Option<f64>)> =
            samples.iter().map(|&(d, m, t)| (july(d), m, Some(t.as_f64() + 5.0))).collect();
        let svg = forecast(&samples, &lines).unwrap();
        for text in [
            "Outside Temperature (°C)",
            "01/06 → 01/07",
            "forecast (July 2006)",
            "window readings (June 2006)",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let long =
            svg.split("<polyline").skip(1).filter(|p| p[..p.find(">").unwrap()].matches(',').count() >= 48);
        assert_eq!(long.count(), 2, "a readings curve and a forecast curve of 48 points each");
    }

    #[test]
    fn empty_inputs_still_make_a_picture() {
        assert!(hottest(std::iter::empty(), &[]).unwrap().contains("</svg>"));
        assert!(forecast(&[], &[]).unwrap().contains("Forecast: no window readings"));
    }
}
