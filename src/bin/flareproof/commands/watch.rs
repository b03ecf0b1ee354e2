//! `watch`: poll the active deployment; verify every change.
//!
//! Each poll is the cheap read of [`flareproof::watch::poll`]; a change (or
//! nothing recorded yet) starts `verify` (`audit` with `--conform`) as a
//! child process of this binary, writing to `<out>/<UTC time>-<deployment
//! id>/`. The child runs in a process group of its own, so a Ctrl-C meant
//! for the watch does not interrupt a run (nor its build recipe) half-way:
//! the watch lets it finish, records its verdict, then stops. Its output
//! goes to stderr, so stdout carries the watch's events alone: one line
//! each, or one JSON object each with `--json` (a stable `event` field:
//! `started`, `unchanged`, `changed`, `verified`, `verify_error`,
//! `api_error`, `state_error`, `stopped`).
//!
//! Only a verdict (pass or fail) is recorded; an API outage or a run that
//! could not tell is retried with a capped exponential backoff and never
//! recorded, never reported as a pass.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use flareproof::cloudflare::{ApiError, Client, Credentials, RetryPolicy};
use flareproof::watch::{
    Change, Interval, Observation, Outcome, POLL_BUDGET, POLL_REQUESTS, RATE_LIMIT,
    RecordedVerdict, STATE_FORMAT, StateError, WatchState, backoff, load_state, poll, rfc3339,
    run_folder, save_state,
};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::WatchArgs;
use crate::error::{ExpectedError, eprint_error};
use crate::exit::Exit;
use crate::scrub::tell;

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("watch: `--out -` has no folder for the runs' reports; pass `--out DIR`")]
    StdoutOut,
    #[error("watch: `--only`/`--skip` select conform checks; pass `--conform` with them")]
    SelectWithoutConform,
    #[error(transparent)]
    State(#[from] StateError),
    #[error("watch: the state file's folder `{0}` does not exist")]
    StateDir(String),
    #[error("watch: listen for SIGINT and SIGTERM")]
    Signals(#[source] std::io::Error),
    #[error("watch: find this flareproof's own executable to run verify with")]
    Exe(#[source] std::io::Error),
}

pub async fn run(args: &WatchArgs) -> Result<Exit, ExpectedError> {
    // Listening first: from here on a signal stops the watch between polls.
    let mut stop = match Stop::listen() {
        Ok(stop) => stop,
        Err(e) => return Ok(fatal(&WatchError::Signals(e))),
    };
    if args.report.out == Path::new("-") {
        return Ok(fatal(&WatchError::StdoutOut));
    }
    let selects = !args.select.only.is_empty() || !args.select.skip.is_empty();
    if selects && !args.conform {
        return Ok(fatal(&WatchError::SelectWithoutConform));
    }
    // What each run would refuse, refused once before any poll: a signing
    // key that cannot sign, a known-failures file that does not parse.
    super::signer(&args.sign)?;
    super::known_failures(&args.report.run)?;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Ok(fatal(&WatchError::Exe(e))),
    };
    let config = &args.config.config;
    let (_, target, credentials) = super::verify_target(config, &args.api)?;
    if let Some(path) = &args.state
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Ok(fatal(&WatchError::StateDir(dir.display().to_string())));
    }
    let previous = match &args.state {
        Some(path) => match load_state(path, &target.script) {
            Ok(state) => state,
            Err(e) => return Ok(fatal(&WatchError::State(e))),
        },
        None => None,
    };
    let mut watch = Watch {
        args,
        exe,
        script: target.script.clone(),
        zone_id: target.ingress.zone_id.clone(),
        api_base: target.api_base.clone(),
        token_env: target.api_token_env.clone(),
        credentials,
        retry: super::retry(&args.api),
        interval: Interval::clamp(args.interval),
        state: previous,
        events: Events { json: args.json },
    };
    Ok(watch.run(&mut stop).await)
}

/// Prints an error that stops the watch before it starts; exit 2.
fn fatal(error: &dyn std::error::Error) -> Exit {
    eprint_error(error, &[], None);
    Exit::Undecided
}

/// SIGINT and SIGTERM.
struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    fn listen() -> std::io::Result<Stop> {
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// One line per event on stdout.
struct Events {
    json: bool,
}

impl Events {
    /// `fields` for `--json` (with `event` and `at` added), `text` for the
    /// line. Both are scrubbed of every secret the binary knows.
    fn emit(&self, event: &str, fields: Value, text: &str) {
        let at = rfc3339(time::OffsetDateTime::now_utc());
        if self.json {
            let mut object = serde_json::Map::new();
            object.insert("event".into(), json!(event));
            object.insert("at".into(), json!(at));
            if let Value::Object(more) = fields {
                object.extend(more);
            }
            tell!("{}", Value::Object(object));
        } else {
            // One line per event, whatever the API's ids hold.
            let text: String = text
                .chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect();
            tell!("{at} {event}: {text}");
        }
    }
}

/// What one verify run came to.
enum RunResult {
    Verdict(Outcome),
    /// Neither pass nor fail: why.
    CouldNotTell(String),
}

struct Watch<'a> {
    args: &'a WatchArgs,
    exe: PathBuf,
    script: String,
    /// `[verify] zone_id`: its routes are polled too.
    zone_id: Option<String>,
    api_base: url::Url,
    token_env: String,
    credentials: Credentials,
    retry: RetryPolicy,
    interval: Interval,
    state: Option<WatchState>,
    events: Events,
}

/// How a poll-and-verify round ended.
enum Round {
    /// Go on, after this long.
    Next(Duration),
    /// Stop, exiting so.
    End(Exit),
}

impl Watch<'_> {
    async fn run(&mut self, stop: &mut Stop) -> Exit {
        self.started();
        let mut failures = 0u32;
        loop {
            let polled = tokio::select! {
                polled = self.poll() => polled,
                signal = stop.next() => {
                    // A poll writes nothing: dropping it is safe. Under
                    // `--once` nothing was decided: could not tell.
                    self.stopped(signal, "between polls");
                    return Exit::without_verdict(self.args.once);
                }
            };
            let round = match polled {
                Err(error) => {
                    failures += 1;
                    self.api_error(&error, failures)
                }
                Ok(observed) => self.observed(observed, stop, &mut failures).await,
            };
            let wait = match round {
                Round::End(exit) => return exit,
                Round::Next(wait) => wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                signal = stop.next() => {
                    self.stopped(signal, "between polls");
                    return Exit::Pass;
                }
            }
        }
    }

    fn started(&self) {
        let i = self.interval;
        let mut text = format!(
            "watching script `{}` every {} s",
            self.script,
            i.every.as_secs()
        );
        if i.clamped() {
            text.push_str(&format!(
                " (asked {} s; a poll sends up to {POLL_REQUESTS} requests, kept within {POLL_BUDGET} \
                 of the API's {RATE_LIMIT} requests per 5 minutes)",
                i.asked.as_secs()
            ));
        }
        if self.args.once {
            text = format!("checking script `{}` once", self.script);
        }
        match &self.state {
            Some(s) => text.push_str(&format!(
                "; last seen deployment {} at {} (verify {})",
                deployment_id(&s.observed),
                s.seen_at,
                s.last_verify.verdict.as_str()
            )),
            None => text.push_str("; nothing recorded yet"),
        }
        self.events.emit(
            "started",
            json!({
                "script": self.script,
                "once": self.args.once,
                "interval_s": i.every.as_secs(),
                "asked_interval_s": i.asked.as_secs(),
                "clamped": i.clamped(),
                "requests_per_5_min": i.requests_per_window(),
                "state": self.args.state.as_ref().map(|p| p.display().to_string()),
                "recorded_deployment": self.state.as_ref().map(|s| deployment_id(&s.observed)),
            }),
            &text,
        );
    }

    async fn poll(&self) -> Result<Observation, Arc<ApiError>> {
        // A client per poll: a client keeps every exchange in its
        // transcript, which a watch that runs for weeks must not.
        let client =
            Client::new(&self.api_base, self.credentials.clone(), self.retry).map_err(Arc::new)?;
        poll(&client, &self.script, self.zone_id.as_deref()).await
    }

    fn api_error(&self, error: &ApiError, failures: u32) -> Round {
        let hint = error.hint(&self.token_env);
        let message = flareproof::error_chain(error);
        if self.args.once {
            self.events.emit(
                "api_error",
                json!({ "error": message, "hint": hint, "retry_in_s": null }),
                &format!("{message} (hint: {hint}); not retried under --once: could not tell"),
            );
            return Round::End(Exit::Undecided);
        }
        let wait = backoff(self.interval.every, failures);
        self.events.emit(
            "api_error",
            json!({
                "error": message,
                "hint": hint,
                "failures": failures,
                "retry_in_s": wait.as_secs(),
            }),
            &format!("{message}; retry in {} s (hint: {hint})", wait.as_secs()),
        );
        Round::Next(wait)
    }

    async fn observed(
        &mut self,
        observed: Observation,
        stop: &mut Stop,
        failures: &mut u32,
    ) -> Round {
        let seen_at = rfc3339(time::OffsetDateTime::now_utc());
        let changes = match &self.state {
            None => vec![Change::FirstSeen],
            Some(state) => flareproof::watch::diff(&state.observed, &observed),
        };
        // (With nothing recorded, the change is `FirstSeen`.)
        if let (true, Some(state)) = (changes.is_empty(), &self.state) {
            *failures = 0;
            let last = &state.last_verify;
            self.events.emit(
                "unchanged",
                json!({
                    "deployment": observed.deployment.id,
                    "versions": observed.deployment.versions,
                    "last_verdict": last.verdict,
                    "last_folder": last.report,
                }),
                &format!(
                    "deployment {} ({}); last verify {} ({})",
                    deployment_id(&observed),
                    versions(&observed),
                    last.verdict.as_str(),
                    last.report
                ),
            );
            // What is live is what last failed: still a failure.
            if last.verdict == Outcome::Fail && (self.args.once || self.args.exit_on_fail) {
                return Round::End(Exit::Failed);
            }
            if self.args.once {
                return Round::End(Exit::Pass);
            }
            return Round::Next(self.interval.every);
        }
        self.events.emit(
            "changed",
            json!({ "deployment": observed.deployment.id, "changes": changes }),
            &format!(
                "deployment {} ({}): {}",
                deployment_id(&observed),
                versions(&observed),
                changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        let now = time::OffsetDateTime::now_utc();
        let dir = run_folder(
            &self.args.report.out,
            now,
            observed.deployment.id.as_deref(),
        );
        let (result, signal) = self.verify(&dir, stop).await;
        let exit = match result {
            RunResult::CouldNotTell(reason) => {
                *failures += 1;
                let wait = backoff(self.interval.every, *failures);
                self.events.emit(
                    "verify_error",
                    json!({
                        "deployment": observed.deployment.id,
                        "reason": reason,
                        "folder": dir.display().to_string(),
                        "retry_in_s": (!self.args.once).then_some(wait.as_secs()),
                    }),
                    &if self.args.once {
                        format!("{reason}: could not tell ({})", dir.display())
                    } else {
                        format!(
                            "{reason}: could not tell ({}); retry in {} s",
                            dir.display(),
                            wait.as_secs()
                        )
                    },
                );
                if let Some(signal) = signal {
                    self.stopped(signal, "after the verify run");
                    return Round::End(Exit::without_verdict(self.args.once));
                }
                return match Exit::without_verdict(self.args.once) {
                    Exit::Pass => Round::Next(wait),
                    once => Round::End(once),
                };
            }
            RunResult::Verdict(outcome) => {
                *failures = 0;
                let state = WatchState {
                    format: STATE_FORMAT,
                    script: self.script.clone(),
                    seen_at,
                    observed: observed.clone(),
                    last_verify: RecordedVerdict {
                        verdict: outcome,
                        report: dir.display().to_string(),
                        verified_at: rfc3339(time::OffsetDateTime::now_utc()),
                    },
                };
                if let Some(path) = &self.args.state
                    && let Err(e) = save_state(path, &state)
                {
                    let message = flareproof::error_chain(&e);
                    self.events
                        .emit("state_error", json!({ "error": message }), &message);
                    return Round::End(Exit::Undecided);
                }
                self.state = Some(state);
                self.events.emit(
                    "verified",
                    json!({
                        "deployment": observed.deployment.id,
                        "verdict": outcome,
                        "folder": dir.display().to_string(),
                        "report": dir.join("report.json").display().to_string(),
                    }),
                    &format!(
                        "{} deployment {}, report {}",
                        outcome.as_str(),
                        deployment_id(&observed),
                        dir.join("report.json").display()
                    ),
                );
                Exit::from(outcome)
            }
        };
        if let Some(signal) = signal {
            self.stopped(signal, "after the verify run");
            let ends = self.args.once || self.args.exit_on_fail;
            return Round::End(if ends { exit } else { Exit::Pass });
        }
        if self.args.once || (exit == Exit::Failed && self.args.exit_on_fail) {
            return Round::End(exit);
        }
        Round::Next(self.interval.every)
    }

    /// Runs verify (or audit) into `dir` as a child process and waits for
    /// it, signals or not; returns what it came to and the first signal
    /// that arrived meanwhile.
    async fn verify(&self, dir: &Path, stop: &mut Stop) -> (RunResult, Option<&'static str>) {
        let command = if self.args.conform { "audit" } else { "verify" };
        if let Err(e) = fs_err::create_dir_all(dir) {
            return (
                RunResult::CouldNotTell(format!("create the run folder: {e}")),
                None,
            );
        }
        let stderr_as_stdout: Stdio = std::io::stderr().into();
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(self.child_args(command, dir))
            .stdin(Stdio::null())
            .stdout(stderr_as_stdout)
            .process_group(0);
        let mut child = match spawn_deaf(&mut cmd) {
            Ok(child) => child,
            Err(e) => {
                return (
                    RunResult::CouldNotTell(format!("start `flareproof {command}`: {e}")),
                    None,
                );
            }
        };
        let mut signal = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                s = stop.next() => {
                    if signal.is_none() {
                        crate::scrub::say!(
                            "{s}: letting the `{command}` run finish writing its reports, then stopping"
                        );
                    }
                    signal.get_or_insert(s);
                }
            }
        };
        let code = match status {
            Ok(status) => status.code(),
            Err(e) => {
                return (
                    RunResult::CouldNotTell(format!("wait for `flareproof {command}`: {e}")),
                    signal,
                );
            }
        };
        (judge(command, code, dir), signal)
    }

    /// The command line of the child run: this watch's options that the
    /// command takes.
    fn child_args(&self, command: &str, dir: &Path) -> Vec<OsString> {
        let a = self.args;
        let mut out: Vec<OsString> = vec![command.into(), "--config".into()];
        out.push(a.config.config.clone().into());
        out.push("--out".into());
        out.push(dir.into());
        if let Some(v) = &a.api.api_token_env {
            out.extend(["--api-token-env".into(), v.into()]);
        }
        if let Some(v) = &a.api.account_id_env {
            out.extend(["--account-id-env".into(), v.into()]);
        }
        if let Some(v) = &a.api.api_base {
            out.extend(["--api-base".into(), v.as_str().into()]);
        }
        out.extend([
            "--max-retry-wait".into(),
            a.api.max_retry_wait.to_string().into(),
        ]);
        for format in &a.report.format {
            out.extend(["--format".into(), format.name().into()]);
        }
        if let Some(label) = &a.report.vantage_label {
            out.extend(["--vantage-label".into(), label.into()]);
        }
        if a.report.run.quiet {
            out.push("--quiet".into());
        }
        if let Some(path) = &a.report.run.known_failures {
            out.push("--known-failures".into());
            out.push(path.into());
        }
        if let Some(path) = &a.report.run.baseline {
            out.push("--baseline".into());
            out.push(path.into());
        }
        if let Some(path) = &a.sign.sign_key {
            out.push("--sign-key".into());
            out.push(path.into());
        }
        if let Some(var) = &a.sign.sign_key_env {
            out.extend(["--sign-key-env".into(), var.into()]);
        }
        if a.conform {
            for glob in &a.select.only {
                out.extend(["--only".into(), glob.into()]);
            }
            for glob in &a.select.skip {
                out.extend(["--skip".into(), glob.into()]);
            }
        }
        out
    }

    fn stopped(&self, signal: &str, when: &str) {
        self.events.emit(
            "stopped",
            json!({ "signal": signal, "when": when }),
            &format!("{signal} {when}"),
        );
    }
}

/// A run's verdict: its exit code and its report must agree (0 with a
/// `pass` report, 1 with a `fail` one); anything else could not tell.
fn judge(command: &str, code: Option<i32>, dir: &Path) -> RunResult {
    let report = dir.join("report.json");
    let verdict = fs_err::read(&report)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get("verdict").and_then(Value::as_str).map(str::to_owned));
    let exit = code.and_then(Exit::of_code);
    match (code, verdict.as_deref()) {
        (Some(_), Some("pass")) if exit == Some(Exit::Pass) => RunResult::Verdict(Outcome::Pass),
        (Some(_), Some("fail")) if exit == Some(Exit::Failed) => RunResult::Verdict(Outcome::Fail),
        (None, _) => RunResult::CouldNotTell(format!("`flareproof {command}` was killed")),
        (Some(code), None) => RunResult::CouldNotTell(format!(
            "`flareproof {command}` exited {code} without a readable {}",
            report.display()
        )),
        (Some(code), Some(verdict)) => RunResult::CouldNotTell(format!(
            "`flareproof {command}` exited {code}, its report says `{verdict}`"
        )),
    }
}

fn deployment_id(o: &Observation) -> String {
    o.deployment
        .id
        .clone()
        .unwrap_or_else(|| "(no id)".to_owned())
}

fn versions(o: &Observation) -> String {
    o.deployment
        .versions
        .iter()
        .map(|v| format!("{} {}%", v.version_id, v.percentage))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spawns `cmd` (in a process group of its own) so that a Ctrl-C or
/// SIGTERM meant for the watch never reaches it: its own group keeps later
/// signals away, and SIGINT/SIGTERM are blocked on this thread while it
/// forks, so one that arrives between the fork and the child's `setpgid`
/// (when the child is still in the watch's group) stays pending in the
/// child, blocked, instead of killing it once it execs. The child inherits
/// the blocked mask (the watch ends its run itself when it must); this
/// thread's mask is restored at once, and a signal that arrived meanwhile
/// reaches the watch's handlers then.
fn spawn_deaf(cmd: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut deaf = SigSet::empty();
    deaf.add(Signal::SIGINT);
    deaf.add(Signal::SIGTERM);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&deaf), Some(&mut old))
        .map_err(std::io::Error::from)?;
    let spawned = cmd.spawn();
    let restored = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    let child = spawned?;
    restored.map_err(std::io::Error::from)?;
    Ok(child)
}
