//! The reference auth Worker (`fixtures/`): installs its npm dependencies
//! once, starts it under Miniflare through the Node launcher, and stops the
//! whole process group when dropped, so workerd is never orphaned. What it
//! has to say on the way goes to the caller's [`Events`], never to stderr.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Event, Events};
use crate::model::Secret;

/// How long the launcher may take from spawn to its JSON line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the group is killed.
const STOP_GRACE: Duration = Duration::from_secs(8);
/// Lines of the launcher's stderr (or npm's output) kept for errors.
const STDERR_TAIL: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("run `{program}` (is Node.js 20 with npm installed and on PATH?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// `output`: the last lines npm printed ([`FixtureError::output`]).
    #[error("install the fixture's npm dependencies: `npm ci` in `{dir}` exited with {status}")]
    Install {
        dir: String,
        status: String,
        output: String,
    },
    #[error("lock `{path}` while installing the fixture's dependencies")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} in `{dir}`")]
    Io {
        what: String,
        dir: String,
        #[source]
        source: std::io::Error,
    },
    /// `stderr`: the launcher's last lines ([`FixtureError::output`]).
    #[error("start the reference Worker: {problem}")]
    Start { problem: String, stderr: String },
}

impl FixtureError {
    /// What the failed process printed last (npm's output, the launcher's
    /// stderr) with a label for it: evidence to show below the error, not
    /// part of its one-line message.
    pub fn output(&self) -> Option<(&'static str, &str)> {
        let (label, text) = match self {
            FixtureError::Install { output, .. } => ("npm output (last lines)", output),
            FixtureError::Start { stderr, .. } => ("launcher stderr (last lines)", stderr),
            _ => return None,
        };
        (!text.trim().is_empty()).then_some((label, text.as_str()))
    }
}

/// Why the launcher gave up, in its own words: its last `error: …` line.
fn launcher_reason(stderr: &[String]) -> Option<&str> {
    stderr.iter().rev().find_map(|l| l.strip_prefix("error: "))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How to start the reference Worker.
#[derive(Debug, Clone, Default)]
pub struct FixtureOptions {
    /// One or two edges sharing KV and D1.
    pub edges: Option<u8>,
    pub window_s: Option<u64>,
    pub limit_anonymous: Option<u64>,
    pub limit_free: Option<u64>,
    pub limit_pro: Option<u64>,
    pub revocation_lag_ms: Option<u64>,
    /// Check ids whose deliberate violation to switch on.
    pub faults: Vec<String>,
}

impl FixtureOptions {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                env.push((k, v));
            }
        };
        put("EDGES", self.edges.map(|v| v.to_string()));
        put("WINDOW_S", self.window_s.map(|v| v.to_string()));
        put(
            "LIMIT_ANONYMOUS",
            self.limit_anonymous.map(|v| v.to_string()),
        );
        put("LIMIT_FREE", self.limit_free.map(|v| v.to_string()));
        put("LIMIT_PRO", self.limit_pro.map(|v| v.to_string()));
        put(
            "REVOCATION_LAG_MS",
            self.revocation_lag_ms.map(|v| v.to_string()),
        );
        put("FAULTS", Some(self.faults.join(",")));
        env
    }
}

#[derive(Deserialize)]
struct RawAccount {
    email: String,
    password: String,
    id: String,
    tier: String,
}

#[derive(Deserialize)]
struct RawLimits {
    anonymous: u64,
    free: u64,
    pro: u64,
}

#[derive(Deserialize)]
struct RawInfo {
    url: String,
    edges: Vec<String>,
    origin: String,
    accounts: BTreeMap<String, RawAccount>,
    service_key: String,
    window_s: u64,
    limits: RawLimits,
    revocation_lag_ms: u64,
    faults: Vec<String>,
    ready_ms: u64,
}

/// A seeded account of the fixture.
#[derive(Debug, Clone)]
pub struct FixtureAccount {
    pub email: String,
    pub password: Secret,
    pub id: String,
    pub tier: String,
}

/// What the launcher printed when it was ready.
#[derive(Debug, Clone)]
pub struct FixtureInfo {
    pub url: String,
    pub edges: Vec<String>,
    pub origin: String,
    pub accounts: BTreeMap<String, FixtureAccount>,
    pub service_key: Secret,
    pub window_s: u64,
    pub limit_anonymous: u64,
    pub limit_free: u64,
    pub limit_pro: u64,
    pub revocation_lag_ms: u64,
    pub faults: Vec<String>,
    /// The launcher's own spawn → ready time.
    pub ready_ms: u64,
}

impl From<RawInfo> for FixtureInfo {
    fn from(raw: RawInfo) -> Self {
        FixtureInfo {
            url: raw.url,
            edges: raw.edges,
            origin: raw.origin,
            accounts: raw
                .accounts
                .into_iter()
                .map(|(role, a)| {
                    (
                        role,
                        FixtureAccount {
                            email: a.email,
                            password: Secret::new(a.password),
                            id: a.id,
                            tier: a.tier,
                        },
                    )
                })
                .collect(),
            service_key: Secret::new(raw.service_key),
            window_s: raw.window_s,
            limit_anonymous: raw.limits.anonymous,
            limit_free: raw.limits.free,
            limit_pro: raw.limits.pro,
            revocation_lag_ms: raw.revocation_lag_ms,
            faults: raw.faults,
            ready_ms: raw.ready_ms,
        }
    }
}

/// The folder holding the reference Worker and its launcher.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("FLAREPROOF_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

/// Installs the fixture's npm dependencies unless the installed set matches
/// `package-lock.json`. Safe when several processes call it at once: the
/// first installs under an exclusive file lock, the others wait and reuse.
/// npm's output is kept for the error, should it fail; `events` hears when an
/// install starts and ends.
pub fn ensure_installed(dir: &Path, events: &dyn Fn(&Event)) -> Result<(), FixtureError> {
    let io = |what: &str| {
        let dir = dir.display().to_string();
        let what = what.to_owned();
        move |source| FixtureError::Io { what, dir, source }
    };
    let lockfile =
        fs_err::read(dir.join("package-lock.json")).map_err(io("read package-lock.json"))?;
    let want = hex::encode(Sha256::digest(&lockfile));
    let stamp = dir.join("node_modules").join(".flareproof-installed");
    let installed = || fs_err::read_to_string(&stamp).is_ok_and(|s| s.trim() == want);
    if installed() {
        return Ok(());
    }
    let lock_path = dir.join(".npm-install.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| FixtureError::Lock {
            path: lock_path.display().to_string(),
            source,
        })?;
    lock.lock().map_err(|source| FixtureError::Lock {
        path: lock_path.display().to_string(),
        source,
    })?;
    if installed() {
        return Ok(());
    }
    events(&Event::Installing {
        dir: dir.to_path_buf(),
    });
    let started = Instant::now();
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FixtureError::Spawn {
            program: "npm".to_owned(),
            source,
        })?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return Err(FixtureError::Install {
            dir: dir.display().to_string(),
            status: output.status.to_string(),
            output: tail(&text, STDERR_TAIL),
        });
    }
    fs_err::write(&stamp, &want).map_err(io("write the install stamp"))?;
    events(&Event::Installed {
        elapsed: started.elapsed(),
    });
    drop(lock);
    Ok(())
}

use std::os::unix::process::CommandExt;

/// A running reference Worker. Dropping it stops the launcher and everything
/// it started (the whole process group).
pub struct Fixture {
    child: Child,
    stdin: Option<ChildStdin>,
    info: FixtureInfo,
    stderr: Arc<Mutex<Vec<String>>>,
    spawn_to_ready: Duration,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("pid", &self.child.id())
            .field("url", &self.info.url)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// Installs what is missing, then starts the reference Worker in
    /// [`fixtures_dir`]. `events` hears of the install and of every line
    /// the launcher writes to stderr, for as long as it runs.
    pub fn start(options: &FixtureOptions, events: &Events) -> Result<Fixture, FixtureError> {
        let dir = fixtures_dir();
        ensure_installed(&dir, &|e| events.emit(e))?;
        Self::start_in(&dir, options, events)
    }

    /// Starts the reference Worker in `dir`, whose dependencies are installed.
    pub fn start_in(
        dir: &Path,
        options: &FixtureOptions,
        events: &Events,
    ) -> Result<Fixture, FixtureError> {
        let started = Instant::now();
        let mut child = Command::new("node")
            .arg("launch.mjs")
            .current_dir(dir)
            .envs(options.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| FixtureError::Spawn {
                program: "node".to_owned(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let stderr = stderr.clone();
            let events = events.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                    events.emit(&Event::Launcher(line.clone()));
                    let mut tail = stderr.lock().expect("stderr tail poisoned");
                    tail.push(line);
                    let excess = tail.len().saturating_sub(STDERR_TAIL);
                    tail.drain(..excess);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the launcher never blocks on a full pipe.
            for _ in lines {}
        });
        let mut fixture = Fixture {
            child,
            stdin,
            info: FixtureInfo {
                url: String::new(),
                edges: Vec::new(),
                origin: String::new(),
                accounts: BTreeMap::new(),
                service_key: Secret::new(""),
                window_s: 0,
                limit_anonymous: 0,
                limit_free: 0,
                limit_pro: 0,
                revocation_lag_ms: 0,
                faults: Vec::new(),
                ready_ms: 0,
            },
            stderr,
            spawn_to_ready: Duration::ZERO,
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err(fixture.start_error("the launcher exited before it was ready")),
            Err(_) => {
                return Err(fixture.start_error(&format!(
                    "the launcher was not ready within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
        };
        let raw: RawInfo = match serde_json::from_str(&line) {
            Ok(raw) => raw,
            Err(e) => {
                return Err(fixture.start_error(&format!(
                    "the launcher's ready line is not the expected JSON ({e})"
                )));
            }
        };
        fixture.info = raw.into();
        fixture.spawn_to_ready = started.elapsed();
        Ok(fixture)
    }

    /// The launcher stopped short of ready: the problem, with the
    /// launcher's own last `error:` line when it wrote one, and its stderr
    /// as evidence.
    fn start_error(&mut self, problem: &str) -> FixtureError {
        self.stop();
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().expect("stderr tail poisoned").clone();
        let problem = match launcher_reason(&stderr) {
            Some(reason) => format!("{problem}: {reason}"),
            None => problem.to_owned(),
        };
        FixtureError::Start {
            problem,
            stderr: stderr.join("\n"),
        }
    }

    pub fn info(&self) -> &FixtureInfo {
        &self.info
    }

    /// Spawn to ready as measured from here.
    pub fn spawn_to_ready(&self) -> Duration {
        self.spawn_to_ready
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the launcher: closes its stdin (it shuts down cleanly), waits a
    /// grace period, then signals the whole group until nothing is left.
    ///
    /// This blocks for as long as the group takes to exit (up to seconds).
    /// On a worker thread of a multi-threaded tokio runtime (a fixture
    /// dropped inside a spawned task) the worker's other queued tasks are
    /// handed to another thread first, so they do not stall meanwhile. The
    /// task that drops the fixture still blocks, and with it any future it
    /// polls itself (`join!` siblings): drop a fixture in a task of its own,
    /// or after the work that shares its task is done.
    pub fn stop(&mut self) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.stop_now())
            }
            _ => self.stop_now(),
        }
    }

    fn stop_now(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let pgid = Pid::from_raw(self.child.id() as i32);
        let deadline = Instant::now() + STOP_GRACE;
        let mut leader_done = false;
        while Instant::now() < deadline {
            if !leader_done {
                leader_done = matches!(self.child.try_wait(), Ok(Some(_)));
            }
            if leader_done && killpg(pgid, None).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for signal in [Signal::SIGTERM, Signal::SIGKILL] {
            if killpg(pgid, signal).is_err() {
                break;
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && killpg(pgid, None).is_ok() {
                let _ = self.child.try_wait();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_error_names_the_launchers_reason_and_keeps_its_stderr_apart() {
        let stderr = [
            "launch: starting",
            "error: invalid launcher configuration: FAULTS: unknown fault `x`",
            "launch: stopping (configuration error)",
        ]
        .map(str::to_owned);
        assert_eq!(
            launcher_reason(&stderr),
            Some("invalid launcher configuration: FAULTS: unknown fault `x`")
        );
        assert_eq!(launcher_reason(&stderr[..1]), None);
        let err = FixtureError::Start {
            problem: "the launcher exited before it was ready".to_owned(),
            stderr: stderr.join("\n"),
        };
        assert!(!err.to_string().contains('\n'));
        assert_eq!(
            err.output(),
            Some(("launcher stderr (last lines)", stderr.join("\n").as_str()))
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
