//! `verify.provenance`: for every live version (every version with a share
//! of traffic), where it came from and what it was built with.
//!
//! - Its source (`metadata.source`): a version created in the dashboard,
//!   the quick editor or the playground did not come from the source's
//!   build: `warn` with what its annotations say; an unknown or unreported
//!   source is `warn` too. A rollback or a secret change is a note.
//! - Its `package_dependencies` (beta versions API): each reported package
//!   must be in the source's lockfile at the installed version, else `fail`
//!   naming it. When the API reports none (the field is absent, the list is
//!   empty, or the modules came from the script download) the dependencies
//!   cannot be compared: `error`, never a pass as if they had been.
//!
//! Status: `fail` over `error` over `warn` over `pass`; the summary names
//! every part. The author's email is personal data: only its domain is
//! shown, in the evidence, with the author id.

use std::path::Path;

use crate::cloudflare::{Dependencies, Live, PackageDependency, Provenance, VersionData};
use crate::compare::{LOCKFILE_NAMES, Lockfile};
use crate::error_chain;
use crate::model::{Evidence, Finding};

use super::{Inputs, exchanges, live, percent};

pub const PROVENANCE: &str = "verify.provenance";

/// Sources that are a build pipeline or an API client: the code came from
/// whoever ran it, which the other checks compare with the rebuild.
const PIPELINE: [&str; 6] = [
    "wrangler",
    "api",
    "terraform",
    "workersci",
    "cf_cli",
    "integration",
];

/// Sources that are an edit in the Cloudflare dashboard.
const DASHBOARD: [(&str, &str); 4] = [
    ("dash", "the dashboard"),
    ("quick_editor", "the dashboard's quick editor"),
    ("playground", "the Workers playground"),
    ("dash_template", "a dashboard template"),
];

/// How much of a version's message a summary shows.
const MESSAGE_CHARS: usize = 200;

/// Only the domain of an email address (the address is personal data).
fn email_domain(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => format!("an address at {domain}"),
        _ => "an address".to_owned(),
    }
}

/// What the annotations say, for a summary: `triggered by `x`, message "…"`.
fn says(p: &Provenance) -> String {
    let mut out = Vec::new();
    if let Some(t) = &p.triggered_by {
        out.push(format!("triggered by `{t}`"));
    }
    if let Some(m) = &p.message {
        // Up to 1000 bytes in the API; a summary shows the start.
        let shown: String = m.chars().take(MESSAGE_CHARS).collect();
        let more = if shown.len() < m.len() { "…" } else { "" };
        out.push(format!("message {shown:?}{more}"));
    }
    if let Some(t) = &p.tag {
        out.push(format!("tag {t:?}"));
    }
    if let Some(c) = &p.created_on {
        out.push(format!("created {c}"));
    }
    if out.is_empty() {
        if p.annotations_read {
            "no message or trigger annotated".to_owned()
        } else {
            "annotations not read".to_owned()
        }
    } else {
        out.join(", ")
    }
}

fn describe(who: &str, p: &Provenance) -> String {
    let author = match (&p.author_id, &p.author_email) {
        (Some(id), Some(e)) => format!("author {id} ({})", email_domain(e)),
        (Some(id), None) => format!("author {id}"),
        (None, Some(e)) => format!("author {}", email_domain(e)),
        (None, None) => "no author".to_owned(),
    };
    let deps = match &p.dependencies {
        Dependencies::Reported(d) => d
            .iter()
            .map(|d| format!("{}@{}", d.name, d.installed_version))
            .collect::<Vec<_>>()
            .join(", "),
        Dependencies::NotReported => "none reported".to_owned(),
        Dependencies::Unavailable(_) => "not read".to_owned(),
    };
    format!(
        "{who}: source `{}`, {}, {author}; package_dependencies [{deps}]",
        p.source.as_deref().unwrap_or("(not reported)"),
        says(p)
    )
}

/// The source's lockfile, read once when a version reports dependencies.
fn read_lockfile(declared: Option<&Path>, source: &Path) -> Result<Lockfile, String> {
    match declared {
        Some(path) => Lockfile::read(path).map_err(|e| error_chain(&e)),
        None => Err(format!(
            "no lockfile to compare with: none is declared (`[verify] lockfile`) and the source \
             folder `{}` has none of {}",
            source.display(),
            LOCKFILE_NAMES.join(", ")
        )),
    }
}

/// The differences of one version's dependencies from the lockfile.
fn disagreements(
    deps: &[PackageDependency],
    lock: &Lockfile,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for d in deps {
        match lock.version(&d.name) {
            None => out.push(format!(
                "`{}` {} is not in the lockfile",
                d.name, d.installed_version
            )),
            Some(pinned) if pinned != d.installed_version => out.push(format!(
                "`{}` installed {}, the lockfile pins {pinned}",
                d.name, d.installed_version
            )),
            Some(_) => {}
        }
        if let (Some(reported), Some(declared)) =
            (&d.package_json_version, lock.constraints.get(&d.name))
            && reported != declared
        {
            notes.push(format!(
                "`{}`: the version's package.json asks for {reported:?}, the lockfile's root \
                 package for {declared:?}",
                d.name
            ));
        }
    }
    out
}

fn labels(v: &VersionData) -> Vec<String> {
    vec![
        format!("version {}", v.live.version_id),
        format!("modules of version {}", v.live.version_id),
    ]
}

/// `verify.provenance`.
pub fn provenance(inputs: &Inputs<'_>) -> Finding {
    let live: &Live = match live(inputs) {
        Ok(l) => l,
        Err(f) => return f,
    };
    let serving: Vec<&VersionData> = live
        .versions
        .iter()
        .filter(|v| v.live.percentage > 0.0)
        .collect();
    if serving.is_empty() {
        return Finding::error("the active deployment sends traffic to no version");
    }
    let declared = inputs.target.provenance.lockfile.as_deref();
    let mut lockfile: Option<Result<Lockfile, String>> = None;
    let (mut failed, mut errors, mut warned) = (Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    let mut compared = 0usize;
    let mut labels_all = vec!["deployments".to_owned(), "script download".to_owned()];
    for v in &serving {
        labels_all.extend(labels(v));
        let who = format!(
            "version {} ({})",
            v.live.version_id,
            percent(v.live.percentage)
        );
        let p = match &v.provenance {
            Ok(p) => p,
            Err(e) => {
                let hint = if e.is_auth() {
                    " (the token needs the \"Workers Scripts Read\" permission)"
                } else {
                    ""
                };
                errors.push(format!(
                    "{who}: its provenance could not be read: {}{hint}",
                    error_chain(e.as_ref())
                ));
                continue;
            }
        };
        notes.push(describe(&who, p));
        match p.source.as_deref() {
            Some(s) if PIPELINE.contains(&s) => {}
            Some(s) => match DASHBOARD.iter().find(|(id, _)| *id == s) {
                Some((_, place)) => warned.push(format!(
                    "{who} was created in {place} (source `{s}`; {}), not by a build of the source",
                    says(p)
                )),
                None => warned.push(format!(
                    "{who} was created by an unknown client (source `{s}`; {})",
                    says(p)
                )),
            },
            None => warned.push(format!(
                "{who}: the API reports no source for it ({})",
                says(p)
            )),
        }
        match p.triggered_by.as_deref() {
            None | Some("upload") => {}
            Some("rollback") => notes.push(format!(
                "{who} was created by a rollback: it serves an earlier upload's code"
            )),
            Some("secret") => notes.push(format!(
                "{who} was created by a secret change: the previous version's code with a new \
                 secret"
            )),
            Some(other) => notes.push(format!("{who} was triggered by `{other}`")),
        }
        match &p.dependencies {
            Dependencies::Reported(deps) => {
                let lock = lockfile
                    .get_or_insert_with(|| read_lockfile(declared, &inputs.target.recipe.source));
                match lock {
                    Ok(lock) => {
                        compared += deps.len();
                        let d = disagreements(deps, lock, &mut notes);
                        if !d.is_empty() {
                            failed.push(format!("{who}: {}", d.join(", ")));
                        }
                    }
                    Err(e) => {
                        if !errors.contains(e) {
                            errors.push(e.clone());
                        }
                    }
                }
            }
            Dependencies::NotReported => errors.push(format!(
                "{who}: the beta versions API reports no package_dependencies, so its \
                 dependencies cannot be compared with the lockfile"
            )),
            Dependencies::Unavailable(why) => errors.push(format!(
                "{who}: its dependencies cannot be compared with the lockfile: {why}"
            )),
        }
    }
    let lock_name = declared
        .map(|p| format!("`{}`", p.display()))
        .unwrap_or_else(|| "the lockfile".to_owned());
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!(
            "dependencies disagree with {lock_name}: {}",
            failed.join(" | ")
        ));
    }
    if !errors.is_empty() {
        parts.push(format!("cannot judge: {}", errors.join(" | ")));
    }
    if !warned.is_empty() {
        parts.push(warned.join(" | "));
    }
    let finding = if !failed.is_empty() {
        Finding::fail(parts.join("; "))
    } else if !errors.is_empty() {
        Finding::error(parts.join("; "))
    } else if !warned.is_empty() {
        Finding::new(crate::model::Status::Warn, parts.join("; "))
    } else {
        Finding::pass(format!(
            "{} live version(s) came from a build pipeline (not the dashboard), and their {} \
             reported dependencies are installed at the versions {lock_name} pins",
            serving.len(),
            compared
        ))
    };
    let context = exchanges(inputs, &labels_all);
    notes
        .into_iter()
        .map(Evidence::note)
        .fold(finding, Finding::with)
        .with_exchanges(context)
}
