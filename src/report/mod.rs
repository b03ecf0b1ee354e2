//! Report formats: each a pure function from a [`Report`] to bytes. Where the
//! bytes go is the binary's business.

pub mod attestation;
pub mod json;

use crate::model::Report;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    Json,
}

impl Format {
    /// The file name the format is written to inside the output folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "report.json",
        }
    }

    pub fn render(self, report: &Report) -> Vec<u8> {
        match self {
            Format::Json => json::render(report),
        }
    }
}
