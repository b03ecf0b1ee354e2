//! The free text of the statements (see [`crate::model::Redact`]): a check's
//! summary and the reason a part of the live record could not be read.
//! Everything else a statement holds is structure (ids, digests, verdicts,
//! versions, names read from the API) and is never touched, so a statement
//! is scrubbed as a value before it is rendered and signed, and its bytes
//! are never changed after.

use crate::model::{Redact, Scrub};

use super::audit::{AuditCheckRecord, AuditPredicate};
use super::live::{IngressRecord, LiveRecord, LiveVersionRecord, Readable};
use super::statement::Statement;
use super::verify::{CheckRecord, Predicate};

impl<P: Redact> Redact for Statement<P> {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.predicate.redact(scrub);
    }
}

impl Redact for Predicate {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.checks.redact(scrub);
        self.live.redact(scrub);
    }
}

impl Redact for AuditPredicate {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.subject.redact(scrub);
        self.checks.redact(scrub);
        self.verify.redact(scrub);
    }
}

impl Redact for CheckRecord {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.summary = scrub.text(&self.summary);
    }
}

impl Redact for AuditCheckRecord {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.summary = scrub.text(&self.summary);
    }
}

/// What was read is structure; why a part was not, free text.
impl<T> Redact for Readable<T> {
    fn redact(&mut self, scrub: &dyn Scrub) {
        if let Readable::Unreadable(why) = self {
            *why = scrub.text(why);
        }
    }
}

impl Redact for LiveRecord {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.deployment.redact(scrub);
        if let Readable::Read(deployment) = &mut self.deployment {
            deployment.versions.redact(scrub);
        }
        self.observers.redact(scrub);
        self.script_settings.redact(scrub);
        self.ingress.redact(scrub);
    }
}

impl Redact for LiveVersionRecord {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.modules.redact(scrub);
        self.settings.redact(scrub);
    }
}

impl Redact for IngressRecord {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.routes.redact(scrub);
        self.custom_domains.redact(scrub);
        self.workers_dev.redact(scrub);
        self.account_subdomain.redact(scrub);
        if let Some(zone) = &mut self.zone_routes {
            zone.routes.redact(scrub);
        }
    }
}
