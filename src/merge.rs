//! `flareproof merge`: one report from shards of the same suite, run as
//! the cells of a CI matrix.
//!
//! - Shards of **different targets** (tenants) make a fleet: one
//!   [`FleetRow`] per target (its verdict and failing ids, worst first),
//!   and every target's checks, each naming its target
//!   ([`CheckResult::target`]).
//! - Shards of **the same target from different places** (each run with
//!   `--vantage-label`) are one target's checks: a check fails if any shard
//!   failed it, is `error` if any shard could not decide and none failed,
//!   and keeps every shard's evidence, each measurement, timeline and
//!   exchange under its shard's label, so the revocation chart shows every
//!   place.
//!
//! Shards must agree on the tool and its version, the suite (its id and
//! the sha256 of its file) and the profile's values; shards of one target
//! also on the command. A shard that disagrees, a merged report given as a
//! shard, a report that does not say what it was judged against, and two
//! shards of one target from the same place are errors naming the shard.
//!
//! The merge is one pass over the shards, each folded in as it is read
//! (the shard's text is dropped once parsed), with hash-indexed lookups:
//! linear in the number of shards and their checks.

use std::collections::{HashMap, HashSet};

use crate::diff::Loaded;
use crate::model::{
    CheckId, CheckResult, Counts, Evidence, FleetRow, Parameters, Report, Status, Subject, Tool,
    Verdict,
};
use crate::report::text;

/// The `command` of a merged report.
pub const COMMAND: &str = "merge";

/// The longest summary a merged check keeps (the shards' own are whole in
/// their evidence notes when they differ).
const SUMMARY_LIMIT: usize = 4000;

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: no report was given (or none was found in the folders given)")]
    Empty,
    #[error("merge `{shard}`: it is itself a merged report; merge the shards it was made from")]
    Merged { shard: String },
    #[error(
        "merge `{shard}`: it does not say which suite file and profile values it was judged \
         against (a report of an older flareproof); run it again"
    )]
    NoParameters { shard: String },
    #[error("merge `{shard}`: it names no target (neither a base URL nor a script)")]
    NoTarget { shard: String },
    #[error(
        "merge `{shard}`: its vantage label `{label}` is not one (1 to 64 ASCII letters, \
         digits, `.`, `_` or `-`, starting with a letter or digit)"
    )]
    Label { shard: String, label: String },
    #[error(
        "merge `{shard}` with `{first}`: they disagree on {what} (`{theirs}` in `{shard}`, \
         `{ours}` in `{first}`)"
    )]
    Disagree {
        shard: String,
        first: String,
        what: &'static str,
        theirs: String,
        ours: String,
    },
    #[error(
        "merge `{shard}` with `{other}`: both are of `{target}` {place}; run each place with \
         a --vantage-label of its own"
    )]
    SamePlace {
        shard: String,
        other: String,
        target: String,
        place: String,
    },
}

/// Whether `label` can name a place: 1 to 64 ASCII letters, digits, `.`,
/// `_` or `-`, starting with a letter or digit (so that `label: …` in a
/// measurement's vantage reads back unambiguously).
pub fn valid_label(label: &str) -> bool {
    let mut bytes = label.bytes();
    label.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `what` as measured from `label`: the form every relabelled vantage,
/// bucket, exchange label and note takes.
pub fn labelled(label: &str, what: &str) -> String {
    format!("{label}: {what}")
}

/// The label and the rest of a [`labelled`] text, when it is one.
pub fn split_label(text: &str) -> Option<(&str, &str)> {
    text.split_once(": ")
        .filter(|(label, _)| valid_label(label))
}

/// How a target is named in a merged report.
pub fn target_name(subject: &Subject) -> Option<String> {
    match (&subject.script, &subject.base_url) {
        (Some(script), Some(url)) => Some(format!("{script} at {url}")),
        (Some(script), None) => Some(script.clone()),
        (None, Some(url)) => Some(url.clone()),
        (None, None) => None,
    }
}

/// One check of one target, over that target's shards.
struct Acc {
    result: CheckResult,
    /// Per shard that ran it: its label, status and summary.
    seen: Vec<(Option<String>, Status, String)>,
    /// The digests and diffs it holds, as JSON (kept once each).
    alike: HashSet<String>,
}

impl Acc {
    /// Whether `e` is to be kept: verify's digests and diffs are alike from
    /// every place, so each is kept once; everything else is kept.
    fn first_time(&mut self, e: &Evidence) -> bool {
        if !matches!(e, Evidence::Digest(_) | Evidence::Diff(_)) {
            return true;
        }
        self.alike
            .insert(serde_json::to_string(e).unwrap_or_default())
    }
}

/// One target's shards, folded.
struct Group {
    target: String,
    subject: Subject,
    command: String,
    labels: Vec<Option<String>>,
    shards: Vec<String>,
    checks: Vec<Acc>,
    index: HashMap<(CheckId, Option<String>), usize>,
}

impl Group {
    fn new(target: String, shard: &Loaded) -> Self {
        Group {
            target,
            subject: shard.report.subject.clone(),
            command: shard.report.command.clone(),
            labels: Vec::new(),
            shards: Vec::new(),
            checks: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn add(&mut self, shard: Loaded) -> Result<(), MergeError> {
        let label = shard.report.vantage_label.clone();
        if shard.report.command != self.command {
            return Err(MergeError::Disagree {
                shard: shard.path,
                // The group's command is its first shard's.
                first: self.shards.first().cloned().unwrap_or_default(),
                what: "the command of one target's runs",
                theirs: shard.report.command,
                ours: self.command.clone(),
            });
        }
        // Two shards of one target must each say where they were run from,
        // and from different places.
        if !self.labels.is_empty() {
            let clash = self
                .labels
                .iter()
                .position(|l| l.is_none() || label.is_none() || *l == label);
            if let Some(i) = clash {
                let place = match (&self.labels[i], &label) {
                    (Some(l), Some(_)) => format!("from the same place (`{l}`)"),
                    _ => "and one of them has no --vantage-label".to_owned(),
                };
                return Err(MergeError::SamePlace {
                    shard: shard.path,
                    other: self.shards[i].clone(),
                    target: self.target.clone(),
                    place,
                });
            }
        }
        self.labels.push(label.clone());
        self.shards.push(shard.path);
        for mut check in shard.report.checks {
            let key = (check.id.clone(), check.version.clone());
            let evidence = std::mem::take(&mut check.evidence);
            let evidence = match &label {
                Some(l) => evidence.into_iter().map(|e| relabel(e, l)).collect(),
                None => evidence,
            };
            let seen = (label.clone(), check.status, check.summary.clone());
            match self.index.get(&key) {
                Some(&i) => {
                    let acc = &mut self.checks[i];
                    acc.seen.push(seen);
                    acc.result.duration_ms = acc.result.duration_ms.max(check.duration_ms);
                    for e in evidence {
                        if acc.first_time(&e) {
                            acc.result.evidence.push(e);
                        }
                    }
                }
                None => {
                    let mut acc = Acc {
                        result: check,
                        seen: vec![seen],
                        alike: HashSet::new(),
                    };
                    for e in evidence {
                        if acc.first_time(&e) {
                            acc.result.evidence.push(e);
                        }
                    }
                    self.index.insert(key, self.checks.len());
                    self.checks.push(acc);
                }
            }
        }
        Ok(())
    }

    /// The target's checks, each concluded over its shards.
    fn conclude(self) -> (Vec<CheckResult>, FleetRow) {
        let shards = self.labels.len();
        let place = |l: &Option<String>| l.clone().unwrap_or_else(|| "(no label)".to_owned());
        let checks: Vec<CheckResult> = self
            .checks
            .into_iter()
            .map(|acc| {
                let mut result = acc.result;
                result.status = combine(acc.seen.iter().map(|(_, s, _)| *s));
                result.summary = summary(&acc.seen, &place);
                if acc.seen.len() < shards {
                    let missing: Vec<String> = self
                        .labels
                        .iter()
                        .filter(|l| !acc.seen.iter().any(|(s, _, _)| s == *l))
                        .map(place)
                        .collect();
                    result.evidence.push(Evidence::note(format!(
                        "not run from {} (that run did not have this check)",
                        missing.join(", ")
                    )));
                }
                result
            })
            .collect();
        let statuses: Vec<Status> = checks.iter().map(|c| c.status).collect();
        let ids = |status: Status| -> Vec<String> {
            checks
                .iter()
                .filter(|c| c.status == status)
                .map(text::label)
                .collect()
        };
        let row = FleetRow {
            target: self.target,
            verdict: Verdict::of(&statuses),
            counts: Counts::of(&statuses),
            failing: ids(Status::Fail),
            undecided: ids(Status::Error),
            vantage_labels: self.labels.iter().flatten().cloned().collect(),
            shards: self.shards,
        };
        (checks, row)
    }
}

/// A check's status over the places it ran from: any `fail` fails it;
/// else any `error` leaves it undecided; else a `warn` anywhere warns;
/// else it passed if it passed anywhere, and was skipped everywhere
/// otherwise.
fn combine(statuses: impl Iterator<Item = Status> + Clone) -> Status {
    [Status::Fail, Status::Error, Status::Warn, Status::Pass]
        .into_iter()
        .find(|s| statuses.clone().any(|x| x == *s))
        .unwrap_or(Status::Skip)
}

/// The order statuses are told in: the worst first.
fn rank(status: Status) -> u8 {
    match status {
        Status::Fail => 0,
        Status::Error => 1,
        Status::Warn => 2,
        Status::Pass => 3,
        Status::Skip => 4,
    }
}

/// One summary, or per distinct outcome the places that had it, the worst
/// first.
fn summary(
    seen: &[(Option<String>, Status, String)],
    place: &dyn Fn(&Option<String>) -> String,
) -> String {
    let mut outcomes: Vec<(Status, &str, Vec<String>)> = Vec::new();
    for (label, status, summary) in seen {
        match outcomes
            .iter_mut()
            .find(|(s, m, _)| s == status && *m == summary)
        {
            Some((_, _, places)) => places.push(place(label)),
            None => outcomes.push((*status, summary, vec![place(label)])),
        }
    }
    if let [(_, summary, _)] = outcomes.as_slice() {
        return (*summary).to_owned();
    }
    outcomes.sort_by_key(|(s, _, _)| rank(*s));
    let told: Vec<String> = outcomes
        .iter()
        .map(|(status, summary, places)| format!("{status} from {}: {summary}", places.join(", ")))
        .collect();
    text::cut(&told.join("; "), SUMMARY_LIMIT)
}

/// A shard's evidence under its label: measurements by vantage, timelines
/// by bucket, exchanges and notes by their text.
fn relabel(evidence: Evidence, label: &str) -> Evidence {
    match evidence {
        Evidence::Measurement(mut m) => {
            m.vantage = Some(match m.vantage {
                Some(v) => labelled(label, &v),
                None => label.to_owned(),
            });
            Evidence::Measurement(m)
        }
        Evidence::Timeline(mut t) => {
            t.bucket = labelled(label, &t.bucket);
            Evidence::Timeline(t)
        }
        Evidence::Exchange(mut x) => {
            x.label = labelled(label, &x.label);
            Evidence::Exchange(x)
        }
        Evidence::Note { text } => Evidence::Note {
            text: labelled(label, &text),
        },
        other => other,
    }
}

/// What every shard must agree on, from the first shard.
struct Agreement {
    first: String,
    tool: Tool,
    profile: String,
    parameters: Parameters,
}

impl Agreement {
    fn of(shard: &Loaded) -> Result<Self, MergeError> {
        Ok(Agreement {
            first: shard.path.clone(),
            tool: shard.report.tool.clone(),
            profile: shard.report.profile.clone(),
            parameters: parameters(shard)?.clone(),
        })
    }

    fn check(&mut self, shard: &Loaded) -> Result<(), MergeError> {
        let disagree = |what, theirs: String, ours: String| MergeError::Disagree {
            shard: shard.path.clone(),
            first: self.first.clone(),
            what,
            theirs,
            ours,
        };
        if shard.report.tool != self.tool {
            let show = |t: &Tool| format!("{} {}", t.name, t.version);
            return Err(disagree(
                "the tool version",
                show(&shard.report.tool),
                show(&self.tool),
            ));
        }
        if shard.report.profile != self.profile {
            return Err(disagree(
                "the suite",
                shard.report.profile.clone(),
                self.profile.clone(),
            ));
        }
        let theirs = parameters(shard)?;
        if theirs.suite_sha256 != self.parameters.suite_sha256 {
            return Err(disagree(
                "the suite file (sha256)",
                theirs.suite_sha256.clone(),
                self.parameters.suite_sha256.clone(),
            ));
        }
        match (&theirs.profile, &self.parameters.profile) {
            (Some(t), Some(o)) if t != o => {
                let json = |p| serde_json::to_string(p).unwrap_or_default();
                return Err(disagree("the profile's values", json(t), json(o)));
            }
            // A verify shard judged no profile values; the first conform
            // shard's are the ones every later one must equal.
            (Some(t), None) => self.parameters.profile = Some(t.clone()),
            _ => {}
        }
        Ok(())
    }
}

fn parameters(shard: &Loaded) -> Result<&Parameters, MergeError> {
    shard
        .report
        .parameters
        .as_ref()
        .ok_or_else(|| MergeError::NoParameters {
            shard: shard.path.clone(),
        })
}

/// The merge under way: shards are [`add`](Merger::add)ed one by one (each
/// dropped once folded in), then [`finish`](Merger::finish)ed.
#[derive(Default)]
pub struct Merger {
    agreement: Option<Agreement>,
    groups: Vec<Group>,
    by_target: HashMap<String, usize>,
    started_at: Option<String>,
    duration_ms: u64,
}

impl Merger {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many shards were added.
    pub fn shards(&self) -> usize {
        self.groups.iter().map(|g| g.shards.len()).sum()
    }

    /// Folds one shard in, or says why it cannot be.
    pub fn add(&mut self, shard: Loaded) -> Result<(), MergeError> {
        if shard.report.command == COMMAND || !shard.report.fleet.is_empty() {
            return Err(MergeError::Merged { shard: shard.path });
        }
        if let Some(label) = &shard.report.vantage_label
            && !valid_label(label)
        {
            return Err(MergeError::Label {
                shard: shard.path.clone(),
                label: label.clone(),
            });
        }
        match &mut self.agreement {
            None => self.agreement = Some(Agreement::of(&shard)?),
            Some(a) => a.check(&shard)?,
        }
        let Some(target) = target_name(&shard.report.subject) else {
            return Err(MergeError::NoTarget { shard: shard.path });
        };
        if self
            .started_at
            .as_ref()
            .is_none_or(|s| shard.report.started_at < *s)
        {
            self.started_at = Some(shard.report.started_at.clone());
        }
        self.duration_ms = self.duration_ms.max(shard.report.duration_ms);
        let groups = &mut self.groups;
        let i = *self.by_target.entry(target.clone()).or_insert_with(|| {
            groups.push(Group::new(target, &shard));
            groups.len() - 1
        });
        groups[i].add(shard)
    }

    /// The merged report.
    pub fn finish(self) -> Result<Report, MergeError> {
        let Some(agreement) = self.agreement else {
            return Err(MergeError::Empty);
        };
        let several = self.groups.len() > 1;
        let subject = match self.groups.as_slice() {
            [one] => one.subject.clone(),
            _ => Subject {
                base_url: None,
                vantages: Vec::new(),
                script: None,
            },
        };
        let mut concluded: Vec<(Vec<CheckResult>, FleetRow)> =
            self.groups.into_iter().map(Group::conclude).collect();
        concluded.sort_by(|(_, a), (_, b)| {
            rank(a.verdict.status())
                .cmp(&rank(b.verdict.status()))
                .then(b.failing.len().cmp(&a.failing.len()))
                .then(b.undecided.len().cmp(&a.undecided.len()))
                .then_with(|| a.target.cmp(&b.target))
        });
        let mut checks = Vec::new();
        let mut fleet = Vec::new();
        for (mut target_checks, row) in concluded {
            if several {
                for c in &mut target_checks {
                    c.target = Some(row.target.clone());
                }
            }
            checks.extend(target_checks);
            fleet.push(row);
        }
        let mut report = Report::new(
            COMMAND,
            &agreement.profile,
            subject,
            self.started_at.unwrap_or_default(),
            self.duration_ms,
            checks,
        );
        // The shards' tool, which judged them (the same in every shard).
        report.tool = agreement.tool;
        report.parameters = Some(agreement.parameters);
        report.fleet = fleet;
        Ok(report)
    }
}

/// Merges shards already read.
pub fn merge(shards: impl IntoIterator<Item = Loaded>) -> Result<Report, MergeError> {
    let mut merger = Merger::new();
    for shard in shards {
        merger.add(shard)?;
    }
    merger.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_plain_names() {
        for ok in ["eu-west", "us_east.2", "a", "X9"] {
            assert!(valid_label(ok), "{ok}");
        }
        for bad in ["", "-eu", "eu west", "eu: west", "ü", &"a".repeat(65)] {
            assert!(!valid_label(bad), "{bad:?}");
        }
        assert_eq!(
            split_label(&labelled("eu-west", "http://127.0.0.1:1/")),
            Some(("eu-west", "http://127.0.0.1:1/"))
        );
        assert_eq!(split_label("http://127.0.0.1:1/"), None);
    }

    #[test]
    fn a_fail_anywhere_fails_and_an_error_without_one_is_undecided() {
        use Status::*;
        let c = |s: &[Status]| combine(s.iter().copied());
        assert_eq!(c(&[Pass, Fail, Error]), Fail);
        assert_eq!(c(&[Pass, Error]), Error);
        assert_eq!(c(&[Pass, Warn]), Warn);
        assert_eq!(c(&[Skip, Pass]), Pass);
        assert_eq!(c(&[Skip, Skip]), Skip);
    }
}
