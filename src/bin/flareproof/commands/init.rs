//! `init`: a commented `flareproof.toml` from the wrangler config, flags
//! and, on a terminal, answers to prompts.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use flareproof::init::{self, FoundWrangler, Question};
use flareproof::target::{TargetConfig, load_verify};

use crate::cli::InitArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::say;

/// How many times a question is asked again after an answer it refused.
const ATTEMPTS: usize = 5;

pub fn run(args: &InitArgs) -> Result<Exit, ExpectedError> {
    let path = &args.config;
    if path.exists() && !args.force {
        return Err(ExpectedError::InitExists(path.display().to_string()));
    }
    let config_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let wrangler = match args
        .wrangler
        .clone()
        .or_else(|| init::find_wrangler(Path::new(".")))
    {
        Some(file) => {
            let found = init::read_wrangler(&file, args.wrangler_env.as_deref())
                .map_err(ExpectedError::InitInvalid)?;
            say!(
                "read {}{}",
                file.display(),
                found
                    .declaration
                    .script
                    .as_ref()
                    .map(|s| format!(" (script `{s}`)"))
                    .unwrap_or_default()
            );
            Some(found)
        }
        None => None,
    };
    let questions = init::questions(wrangler.as_ref());
    let mut answers = BTreeMap::new();
    for (flag, value) in args.answers.given() {
        let q = questions
            .iter()
            .find(|q| q.flag == flag)
            .expect("every flag is a question");
        let value = q
            .kind
            .check(value)
            .map_err(|why| ExpectedError::InitInvalid(format!("`--{flag}`: {why}")))?;
        answers.insert(flag.to_owned(), value);
    }
    let interactive = !args.non_interactive && std::io::stdin().is_terminal();
    let mut missing = Vec::new();
    for q in &questions {
        if answers.contains_key(&q.flag) {
            continue;
        }
        if interactive {
            answers.insert(q.flag.clone(), ask(q)?);
        } else if let Some(default) = &q.default {
            answers.insert(q.flag.clone(), default.clone());
        } else {
            missing.push(q.flag.clone());
        }
    }
    if !missing.is_empty() {
        return Err(ExpectedError::InitMissing(missing));
    }
    let text = init::render(&answers, wrangler.as_ref(), &config_dir);
    write_checked(path, &text, wrangler.as_ref())?;
    say!("wrote {}", path.display());
    let mut vars: Vec<&str> = answers
        .iter()
        .filter(|(k, _)| k.ends_with("-env"))
        .map(|(_, v)| v.as_str())
        .collect();
    vars.sort_unstable();
    vars.dedup();
    say!("set {} before a run", vars.join(", "));
    say!(
        "then `flareproof conform --config {} --dry-run` shows what a run would do",
        path.display()
    );
    Ok(Exit::Pass)
}

/// Asks `q` on the terminal until it has an answer it accepts.
fn ask(q: &Question) -> Result<String, ExpectedError> {
    let stdin = std::io::stdin();
    let prompt_error = |e| ExpectedError::InitPrompt(q.flag.clone(), e);
    for _ in 0..ATTEMPTS {
        let mut err = std::io::stderr().lock();
        match &q.default {
            Some(d) => write!(err, "{} [{d}]: ", q.prompt),
            None => write!(err, "{}: ", q.prompt),
        }
        .and_then(|_| err.flush())
        .map_err(prompt_error)?;
        drop(err);
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(prompt_error)? == 0 {
            return Err(prompt_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the terminal closed before an answer",
            )));
        }
        let line = line.trim();
        let answer = match (&q.default, line.is_empty()) {
            (Some(d), true) => return Ok(d.clone()),
            (None, true) => {
                eprintln!("  an answer is needed");
                continue;
            }
            (_, false) => line,
        };
        match q.kind.check(answer) {
            Ok(v) => return Ok(v),
            // Never echoes the answer: it may be a secret typed by mistake.
            Err(why) => eprintln!("  that is {why}; again"),
        }
    }
    Err(ExpectedError::InitInvalid(format!(
        "`--{}`: no usable answer after {ATTEMPTS} tries",
        q.flag
    )))
}

/// Writes `text` to `path` only once it loads with the parsers every run
/// uses (`[target]`, and `[verify]` with its wrangler config): into a
/// temporary file beside it first, renamed over it at the end.
fn write_checked(
    path: &Path,
    text: &str,
    wrangler: Option<&FoundWrangler>,
) -> Result<(), ExpectedError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".flareproof-init-")
        .suffix(".toml")
        .tempfile_in(dir)?;
    fs_err::write(tmp.path(), text)?;
    let invalid = |e: &dyn std::fmt::Display| {
        ExpectedError::InitInvalid(format!("the config it would write does not load: {e}"))
    };
    TargetConfig::load(tmp.path()).map_err(|e| invalid(&e))?;
    if wrangler.is_some() {
        load_verify(tmp.path()).map_err(|e| invalid(&e))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
