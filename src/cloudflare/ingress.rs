//! Every way traffic reaches the script, as the API reports it: the script's
//! routes, the account's custom domains for it, its `workers.dev` subdomain
//! and preview URLs, and (with a zone id) the zone's routes.
//!
//! Each endpoint is read on its own: one that fails (a 403 for a missing
//! token permission, an answer of an unexpected shape) leaves the others
//! usable, and the check names which part it could not observe.

use std::sync::Arc;

use serde_json::Value;

use super::client::Client;
use super::error::ApiError;

/// The label of the script routes exchange.
pub const ROUTES: &str = "routes";
/// The label of the custom domains exchange.
pub const DOMAINS: &str = "domains";
/// The label of the script subdomain exchange.
pub const SUBDOMAIN: &str = "subdomain";
/// The label of the account subdomain exchange.
pub const ACCOUNT_SUBDOMAIN: &str = "account subdomain";
/// The label of the zone routes exchange.
pub const ZONE_ROUTES: &str = "zone routes";

/// The token permission each ingress endpoint needs, by exchange label.
pub fn permission(label: &str) -> &'static str {
    match label {
        ROUTES => "Workers Routes Read",
        ZONE_ROUTES => "Zone › Workers Routes › Read (on that zone)",
        _ => super::SCRIPTS_READ,
    }
}

/// A route (`{id, pattern, script}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: Option<String>,
    pub pattern: String,
    /// The script the route runs; `None`: the route runs no Worker.
    pub script: Option<String>,
}

/// A custom domain (`{id, hostname, service, environment, zone_id,
/// zone_name}`) attached to the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomain {
    pub hostname: String,
    pub service: String,
    pub environment: Option<String>,
    pub zone_name: Option<String>,
}

/// The script's `workers.dev` switch (`{enabled, previews_enabled}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkersDev {
    pub enabled: bool,
    pub previews_enabled: bool,
}

/// One ingress read: what it said, or why it could not be read.
pub type Part<T> = Result<T, Arc<ApiError>>;

/// Every ingress of the script, each part read on its own.
#[derive(Debug, Clone)]
pub struct Ingress {
    /// `GET /accounts/{a}/workers/scripts/{s}/routes`.
    pub routes: Part<Vec<Route>>,
    /// `GET /accounts/{a}/workers/domains?service={s}`, only those whose
    /// `service` is the script.
    pub custom_domains: Part<Vec<CustomDomain>>,
    /// `GET /accounts/{a}/workers/scripts/{s}/subdomain`.
    pub workers_dev: Part<WorkersDev>,
    /// `GET /accounts/{a}/workers/subdomain` (`{subdomain}`): read only when
    /// the script is on `workers.dev` or has preview URLs on.
    pub account_subdomain: Option<Part<String>>,
    /// `GET /zones/{z}/workers/routes` when a zone id is declared: the
    /// zone's id and its routes whose `script` is this script.
    pub zone_routes: Option<(String, Part<Vec<Route>>)>,
}

impl Ingress {
    /// Why a part could not be read: the first such part, in field order.
    pub fn first_error(&self) -> Option<Arc<ApiError>> {
        let err = |p: Result<(), &Arc<ApiError>>| p.err().cloned();
        err(self.routes.as_ref().map(|_| ()))
            .or_else(|| err(self.custom_domains.as_ref().map(|_| ())))
            .or_else(|| err(self.workers_dev.as_ref().map(|_| ())))
            .or_else(|| {
                self.account_subdomain
                    .as_ref()
                    .and_then(|p| err(p.as_ref().map(|_| ())))
            })
            .or_else(|| {
                self.zone_routes
                    .as_ref()
                    .and_then(|(_, p)| err(p.as_ref().map(|_| ())))
            })
    }
}

fn shape(url: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Shape {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

fn list<'a>(url: &str, result: &'a Value) -> Result<&'a Vec<Value>, ApiError> {
    result
        .as_array()
        .ok_or_else(|| shape(url, "`result` is not a list"))
}

fn optional_string(
    url: &str,
    item: &Value,
    field: &str,
    what: &str,
) -> Result<Option<String>, ApiError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(
            url,
            format!("{what} has a `{field}` that is not a string"),
        )),
    }
}

/// Parses a list of routes (`{id, pattern, script}`).
pub fn parse_routes(url: &str, result: &Value) -> Result<Vec<Route>, ApiError> {
    let mut out = Vec::new();
    for r in list(url, result)? {
        if !r.is_object() {
            return Err(shape(url, "a route is not an object"));
        }
        let pattern = r
            .get("pattern")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(url, "a route has no `pattern`"))?;
        let what = format!("route `{pattern}`");
        out.push(Route {
            id: optional_string(url, r, "id", &what)?,
            pattern: pattern.to_owned(),
            script: optional_string(url, r, "script", &what)?.filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

/// Parses the custom domains list, keeping those whose `service` is
/// `script`.
pub fn parse_domains(
    url: &str,
    result: &Value,
    script: &str,
) -> Result<Vec<CustomDomain>, ApiError> {
    let mut out = Vec::new();
    for d in list(url, result)? {
        if !d.is_object() {
            return Err(shape(url, "a custom domain is not an object"));
        }
        let hostname = d
            .get("hostname")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(url, "a custom domain has no `hostname`"))?;
        let what = format!("custom domain `{hostname}`");
        let service = d
            .get("service")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(url, format!("{what} has no `service`")))?;
        if service != script {
            continue;
        }
        out.push(CustomDomain {
            hostname: hostname.to_owned(),
            service: service.to_owned(),
            environment: optional_string(url, d, "environment", &what)?,
            zone_name: optional_string(url, d, "zone_name", &what)?,
        });
    }
    Ok(out)
}

/// Parses `{enabled, previews_enabled}`.
pub fn parse_workers_dev(url: &str, result: &Value) -> Result<WorkersDev, ApiError> {
    let flag = |field: &str| {
        result
            .get(field)
            .and_then(Value::as_bool)
            .ok_or_else(|| shape(url, format!("`{field}` is missing or not a boolean")))
    };
    Ok(WorkersDev {
        enabled: flag("enabled")?,
        previews_enabled: flag("previews_enabled")?,
    })
}

/// Parses `{subdomain}`.
pub fn parse_account_subdomain(url: &str, result: &Value) -> Result<String, ApiError> {
    result
        .get("subdomain")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| shape(url, "`subdomain` is missing or not a non-empty string"))
}

async fn read<T>(
    client: &Client,
    label: &str,
    url: &str,
    parse: impl FnOnce(&str, &Value) -> Result<T, ApiError>,
) -> Part<T> {
    let result: Value = client.get_json(label, url).await.map_err(Arc::new)?;
    parse(url, &result).map_err(Arc::new)
}

/// `{api_base}/zones/{zone}/workers/routes`.
fn zone_url(client: &Client, zone: &str) -> String {
    // The account URL is `{base}/accounts/{id}/x`: the base is what precedes
    // `/accounts/`.
    let account = client.account_url("");
    let base = account
        .rfind("/accounts/")
        .map_or(account.as_str(), |i| &account[..i]);
    format!("{base}/zones/{zone}/workers/routes")
}

/// Reads every ingress of `script`, concurrently; the account subdomain
/// after the script's, and only when the script is on `workers.dev` or has
/// preview URLs on.
pub async fn fetch_ingress(client: &Client, script: &str, zone_id: Option<&str>) -> Ingress {
    let routes_url = client.account_url(&format!("workers/scripts/{script}/routes"));
    let domains_url = client.account_url(&format!("workers/domains?service={script}"));
    let subdomain_url = client.account_url(&format!("workers/scripts/{script}/subdomain"));
    let zone = async {
        let zone = zone_id?;
        let url = zone_url(client, zone);
        let routes = read(client, ZONE_ROUTES, &url, parse_routes)
            .await
            .map(|all| {
                all.into_iter()
                    .filter(|r| r.script.as_deref() == Some(script))
                    .collect()
            });
        Some((zone.to_owned(), routes))
    };
    let workers_dev = async {
        let dev = read(client, SUBDOMAIN, &subdomain_url, parse_workers_dev).await;
        let on = dev.as_ref().is_ok_and(|d| d.enabled || d.previews_enabled);
        let account = if on {
            let url = client.account_url("workers/subdomain");
            Some(read(client, ACCOUNT_SUBDOMAIN, &url, parse_account_subdomain).await)
        } else {
            None
        };
        (dev, account)
    };
    let (routes, custom_domains, (workers_dev, account_subdomain), zone_routes) = tokio::join!(
        read(client, ROUTES, &routes_url, parse_routes),
        read(client, DOMAINS, &domains_url, |url, v| parse_domains(
            url, v, script
        )),
        workers_dev,
        zone,
    );
    Ingress {
        routes,
        custom_domains,
        workers_dev,
        account_subdomain,
        zone_routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_need_a_list_of_objects_with_a_pattern() {
        let u = "https://api/x";
        let ok = parse_routes(
            u,
            &json!([{ "id": "1", "pattern": "a.test/*", "script": "s" }]),
        );
        assert_eq!(ok.unwrap()[0].script.as_deref(), Some("s"));
        for (bad, said) in [
            (json!({ "routes": [] }), "`result` is not a list"),
            (json!([{ "id": "1" }]), "a route has no `pattern`"),
            (json!([{ "pattern": 7 }]), "a route has no `pattern`"),
            (json!(["a.test/*"]), "a route is not an object"),
            (
                json!([{ "pattern": "a/*", "script": 3 }]),
                "`script` that is not a string",
            ),
        ] {
            let e = crate::error_chain(&parse_routes(u, &bad).unwrap_err());
            assert!(e.contains(said) && e.contains(u), "{e}");
        }
    }

    #[test]
    fn domains_keep_only_this_script_and_need_hostname_and_service() {
        let u = "https://api/d";
        let all = json!([
            { "id": "1", "hostname": "a.test", "service": "auth", "zone_name": "a.test" },
            { "id": "2", "hostname": "b.test", "service": "other" },
        ]);
        let d = parse_domains(u, &all, "auth").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].hostname, "a.test");
        let e = parse_domains(u, &json!([{ "service": "auth" }]), "auth").unwrap_err();
        assert!(crate::error_chain(&e).contains("no `hostname`"));
        let e = parse_domains(u, &json!([{ "hostname": "a.test" }]), "auth").unwrap_err();
        assert!(crate::error_chain(&e).contains("no `service`"));
    }

    #[test]
    fn workers_dev_flags_must_be_booleans() {
        let u = "https://api/s";
        let d = parse_workers_dev(u, &json!({ "enabled": true, "previews_enabled": false }));
        assert_eq!(
            d.unwrap(),
            WorkersDev {
                enabled: true,
                previews_enabled: false
            }
        );
        let e = parse_workers_dev(u, &json!({ "enabled": "yes", "previews_enabled": false }));
        assert!(crate::error_chain(&e.unwrap_err()).contains("`enabled`"));
        let e = parse_workers_dev(u, &json!({ "enabled": true }));
        assert!(crate::error_chain(&e.unwrap_err()).contains("`previews_enabled`"));
        assert!(parse_account_subdomain(u, &json!({ "subdomain": "" })).is_err());
        assert_eq!(
            parse_account_subdomain(u, &json!({ "subdomain": "acme" })).unwrap(),
            "acme"
        );
    }
}
