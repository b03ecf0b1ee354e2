//! `Finding`: a check's status, why, and the evidence, before the plan's
//! title and requirement ids are attached.

use super::{Evidence, Exchange, Status};

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

impl Finding {
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Finding {
            status,
            summary: summary.into(),
            evidence: Vec::new(),
        }
    }

    pub fn pass(summary: impl Into<String>) -> Self {
        Self::new(Status::Pass, summary)
    }

    pub fn fail(summary: impl Into<String>) -> Self {
        Self::new(Status::Fail, summary)
    }

    /// The harness could not decide; never a pass.
    pub fn error(summary: impl Into<String>) -> Self {
        Self::new(Status::Error, summary)
    }

    pub fn skip(summary: impl Into<String>) -> Self {
        Self::new(Status::Skip, summary)
    }

    pub fn with(mut self, evidence: Evidence) -> Self {
        self.evidence.push(evidence);
        self
    }

    pub fn with_exchange(self, exchange: &Exchange) -> Self {
        self.with(Evidence::Exchange(exchange.clone()))
    }

    pub fn with_exchanges<'a>(mut self, exchanges: impl IntoIterator<Item = &'a Exchange>) -> Self {
        self.evidence
            .extend(exchanges.into_iter().cloned().map(Evidence::Exchange));
        self
    }
}
