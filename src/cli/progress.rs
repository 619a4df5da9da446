//! Progress bars for the stages (drawn only when stderr is a terminal).

use divvi::demo::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

/// A count with no known total (a stream of reports, a run's packets): no "/0".
pub fn counter(stage: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    let template = format!("{{prefix:>12}} {{spinner}} {{pos}} {unit} ({{per_sec}}, {{elapsed}})");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(stage.to_string());
    bar
}

/// Batches done of `total`, with the packets seen so far beside (their count is not
/// known before each batch is read).
pub fn batches(stage: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} batches, {msg} packets ({elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(stage.to_string());
    bar.set_message("0");
    bar
}

/// A bar of `total` units (the demo knows how many packets it made; ingest counts the
/// reports of its file).
pub fn bar(stage: &str, total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template =
        format!("{{prefix:>12}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{elapsed}})");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(stage.to_string());
    bar
}

impl Progress for Bars {
    fn begin(&self, stage: &str, total: u64) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(bar(stage, total, "packets"));
        }
    }
    fn tick(&self, n: u64) {
        if let Ok(c) = self.current.lock() {
            if let Some(b) = c.as_ref() {
                b.inc(n);
            }
        }
    }
    fn end(&self) {
        if let Ok(mut c) = self.current.lock() {
            if let Some(b) = c.take() {
                b.finish();
            }
        }
    }
}
