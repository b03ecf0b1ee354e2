//! The script-level reads: `…/scripts/{s}/settings` (observers and the
//! script's placement, limits, cache options, usage model),
//! `…/scripts/{s}/script-settings` (the non-versioned settings: tail and
//! streaming tail consumers, Logpush, observability) and `…/scripts/{s}/tails`
//! (open live tails). Both settings endpoints can name an observer; the
//! observers are their union, and what each one said is kept for the
//! evidence, with any disagreement between them.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::compare::DeployedScriptSettings;

use super::client::Client;
use super::error::ApiError;
use super::live::Observers;

/// The endpoint names used in the evidence.
pub const SETTINGS: &str = "/settings";
pub const SCRIPT_SETTINGS: &str = "/script-settings";

fn shape(url: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Shape {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

/// What one settings endpoint says about observers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct View {
    tail_consumers: BTreeSet<String>,
    logpush: bool,
    log_destinations: BTreeSet<String>,
    trace_destinations: BTreeSet<String>,
    /// Workers Observability keeps logs or traces with Cloudflare.
    observability: bool,
    streaming_tail_consumers: BTreeSet<String>,
}

impl View {
    fn describe(&self, streaming: bool) -> String {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = format!(
            "tail consumers [{}], logpush {}, observability keeps data {}, log destinations \
             [{}], trace destinations [{}]",
            list(&self.tail_consumers),
            self.logpush,
            self.observability,
            list(&self.log_destinations),
            list(&self.trace_destinations),
        );
        if streaming {
            out.push_str(&format!(
                ", streaming tail consumers [{}]",
                list(&self.streaming_tail_consumers)
            ));
        }
        out
    }
}

fn strings(url: &str, value: Option<&Value>, what: &str) -> Result<BTreeSet<String>, ApiError> {
    super::live::strings(url, value, what).map(|v| v.into_iter().collect())
}

fn boolean(url: &str, value: Option<&Value>, what: &str) -> Result<Option<bool>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(shape(url, format!("`{what}` is not a boolean"))),
    }
}

fn object<'a>(
    url: &str,
    value: Option<&'a Value>,
    what: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(shape(url, format!("`{what}` is not an object"))),
    }
}

/// `[{service, environment?, namespace?}]` as names.
fn consumers(url: &str, value: Option<&Value>, what: &str) -> Result<BTreeSet<String>, ApiError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(BTreeSet::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(shape(url, format!("`{what}` is not a list"))),
    };
    let mut out = BTreeSet::new();
    for c in list {
        let service = c
            .get("service")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(url, format!("an entry of `{what}` has no `service`")))?;
        let mut name = service.to_owned();
        if let Some(env) = c.get("environment").and_then(Value::as_str) {
            name.push_str(&format!(" (environment {env})"));
        }
        if let Some(ns) = c.get("namespace").and_then(Value::as_str) {
            name.push_str(&format!(" (namespace {ns})"));
        }
        out.insert(name);
    }
    Ok(out)
}

/// The observers one settings endpoint names. `observability` is
/// `{enabled, head_sampling_rate, logs{enabled, destinations, persist,
/// invocation_logs}, traces{enabled, destinations, persist,
/// propagation_policy}}`: it keeps data with Cloudflare when enabled and its
/// logs (on unless `logs.enabled` is false) or its traces (when
/// `traces.enabled`) are persisted (unless `persist` is false).
fn view(url: &str, body: &Value, streaming: bool) -> Result<View, ApiError> {
    if !body.is_object() {
        return Err(shape(url, "`result` is not an object"));
    }
    let mut v = View {
        tail_consumers: consumers(url, body.get("tail_consumers"), "tail_consumers")?,
        logpush: boolean(url, body.get("logpush"), "logpush")?.unwrap_or(false),
        ..View::default()
    };
    if streaming {
        v.streaming_tail_consumers = consumers(
            url,
            body.get("streaming_tail_consumers"),
            "streaming_tail_consumers",
        )?;
    }
    let Some(o) = object(url, body.get("observability"), "observability")? else {
        return Ok(v);
    };
    let enabled = boolean(url, o.get("enabled"), "observability.enabled")?.unwrap_or(false);
    let logs = object(url, o.get("logs"), "observability.logs")?;
    let traces = object(url, o.get("traces"), "observability.traces")?;
    let field = |part: Option<&serde_json::Map<String, Value>>, key: &str| {
        part.and_then(|p| p.get(key)).cloned()
    };
    v.log_destinations = strings(
        url,
        field(logs, "destinations").as_ref(),
        "observability.logs.destinations",
    )?;
    v.trace_destinations = strings(
        url,
        field(traces, "destinations").as_ref(),
        "observability.traces.destinations",
    )?;
    let flag = |part, key: &str, what: &str| boolean(url, field(part, key).as_ref(), what);
    let logs_on = flag(logs, "enabled", "observability.logs.enabled")?.unwrap_or(true);
    let logs_kept = flag(logs, "persist", "observability.logs.persist")?.unwrap_or(true);
    let traces_on = flag(traces, "enabled", "observability.traces.enabled")?.unwrap_or(false);
    let traces_kept = flag(traces, "persist", "observability.traces.persist")?.unwrap_or(true);
    v.observability = enabled && ((logs_on && logs_kept) || (traces_on && traces_kept));
    Ok(v)
}

/// The script-level settings from `/settings`.
fn script_settings(url: &str, body: &Value) -> Result<DeployedScriptSettings, ApiError> {
    if !body.is_object() {
        return Err(shape(url, "`result` is not an object"));
    }
    let obj = |key: &str| -> Result<Option<Value>, ApiError> {
        Ok(object(url, body.get(key), key)?.map(|m| Value::Object(m.clone())))
    };
    let usage_model = match body.get("usage_model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(shape(url, "`usage_model` is not a string")),
    };
    Ok(DeployedScriptSettings {
        placement: obj("placement")?,
        limits: obj("limits")?,
        cache_options: obj("cache_options")?,
        usage_model,
    })
}

fn tails(url: &str, body: &Value) -> Result<Vec<String>, ApiError> {
    let list = body
        .as_array()
        .ok_or_else(|| shape(url, "`result` is not a list"))?;
    let mut tails = Vec::new();
    for t in list {
        let id = t["id"]
            .as_str()
            .ok_or_else(|| shape(url, "a tail has no `id`"))?;
        tails.push(id.to_owned());
    }
    tails.sort();
    Ok(tails)
}

/// Where the two endpoints disagree, one sentence per field.
fn disagreements(a: &View, b: &View) -> Vec<String> {
    let list =
        |s: &BTreeSet<String>| format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(", "));
    let mut out = Vec::new();
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            out.push(format!(
                "{SETTINGS} and {SCRIPT_SETTINGS} disagree on {what}: {x} vs {y}"
            ));
        }
    };
    differ(
        "tail consumers",
        list(&a.tail_consumers),
        list(&b.tail_consumers),
    );
    differ("logpush", a.logpush.to_string(), b.logpush.to_string());
    differ(
        "whether observability keeps data",
        a.observability.to_string(),
        b.observability.to_string(),
    );
    differ(
        "log destinations",
        list(&a.log_destinations),
        list(&b.log_destinations),
    );
    differ(
        "trace destinations",
        list(&a.trace_destinations),
        list(&b.trace_destinations),
    );
    out
}

fn union(a: &View, b: &View) -> View {
    let join = |x: &BTreeSet<String>, y: &BTreeSet<String>| x.union(y).cloned().collect();
    View {
        tail_consumers: join(&a.tail_consumers, &b.tail_consumers),
        logpush: a.logpush || b.logpush,
        log_destinations: join(&a.log_destinations, &b.log_destinations),
        trace_destinations: join(&a.trace_destinations, &b.trace_destinations),
        observability: a.observability || b.observability,
        streaming_tail_consumers: join(&a.streaming_tail_consumers, &b.streaming_tail_consumers),
    }
}

/// The observers (every read must succeed) and the script-level settings
/// (from `/settings` alone), each read on its own.
pub type ScriptReads = (
    Result<Observers, Arc<ApiError>>,
    Result<DeployedScriptSettings, Arc<ApiError>>,
);

/// Reads `/settings`, `/script-settings` and `/tails` concurrently.
pub async fn read(client: &Client, script: &str) -> ScriptReads {
    let settings_url = client.account_url(&format!("workers/scripts/{script}/settings"));
    let script_settings_url =
        client.account_url(&format!("workers/scripts/{script}/script-settings"));
    let tails_url = client.account_url(&format!("workers/scripts/{script}/tails"));
    let (settings, script_level, open) = tokio::join!(
        client.get_json::<Value>("settings", &settings_url),
        client.get_json::<Value>("script-settings", &script_settings_url),
        client.get_json::<Value>("tails", &tails_url),
    );
    let deployed = match &settings {
        Ok(body) => script_settings(&settings_url, body).map_err(Arc::new),
        Err(e) => Err(Arc::new(copy(e, &settings_url))),
    };
    let observers = (|| -> Result<Observers, ApiError> {
        let settings = view(&settings_url, &settings?, false)?;
        let script_level = view(&script_settings_url, &script_level?, true)?;
        let tails = tails(&tails_url, &open?)?;
        let all = union(&settings, &script_level);
        Ok(Observers {
            tail_consumers: all.tail_consumers.into_iter().collect(),
            logpush: all.logpush,
            log_destinations: all.log_destinations.into_iter().collect(),
            tails,
            streaming_tail_consumers: all.streaming_tail_consumers.into_iter().collect(),
            trace_destinations: all.trace_destinations.into_iter().collect(),
            observability: all.observability,
            said: vec![
                format!("{SETTINGS}: {}", settings.describe(false)),
                format!("{SCRIPT_SETTINGS}: {}", script_level.describe(true)),
            ],
            disagreements: disagreements(&settings, &script_level),
        })
    })();
    (observers.map_err(Arc::new), deployed)
}

/// The same failure again, for the second result that depends on one read
/// (`ApiError` holds sources that cannot be cloned): its message, kept.
fn copy(e: &ApiError, url: &str) -> ApiError {
    match e {
        ApiError::Unauthorized {
            url,
            status,
            detail,
        } => ApiError::Unauthorized {
            url: url.clone(),
            status: *status,
            detail: detail.clone(),
        },
        ApiError::Status {
            url,
            status,
            attempts,
            detail,
        } => ApiError::Status {
            url: url.clone(),
            status: *status,
            attempts: *attempts,
            detail: detail.clone(),
        },
        ApiError::Envelope { url, detail } => ApiError::Envelope {
            url: url.clone(),
            detail: detail.clone(),
        },
        ApiError::Shape { url, problem } => ApiError::Shape {
            url: url.clone(),
            problem: problem.clone(),
        },
        other => shape(url, crate::error_chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://api.test/settings";

    #[test]
    fn observability_keeps_data_only_when_enabled_and_persisted() {
        let v = |o: Value| view(URL, &json!({ "observability": o }), false).unwrap();
        assert!(!v(json!({ "enabled": false })).observability);
        assert!(
            v(json!({ "enabled": true })).observability,
            "logs default on"
        );
        assert!(
            !v(json!({ "enabled": true, "logs": { "persist": false, "destinations": ["d"] } }))
                .observability
        );
        let t = v(json!({
            "enabled": true,
            "logs": { "enabled": false },
            "traces": { "enabled": true, "destinations": ["otel"] },
        }));
        assert!(t.observability);
        assert_eq!(t.trace_destinations, BTreeSet::from(["otel".to_owned()]));
    }

    #[test]
    fn bad_shapes_name_the_field() {
        for (body, field) in [
            (
                json!({ "observability": { "enabled": "yes" } }),
                "observability.enabled",
            ),
            (
                json!({ "observability": { "traces": { "destinations": "x" } } }),
                "observability.traces.destinations",
            ),
            (
                json!({ "streaming_tail_consumers": [{}] }),
                "streaming_tail_consumers",
            ),
            (json!({ "observability": [] }), "observability"),
            (json!({ "logpush": 1 }), "logpush"),
        ] {
            let e = view(URL, &body, true).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(field) && text.contains(URL), "{text}");
        }
        for (body, field) in [
            (json!({ "placement": "smart" }), "placement"),
            (json!({ "limits": 50 }), "limits"),
            (json!({ "cache_options": true }), "cache_options"),
            (json!({ "usage_model": 1 }), "usage_model"),
        ] {
            let text = script_settings(URL, &body).unwrap_err().to_string();
            assert!(text.contains(field), "{text}");
        }
    }

    #[test]
    fn the_union_keeps_both_and_a_disagreement_is_named() {
        let a = view(
            URL,
            &json!({ "tail_consumers": [{ "service": "a" }] }),
            false,
        )
        .unwrap();
        let b = view(
            URL,
            &json!({ "tail_consumers": [{ "service": "b" }], "logpush": true }),
            true,
        )
        .unwrap();
        let u = union(&a, &b);
        assert_eq!(u.tail_consumers.len(), 2);
        assert!(u.logpush);
        let d = disagreements(&a, &b).join("\n");
        assert!(d.contains("tail consumers: [a] vs [b]"), "{d}");
        assert!(d.contains("logpush"), "{d}");
        assert!(disagreements(&a, &a).is_empty());
    }
}
