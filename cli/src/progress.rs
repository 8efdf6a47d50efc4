//! Progress indicators of long-running commands, drawn on stderr only when
//! it is a terminal (and hidden otherwise, so logs and pipes stay clean).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress may be drawn: stderr is a terminal.
fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar towards `total` items of `unit` (e.g. "records").
pub(crate) fn bar(total: u64, unit: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template =
        format!("{{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner with a running count, shown only when `also` holds (e.g.
/// stdout is not the same terminal, where it would garble the output).
pub(crate) fn counter(unit: &str, also: bool) -> ProgressBar {
    if !enabled() || !also {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    let template = format!("{{spinner}} {{human_pos}} {unit} ({{per_sec}}) [{{elapsed}}] {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}
