//! The reference auth Worker (`fixtures/`): installs its npm dependencies
//! once, starts it under Miniflare through the Node launcher, and stops the
//! whole process group when dropped, so workerd is never orphaned.

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

use crate::model::Secret;

/// How long the launcher may take from spawn to its JSON line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the group is killed.
const STOP_GRACE: Duration = Duration::from_secs(8);
/// Lines of the launcher's stderr kept for error messages.
const STDERR_TAIL: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("run `{program}` (is Node.js 20 with npm installed and on PATH?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("install the fixture's npm dependencies: `npm ci` in `{dir}` exited with {status}")]
    Install { dir: String, status: String },
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
    #[error(
        "start the reference Worker: {problem}\n--- launcher stderr (last lines) ---\n{stderr}"
    )]
    Start { problem: String, stderr: String },
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
pub fn ensure_installed(dir: &Path, progress: &dyn Fn(&str)) -> Result<(), FixtureError> {
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
    progress(&format!(
        "installing the reference Worker's npm dependencies (npm ci in {})…",
        dir.display()
    ));
    let started = Instant::now();
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        // Keep our stdout for data: npm's chatter goes to stderr.
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(io("duplicate stderr"))?,
        ))
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .status()
        .map_err(|source| FixtureError::Spawn {
            program: "npm".to_owned(),
            source,
        })?;
    if !status.success() {
        return Err(FixtureError::Install {
            dir: dir.display().to_string(),
            status: status.to_string(),
        });
    }
    fs_err::write(&stamp, &want).map_err(io("write the install stamp"))?;
    progress(&format!(
        "installed in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    drop(lock);
    Ok(())
}

use std::os::fd::AsFd;
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
    /// Installs what is missing, then starts the reference Worker.
    pub fn start(options: &FixtureOptions) -> Result<Fixture, FixtureError> {
        let dir = fixtures_dir();
        ensure_installed(&dir, &|line| eprintln!("{line}"))?;
        Self::start_in(&dir, options)
    }

    pub fn start_in(dir: &Path, options: &FixtureOptions) -> Result<Fixture, FixtureError> {
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
        let echo = std::env::var_os("FLAREPROOF_FIXTURE_LOG").is_some();
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[fixture] {line}");
                    }
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

    fn start_error(&mut self, problem: &str) -> FixtureError {
        self.stop();
        std::thread::sleep(Duration::from_millis(50));
        FixtureError::Start {
            problem: problem.to_owned(),
            stderr: self.stderr.lock().expect("stderr tail poisoned").join("\n"),
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
