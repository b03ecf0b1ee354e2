//! `verify.ingress`: every route, custom domain, the `workers.dev`
//! subdomain and preview URLs the API reports for the script is declared;
//! and `target.base_url`'s host is one of them (else conform may be testing
//! something else).

use std::collections::BTreeSet;

use crate::cloudflare::ingress::{
    ACCOUNT_SUBDOMAIN, DOMAINS, Part, ROUTES, SUBDOMAIN, ZONE_ROUTES, permission,
};
use crate::cloudflare::{ApiError, Ingress, Route, WorkersDev};
use crate::error_chain;
use crate::model::{Evidence, Finding, Status};
use crate::target::DeclaredIngress;

use super::{Inputs, exchanges, live};

/// A route pattern as Cloudflare compares it: no scheme, the host part
/// (with its optional leading `*`) lowercased and without a trailing dot,
/// the path as written (with its optional trailing `*`).
pub fn normalize_pattern(pattern: &str) -> String {
    let p = pattern.trim();
    let p = ["https://", "http://"]
        .iter()
        .find_map(|s| {
            p.get(..s.len())
                .filter(|head| head.eq_ignore_ascii_case(s))
                .map(|_| &p[s.len()..])
        })
        .unwrap_or(p);
    let (host, path) = match p.find('/') {
        Some(i) => (&p[..i], &p[i..]),
        None => (p, ""),
    };
    format!("{}{path}", host.trim_end_matches('.').to_ascii_lowercase())
}

/// The host part of a route pattern, normalized.
fn pattern_host(pattern: &str) -> String {
    let n = normalize_pattern(pattern);
    n.split('/').next().unwrap_or("").to_owned()
}

fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` is matched by a route's host pattern: exact, or with a
/// leading `*` any host ending in the rest (`*.a.test`: its subdomains;
/// `*a.test`: `a.test` and its subdomains).
pub fn host_matches(pattern_host: &str, host: &str) -> bool {
    match pattern_host.strip_prefix('*') {
        None => pattern_host == host,
        Some(rest) if rest.starts_with('.') => host.ends_with(rest) && host.len() > rest.len(),
        Some(rest) => host == rest || host.ends_with(&format!(".{rest}")),
    }
}

/// Whether `host` is a preview URL of `script` on `<subdomain>.workers.dev`:
/// `<version-prefix>-<script>.<subdomain>.workers.dev`.
fn is_preview_host(host: &str, script: &str, subdomain: &str) -> bool {
    let suffix = format!("-{script}.{subdomain}.workers.dev");
    host.strip_suffix(&suffix)
        .is_some_and(|prefix| !prefix.is_empty() && !prefix.contains('.'))
}

/// Why a part could not be read, naming the permission a refusal lacks.
fn unreadable(label: &str, what: &str, e: &ApiError) -> String {
    let mut text = format!("{what} could not be read: {}", error_chain(e));
    if e.is_auth() {
        text.push_str(&format!(
            " (the API token needs the \"{}\" permission for this endpoint)",
            permission(label)
        ));
    }
    text
}

struct Judged {
    undeclared: Vec<String>,
    errors: Vec<String>,
    notes: Vec<String>,
    /// Hosts (or host patterns) traffic reaches the script on, as read.
    route_hosts: Vec<String>,
    domains: Vec<String>,
    workers_dev_host: Option<String>,
    previews: Option<(String, String)>,
    /// The account subdomain was needed for a host but could not be read.
    subdomain_unknown: bool,
    /// The script's `workers.dev` switches, when read.
    dev: Option<WorkersDev>,
}

fn routes_of<'a>(
    part: &'a Part<Vec<Route>>,
    label: &str,
    what: &str,
    errors: &mut Vec<String>,
) -> &'a [Route] {
    match part {
        Ok(r) => r,
        Err(e) => {
            errors.push(unreadable(label, what, e));
            &[]
        }
    }
}

fn judge(ingress: &Ingress, declared: &DeclaredIngress, script: &str) -> Judged {
    let mut j = Judged {
        undeclared: Vec::new(),
        errors: Vec::new(),
        notes: Vec::new(),
        route_hosts: Vec::new(),
        domains: Vec::new(),
        workers_dev_host: None,
        previews: None,
        subdomain_unknown: false,
        dev: ingress.workers_dev.as_ref().ok().copied(),
    };
    // Routes: the script's, and the zone's that run this script.
    let declared_routes: BTreeSet<String> = declared
        .routes
        .iter()
        .map(|p| normalize_pattern(p))
        .collect();
    let mut seen_routes = BTreeSet::new();
    let script_routes = routes_of(
        &ingress.routes,
        ROUTES,
        "the script's routes",
        &mut j.errors,
    );
    let mut all: Vec<&Route> = script_routes.iter().collect();
    if let Some((zone, part)) = &ingress.zone_routes {
        let what = format!("the routes of zone {zone}");
        all.extend(routes_of(part, ZONE_ROUTES, &what, &mut j.errors));
    }
    for route in all {
        let n = normalize_pattern(&route.pattern);
        if !seen_routes.insert(n.clone()) {
            continue;
        }
        j.route_hosts.push(pattern_host(&route.pattern));
        if !declared_routes.contains(&n) {
            j.undeclared.push(format!("route `{}`", route.pattern));
        }
    }
    let routes_read = ingress.routes.is_ok()
        && ingress
            .zone_routes
            .as_ref()
            .is_none_or(|(_, part)| part.is_ok());
    if routes_read {
        for d in &declared_routes {
            if !seen_routes.contains(d) {
                j.notes.push(format!(
                    "declared route `{d}` is not live (not a failure: it takes no traffic)"
                ));
            }
        }
    }
    // Custom domains.
    match &ingress.custom_domains {
        Err(e) => j.errors.push(unreadable(DOMAINS, "the custom domains", e)),
        Ok(domains) => {
            let declared_domains: BTreeSet<String> = declared
                .custom_domains
                .iter()
                .map(|d| normalize_host(d))
                .collect();
            let live: BTreeSet<String> = domains
                .iter()
                .map(|d| normalize_host(&d.hostname))
                .collect();
            for d in &live {
                if !declared_domains.contains(d) {
                    j.undeclared.push(format!("custom domain `{d}`"));
                }
            }
            for d in declared_domains.difference(&live) {
                j.notes.push(format!(
                    "declared custom domain `{d}` is not attached (not a failure: it takes no \
                     traffic)"
                ));
            }
            j.domains = live.into_iter().collect();
        }
    }
    // workers.dev and preview URLs.
    match &ingress.workers_dev {
        Err(e) => j.errors.push(unreadable(
            SUBDOMAIN,
            "the script's workers.dev subdomain",
            e,
        )),
        Ok(dev) => {
            if dev.enabled && !declared.workers_dev {
                j.undeclared
                    .push("the workers.dev subdomain is on".to_owned());
            }
            if dev.previews_enabled && !declared.preview_urls {
                j.undeclared.push(
                    "preview URLs are on (every uploaded version is reachable at its own URL)"
                        .to_owned(),
                );
            }
            match &ingress.account_subdomain {
                Some(Ok(sub)) => {
                    if dev.enabled {
                        j.workers_dev_host = Some(format!("{script}.{sub}.workers.dev"));
                    }
                    if dev.previews_enabled {
                        j.previews = Some((script.to_owned(), sub.clone()));
                    }
                }
                Some(Err(e)) => {
                    j.subdomain_unknown = true;
                    j.notes.push(unreadable(
                        ACCOUNT_SUBDOMAIN,
                        "the account's workers.dev subdomain",
                        e,
                    ));
                }
                None => {}
            }
        }
    }
    j
}

impl Judged {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.push(format!("route hosts [{}]", self.route_hosts.join(", ")));
        parts.push(format!("custom domains [{}]", self.domains.join(", ")));
        let state = |on: Option<bool>| match on {
            Some(true) => "on (account subdomain unknown)",
            Some(false) => "off",
            None => "unknown",
        };
        parts.push(format!(
            "workers.dev {}",
            self.workers_dev_host
                .clone()
                .unwrap_or_else(|| state(self.dev.map(|d| d.enabled)).to_owned())
        ));
        parts.push(format!(
            "preview URLs {}",
            match &self.previews {
                Some((s, sub)) => format!("<version>-{s}.{sub}.workers.dev"),
                None => state(self.dev.map(|d| d.previews_enabled)).to_owned(),
            }
        ));
        format!("live ingress: {}", parts.join("; "))
    }

    /// Whether `host` is one of the ingress read.
    fn reaches(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d == host)
            || self.route_hosts.iter().any(|p| host_matches(p, host))
            || self.workers_dev_host.as_deref() == Some(host)
            || self
                .previews
                .as_ref()
                .is_some_and(|(s, sub)| is_preview_host(host, s, sub))
    }
}

/// `verify.ingress`.
pub fn ingress(inputs: &Inputs<'_>) -> Finding {
    let labels: Vec<String> = [ROUTES, DOMAINS, SUBDOMAIN, ACCOUNT_SUBDOMAIN, ZONE_ROUTES]
        .map(str::to_owned)
        .to_vec();
    let context = exchanges(inputs, &labels);
    let live = match live(inputs) {
        Ok(l) => l,
        Err(f) => return f,
    };
    let target = inputs.target;
    let j = judge(&live.ingress, &target.ingress, &target.script);
    let mut evidence = vec![Evidence::note(j.describe())];
    evidence.extend(j.notes.iter().cloned().map(Evidence::note));
    if target.ingress.zone_id.is_none() {
        evidence.push(Evidence::note(
            "no `zone_id` declared: zone routes were not read (the script's own routes were)",
        ));
    }
    // The base URL conform tests.
    let mut base_warning = None;
    let mut base_error = None;
    match inputs.base_url {
        None => evidence.push(Evidence::note(
            "no `target.base_url` (verify alone): whether conform tests one of these ingress \
             was not judged",
        )),
        Some(url) => match url.host_str().map(normalize_host) {
            None => base_error = Some(format!("`target.base_url` {url} has no host")),
            Some(host) if j.reaches(&host) => evidence.push(Evidence::note(format!(
                "`target.base_url`'s host `{host}` is one of the live ingress"
            ))),
            Some(host) if host.ends_with(".workers.dev") && j.subdomain_unknown => {
                base_error = Some(format!(
                    "whether `target.base_url`'s host `{host}` is this script's workers.dev \
                     URL is unknown: the account's workers.dev subdomain could not be read"
                ))
            }
            Some(host) => {
                base_warning = Some(format!(
                    "`target.base_url`'s host `{host}` is none of the script's live ingress: \
                     conform may be testing something else"
                ))
            }
        },
    }
    let mut errors = j.errors.clone();
    errors.extend(base_error);
    let finding = if !j.undeclared.is_empty() {
        let mut f = Finding::fail(format!(
            "undeclared ingress reaches the script: {}",
            j.undeclared.join("; ")
        ));
        for e in &errors {
            f = f.with(Evidence::note(e.clone()));
        }
        f
    } else if !errors.is_empty() {
        Finding::error(errors.join(" | "))
    } else if let Some(w) = base_warning {
        Finding::new(Status::Warn, w)
    } else {
        Finding::pass(
            "every route, custom domain, workers.dev subdomain and preview URL the API reports \
             is declared",
        )
    };
    evidence
        .into_iter()
        .fold(finding, Finding::with)
        .with_exchanges(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compare_without_scheme_and_with_the_host_lowercased() {
        assert_eq!(
            normalize_pattern("HTTPS://Auth.Example.COM/*"),
            "auth.example.com/*"
        );
        assert_eq!(
            normalize_pattern(" *.Example.com./api/*"),
            "*.example.com/api/*"
        );
        // The path is case-sensitive, as Cloudflare matches it.
        assert_ne!(
            normalize_pattern("a.test/API*"),
            normalize_pattern("a.test/api*")
        );
        assert_ne!(
            normalize_pattern("a.test/*"),
            normalize_pattern("a.test/x*")
        );
    }

    #[test]
    fn host_patterns_match_with_a_leading_wildcard() {
        assert!(host_matches("auth.a.test", "auth.a.test"));
        assert!(!host_matches("auth.a.test", "x.auth.a.test"));
        assert!(host_matches("*.a.test", "auth.a.test"));
        assert!(!host_matches("*.a.test", "a.test"));
        assert!(host_matches("*a.test", "a.test"));
        assert!(host_matches("*a.test", "x.a.test"));
        assert!(!host_matches("*a.test", "evila.test"));
    }

    #[test]
    fn preview_hosts_are_one_label_before_the_script() {
        assert!(is_preview_host(
            "abc123-auth.acme.workers.dev",
            "auth",
            "acme"
        ));
        assert!(!is_preview_host("auth.acme.workers.dev", "auth", "acme"));
        assert!(!is_preview_host(
            "x.y-auth.acme.workers.dev",
            "auth",
            "acme"
        ));
    }
}
