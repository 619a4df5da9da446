//! `divvi plot` (portal): pictures of an aggregation's series, as SVG and PNG files and
//! an HTML page that opens offline.

use super::outcome::config;
use super::output::{print_one, Output};
use anyhow::{Context, Result};
use clap::Args;
use divvi::config::Portal;
use divvi::stages::series::read_series;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The portal's config, an aggregation, and where the pictures go.
#[derive(Args)]
pub(super) struct PlotArgs {
    /// The portal's config (portal.toml, as keygen writes it).
    #[arg(long)]
    config: PathBuf,
    /// The aggregation whose series to draw (`collect` adds every run it collects).
    #[arg(long, allow_hyphen_values = true)]
    aggregation: String,
    /// The folder the pictures are written to (made if missing): AGGREGATION.html, and
    /// AGGREGATION-over-time and AGGREGATION-latest as .svg and .png.
    #[arg(long)]
    out: PathBuf,
    /// A TrueType font for the charts' text (default: DejaVu Sans or Liberation Sans
    /// where the system keeps them).
    #[arg(long)]
    font: Option<PathBuf>,
    /// How the written files are listed.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(serde::Serialize)]
struct Written {
    aggregation: String,
    runs: usize,
    html: String,
    over_time_svg: String,
    over_time_png: String,
    latest_svg: String,
    latest_png: String,
}

pub fn plot_command(a: PlotArgs) -> Result<ExitCode> {
    let portal = config(Portal::load(&a.config))?;
    let rows = read_series(portal.results.as_ref(), &a.aggregation)?;
    let charts = divvi::plot::charts(&a.aggregation, &rows, a.font.as_deref())?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // A task id in base64url may hold '-' and '_' only: safe as a file name.
    let file = |suffix: &str| a.out.join(format!("{}{suffix}", a.aggregation));
    let written = Written {
        aggregation: a.aggregation.clone(),
        runs: rows.len(),
        html: write(&file(".html"), charts.html.as_bytes())?,
        over_time_svg: write(&file("-over-time.svg"), charts.over_time_svg.as_bytes())?,
        over_time_png: write(&file("-over-time.png"), &charts.over_time_png)?,
        latest_svg: write(&file("-latest.svg"), charts.latest_svg.as_bytes())?,
        latest_png: write(&file("-latest.png"), &charts.latest_png)?,
    };
    print_one(a.output, &written)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` whole or not at all (a reader never sees half a picture).
fn write(path: &Path, bytes: &[u8]) -> Result<String> {
    divvi::files::write_atomically(path, bytes)?;
    Ok(path.display().to_string())
}
