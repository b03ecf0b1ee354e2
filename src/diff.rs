//! Two reports of the same suite side by side (`flareproof diff`, and
//! `--baseline` on the checking commands): per check the status change,
//! new failures first; the measurements of both runs (time to refusal
//! p50/max per vantage, other measurements, rate-limit counts per bucket,
//! module digests). Rendered as Markdown (a pull-request comment or job
//! summary) and as one self-contained HTML page with the report's charts
//! of both runs side by side.
//!
//! A report is read only if it validates against the committed
//! `reports/report.schema.json` (else an error naming the file and the
//! first violation); two reports of different suites are an error naming
//! both. NEW *regresses* when it fails a check that BASE did not fail
//! (including a check BASE did not run).
//!
//! Checks are matched by id and pinned version. Vantages are matched by
//! their role in each run (the target's `base_url`, then the extra
//! vantages in configured order), not by URL: two runs of the same suite
//! against different hosts or ports still line up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::model::Verdict;
use crate::model::{CheckResult, Evidence, Measurement, ModuleDigest, Report, Status, Timeline};
use crate::report::html::parts::{STYLE, badge, check_charts, esc, most_allowed_in_a_window};
use crate::report::markdown::{cell, icon};
use crate::report::text;

/// The committed schema every report read must validate against.
pub const REPORT_SCHEMA: &str = include_str!("../reports/report.schema.json");

/// The file names `--out DIR` gets.
pub const MARKDOWN_FILE: &str = "diff.md";
pub const HTML_FILE: &str = "diff.html";

/// Why two reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("read the report `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read the report `{path}`: it is not JSON: {message}")]
    NotJson { path: String, message: String },
    #[error(
        "read the report `{path}`: it does not validate against reports/report.schema.json: {violation}"
    )]
    Invalid { path: String, violation: String },
    #[error(
        "compare `{base}` with `{new}`: they are reports of different suites \
         (`{base_profile}` and `{new_profile}`)"
    )]
    Suites {
        base: String,
        base_profile: String,
        new: String,
        new_profile: String,
    },
}

/// A report read from a file, and the file's name as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub path: String,
    pub report: Report,
}

/// `path` itself, or `path/report.json` when it is a folder.
pub fn report_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_owned()
    }
}

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: serde_json::Value =
        serde_json::from_str(REPORT_SCHEMA).expect("the committed report schema is JSON");
    jsonschema::validator_for(&schema).expect("the committed report schema compiles")
});

/// Reads a report (a `report.json`, or a folder holding one) and checks it
/// against the committed schema.
pub fn load(path: &Path) -> Result<Loaded, DiffError> {
    let file = report_path(path);
    let name = file.display().to_string();
    let bytes = std::fs::read(&file).map_err(|source| DiffError::Read {
        path: name.clone(),
        source,
    })?;
    parse(&name, &bytes)
}

/// A report from its bytes; `name` is what errors call it.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Loaded, DiffError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DiffError::NotJson {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
    if let Some(error) = VALIDATOR.iter_errors(&value).next() {
        let at = error.instance_path.to_string();
        let at = if at.is_empty() { "/".to_owned() } else { at };
        return Err(DiffError::Invalid {
            path: name.to_owned(),
            violation: format!("{error} (at `{at}`)"),
        });
    }
    // The schema says less than the model in places (a check id's shape).
    let report: Report = serde_json::from_value(value).map_err(|e| DiffError::Invalid {
        path: name.to_owned(),
        violation: e.to_string(),
    })?;
    Ok(Loaded {
        path: name.to_owned(),
        report,
    })
}

/// How a check's status moved from BASE to NEW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// NEW fails a check BASE did not fail (or did not run): a regression.
    NewFailure,
    /// BASE passed (or warned) and NEW could not decide, skipped, or did
    /// not run it: nothing says it still passes.
    NoLongerPassing,
    /// Any other status change (a fix among them).
    Other,
    Unchanged,
}

impl Change {
    fn of(base: Option<Status>, new: Option<Status>) -> Self {
        let passing = |s: Option<Status>| matches!(s, Some(Status::Pass | Status::Warn));
        if base == new {
            Change::Unchanged
        } else if new == Some(Status::Fail) {
            Change::NewFailure
        } else if passing(base) && !passing(new) {
            Change::NoLongerPassing
        } else {
            Change::Other
        }
    }
}

/// p50 and max of a set of values in one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub p50: f64,
    pub max: f64,
    pub n: usize,
    /// How many values are only lower bounds (still accepted when
    /// observation stopped); when any is, p50 and max are lower bounds too.
    pub censored: usize,
    pub unit: String,
    pub bound: Option<f64>,
}

impl Stat {
    fn of(ms: &[&Measurement]) -> Option<Stat> {
        let first = ms.first()?;
        let mut values: Vec<f64> = ms.iter().map(|m| m.value).collect();
        values.sort_by(f64::total_cmp);
        // The rank the checks' own notes use.
        let rank = ((values.len() as f64 - 1.0) * 0.5).round() as usize;
        Some(Stat {
            p50: values[rank.min(values.len() - 1)],
            max: values[values.len() - 1],
            n: values.len(),
            censored: ms.iter().filter(|m| m.censored).count(),
            unit: first.unit.clone(),
            bound: ms.iter().filter_map(|m| m.bound).reduce(f64::max),
        })
    }

    fn show(&self, value: f64) -> String {
        let at_least = if self.censored > 0 { "≥" } else { "" };
        format!("{at_least}{} {}", text::number(value), self.unit)
    }

    pub fn p50_text(&self) -> String {
        self.show(self.p50)
    }

    pub fn max_text(&self) -> String {
        self.show(self.max)
    }
}

/// One measured quantity of a check in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureRow {
    /// `time to refusal` or the measurement's name.
    pub what: String,
    /// The vantage's role (`base_url`, `vantage 2`, …), when measured at one.
    pub vantage: Option<String>,
    pub base: Option<Stat>,
    pub new: Option<Stat>,
}

impl MeasureRow {
    pub fn changed(&self) -> bool {
        self.base != self.new
    }

    /// NEW's p50 minus BASE's, when both have one in the same unit.
    pub fn delta_p50(&self) -> Option<f64> {
        match (&self.base, &self.new) {
            (Some(b), Some(n)) if b.unit == n.unit => Some(n.p50 - b.p50),
            _ => None,
        }
    }

    /// Whether these are revocation windows (time to refusal).
    pub fn is_revocation(&self) -> bool {
        self.what == REVOCATION
    }
}

const REVOCATION: &str = "time to refusal";

/// One rate-limit bucket's requests in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub limit: Option<u64>,
    pub window_s: u64,
    pub requests: usize,
    pub allowed: usize,
    pub refused: usize,
    /// The most requests allowed in one window whose start the harness saw.
    pub most_in_a_window: Option<u64>,
}

impl Bucket {
    fn of(t: &Timeline) -> Self {
        let (allowed, refused, _) = text::timeline_counts(t);
        Bucket {
            limit: t.limit,
            window_s: t.window_s,
            requests: t.points.len(),
            allowed,
            refused,
            most_in_a_window: most_allowed_in_a_window(t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    pub bucket: String,
    pub base: Option<Bucket>,
    pub new: Option<Bucket>,
}

impl BucketRow {
    pub fn changed(&self) -> bool {
        self.base != self.new
    }
}

/// One check in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The id as reports show it (with ` @ version` when pinned).
    pub label: String,
    pub title: String,
    pub change: Change,
    pub base: Option<Status>,
    pub new: Option<Status>,
    pub base_summary: Option<String>,
    pub new_summary: Option<String>,
    pub measurements: Vec<MeasureRow>,
    pub buckets: Vec<BucketRow>,
}

impl Row {
    pub fn measurements_changed(&self) -> bool {
        self.measurements.iter().any(MeasureRow::changed)
            || self.buckets.iter().any(BucketRow::changed)
    }
}

/// One module's digests in both runs (verify's evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub module: String,
    pub base: Option<ModuleDigest>,
    pub new: Option<ModuleDigest>,
}

impl DigestRow {
    pub fn changed(&self) -> bool {
        let sha = |d: &Option<ModuleDigest>| {
            d.as_ref()
                .map(|d| (d.rebuilt_sha256.clone(), d.deployed_sha256.clone()))
        };
        sha(&self.base) != sha(&self.new)
    }
}

/// Two reports compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub base: Loaded,
    pub new: Loaded,
    /// Every check of either run: new failures first, then checks no
    /// longer passing, other changes, and the unchanged last; within each,
    /// in NEW's order, then BASE-only checks in BASE's order.
    pub rows: Vec<Row>,
    pub modules: Vec<DigestRow>,
}

/// Compares two reports of the same suite.
pub fn compare(base: Loaded, new: Loaded) -> Result<Diff, DiffError> {
    if base.report.profile != new.report.profile {
        return Err(DiffError::Suites {
            base: base.path,
            base_profile: base.report.profile,
            new: new.path,
            new_profile: new.report.profile,
        });
    }
    // Indexed, so that two merged reports of a large fleet compare in
    // linear time; the first of a key on either side is its match.
    fn key(c: &CheckResult) -> (&str, Option<&str>, Option<&str>) {
        (c.id.as_str(), c.version.as_deref(), c.target.as_deref())
    }
    let mut in_base: std::collections::HashMap<_, &CheckResult> = Default::default();
    for b in base.report.checks.iter().rev() {
        in_base.insert(key(b), b);
    }
    let in_new: std::collections::HashSet<_> = new.report.checks.iter().map(key).collect();
    let mut pairs: Vec<(Option<&CheckResult>, Option<&CheckResult>)> = Vec::new();
    for n in &new.report.checks {
        pairs.push((in_base.get(&key(n)).copied(), Some(n)));
    }
    for b in &base.report.checks {
        if !in_new.contains(&key(b)) {
            pairs.push((Some(b), None));
        }
    }
    let mut rows: Vec<Row> = pairs
        .into_iter()
        .map(|(b, n)| row(&base.report, b, &new.report, n))
        .collect();
    rows.sort_by_key(|r| r.change);
    let modules = modules(&base.report, &new.report);
    Ok(Diff {
        base,
        new,
        rows,
        modules,
    })
}

/// Loads both and compares them.
pub fn diff(base: &Path, new: &Path) -> Result<Diff, DiffError> {
    compare(load(base)?, load(new)?)
}

fn row(
    base_report: &Report,
    base: Option<&CheckResult>,
    new_report: &Report,
    new: Option<&CheckResult>,
) -> Row {
    let either = new
        .or(base)
        .expect("a row has a check on one side at least");
    let mut measurements: Vec<MeasureRow> = Vec::new();
    let mut buckets: Vec<BucketRow> = Vec::new();
    for (report, check, is_new) in [(base_report, base, false), (new_report, new, true)] {
        let Some(check) = check else { continue };
        for (what, vantage, ms) in measure_groups(report, check) {
            let stat = Stat::of(&ms);
            let row = match measurements
                .iter_mut()
                .find(|r| r.what == what && r.vantage == vantage)
            {
                Some(r) => r,
                None => {
                    measurements.push(MeasureRow {
                        what,
                        vantage,
                        base: None,
                        new: None,
                    });
                    measurements.last_mut().expect("just pushed")
                }
            };
            if is_new {
                row.new = stat;
            } else {
                row.base = stat;
            }
        }
        for e in &check.evidence {
            let Evidence::Timeline(t) = e else { continue };
            let bucket = Bucket::of(t);
            let row = match buckets.iter_mut().find(|r| r.bucket == t.bucket) {
                Some(r) => r,
                None => {
                    buckets.push(BucketRow {
                        bucket: t.bucket.clone(),
                        base: None,
                        new: None,
                    });
                    buckets.last_mut().expect("just pushed")
                }
            };
            // A check with several timelines of one bucket: the last one.
            if is_new {
                row.new = Some(bucket);
            } else {
                row.base = Some(bucket);
            }
        }
    }
    Row {
        label: text::label(either),
        title: either.title.clone(),
        change: Change::of(base.map(|c| c.status), new.map(|c| c.status)),
        base: base.map(|c| c.status),
        new: new.map(|c| c.status),
        base_summary: base.map(|c| c.summary.clone()),
        new_summary: new.map(|c| c.summary.clone()),
        measurements,
        buckets,
    }
}

/// A vantage's role in its run: `base_url`, `vantage 2`, … (the extra
/// vantages in configured order), or the URL itself when the report's
/// subject does not list it.
///
/// A merged report's vantage from a labelled place (`eu-west: URL`) keeps
/// its label before the role.
fn vantage_role(report: &Report, vantage: &str) -> String {
    if let Some((label, rest)) = crate::merge::split_label(vantage) {
        return crate::merge::labelled(label, &vantage_role(report, rest));
    }
    let same = |a: &str| a.trim_end_matches('/') == vantage.trim_end_matches('/');
    if report.subject.base_url.as_deref().is_some_and(same) {
        return "base_url".to_owned();
    }
    match report.subject.vantages.iter().position(|v| same(v)) {
        Some(i) => format!("vantage {}", i + 2),
        None => vantage.to_owned(),
    }
}

/// A check's measurements grouped: revocation windows (bound, trial and
/// vantage, as the chart draws them) per vantage; the rest per name and
/// vantage.
fn measure_groups<'a>(
    report: &Report,
    check: &'a CheckResult,
) -> Vec<(String, Option<String>, Vec<&'a Measurement>)> {
    let mut groups: Vec<(String, Option<String>, Vec<&Measurement>)> = Vec::new();
    for e in &check.evidence {
        let Evidence::Measurement(m) = e else {
            continue;
        };
        let revocation = m.bound.is_some() && m.trial.is_some() && m.vantage.is_some();
        let what = if revocation {
            REVOCATION.to_owned()
        } else {
            m.name.clone()
        };
        let vantage = m.vantage.as_deref().map(|v| vantage_role(report, v));
        match groups
            .iter_mut()
            .find(|(w, v, _)| *w == what && *v == vantage)
        {
            Some((_, _, list)) => list.push(m),
            None => groups.push((what, vantage, vec![m])),
        }
    }
    groups
}

fn modules(base: &Report, new: &Report) -> Vec<DigestRow> {
    let digests = |r: &Report| -> Vec<ModuleDigest> {
        let mut seen: Vec<ModuleDigest> = Vec::new();
        for e in r.checks.iter().flat_map(|c| &c.evidence) {
            if let Evidence::Digest(d) = e
                && !seen.iter().any(|s| s.name == d.name)
            {
                seen.push(d.clone());
            }
        }
        seen
    };
    let (b, n) = (digests(base), digests(new));
    let mut rows: Vec<DigestRow> = n
        .iter()
        .map(|d| DigestRow {
            module: d.name.clone(),
            base: b.iter().find(|x| x.name == d.name).cloned(),
            new: Some(d.clone()),
        })
        .collect();
    for d in b {
        if !rows.iter().any(|r| r.module == d.name) {
            rows.push(DigestRow {
                module: d.name.clone(),
                base: Some(d),
                new: None,
            });
        }
    }
    rows
}

impl Diff {
    /// NEW fails a check BASE did not.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.change == Change::NewFailure)
    }

    /// Checks BASE passed (or warned) that NEW could not decide or did not
    /// run: whether they regressed is not known.
    pub fn undecided(&self) -> impl Iterator<Item = &Row> {
        self.rows_of(Change::NoLongerPassing)
            .filter(|r| matches!(r.new, None | Some(Status::Error)))
    }

    /// `fail` on a regression, else `error` when a check BASE passed is undecided in NEW
    /// (no regression is not shown for it: never a pass by default), else `pass`.
    pub fn verdict(&self) -> Verdict {
        if self.regressed() {
            Verdict::Fail
        } else if self.undecided().next().is_some() {
            Verdict::Error
        } else {
            Verdict::Pass
        }
    }

    fn headline(&self) -> &'static str {
        match self.verdict() {
            Verdict::Fail => "❌ regression",
            Verdict::Error => "⛔ could not tell: checks BASE passed are undecided in NEW",
            Verdict::Pass => "✅ no regression",
        }
    }

    pub fn rows_of(&self, change: Change) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.change == change)
    }

    fn count(&self, change: Change) -> usize {
        self.rows_of(change).count()
    }

    /// One line: `regression: 1 new failure (cookie.httponly); 0 no longer
    /// passing; 2 other changes; 38 unchanged; 3 measurements changed`.
    pub fn summary(&self) -> String {
        let failures: Vec<&str> = self
            .rows_of(Change::NewFailure)
            .map(|r| r.label.as_str())
            .collect();
        let undecided = self.undecided().count();
        let head = if !failures.is_empty() {
            format!(
                "regression: {} new failure{} ({})",
                failures.len(),
                plural(failures.len()),
                failures.join(", ")
            )
        } else if undecided > 0 {
            format!(
                "could not tell: no new failure, but {undecided} check{} BASE passed {} \
                 undecided or not run in NEW",
                plural(undecided),
                if undecided == 1 { "is" } else { "are" }
            )
        } else {
            "no regression: no new failure".to_owned()
        };
        let measured = self
            .rows
            .iter()
            .flat_map(|r| {
                r.measurements
                    .iter()
                    .map(MeasureRow::changed)
                    .chain(r.buckets.iter().map(BucketRow::changed))
            })
            .filter(|c| *c)
            .count();
        let modules = self.modules.iter().filter(|m| m.changed()).count();
        format!(
            "{head}; {} no longer passing; {} other change{}; {} unchanged; {measured} \
             measurement{} and {modules} module digest{} changed",
            self.count(Change::NoLongerPassing),
            self.count(Change::Other),
            plural(self.count(Change::Other)),
            self.count(Change::Unchanged),
            plural(measured),
            plural(modules),
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn status_text(s: Option<Status>) -> String {
    s.map_or_else(|| "not run".to_owned(), |s| s.to_string())
}

fn md_status(s: Option<Status>) -> String {
    s.map_or_else(|| "— not run".to_owned(), |s| format!("{} {s}", icon(s)))
}

fn html_status(s: Option<Status>) -> String {
    s.map_or_else(|| "<span class=\"muted\">not run</span>".to_owned(), badge)
}

fn side_facts(report: &Report) -> Vec<(&'static str, String)> {
    let c = report.counts;
    vec![
        ("command", report.command.clone()),
        (
            "target",
            report
                .subject
                .base_url
                .clone()
                .or_else(|| report.subject.script.clone())
                .unwrap_or_else(|| "—".to_owned()),
        ),
        ("started", report.started_at.clone()),
        ("verdict", report.verdict.as_str().to_owned()),
        (
            "checks",
            format!(
                "{} pass, {} fail, {} warn, {} error, {} skip",
                c.pass, c.fail, c.warn, c.error, c.skip
            ),
        ),
        (
            "tool",
            format!("{} {}", report.tool.name, report.tool.version),
        ),
    ]
}

const CHANGE_SECTIONS: [(Change, &str, &str); 3] = [
    (
        Change::NewFailure,
        "New failures",
        "NEW fails these; BASE did not (or did not run them).",
    ),
    (
        Change::NoLongerPassing,
        "No longer passing",
        "BASE passed these; NEW could not decide, skipped or did not run them.",
    ),
    (Change::Other, "Other changes", "Fixes among them."),
];

fn stat_cell(s: &Option<Stat>, f: fn(&Stat) -> String) -> String {
    s.as_ref().map_or_else(|| "—".to_owned(), f)
}

fn delta_text(row: &MeasureRow) -> String {
    match row.delta_p50() {
        Some(0.0) => "0".to_owned(),
        Some(d) => format!(
            "{}{} {}",
            if d > 0.0 { "+" } else { "" },
            text::number(d),
            row.new.as_ref().map_or("", |s| s.unit.as_str())
        ),
        None => "—".to_owned(),
    }
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "—".to_owned(), |n| n.to_string())
}

fn bucket_cells(b: &Option<Bucket>) -> [String; 4] {
    match b {
        Some(b) => [
            b.limit.map_or_else(
                || "unlimited".to_owned(),
                |l| format!("{l} / {} s", b.window_s),
            ),
            format!("{} of {}", b.allowed, b.requests),
            b.refused.to_string(),
            opt(b.most_in_a_window),
        ],
        None => [
            "—".to_owned(),
            "—".to_owned(),
            "—".to_owned(),
            "—".to_owned(),
        ],
    }
}

fn digest_cells(d: &Option<ModuleDigest>) -> [String; 2] {
    match d {
        Some(d) => [
            text::short_digest(d.rebuilt_sha256.as_deref()),
            text::short_digest(d.deployed_sha256.as_deref()),
        ],
        None => ["—".to_owned(), "—".to_owned()],
    }
}

fn digest_state(d: &Option<ModuleDigest>) -> &'static str {
    match d.as_ref().map(text::digest_matches) {
        Some(Some(true)) => "match",
        Some(Some(false)) => "differ",
        Some(None) => "missing",
        None => "—",
    }
}

/// `diff.md`: for a pull-request comment or a job summary.
pub fn markdown(diff: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# flareproof diff: {}\n", diff.headline());
    let _ = writeln!(out, "{}\n", cell(&diff.summary()));
    let _ = writeln!(out, "| | BASE | NEW |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| report | `{}` | `{}` |",
        diff.base.path.replace('`', "'"),
        diff.new.path.replace('`', "'")
    );
    for ((name, b), (_, n)) in side_facts(&diff.base.report)
        .into_iter()
        .zip(side_facts(&diff.new.report))
    {
        let _ = writeln!(out, "| {name} | {} | {} |", cell(&b), cell(&n));
    }
    out.push('\n');

    for (change, title, about) in CHANGE_SECTIONS {
        let rows: Vec<&Row> = diff.rows_of(change).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title} ({})\n\n{about}\n", rows.len());
        let _ = writeln!(out, "| check | BASE | NEW | NEW says |\n|---|---|---|---|");
        for r in rows {
            let _ = writeln!(
                out,
                "| `{}` {} | {} | {} | {} |",
                cell(&r.label),
                cell(&r.title),
                md_status(r.base),
                md_status(r.new),
                cell(
                    r.new_summary
                        .as_deref()
                        .or(r.base_summary.as_deref())
                        .unwrap_or("")
                )
            );
        }
        out.push('\n');
    }

    let measured: Vec<(&Row, &MeasureRow)> = diff
        .rows
        .iter()
        .flat_map(|r| r.measurements.iter().map(move |m| (r, m)))
        .collect();
    let revocations: Vec<_> = measured.iter().filter(|(_, m)| m.is_revocation()).collect();
    let others: Vec<_> = measured
        .iter()
        .filter(|(_, m)| !m.is_revocation())
        .collect();
    if !revocations.is_empty() {
        let _ = writeln!(
            out,
            "## Time to refusal\n\nPer check and vantage, over every trial (≥: a token was \
             still accepted when observation stopped, so the value is a lower bound).\n"
        );
        let _ = writeln!(
            out,
            "| check | vantage | BASE p50 | BASE max | NEW p50 | NEW max | Δ p50 | bound |\n\
             |---|---|---:|---:|---:|---:|---:|---:|"
        );
        for (r, m) in revocations {
            let bound = m
                .new
                .as_ref()
                .or(m.base.as_ref())
                .and_then(|s| s.bound)
                .map_or_else(|| "—".to_owned(), text::number);
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {}{} | {bound} |",
                cell(&r.label),
                cell(m.vantage.as_deref().unwrap_or("—")),
                stat_cell(&m.base, Stat::p50_text),
                stat_cell(&m.base, Stat::max_text),
                stat_cell(&m.new, Stat::p50_text),
                stat_cell(&m.new, Stat::max_text),
                delta_text(m),
                if m.changed() { " 🔺" } else { "" },
            );
        }
        out.push('\n');
    }
    if !others.is_empty() {
        let _ = writeln!(out, "## Other measurements\n");
        let _ = writeln!(
            out,
            "| check | measurement | BASE | NEW | Δ |\n|---|---|---:|---:|---:|"
        );
        for (r, m) in others {
            let what = match &m.vantage {
                Some(v) => format!("{} at {v}", m.what),
                None => m.what.clone(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {}{} |",
                cell(&r.label),
                cell(&what),
                stat_cell(&m.base, Stat::p50_text),
                stat_cell(&m.new, Stat::p50_text),
                delta_text(m),
                if m.changed() { " 🔺" } else { "" },
            );
        }
        out.push('\n');
    }
    let buckets: Vec<(&Row, &BucketRow)> = diff
        .rows
        .iter()
        .flat_map(|r| r.buckets.iter().map(move |b| (r, b)))
        .collect();
    if !buckets.is_empty() {
        let _ = writeln!(
            out,
            "## Rate limits\n\nPer bucket: the limit, requests allowed, refused (429), and the \
             most allowed in one window whose start the harness saw.\n"
        );
        let _ = writeln!(
            out,
            "| check | bucket | BASE limit | BASE allowed | BASE refused | BASE most in a window \
             | NEW limit | NEW allowed | NEW refused | NEW most in a window | |\n\
             |---|---|---|---:|---:|---:|---|---:|---:|---:|---|"
        );
        for (r, b) in buckets {
            let [bl, ba, br, bm] = bucket_cells(&b.base);
            let [nl, na, nr, nm] = bucket_cells(&b.new);
            let _ = writeln!(
                out,
                "| `{}` | {} | {bl} | {ba} | {br} | {bm} | {nl} | {na} | {nr} | {nm} | {} |",
                cell(&r.label),
                cell(&b.bucket),
                if b.changed() { "🔺 changed" } else { "" }
            );
        }
        out.push('\n');
    }
    if !diff.modules.is_empty() {
        let _ = writeln!(out, "## Modules (verify)\n");
        let _ = writeln!(
            out,
            "| module | BASE rebuilt | BASE deployed | | NEW rebuilt | NEW deployed | | |\n\
             |---|---|---|---|---|---|---|---|"
        );
        for m in &diff.modules {
            let [br, bd] = digest_cells(&m.base);
            let [nr, nd] = digest_cells(&m.new);
            let _ = writeln!(
                out,
                "| `{}` | `{br}` | `{bd}` | {} | `{nr}` | `{nd}` | {} | {} |",
                m.module.replace('`', "'"),
                digest_state(&m.base),
                digest_state(&m.new),
                if m.changed() { "🔺 changed" } else { "" }
            );
        }
        out.push('\n');
    }
    let unchanged: Vec<&Row> = diff.rows_of(Change::Unchanged).collect();
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} unchanged check{}</summary>\n",
            unchanged.len(),
            plural(unchanged.len())
        );
        for r in unchanged {
            let _ = writeln!(out, "- {} `{}`", md_status(r.new), cell(&r.label));
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}

const DIFF_STYLE: &str = "\
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:8px 0 16px}\
.pair>div>h4{margin:0 0 4px;font-size:13px}\
.pair svg{max-width:100%;height:auto}\
tr.changed td{background:#fff8c5}\
header.regression{background:var(--fail)}header.clean{background:var(--pass)}\
header.undecided{background:var(--error)}";

/// `diff.html`: one self-contained page, BASE and NEW side by side, with
/// each check's charts from both runs.
pub fn html(diff: &Diff) -> String {
    let mut out = String::new();
    let (class, head) = match diff.verdict() {
        Verdict::Fail => ("regression", "REGRESSION: NEW fails checks BASE did not"),
        Verdict::Error => (
            "undecided",
            "COULD NOT TELL: checks BASE passed are undecided in NEW",
        ),
        Verdict::Pass => ("clean", "NO REGRESSION: NEW fails no check BASE did not"),
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>flareproof diff: {}</title>\n<style>{STYLE}{DIFF_STYLE}</style>\n</head>\n<body>\n<main>\n",
        if diff.regressed() {
            "regression"
        } else {
            "no regression"
        }
    );
    let _ = writeln!(
        out,
        "<header class=\"verdict {class}\"><h1>{head}</h1><p>{}</p></header>",
        esc(&diff.summary())
    );
    out.push_str("<table>\n<tr><th></th><th>BASE</th><th>NEW</th></tr>\n");
    let _ = writeln!(
        out,
        "<tr><td>report</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
        esc(&diff.base.path),
        esc(&diff.new.path)
    );
    for ((name, b), (_, n)) in side_facts(&diff.base.report)
        .into_iter()
        .zip(side_facts(&diff.new.report))
    {
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td>{}</td><td>{}</td></tr>",
            esc(&b),
            esc(&n)
        );
    }
    out.push_str("</table>\n");

    for (change, title, about) in CHANGE_SECTIONS {
        let rows: Vec<&Row> = diff.rows_of(change).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<h2>{title} ({})</h2>\n<p class=\"muted\">{about}</p>\n<table>\n<tr><th>check</th>\
             <th>BASE</th><th>NEW</th><th>BASE says</th><th>NEW says</th></tr>",
            rows.len()
        );
        for r in rows {
            let _ = writeln!(
                out,
                "<tr><td class=\"id\"><code>{}</code><br><span class=\"muted\">{}</span></td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.label),
                esc(&r.title),
                html_status(r.base),
                html_status(r.new),
                esc(r.base_summary.as_deref().unwrap_or("")),
                esc(r.new_summary.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table>\n");
    }

    let measured: Vec<(&Row, &MeasureRow)> = diff
        .rows
        .iter()
        .flat_map(|r| r.measurements.iter().map(move |m| (r, m)))
        .collect();
    if !measured.is_empty() {
        out.push_str(
            "<h2>Measurements</h2>\n<p class=\"muted\">Time to refusal per vantage over every \
             trial; other measurements by name. ≥: a lower bound (a token still accepted when \
             observation stopped). Changed rows are highlighted.</p>\n<table>\n<tr><th>check</th>\
             <th>measurement</th><th class=\"num\">BASE p50</th><th class=\"num\">BASE max</th>\
             <th class=\"num\">NEW p50</th><th class=\"num\">NEW max</th><th class=\"num\">Δ p50</th></tr>\n",
        );
        for (r, m) in measured {
            let what = match &m.vantage {
                Some(v) => format!("{} at {v}", m.what),
                None => m.what.clone(),
            };
            let _ = writeln!(
                out,
                "<tr{}><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>",
                if m.changed() {
                    " class=\"changed\""
                } else {
                    ""
                },
                esc(&r.label),
                esc(&what),
                esc(&stat_cell(&m.base, Stat::p50_text)),
                esc(&stat_cell(&m.base, Stat::max_text)),
                esc(&stat_cell(&m.new, Stat::p50_text)),
                esc(&stat_cell(&m.new, Stat::max_text)),
                esc(&delta_text(m)),
            );
        }
        out.push_str("</table>\n");
    }
    let buckets: Vec<(&Row, &BucketRow)> = diff
        .rows
        .iter()
        .flat_map(|r| r.buckets.iter().map(move |b| (r, b)))
        .collect();
    if !buckets.is_empty() {
        out.push_str(
            "<h2>Rate limits</h2>\n<table>\n<tr><th>check</th><th>bucket</th><th>BASE limit</th>\
             <th class=\"num\">allowed</th><th class=\"num\">refused</th><th class=\"num\">most in a window</th>\
             <th>NEW limit</th><th class=\"num\">allowed</th><th class=\"num\">refused</th>\
             <th class=\"num\">most in a window</th></tr>\n",
        );
        for (r, b) in buckets {
            let [bl, ba, br, bm] = bucket_cells(&b.base);
            let [nl, na, nr, nm] = bucket_cells(&b.new);
            let _ = writeln!(
                out,
                "<tr{}><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if b.changed() {
                    " class=\"changed\""
                } else {
                    ""
                },
                esc(&r.label),
                esc(&b.bucket),
                esc(&bl),
                esc(&ba),
                esc(&br),
                esc(&bm),
                esc(&nl),
                esc(&na),
                esc(&nr),
                esc(&nm),
            );
        }
        out.push_str("</table>\n");
    }
    if !diff.modules.is_empty() {
        out.push_str(
            "<h2>Modules (verify)</h2>\n<table>\n<tr><th>module</th><th>BASE rebuilt</th>\
             <th>BASE deployed</th><th></th><th>NEW rebuilt</th><th>NEW deployed</th><th></th></tr>\n",
        );
        for m in &diff.modules {
            let [br, bd] = digest_cells(&m.base);
            let [nr, nd] = digest_cells(&m.new);
            let _ = writeln!(
                out,
                "<tr{}><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td>\
                 <td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                if m.changed() {
                    " class=\"changed\""
                } else {
                    ""
                },
                esc(&m.module),
                esc(&br),
                esc(&bd),
                digest_state(&m.base),
                esc(&nr),
                esc(&nd),
                digest_state(&m.new),
            );
        }
        out.push_str("</table>\n");
    }

    // The charts of every check that has one in either run, side by side.
    let key = |c: &CheckResult| text::label(c);
    let mut charted = false;
    for r in &diff.rows {
        let find = |report: &Report| {
            report
                .checks
                .iter()
                .find(|c| key(c) == r.label)
                .map(check_charts)
                .unwrap_or_default()
        };
        let (b, n) = (find(&diff.base.report), find(&diff.new.report));
        if b.is_empty() && n.is_empty() {
            continue;
        }
        if !charted {
            out.push_str("<h2>Charts, BASE beside NEW</h2>\n");
            charted = true;
        }
        let _ = writeln!(
            out,
            "<h3><code>{}</code> <span class=\"muted\">{} → {}</span></h3>\n<div class=\"pair\">",
            esc(&r.label),
            esc(&status_text(r.base)),
            esc(&status_text(r.new))
        );
        for (side, charts) in [("BASE", b), ("NEW", n)] {
            let _ = write!(out, "<div><h4>{side}</h4>");
            if charts.is_empty() {
                out.push_str("<p class=\"muted\">no chart in this run</p>");
            }
            charts.iter().for_each(|c| out.push_str(c));
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");
    }
    let unchanged = diff.rows_of(Change::Unchanged).count();
    let _ = write!(
        out,
        "<p class=\"muted\">{unchanged} check{} unchanged.</p>\n<footer>Written by flareproof \
         diff from two report.json files; this file loads nothing from the network.</footer>\n\
         </main>\n</body>\n</html>\n",
        plural(unchanged)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_beats_every_other_change_and_passing_to_undecided_is_named() {
        use Status::*;
        assert_eq!(Change::of(Some(Pass), Some(Fail)), Change::NewFailure);
        assert_eq!(Change::of(None, Some(Fail)), Change::NewFailure);
        assert_eq!(Change::of(Some(Error), Some(Fail)), Change::NewFailure);
        assert_eq!(Change::of(Some(Fail), Some(Fail)), Change::Unchanged);
        assert_eq!(Change::of(Some(Pass), Some(Error)), Change::NoLongerPassing);
        assert_eq!(Change::of(Some(Pass), None), Change::NoLongerPassing);
        assert_eq!(Change::of(Some(Fail), Some(Pass)), Change::Other);
        assert_eq!(Change::of(Some(Fail), None), Change::Other);
    }

    #[test]
    fn a_censored_value_makes_p50_and_max_lower_bounds() {
        let m = |value: f64, censored: bool| Measurement {
            name: "t".into(),
            value,
            unit: "ms".into(),
            bound: Some(1000.0),
            vantage: None,
            trial: None,
            censored,
            resolution: None,
            slowest_observation: None,
        };
        let (a, b, c) = (m(300.0, false), m(100.0, false), m(900.0, true));
        let stat = Stat::of(&[&a, &b, &c]).unwrap();
        assert_eq!((stat.p50, stat.max, stat.censored), (300.0, 900.0, 1));
        assert_eq!(stat.max_text(), "≥900 ms");
        let stat = Stat::of(&[&a, &b]).unwrap();
        assert_eq!(
            stat.p50_text(),
            "300 ms",
            "the upper median of two, as the checks' notes"
        );
    }
}
