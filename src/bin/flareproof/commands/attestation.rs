//! `attestation verify`: the envelope's signature and statement, then (with
//! a config) the live deployment against what it attests.
//!
//! It fails closed: a good signature over a failed result is not a
//! verification, so `attestation verify … && deploy` does not deploy it.
//!
//! Exit 0: the signature and the statement check, the attested result
//! passed (verdict `pass`, or a VSA's `PASSED`; or any result with
//! `--allow-failed-result`) and, with a config, the deployment is still
//! what was attested. Exit 1: the attestation does not check (a bad
//! signature, another key, a payload that is not a flareproof or SLSA VSA
//! in-toto statement), the attested result is a failure (verdict `fail` or
//! `error`, `FAILED`), or the deployment changed. Exit 2: could not tell
//! (the key or the file could not be read; with a config, it, the API or
//! a part of the deployment could not be read, now or when attested, or
//! the attestation is of another account or script: each of those is 1
//! when the attested result failed). `crate::exit` has every command's
//! codes.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use flareproof::attestation::dsse::{self, Envelope, VerifyingKey};
use flareproof::attestation::{
    AUDIT_PREDICATE_TYPE, LiveRecord, PREDICATE_TYPE, STATEMENT_TYPE, VSA_PREDICATE_TYPE,
};
use flareproof::cloudflare::ingress::{self, Part};
use flareproof::cloudflare::{ApiError, Client, Live, SCRIPTS_READ, fetch_live_in_zone};
use flareproof::model::Verdict;

use crate::cli::{AttestationArgs, AttestationCommand, AttestationVerifyArgs};
use crate::error::{ExpectedError, eprint_error};
use crate::exit::Exit;
use crate::scrub::{say, tell};

pub async fn run(args: &AttestationArgs) -> Result<Exit, ExpectedError> {
    match &args.command {
        AttestationCommand::Verify(args) => verify(args).await,
    }
}

/// Why the attestation could not even be checked (exit 2).
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("read the {what} `{path}`")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] dsse::KeyError),
}

/// What a checked statement says, as far as this command needs it.
#[derive(Debug)]
enum Attested {
    /// flareproof's verify or audit predicate.
    Flareproof {
        kind: &'static str,
        script: String,
        verdict: Verdict,
        started_at: String,
        live: Option<Box<LiveRecord>>,
    },
    /// A SLSA verification summary: no live record in it.
    Vsa {
        resource_uri: String,
        result: String,
    },
}

impl Attested {
    /// Whether the attested run passed: verdict `pass`, or `PASSED`.
    fn passed(&self) -> bool {
        match self {
            Attested::Flareproof { verdict, .. } => *verdict == Verdict::Pass,
            Attested::Vsa { result, .. } => result == "PASSED",
        }
    }

    /// The attested result, as the statement words it.
    fn result(&self) -> String {
        match self {
            Attested::Flareproof { verdict, .. } => format!("verdict {}", verdict.as_str()),
            Attested::Vsa { result, .. } => format!("verificationResult {result}"),
        }
    }

    /// What the statement is, for the first line printed.
    fn describe(&self) -> String {
        match self {
            Attested::Flareproof {
                kind,
                script,
                started_at,
                ..
            } => format!(
                "a flareproof {kind} attestation of script `{script}`, {}, run at {started_at}",
                self.result()
            ),
            Attested::Vsa { resource_uri, .. } => format!(
                "a SLSA verification summary of {resource_uri}, {}",
                self.result()
            ),
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, Unreadable> {
    std::fs::read(path).map_err(|source| Unreadable::File {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn key(path: &Path) -> Result<VerifyingKey, Unreadable> {
    let pem = read("public key", path)?;
    let pem = String::from_utf8_lossy(&pem);
    Ok(VerifyingKey::from_public_key_pem(
        &pem,
        &format!("`{}`", path.display()),
    )?)
}

/// The payload of a signed envelope, or why the attestation does not check.
fn signed_payload(bytes: &[u8], key: &VerifyingKey) -> Result<Vec<u8>, String> {
    let envelope = Envelope::parse(bytes).map_err(|e| flareproof::error_chain(&e))?;
    let payload = envelope
        .verify(key)
        .map_err(|e| flareproof::error_chain(&e))?;
    if envelope.payload_type != dsse::PAYLOAD_TYPE {
        return Err(format!(
            "its payloadType is `{}`, not an in-toto statement (`{}`)",
            envelope.payload_type,
            dsse::PAYLOAD_TYPE
        ));
    }
    Ok(payload)
}

fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{field}` is missing or not a string"))
}

/// flareproof's verify predicate (alone, or under an audit's `verify`).
fn verify_predicate(p: &Value, at: &str) -> Result<(String, Option<Box<LiveRecord>>), String> {
    if !p.is_object() {
        return Err(format!("`{at}` is not an object"));
    }
    let script = string(p, "script").map_err(|e| format!("{at}: {e}"))?;
    let live: Option<Box<LiveRecord>> = match p.get("live") {
        None | Some(Value::Null) => None,
        Some(live) => Some(
            serde_json::from_value(live.clone())
                .map_err(|e| format!("`{at}.live` is not a live record: {e}"))?,
        ),
    };
    if let Some(live) = &live
        && live.script != script
    {
        return Err(format!(
            "`{at}.script` is `{script}` but its live record is of script `{}`",
            live.script
        ));
    }
    Ok((script.to_owned(), live))
}

/// The statement a payload is, checked for the shape this command reads.
fn statement(payload: &[u8]) -> Result<Attested, String> {
    let s: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let kind = string(&s, "_type")?;
    if kind != STATEMENT_TYPE {
        return Err(format!(
            "`_type` is `{kind}`, not an in-toto statement v1 (`{STATEMENT_TYPE}`)"
        ));
    }
    let subjects = s
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("`subject` is missing or not a list")?;
    for subject in subjects {
        if !subject.get("digest").is_some_and(Value::is_object) {
            return Err("a subject has no `digest` object".to_owned());
        }
    }
    let predicate = s.get("predicate").unwrap_or(&Value::Null);
    if !predicate.is_object() {
        return Err("`predicate` is missing or not an object".to_owned());
    }
    let predicate_type = string(&s, "predicateType")?;
    let field = |name: &str| {
        predicate
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    // The result is what a gate reads: one that is not pass, fail or error
    // does not check.
    let verdict = || {
        predicate
            .get("verdict")
            .and_then(|v| serde_json::from_value::<Verdict>(v.clone()).ok())
            .ok_or("predicate: `verdict` is missing or not pass, fail or error")
    };
    match predicate_type {
        PREDICATE_TYPE => {
            let (script, live) = verify_predicate(predicate, "predicate")?;
            Ok(Attested::Flareproof {
                kind: "verify",
                script,
                verdict: verdict()?,
                started_at: field("started_at"),
                live,
            })
        }
        AUDIT_PREDICATE_TYPE => {
            let (script, live) = match predicate.get("verify") {
                None | Some(Value::Null) => (String::new(), None),
                Some(v) => verify_predicate(v, "predicate.verify")?,
            };
            Ok(Attested::Flareproof {
                kind: "audit",
                script,
                verdict: verdict()?,
                started_at: field("started_at"),
                live,
            })
        }
        VSA_PREDICATE_TYPE => {
            let resource_uri =
                string(predicate, "resourceUri").map_err(|e| format!("predicate: {e}"))?;
            let result =
                string(predicate, "verificationResult").map_err(|e| format!("predicate: {e}"))?;
            if result != "PASSED" && result != "FAILED" {
                return Err(format!(
                    "predicate: `verificationResult` is `{result}`, not PASSED or FAILED"
                ));
            }
            Ok(Attested::Vsa {
                resource_uri: resource_uri.to_owned(),
                result: result.to_owned(),
            })
        }
        other => Err(format!(
            "`predicateType` is `{other}`, not one flareproof checks ({PREDICATE_TYPE}, \
             {AUDIT_PREDICATE_TYPE} or {VSA_PREDICATE_TYPE})"
        )),
    }
}

async fn verify(args: &AttestationVerifyArgs) -> Result<Exit, ExpectedError> {
    let key = match key(&args.key) {
        Ok(key) => key,
        Err(e) => {
            eprint_error(
                &e,
                &[],
                Some(
                    "pass the signer's public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), e.g. from `openssl pkey -in key.pem -pubout`",
                ),
            );
            return Ok(Exit::Undecided);
        }
    };
    let bytes = match read("attestation", &args.file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprint_error(&e, &[], None);
            return Ok(Exit::Undecided);
        }
    };
    let attested = match signed_payload(&bytes, &key).and_then(|p| statement(&p)) {
        Ok(attested) => attested,
        Err(why) => {
            tell!("FAIL the attestation does not check: {why}");
            return Ok(Exit::Failed);
        }
    };
    let signer = dsse::describe(&key);
    let passed = attested.passed();
    let accepted = passed || args.allow_failed_result;
    if accepted {
        tell!(
            "PASS the signature ({signer}) and the statement check: {}",
            attested.describe()
        );
    } else {
        tell!(
            "FAIL the attested result is a failure, though the signature ({signer}) and the \
             statement check: {}",
            attested.describe()
        );
    }
    let live = match &attested {
        Attested::Vsa { .. } => {
            tell!(
                "a verification summary records no live deployment, so it is checked by its \
                 signature only{}",
                if args.config.is_some() {
                    "; the config is not read"
                } else {
                    ""
                }
            );
            Exit::Pass
        }
        Attested::Flareproof { live, .. } => match &args.config {
            None => {
                tell!(
                    "signature and statement check (offline: pass --config to compare with what \
                     is live)"
                );
                Exit::Pass
            }
            Some(config) => still_live(args, config, live.as_deref()).await?,
        },
    };
    if passed {
        return Ok(live);
    }
    let result = attested.result();
    if args.allow_failed_result {
        tell!(
            "note: the signature is good but the attested result is a failure ({result}); \
             accepted with --allow-failed-result"
        );
        return Ok(live);
    }
    tell!(
        "FAIL: the signature is good but the attested result is a failure ({result}): a signed \
         failure is not a verification (pass --allow-failed-result to accept it)"
    );
    Ok(Exit::Failed.worst(live))
}

/// With `--config`: whether what is live is still what `attested` records.
async fn still_live(
    args: &AttestationVerifyArgs,
    config: &Path,
    attested: Option<&LiveRecord>,
) -> Result<Exit, ExpectedError> {
    let (_, target, credentials) = match super::verify_target(config, &args.api) {
        Ok(read) => read,
        Err(e) => {
            e.eprint();
            return Ok(Exit::Undecided);
        }
    };
    let Some(attested) = attested else {
        tell!(
            "COULD NOT TELL: the attestation records no live deployment (it was made without \
             reading the API, or by a flareproof that did not record it)"
        );
        return Ok(Exit::Undecided);
    };
    if attested.account_id != credentials.account_id || attested.script != target.script {
        tell!(
            "COULD NOT TELL: the attestation is of script `{}` in account {}, the config reads \
             script `{}` in account {}",
            attested.script,
            attested.account_id,
            target.script,
            credentials.account_id
        );
        return Ok(Exit::Undecided);
    }
    let token_env = target.api_token_env.clone();
    say!(
        "reading script `{}` from {}…",
        target.script,
        target.api_base
    );
    let client = match Client::new(
        &target.api_base,
        credentials.clone(),
        super::retry(&args.api),
    ) {
        Ok(client) => client,
        Err(e) => {
            eprint_error(
                &e,
                &[],
                Some("check `api_base` in the `[verify]` section (or `--api-base`)"),
            );
            return Ok(Exit::Undecided);
        }
    };
    let zone = target.ingress.zone_id.as_deref();
    let (now, errors) = match fetch_live_in_zone(&client, &target.script, zone).await {
        Ok(live) => (
            LiveRecord::of(&credentials.account_id, &target.script, &live),
            part_errors(&live),
        ),
        Err(e) => {
            let record = LiveRecord::unreadable(&credentials.account_id, &target.script, zone, &e);
            (record, vec![(Arc::new(e), "Workers Scripts Read")])
        }
    };
    // Scrubbed as the attestation was when it was written.
    let mut now = now;
    crate::scrub::redactor().redact_printed(&mut now);
    for note in LiveRecord::notes(attested, &now) {
        tell!("note: {note}");
    }
    let drift = LiveRecord::drift(attested, &now);
    let (changes, unknown): (Vec<_>, Vec<_>) = drift.iter().partition(|d| d.is_change());
    let code = if !changes.is_empty() {
        tell!(
            "CHANGED: the deployment is no longer what was attested ({} difference(s)):",
            changes.len()
        );
        for d in &changes {
            tell!("  changed: {d}");
        }
        Exit::Failed
    } else if !unknown.is_empty() {
        tell!("COULD NOT TELL whether the deployment is still what was attested:");
        Exit::Undecided
    } else {
        let versions = now
            .deployment
            .read()
            .map(|d| {
                d.versions
                    .iter()
                    .map(|v| format!("{} ({}%)", v.version_id, v.percentage))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        tell!("UNCHANGED: the deployment is still what was attested: {versions}");
        Exit::Pass
    };
    for d in &unknown {
        tell!("  {d}");
    }
    if !unknown.is_empty()
        && let Some((error, permission)) = errors.first()
    {
        eprint_error(
            error.as_ref(),
            &[],
            Some(&error.hint_for(&token_env, permission)),
        );
    }
    Ok(code)
}

/// Every part of a live read that failed, with the permission it needs.
fn part_errors(live: &Live) -> Vec<(Arc<ApiError>, &'static str)> {
    let mut out = Vec::new();
    let mut push = |e: Option<&Arc<ApiError>>, permission: &'static str| {
        if let Some(e) = e {
            out.push((e.clone(), permission));
        }
    };
    for v in &live.versions {
        push(v.modules.as_ref().err(), SCRIPTS_READ);
        push(v.settings.as_ref().err(), SCRIPTS_READ);
    }
    push(live.observers.as_ref().err(), SCRIPTS_READ);
    push(live.script_settings.as_ref().err(), SCRIPTS_READ);
    fn err<T>(part: &Part<T>) -> Option<&Arc<ApiError>> {
        part.as_ref().err()
    }
    let i = &live.ingress;
    push(err(&i.routes), ingress::permission(ingress::ROUTES));
    push(
        err(&i.custom_domains),
        ingress::permission(ingress::DOMAINS),
    );
    push(err(&i.workers_dev), ingress::permission(ingress::SUBDOMAIN));
    if let Some(part) = &i.account_subdomain {
        push(err(part), ingress::permission(ingress::ACCOUNT_SUBDOMAIN));
    }
    if let Some((_, part)) = &i.zone_routes {
        push(err(part), ingress::permission(ingress::ZONE_ROUTES));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flareproof::attestation::dsse::SigningKey;

    fn signed(statement: &Value) -> (Vec<u8>, VerifyingKey) {
        let key = SigningKey::generate_p256();
        let envelope = key.sign_statement(&serde_json::to_vec(statement).unwrap());
        (envelope.render(), key.verifying_key())
    }

    fn check(statement: &Value) -> Result<Attested, String> {
        let (bytes, key) = signed(statement);
        signed_payload(&bytes, &key).and_then(|p| self::statement(&p))
    }

    #[test]
    fn only_in_toto_statements_of_the_known_predicate_types_check() {
        let ok = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{ "name": "worker.js", "digest": { "sha256": "ab" } }],
            "predicateType": PREDICATE_TYPE,
            "predicate": { "script": "auth", "verdict": "pass", "live": null },
        });
        assert!(matches!(
            check(&ok),
            Ok(Attested::Flareproof { live: None, .. })
        ));
        for (field, value, said) in [
            (
                "_type",
                serde_json::json!("https://in-toto.io/Statement/v0.1"),
                "`_type`",
            ),
            (
                "predicateType",
                serde_json::json!("https://example.test/x"),
                "`predicateType`",
            ),
            ("subject", serde_json::json!("worker.js"), "`subject`"),
            (
                "predicate",
                serde_json::json!({ "live": {} , "script": "a"}),
                "live record",
            ),
            ("predicate", serde_json::json!([]), "`predicate`"),
        ] {
            let mut bad = ok.clone();
            bad[field] = value;
            let e = check(&bad).unwrap_err();
            assert!(e.contains(said), "{field}: {e}");
        }
        let vsa = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [],
            "predicateType": VSA_PREDICATE_TYPE,
            "predicate": { "resourceUri": "https://api.test/x", "verificationResult": "MAYBE" },
        });
        assert!(check(&vsa).unwrap_err().contains("verificationResult"));
    }

    #[test]
    fn a_failed_result_checks_but_does_not_pass_and_a_missing_one_does_not_check() {
        let statement = |predicate_type: &str, predicate: Value| {
            check(&serde_json::json!({
                "_type": STATEMENT_TYPE,
                "subject": [],
                "predicateType": predicate_type,
                "predicate": predicate,
            }))
        };
        for verdict in ["fail", "error"] {
            let predicate = serde_json::json!({ "script": "auth", "verdict": verdict });
            let attested = statement(PREDICATE_TYPE, predicate).unwrap();
            assert!(!attested.passed(), "{verdict}");
            assert_eq!(attested.result(), format!("verdict {verdict}"));
        }
        let vsa = serde_json::json!({ "resourceUri": "u", "verificationResult": "FAILED" });
        assert!(!statement(VSA_PREDICATE_TYPE, vsa).unwrap().passed());
        let vsa = serde_json::json!({ "resourceUri": "u", "verificationResult": "PASSED" });
        assert!(statement(VSA_PREDICATE_TYPE, vsa).unwrap().passed());
        for verdict in [
            Value::Null,
            serde_json::json!("PASS"),
            serde_json::json!(true),
        ] {
            let predicate = serde_json::json!({ "verdict": verdict.clone() });
            let e = statement(AUDIT_PREDICATE_TYPE, predicate).unwrap_err();
            assert!(e.contains("`verdict`"), "{verdict}: {e}");
        }
    }

    #[test]
    fn another_key_or_a_flipped_byte_does_not_check() {
        let statement = serde_json::json!({ "_type": STATEMENT_TYPE });
        let (bytes, _) = signed(&statement);
        let other = SigningKey::generate_ed25519().verifying_key();
        assert!(signed_payload(&bytes, &other).is_err());
        assert!(signed_payload(b"{}", &other).is_err());
    }
}
