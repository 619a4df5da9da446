//! Pictures of an aggregation's results: its series over time (a line per value, at
//! most [`MAX_LINES`] of them, the largest over the period) and its latest window (a bar
//! per value), drawn with plotters as SVG and PNG, and an HTML page holding the SVGs
//! inline with the numbers as a table, which opens offline (no script, no fetched
//! resource).
//!
//! plotters lays text out (and the PNG draws it) with a TrueType font read at run time
//! ([`use_font`]): none is built into divvi. The SVG's text is the browser's to render.

use crate::stages::series::SeriesRow;
use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Lines drawn in the over-time chart at most; a histogram's other buckets are in the
/// page's table.
pub const MAX_LINES: usize = 8;
const SIZE: (u32, u32) = (960, 480);

/// Where a TrueType sans-serif font usually is (Debian's and Ubuntu's fonts-dejavu-core
/// first), when `--font` names none.
const FONT_PLACES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// The font registered for this process, once.
static FONT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Registers the font charts are drawn with: `path`, or the first of the usual places.
/// Once per process (plotters keeps one); later calls return the first font's path.
pub fn use_font(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(done) = FONT.get() {
        return Ok(done.clone());
    }
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => FONT_PLACES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "no TrueType font found to draw the charts' text with (looked in {}); install one (Debian: fonts-dejavu-core) or name one with --font",
                    FONT_PLACES.join(", ")
                )
            })?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading font {}", path.display()))?;
    // plotters keeps the font for the process's life: it asks for 'static bytes.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("font {}: not a TrueType or OpenType font", path.display()))?;
    Ok(FONT.get_or_init(|| path).clone())
}

/// The pictures of one aggregation.
pub struct Charts {
    /// Values over time: one line per value drawn, one point per collected run.
    pub over_time_svg: String,
    pub over_time_png: Vec<u8>,
    /// The latest run's values as bars.
    pub latest_svg: String,
    pub latest_png: Vec<u8>,
    /// Both charts inline (SVG), with the series as a table.
    pub html: String,
}

/// The charts of `rows` (an aggregation's series, oldest first), with the font of
/// [`use_font`] (`font`, or the first of the usual places).
pub fn charts(aggregation: &str, rows: &[SeriesRow], font: Option<&Path>) -> Result<Charts> {
    let Some(latest) = rows.last() else {
        bail!("aggregation {aggregation} has no results yet: collect a run first");
    };
    use_font(font)?;
    let over_time_svg = svg(|root| over_time(root, aggregation, rows))?;
    let latest_svg = svg(|root| latest_bars(root, aggregation, latest))?;
    let html = page(aggregation, rows, &over_time_svg, &latest_svg);
    Ok(Charts {
        over_time_png: png(|root| over_time(root, aggregation, rows))?,
        latest_png: png(|root| latest_bars(root, aggregation, latest))?,
        over_time_svg,
        latest_svg,
        html,
    })
}

type Area<DB> = DrawingArea<DB, Shift>;

/// A chart drawn as SVG text.
fn svg(draw: impl FnOnce(&Area<SVGBackend>) -> Result<()>) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&root)?;
        root.present().map_err(drawing_error("the chart"))?;
    }
    Ok(text)
}

/// A chart drawn into RGB pixels and encoded as PNG.
fn png(draw: impl FnOnce(&Area<BitMapBackend>) -> Result<()>) -> Result<Vec<u8>> {
    let (width, height) = SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        draw(&root)?;
        root.present().map_err(drawing_error("the chart"))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding the PNG")?;
    writer
        .write_image_data(&pixels)
        .context("encoding the PNG")?;
    writer.finish().context("encoding the PNG")?;
    Ok(out)
}

fn number(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// The x-axis name of a run: its window's first minute, and the late run's number.
fn run_name(row: &SeriesRow) -> String {
    let start = row.start.get(..16).unwrap_or(&row.start).replace('T', " ");
    match row.run {
        0 => start,
        k => format!("{start} late{k}"),
    }
}

/// The labels drawn: those with the largest total over the period, in label order.
fn drawn_labels(rows: &[SeriesRow]) -> Vec<(usize, String)> {
    let labels = &rows[rows.len() - 1].labels;
    let mut totals: Vec<(usize, f64)> = (0..labels.len())
        .map(|i| {
            let total = rows
                .iter()
                .filter_map(|r| r.values.get(i))
                .map(number)
                .sum();
            (i, total)
        })
        .collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut drawn: Vec<usize> = totals.iter().take(MAX_LINES).map(|(i, _)| *i).collect();
    drawn.sort_unstable();
    drawn.into_iter().map(|i| (i, labels[i].clone())).collect()
}

/// The y range of values, with 0 in it and a margin above (noisy counts may be negative).
fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    let span = (high - low).max(1.0);
    (low - span * 0.05).min(0.0)..high + span * 0.1
}

fn drawing_error<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("drawing {what}: {e:?}")
}

fn over_time<DB: DrawingBackend>(
    root: &Area<DB>,
    aggregation: &str,
    rows: &[SeriesRow],
) -> Result<()> {
    let lines = drawn_labels(rows);
    let y = y_range(
        rows.iter()
            .flat_map(|r| lines.iter().filter_map(|(i, _)| r.values.get(*i)))
            .map(number),
    );
    let n = rows.len();
    let caption = match lines.len() < rows[n - 1].labels.len() {
        true => format!(
            "{aggregation}: the {} largest of {} values per run",
            lines.len(),
            rows[n - 1].labels.len()
        ),
        false => format!("{aggregation}: values per run"),
    };
    {
        root.fill(&WHITE).map_err(drawing_error("the background"))?;
        // One run alone still gets an x range to stand in.
        let x_end = n.max(2) - 1;
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(16)
            // Room for the last run's name, centred on the right edge.
            .margin_right(64)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0..x_end, y)
            .map_err(drawing_error("the axes"))?;
        let names: Vec<String> = rows.iter().map(run_name).collect();
        chart
            .configure_mesh()
            .x_labels(n.min(8))
            .x_label_formatter(&|x| names.get(*x).cloned().unwrap_or_default())
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("count")
            .draw()
            .map_err(drawing_error("the grid"))?;
        for (k, (i, label)) in lines.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let points = rows
                .iter()
                .enumerate()
                .map(|(x, r)| (x, r.values.get(*i).map(number).unwrap_or(0.0)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(drawing_error("a line"))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(drawing_error("the legend"))?;
    }
    Ok(())
}

fn latest_bars<DB: DrawingBackend>(
    root: &Area<DB>,
    aggregation: &str,
    row: &SeriesRow,
) -> Result<()> {
    let values: Vec<f64> = row.values.iter().map(number).collect();
    let y = y_range(values.iter().copied());
    {
        root.fill(&WHITE).map_err(drawing_error("the background"))?;
        let caption = format!("{aggregation}: {} ({} reports)", run_name(row), row.reports);
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            // Segments of 0..=n-1: one bar slot per value.
            .build_cartesian_2d((0..values.len().max(1) - 1).into_segmented(), y)
            .map_err(drawing_error("the axes"))?;
        let labels = &row.labels;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(values.len().clamp(1, 16))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("count")
            .draw()
            .map_err(drawing_error("the grid"))?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(Palette99::pick(0).filled())
                    .margin(1)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )
            .map_err(drawing_error("the bars"))?;
    }
    Ok(())
}

/// The number of points of each data line of an over-time chart drawn here (its
/// `<polyline>`s of more than the two points of a legend's sample): what a reader, or a
/// test, counts to know what was drawn.
pub fn line_points(svg: &str) -> Vec<usize> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|tag| {
            let points = tag.split("points=\"").nth(1)?.split('"').next()?;
            Some(points.split_whitespace().count())
        })
        .filter(|&n| n > 2)
        .collect()
}

/// Text made safe to stand in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(aggregation: &str, rows: &[SeriesRow], over_time: &str, latest: &str) -> String {
    let title = escape(&format!("divvi results: {aggregation}"));
    let labels = &rows[rows.len() - 1].labels;
    let mut table = String::from("<table>\n<thead><tr><th>run</th><th>reports</th>");
    for label in labels {
        table.push_str(&format!("<th>{}</th>", escape(label)));
    }
    table.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td>",
            escape(&run_name(row)),
            row.reports
        ));
        for value in &row.values {
            table.push_str(&format!("<td>{}</td>", escape(&value.to_string())));
        }
        table.push_str("</tr>\n");
    }
    table.push_str("</tbody>\n</table>");
    let noise = match rows.iter().rev().find_map(|r| r.noise.as_deref()) {
        Some(noise) => format!(
            "<p>Differentially private: {} The values are noisy and may be below zero.</p>\n",
            escape(noise)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 2em; }}\n\
         table {{ border-collapse: collapse; font-size: 0.9em; }}\n\
         td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}\n\
         figure {{ margin: 1em 0; }}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>{} runs collected, the latest {}.</p>\n{noise}\
         <figure id=\"over-time\">\n{over_time}\n<figcaption>Values per run</figcaption>\n</figure>\n\
         <figure id=\"latest\">\n{latest}\n<figcaption>The latest run</figcaption>\n</figure>\n\
         <h2>The series</h2>\n{table}\n</body>\n</html>\n",
        rows.len(),
        escape(&run_name(&rows[rows.len() - 1])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(window: usize, values: &[i64]) -> SeriesRow {
        SeriesRow {
            task: "t".into(),
            aggregation: "a".into(),
            window: format!("w{window}"),
            start: format!("2026-12-0{}T00:00:00+00:00", window + 1),
            end: String::new(),
            run: 0,
            vdaf: "histogram".into(),
            reports: 10,
            invalid: 0,
            labels: (0..values.len()).map(|i| format!("b<{i}>")).collect(),
            values: values.iter().map(|&v| v.into()).collect(),
            noise: None,
        }
    }

    #[test]
    fn a_line_per_value_with_a_point_per_run_and_a_bar_per_value() {
        let rows: Vec<SeriesRow> = (0..5).map(|w| row(w, &[w as i64, 3, -2])).collect();
        let charts = charts("a", &rows, None).unwrap();
        // Three lines of five points.
        let lines = line_points(&charts.over_time_svg);
        assert_eq!(lines, vec![5, 5, 5], "{}", charts.over_time_svg);
        // The latest window's three bars, one of them below zero (noise).
        let bars = charts.latest_svg.matches("<rect").count();
        assert!(bars >= 3, "{}", charts.latest_svg);
        // Labels are escaped in the page, and the page stands alone.
        assert!(charts.html.contains("<th>b&lt;0&gt;</th>"));
        assert_eq!(charts.html.matches("<svg").count(), 2);
        assert!(!charts.html.contains("<script") && !charts.html.contains("src="));
    }

    /// A PNG's size and how many of its pixels are each of `colors`.
    fn png_pixels(bytes: &[u8], colors: &[RGBColor]) -> ((u32, u32), Vec<usize>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let pixels = &buf[..info.buffer_size()];
        let counts = colors
            .iter()
            .map(|c| pixels.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count())
            .collect();
        ((info.width, info.height), counts)
    }

    #[test]
    fn the_pngs_show_each_line_in_its_color_and_the_bars() {
        let palette: Vec<RGBColor> = (0..MAX_LINES)
            .map(|k| Palette99::pick(k).to_rgba().rgb())
            .map(|(r, g, b)| RGBColor(r, g, b))
            .collect();
        let rows: Vec<SeriesRow> = (0..5).map(|w| row(w, &[w as i64, 3, -2])).collect();
        let charts = charts("a", &rows, None).unwrap();
        let (size, counts) = png_pixels(&charts.over_time_png, &palette);
        assert_eq!(size, SIZE);
        // Three lines drawn, each in its own color, and no fourth color of the palette.
        let drawn: Vec<bool> = counts.iter().map(|&n| n > 50).collect();
        assert_eq!(drawn[..4], [true, true, true, false], "{counts:?}");
        // The bars: the first palette color fills three bars' area.
        let (size, counts) = png_pixels(&charts.latest_png, &palette[..1]);
        assert_eq!(size, SIZE);
        assert!(counts[0] > 3 * 1000, "{counts:?}");
        // The text is drawn too: its anti-aliased edges are the only mid greys (the axes
        // are black, the grid light grey).
        let greys: Vec<RGBColor> = (40..180).map(|v| RGBColor(v, v, v)).collect();
        let (_, counts) = png_pixels(&charts.latest_png, &greys);
        let edges: usize = counts.iter().sum();
        assert!(edges > 500, "{edges}");
    }

    #[test]
    fn a_file_that_is_not_a_font_is_refused_by_name() {
        // Only while no font is registered in this process: the other tests may have one.
        if FONT.get().is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-font.ttf");
        std::fs::write(&path, b"hello").unwrap();
        let e = use_font(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("not-a-font.ttf") && e.contains("not a TrueType"),
            "{e}"
        );
    }

    #[test]
    fn at_most_max_lines_the_largest() {
        let values: Vec<i64> = (0..20).collect();
        let rows: Vec<SeriesRow> = (0..3).map(|w| row(w, &values)).collect();
        let svg = charts("a", &rows, None).unwrap().over_time_svg;
        assert_eq!(line_points(&svg).len(), MAX_LINES);
        assert!(svg.contains("the 8 largest of 20 values"), "{svg}");
        assert!(svg.contains("b&lt;19&gt;") && !svg.contains("b&lt;11&gt;"));
    }

    #[test]
    fn no_rows_is_an_error_naming_the_aggregation() {
        let err = charts("flu", &[], None).err().unwrap().to_string();
        assert!(
            err.contains("flu") && err.contains("no results yet"),
            "{err}"
        );
    }
}
