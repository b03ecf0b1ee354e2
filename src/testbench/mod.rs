//! The harness's own test bench: the reference auth Worker in `fixtures/`
//! ([`fixture`]) and `demo`, which runs everything flareproof does against
//! it ([`demo`]). The verification library (`checks`, `probe`, `compare`,
//! `cloudflare`, `rebuild`, `report`) does not depend on this module; the
//! binary's `demo` command, the integration tests and the benchmarks do.
//!
//! Nothing here prints. What the bench has to say while it works (an npm
//! install starting, a line from the launcher) is an [`Event`] handed to the
//! caller's sink, which decides whether and where to show it.

pub mod demo;
pub mod fixture;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Something the test bench did that a person watching may want to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `npm ci` starts in `dir` (the fixture's dependencies were missing or
    /// stale).
    Installing { dir: PathBuf },
    /// `npm ci` finished.
    Installed { elapsed: Duration },
    /// A line the reference Worker's launcher wrote to its stderr.
    Launcher(String),
}

impl Event {
    /// A launcher line: chatter, shown only when asked for (the binary and
    /// the tests show them when `FLAREPROOF_FIXTURE_LOG` is set).
    pub fn is_chatter(&self) -> bool {
        matches!(self, Event::Launcher(_))
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Installing { dir } => write!(
                f,
                "installing the reference Worker's npm dependencies (npm ci in {})…",
                dir.display()
            ),
            Event::Installed { elapsed } => {
                write!(f, "installed in {:.1} s", elapsed.as_secs_f64())
            }
            Event::Launcher(line) => write!(f, "[fixture] {line}"),
        }
    }
}

/// Where [`Event`]s go: a function the caller supplies. Launcher lines
/// arrive on a thread of their own, hence `Send + Sync`.
#[derive(Clone)]
pub struct Events(Arc<dyn Fn(&Event) + Send + Sync>);

impl Events {
    pub fn new(sink: impl Fn(&Event) + Send + Sync + 'static) -> Events {
        Events(Arc::new(sink))
    }

    /// Drops every event.
    pub fn ignore() -> Events {
        Events::new(|_| {})
    }

    pub fn emit(&self, event: &Event) {
        (self.0)(event)
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::ignore()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events(..)")
    }
}

/// The peak resident set of this process, in bytes (`VmHWM` of
/// `/proc/self/status`), for the benchmarks that measure memory; `None`
/// where the kernel does not say.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn events_reach_the_sink_and_read_as_they_did_on_stderr() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let events = {
            let seen = seen.clone();
            Events::new(move |e| seen.lock().unwrap().push(e.to_string()))
        };
        events.emit(&Event::Installing {
            dir: PathBuf::from("fixtures"),
        });
        events.emit(&Event::Installed {
            elapsed: Duration::from_millis(1300),
        });
        events.emit(&Event::Launcher("launch: ready".to_owned()));
        Events::ignore().emit(&Event::Launcher("dropped".to_owned()));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "installing the reference Worker's npm dependencies (npm ci in fixtures)…",
                "installed in 1.3 s",
                "[fixture] launch: ready",
            ]
        );
        assert!(Event::Launcher(String::new()).is_chatter());
    }
}
