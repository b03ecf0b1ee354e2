//! Report formats: each a pure function from a [`Report`] to bytes, and
//! [`outputs`], which says where each rendering goes. Writing them is the
//! binary's business.

pub mod har;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

use std::path::{Path, PathBuf};

use crate::model::Report;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `report.json`, the source of truth (always written).
    Json,
    /// `junit.xml`, for a CI system's test tab.
    Junit,
    /// `report.sarif` (SARIF 2.1.0), for GitHub code scanning.
    Sarif,
    /// `summary.md`, for `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// `report.html`, one self-contained page with charts.
    Html,
    /// `exchanges.har` (HAR 1.2): every exchange of the run, for DevTools,
    /// Burp or ZAP.
    Har,
}

/// A name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a report format (known: json, junit, sarif, markdown, html, har)")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Every format, in the order [`outputs`] writes them.
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Markdown,
        Format::Html,
        Format::Har,
    ];

    /// The name `--format` takes and [`str::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Har => "har",
        }
    }

    /// One line on what the format is for, for a command line's help.
    pub fn about(self) -> &'static str {
        match self {
            Format::Json => "`report.json`, the source of truth (always written)",
            Format::Junit => "`junit.xml`, for a CI system's test tab",
            Format::Sarif => "`report.sarif` (SARIF 2.1.0), for GitHub code scanning",
            Format::Markdown => "`summary.md`, for `$GITHUB_STEP_SUMMARY`",
            Format::Html => "`report.html`, one self-contained page with charts",
            Format::Har => "`exchanges.har` (HAR 1.2), every exchange, for DevTools, Burp or ZAP",
        }
    }

    /// The file name the format is written to inside the output folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "report.json",
            Format::Junit => "junit.xml",
            Format::Sarif => "report.sarif",
            Format::Markdown => "summary.md",
            Format::Html => "report.html",
            Format::Har => "exchanges.har",
        }
    }

    pub fn render(self, report: &Report) -> Vec<u8> {
        match self {
            Format::Json => json::render(report),
            Format::Junit => junit::render(report),
            Format::Sarif => sarif::render(report),
            Format::Markdown => markdown::render(report),
            Format::Html => html::render(report),
            Format::Har => har::render(report),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| UnknownFormat(name.to_owned()))
    }
}

/// The output folder argument that means "standard output".
pub const STDOUT: &str = "-";

/// Where one rendering goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

/// One rendering of a report and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub dest: Dest,
    pub format: Format,
    pub bytes: Vec<u8>,
}

/// The renderings of `report` a run with output folder `dir` and
/// `formats` writes. With `dir` = `-`, one: the first of `formats` (JSON
/// when there is none) to stdout. Otherwise every one of `formats` and
/// JSON, each once, in [`Format::ALL`] order, to its file in `dir`.
/// SARIF results point at `sarif_artifact` when given (the config the run
/// read, relative to the repository root), else at
/// [`sarif::DEFAULT_ARTIFACT`].
pub fn outputs(
    dir: &Path,
    formats: &[Format],
    report: &Report,
    sarif_artifact: Option<&str>,
) -> Vec<Output> {
    let render = |format: Format| match (format, sarif_artifact) {
        (Format::Sarif, Some(artifact)) => sarif::render_for(report, artifact),
        _ => format.render(report),
    };
    if dir == Path::new(STDOUT) {
        let format = formats.first().copied().unwrap_or(Format::Json);
        return vec![Output {
            dest: Dest::Stdout,
            format,
            bytes: render(format),
        }];
    }
    let mut formats = formats.to_vec();
    formats.push(Format::Json);
    formats.sort();
    formats.dedup();
    formats
        .into_iter()
        .map(|format| Output {
            dest: Dest::File(dir.join(format.file_name())),
            format,
            bytes: render(format),
        })
        .collect()
}

/// Where the attestation of a run with output folder `dir` goes:
/// `attestation.json` in `dir`, or nowhere when the report goes to stdout.
pub fn attestation_path(dir: &Path) -> Option<PathBuf> {
    (dir != Path::new(STDOUT)).then(|| dir.join("attestation.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_parses_from_its_name_and_nothing_else_does() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.name());
        }
        assert_eq!(
            "JSON".parse::<Format>(),
            Err(UnknownFormat("JSON".to_owned()))
        );
    }

    fn report() -> Report {
        Report::new(
            "conform",
            "flarelink-auth/v1",
            crate::model::Subject {
                base_url: None,
                vantages: Vec::new(),
                script: None,
            },
            "2025-01-01T00:00:00Z".to_owned(),
            0,
            Vec::new(),
        )
    }

    #[test]
    fn a_folder_gets_each_format_once_and_always_json() {
        let report = report();
        let dir = Path::new("out");
        let written = outputs(
            dir,
            &[Format::Html, Format::Sarif, Format::Html],
            &report,
            None,
        );
        let shape: Vec<_> = written.iter().map(|o| (o.dest.clone(), o.format)).collect();
        assert_eq!(
            shape,
            [Format::Json, Format::Sarif, Format::Html]
                .map(|f| (Dest::File(dir.join(f.file_name())), f))
        );
        assert_eq!(written[0].bytes, json::render(&report));
        let located = outputs(dir, &[Format::Sarif], &report, Some("ci/flareproof.toml"));
        assert_eq!(
            located[1].bytes,
            sarif::render_for(&report, "ci/flareproof.toml")
        );
        assert_eq!(attestation_path(dir), Some(dir.join("attestation.json")));
    }

    #[test]
    fn stdout_gets_the_first_format_only_or_json() {
        let report = report();
        let dash = Path::new(STDOUT);
        let first = outputs(dash, &[Format::Markdown, Format::Json], &report, None);
        assert_eq!(first.len(), 1);
        assert_eq!(
            (&first[0].dest, first[0].format),
            (&Dest::Stdout, Format::Markdown)
        );
        assert_eq!(first[0].bytes, markdown::render(&report));
        assert_eq!(outputs(dash, &[], &report, None)[0].format, Format::Json);
        assert_eq!(attestation_path(dash), None);
    }

    #[test]
    fn all_is_in_writing_order() {
        let mut sorted = Format::ALL;
        sorted.sort();
        assert_eq!(sorted, Format::ALL);
    }
}
