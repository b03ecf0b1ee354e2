//! `verify.settings-match`'s verdict, and the observers it adds to
//! `verify.no-undeclared-observers`: pure functions of what was read.
//!
//! settings-match compares, for the version with the largest share: the
//! compatibility date and flags, the bindings (name, type, target, the value
//! of a `plain_text`/`json` binding; secrets by name and type only), the
//! script's placement, limits, cache options and usage model (`/settings`),
//! and the layout of its modules against the rebuild (each module's content
//! type, the entry module). Any difference fails; otherwise anything that
//! was declared and could not be compared makes it `error`.

use std::sync::Arc;

use crate::cloudflare::{ApiError, Observers, VersionData};
use crate::compare::{
    Bundle, DeclaredSettings, DeployedScriptSettings, SettingsComparison, compare_layout,
    compare_script_settings, compare_settings, shown_value,
};
use crate::error_chain;
use crate::model::{Evidence, Finding};
use crate::target::DeclaredObservers;

use super::unreadable;

/// The finding of settings-match (exchanges are added by the caller).
pub fn judge(
    declared: &DeclaredSettings,
    primary: &VersionData,
    script: &Result<DeployedScriptSettings, Arc<ApiError>>,
    rebuilt: Option<&Bundle>,
) -> Finding {
    let id = &primary.live.version_id;
    let mut c = SettingsComparison {
        differences: Vec::new(),
        unobservable: Vec::new(),
        uncompared: Vec::new(),
    };
    let mut seen = Vec::new();
    match &primary.settings {
        Ok(settings) => {
            c.extend(compare_settings(declared, settings));
            let bindings: Vec<String> = settings
                .bindings
                .iter()
                .map(|b| {
                    let mut s = format!("{} ({}", b.name, b.kind);
                    if let Some(t) = &b.target {
                        s.push_str(&format!(" → {t}"));
                    }
                    if let Some(v) = &b.value {
                        s.push_str(&format!(" = {}", shown_value(v)));
                    }
                    s.push(')');
                    s
                })
                .collect();
            seen.push(format!(
                "deployed version {id}: compatibility date {}, flags [{}], bindings [{}]",
                settings.compatibility_date.as_deref().unwrap_or("unset"),
                settings.compatibility_flags.join(", "),
                bindings.join(", ")
            ));
        }
        Err(e) => c.unobservable.push(format!(
            "the settings of version {id} could not be read: {}",
            unreadable(e.as_ref())
        )),
    }
    match script {
        Ok(s) => {
            c.extend(compare_script_settings(declared, s));
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map(shown_value)
                    .unwrap_or_else(|| "unset".to_owned())
            };
            seen.push(format!(
                "deployed script settings (/settings): placement {}, limits {}, cache_options {}, \
                 usage model {}",
                show(&s.placement),
                show(&s.limits),
                show(&s.cache_options),
                s.usage_model.as_deref().unwrap_or("unset")
            ));
        }
        Err(e) => c.unobservable.push(format!(
            "the script's settings (placement, limits, cache options, usage model) could not be \
             read: {}",
            unreadable(e.as_ref())
        )),
    }
    match (rebuilt, &primary.modules) {
        (Some(rebuilt), Ok((deployed, source))) => {
            c.extend(compare_layout(rebuilt, deployed));
            let types = |b: &Bundle| {
                b.modules()
                    .iter()
                    .map(|m| {
                        format!(
                            "{} {}",
                            m.name,
                            m.content_type.as_deref().unwrap_or("(no content type)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            seen.push(format!(
                "modules: deployed (read from the {}) entry {}, [{}]; rebuilt entry {}, [{}]",
                source.as_str(),
                deployed.main_module.as_deref().unwrap_or("-"),
                types(deployed),
                rebuilt.main_module.as_deref().unwrap_or("-"),
                types(rebuilt),
            ));
        }
        (None, _) => c.unobservable.push(
            "the modules' content types and entry module cannot be compared: the rebuild failed"
                .to_owned(),
        ),
        (_, Err(e)) => c.unobservable.push(format!(
            "the modules' content types and entry module cannot be compared: the modules of \
             version {id} could not be read: {}",
            error_chain(e.as_ref())
        )),
    }
    let who = format!("version {id}");
    let finding = if !c.differences.is_empty() {
        let mut f = Finding::fail(format!("{who}: {}", c.differences.join("; ")));
        for d in &c.differences {
            f = f.with(Evidence::note(d.clone()));
        }
        f
    } else if !c.unobservable.is_empty() {
        Finding::error(format!(
            "{who}: could not compare everything declared: {}",
            c.unobservable.join("; ")
        ))
    } else {
        Finding::pass(format!(
            "{who} runs with the declared compatibility date, flags, bindings (values where \
             declared, secrets by name), placement, limits, cache options and usage model, and \
             its modules have the rebuilt content types and entry module"
        ))
    };
    c.unobservable
        .iter()
        .chain(&c.uncompared)
        .chain(&seen)
        .fold(finding, |f, n| f.with(Evidence::note(n.clone())))
}

/// Whether `name` (a service, maybe with ` (environment …)`) is declared.
fn declared_consumer(name: &str, declared: &[String]) -> bool {
    let service = name.split(" (").next().unwrap_or(name);
    declared.iter().any(|d| d == name || d == service)
}

/// The observers `/script-settings` and `/settings` observability add:
/// streaming tail consumers, trace destinations, observability storage.
pub fn undeclared_observers(observers: &Observers, declared: &DeclaredObservers) -> Vec<String> {
    let mut out = Vec::new();
    for consumer in &observers.streaming_tail_consumers {
        if !declared_consumer(consumer, &declared.streaming_tail_consumers) {
            out.push(format!("streaming tail consumer `{consumer}`"));
        }
    }
    for dest in &observers.trace_destinations {
        if !declared.trace_destinations.contains(dest) {
            out.push(format!("Workers Observability trace destination `{dest}`"));
        }
    }
    if observers.observability && !declared.observability {
        out.push(
            "Workers Observability is on and keeps the Worker's logs or traces with Cloudflare"
                .to_owned(),
        );
    }
    out
}
