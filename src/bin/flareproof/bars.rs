//! The progress bars: one indicatif bar per running suite, on stderr,
//! drawn from the library's [`Progress`] events.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use flareproof::model::{CheckResult, Status};
use flareproof::progress::{Progress, Silent};

/// Bars on stderr, or nothing when they should not be drawn.
pub fn progress(quiet: bool) -> Arc<dyn Progress> {
    match Bars::stderr(quiet) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(Silent),
    }
}

/// One progress bar per running suite, on stderr.
pub struct Bars {
    multi: MultiProgress,
    style: ProgressStyle,
    bars: Mutex<BTreeMap<String, (ProgressBar, usize)>>,
}

impl Bars {
    /// Bars on stderr, or `None` when they should not be drawn: `quiet`, or
    /// stderr is not a terminal (CI logs, pipes). With `NO_COLOR` set (to
    /// anything but empty) they are drawn without colour.
    pub fn stderr(quiet: bool) -> Option<Bars> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Some(Bars::new(ProgressDrawTarget::stderr(), color))
    }

    fn new(target: ProgressDrawTarget, color: bool) -> Bars {
        let template = if color {
            "{spinner:.cyan} {prefix:>9.bold} [{bar:30.cyan/blue}] {pos}/{len} {elapsed:>4} {msg}"
        } else {
            "{spinner} {prefix:>9} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        Bars {
            multi: MultiProgress::with_draw_target(target),
            style,
            bars: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Progress for Bars {
    fn suite_started(&self, suite: &str, checks: usize) {
        let bar = self.multi.add(ProgressBar::new(checks as u64));
        bar.set_style(self.style.clone());
        bar.set_prefix(suite.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((old, _)) = bars.insert(suite.to_owned(), (bar, 0)) {
            old.finish_and_clear();
        }
    }

    fn check_finished(&self, suite: &str, result: &CheckResult) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bar, failed)) = bars.get_mut(suite) {
            if matches!(result.status, Status::Fail | Status::Error) {
                *failed += 1;
            }
            bar.inc(1);
            bar.set_message(format!("{} {}", result.status, result.id));
        }
    }

    fn suite_finished(&self, suite: &str) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bar, failed)) = bars.remove(suite) {
            let summary = match failed {
                0 => "done".to_owned(),
                n => format!("done, {n} failed or errored"),
            };
            bar.finish_with_message(summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flareproof::model::CheckId;

    #[test]
    fn bars_follow_suites_without_a_terminal() {
        let bars = Bars::new(ProgressDrawTarget::hidden(), false);
        bars.suite_started("cookie", 2);
        let result = CheckResult {
            id: CheckId::new("cookie.secure").unwrap(),
            title: String::new(),
            status: Status::Fail,
            summary: String::new(),
            severity: None,
            level: None,
            help: String::new(),
            requirements: vec![],
            evidence: vec![],
            duration_ms: 0,
            version: None,
            target: None,
        };
        bars.check_finished("cookie", &result);
        bars.check_finished("unknown", &result);
        {
            let map = bars.bars.lock().unwrap();
            let (bar, failed) = &map["cookie"];
            assert_eq!((bar.position(), *failed), (1, 1));
        }
        bars.suite_finished("cookie");
        assert!(bars.bars.lock().unwrap().is_empty());
    }
}
