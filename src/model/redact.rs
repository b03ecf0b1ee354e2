//! Which strings of a record are free text that may carry what a target or
//! an API said, and so may be redacted: [`Redact`] visits exactly those.
//!
//! Redaction works on values, never on serialized text: ids, statuses,
//! enum tags, digests, numbers, methods, header names and everything else
//! that gives a record its meaning are never visited, so a secret that
//! happens to equal one of them (a target may choose its cookie values)
//! cannot rewrite the record.

use super::{
    CheckResult, Evidence, Exchange, Header, HttpRequest, HttpResponse, Measurement, Report,
    Subject, TextDiff,
};

/// How free text is scrubbed: `text` for what a target or an API may have
/// said (every known secret masked), `config_url` for a URL the user
/// configured (its credentials masked, nothing learned from a target).
pub trait Scrub {
    fn text(&self, text: &str) -> String;
    fn config_url(&self, url: &str) -> String;
}

/// A record whose free-text strings may be scrubbed in place.
pub trait Redact {
    fn redact(&mut self, scrub: &dyn Scrub);
}

fn text(s: &mut String, scrub: &dyn Scrub) {
    *s = scrub.text(s);
}

fn opt(s: &mut Option<String>, scrub: &dyn Scrub) {
    if let Some(s) = s {
        text(s, scrub);
    }
}

fn config_url(s: &mut String, scrub: &dyn Scrub) {
    *s = scrub.config_url(s);
}

impl<T: Redact> Redact for [T] {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.iter_mut().for_each(|item| item.redact(scrub));
    }
}

impl<T: Redact> Redact for Vec<T> {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.as_mut_slice().redact(scrub);
    }
}

impl<T: Redact> Redact for Option<T> {
    fn redact(&mut self, scrub: &dyn Scrub) {
        if let Some(v) = self {
            v.redact(scrub);
        }
    }
}

/// A fleet's rows name targets and shard files, nothing a target said.
impl Redact for Report {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.subject.redact(scrub);
        self.checks.redact(scrub);
    }
}

/// The subject's URLs are the config's, not the target's: only credentials
/// in them (userinfo) are masked, never a learned value.
impl Redact for Subject {
    fn redact(&mut self, scrub: &dyn Scrub) {
        if let Some(url) = &mut self.base_url {
            config_url(url, scrub);
        }
        self.vantages.iter_mut().for_each(|v| config_url(v, scrub));
    }
}

impl Redact for CheckResult {
    fn redact(&mut self, scrub: &dyn Scrub) {
        text(&mut self.summary, scrub);
        self.evidence.redact(scrub);
    }
}

impl Redact for Evidence {
    fn redact(&mut self, scrub: &dyn Scrub) {
        match self {
            Evidence::Exchange(e) => e.redact(scrub),
            Evidence::Measurement(m) => m.redact(scrub),
            Evidence::Diff(d) => d.redact(scrub),
            Evidence::Note { text: t } => text(t, scrub),
            // Digests and bucket timelines: names, numbers and statuses.
            Evidence::Digest(_) | Evidence::Timeline(_) => {}
        }
    }
}

impl Redact for Exchange {
    fn redact(&mut self, scrub: &dyn Scrub) {
        text(&mut self.label, scrub);
        self.request.redact(scrub);
        self.response.redact(scrub);
        opt(&mut self.error, scrub);
    }
}

impl Redact for HttpRequest {
    fn redact(&mut self, scrub: &dyn Scrub) {
        text(&mut self.url, scrub);
        self.headers.redact(scrub);
        opt(&mut self.body, scrub);
    }
}

impl Redact for HttpResponse {
    fn redact(&mut self, scrub: &dyn Scrub) {
        self.headers.redact(scrub);
        opt(&mut self.body, scrub);
    }
}

/// A header's value; its name is structure.
impl Redact for Header {
    fn redact(&mut self, scrub: &dyn Scrub) {
        text(&mut self.value, scrub);
    }
}

/// The vantage is a configured URL: its userinfo only.
impl Redact for Measurement {
    fn redact(&mut self, scrub: &dyn Scrub) {
        if let Some(url) = &mut self.vantage {
            config_url(url, scrub);
        }
    }
}

/// The unified diff is module text; the subject (a module name) is structure.
impl Redact for TextDiff {
    fn redact(&mut self, scrub: &dyn Scrub) {
        text(&mut self.unified, scrub);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckId, ModuleDigest, Severity, Status};

    #[test]
    fn only_free_text_is_visited() {
        let mut result = CheckResult {
            id: CheckId::new("cookie.httponly").unwrap(),
            title: "medium".to_owned(),
            status: Status::Pass,
            summary: "medium".to_owned(),
            severity: Some(Severity::Medium),
            level: None,
            help: "medium".to_owned(),
            requirements: vec!["medium".to_owned()],
            evidence: vec![
                Evidence::note("medium"),
                Evidence::Digest(ModuleDigest {
                    name: "medium".to_owned(),
                    content_type: None,
                    rebuilt_sha256: Some("medium".to_owned()),
                    deployed_sha256: None,
                    rebuilt_size: None,
                    deployed_size: None,
                }),
            ],
            duration_ms: 1,
            version: Some("medium".to_owned()),
            target: Some("medium".to_owned()),
        };
        struct Medium;
        impl Scrub for Medium {
            fn text(&self, text: &str) -> String {
                text.replace("medium", "[redacted]")
            }
            fn config_url(&self, url: &str) -> String {
                url.replace("medium", "[redacted]")
            }
        }
        result.redact(&Medium);
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["summary"], "[redacted]");
        assert_eq!(json["evidence"][0]["text"], "[redacted]");
        for kept in [
            &json["title"],
            &json["severity"],
            &json["help"],
            &json["requirements"][0],
            &json["evidence"][1]["name"],
            &json["evidence"][1]["rebuilt_sha256"],
            &json["version"],
            &json["target"],
        ] {
            assert_eq!(kept, "medium", "{json}");
        }
    }
}
