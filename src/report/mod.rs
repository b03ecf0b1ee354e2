//! Report formats: each a pure function from a [`Report`] to bytes. Where the
//! bytes go is the binary's business.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

use crate::model::Report;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
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
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Markdown,
        Format::Html,
    ];

    /// The file name the format is written to inside the output folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "report.json",
            Format::Junit => "junit.xml",
            Format::Sarif => "report.sarif",
            Format::Markdown => "summary.md",
            Format::Html => "report.html",
        }
    }

    pub fn render(self, report: &Report) -> Vec<u8> {
        match self {
            Format::Json => json::render(report),
            Format::Junit => junit::render(report),
            Format::Sarif => sarif::render(report),
            Format::Markdown => markdown::render(report),
            Format::Html => html::render(report),
        }
    }
}
