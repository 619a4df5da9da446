//! Progress bars for the stages (drawn only when stderr is a terminal).

use divvi::demo::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

pub fn bar(stage: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} packets ({per_sec}, {elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(stage.to_string());
    bar
}

impl Progress for Bars {
    fn begin(&self, stage: &str, total: u64) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(bar(stage, total));
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
