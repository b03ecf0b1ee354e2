//! `exchanges.har`: every HTTP exchange of the run as an HTTP Archive
//! (HAR 1.2), for the tools a reviewer already has (Chrome DevTools, Burp,
//! ZAP import it).
//!
//! Each entry is one exchange as `report.json` records it: headers and
//! bodies as recorded, so redacted exactly as in every other format (the
//! cookies and query parameters HAR lists apart are read from those same
//! recorded headers and URL). Entries are in the order the requests were
//! sent (`at_ms`, ties in report order); an exchange that the report
//! records under several checks (a shared observation) is one entry
//! naming every such check. Each entry's `comment` names the checks and the
//! exchange's label, and its `_flareproof` custom field (HAR allows fields
//! with a leading underscore) holds them as data.
//!
//! What HAR asks for that a report does not record: the wire sizes
//! (`headersSize`, `bodySize` are -1, unknown: the recorded bodies are
//! redacted and may be cut) and the phases of a request (`timings.wait`
//! is the whole `elapsed_ms`; `blocked`, `dns`, `connect` are -1). The
//! probe speaks HTTP/1.1 only. An exchange that got no response has
//! status 0 and its error in `_error`, as Chrome writes one.
//!
//! Bodies: the probe decodes a body as UTF-8 (invalid bytes become
//! U+FFFD) before it redacts it, so every recorded body is text and goes
//! in `content.text` as is; there are no original bytes left to write as
//! base64. A body that held invalid bytes says so in `content.comment`.

use serde::Serialize;

use crate::model::{CheckResult, Exchange, Header, Report};

/// HTTP/1.1: the probe's client is built without HTTP/2.
const HTTP_VERSION: &str = "HTTP/1.1";

#[derive(Serialize)]
struct Har<'a> {
    log: Log<'a>,
}

#[derive(Serialize)]
struct Log<'a> {
    version: &'static str,
    creator: Creator<'a>,
    entries: Vec<Entry<'a>>,
    comment: String,
}

#[derive(Serialize)]
struct Creator<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    started_date_time: String,
    time: u64,
    request: Request<'a>,
    response: Response<'a>,
    cache: Cache,
    timings: Timings,
    comment: String,
    #[serde(rename = "_flareproof")]
    flareproof: Custom<'a>,
    #[serde(rename = "_error", skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct Custom<'a> {
    /// The checks whose evidence holds this exchange, in report order.
    checks: Vec<CheckRef<'a>>,
    label: &'a str,
    /// Milliseconds since the run started when the request was sent.
    at_ms: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    body_truncated: bool,
}

#[derive(Serialize)]
struct CheckRef<'a> {
    id: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    method: &'a str,
    url: &'a str,
    http_version: &'static str,
    cookies: Vec<Cookie>,
    headers: Vec<NameValue<'a>>,
    query_string: Vec<Query>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_data: Option<PostData<'a>>,
    headers_size: i64,
    body_size: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    status: u16,
    status_text: &'static str,
    http_version: &'static str,
    cookies: Vec<Cookie>,
    headers: Vec<NameValue<'a>>,
    content: Content<'a>,
    #[serde(rename = "redirectURL")]
    redirect_url: &'a str,
    headers_size: i64,
    body_size: i64,
}

#[derive(Serialize)]
struct NameValue<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Query {
    name: String,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cookie {
    name: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostData<'a> {
    mime_type: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    size: usize,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
struct Cache {}

#[derive(Serialize)]
struct Timings {
    blocked: i64,
    dns: i64,
    connect: i64,
    send: u64,
    wait: u64,
    receive: u64,
}

/// Every exchange of `report` once, in the order sent (`at_ms`, ties in
/// report order), with the checks whose evidence holds it.
pub fn exchanges(report: &Report) -> Vec<(&Exchange, Vec<&CheckResult>)> {
    let mut all: Vec<(&Exchange, Vec<&CheckResult>)> = Vec::new();
    for check in &report.checks {
        for e in &check.evidence {
            let crate::model::Evidence::Exchange(x) = e else {
                continue;
            };
            match all.iter_mut().find(|(seen, _)| *seen == x) {
                Some((_, checks)) => {
                    if !checks.iter().any(|c| std::ptr::eq(*c, check)) {
                        checks.push(check);
                    }
                }
                None => all.push((x, vec![check])),
            }
        }
    }
    // Stable: ties keep report order.
    all.sort_by_key(|(x, _)| x.at_ms);
    all
}

/// The HAR 1.2 document, pretty JSON with a trailing newline.
pub fn render(report: &Report) -> Vec<u8> {
    let started = started(&report.started_at);
    let target = report
        .subject
        .base_url
        .as_deref()
        .or(report.subject.script.as_deref())
        .map(|t| format!(" of {t}"))
        .unwrap_or_default();
    let har = Har {
        log: Log {
            version: "1.2",
            creator: Creator {
                name: &report.tool.name,
                version: &report.tool.version,
            },
            entries: exchanges(report)
                .into_iter()
                .map(|(x, checks)| entry(x, &checks, started))
                .collect(),
            comment: format!(
                "flareproof {}{target} ({}), started {}: every exchange of the run, secrets \
                 redacted as in report.json",
                report.command, report.profile, report.started_at
            ),
        },
    };
    let mut bytes = serde_json::to_vec_pretty(&har).expect("a HAR always serializes");
    bytes.push(b'\n');
    bytes
}

/// The run's start; the epoch when the report's `started_at` is not
/// RFC 3339 (every entry still has a valid, ordered `startedDateTime`).
fn started(started_at: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn date_time(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

fn entry<'a>(
    x: &'a Exchange,
    checks: &[&'a CheckResult],
    started: time::OffsetDateTime,
) -> Entry<'a> {
    let at = started
        .checked_add(time::Duration::milliseconds(
            i64::try_from(x.at_ms).unwrap_or(i64::MAX),
        ))
        .unwrap_or(started);
    let names: Vec<String> = checks
        .iter()
        .map(|c| crate::report::text::label(c))
        .collect();
    let response = match &x.response {
        Some(r) => {
            let mime = header(&r.headers, "content-type").unwrap_or("x-unknown");
            let lossy = r.body.as_deref().is_some_and(|b| b.contains('\u{FFFD}'));
            let mut notes = Vec::new();
            if r.body_truncated {
                notes.push("the body was cut by the probe; report.json has what was recorded");
            }
            if lossy {
                notes.push("the body was not valid UTF-8: invalid bytes were recorded as U+FFFD");
            }
            Response {
                status: r.status,
                status_text: status_text(r.status),
                http_version: HTTP_VERSION,
                cookies: r
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
                    .filter_map(|h| set_cookie(&h.value))
                    .collect(),
                headers: name_values(&r.headers),
                content: Content {
                    size: r.body.as_deref().map_or(0, str::len),
                    mime_type: mime,
                    text: r.body.as_deref(),
                    comment: (!notes.is_empty()).then(|| notes.join("; ")),
                },
                redirect_url: header(&r.headers, "location").unwrap_or(""),
                headers_size: -1,
                body_size: -1,
            }
        }
        None => Response {
            status: 0,
            status_text: "",
            http_version: HTTP_VERSION,
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content {
                size: 0,
                mime_type: "x-unknown",
                text: None,
                comment: None,
            },
            redirect_url: "",
            headers_size: -1,
            body_size: -1,
        },
    };
    let request = &x.request;
    Entry {
        started_date_time: date_time(at),
        time: x.elapsed_ms,
        request: Request {
            method: &request.method,
            url: &request.url,
            http_version: HTTP_VERSION,
            cookies: request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
                .flat_map(|h| cookie_pairs(&h.value))
                .collect(),
            headers: name_values(&request.headers),
            query_string: query(&request.url),
            post_data: request.body.as_deref().map(|text| PostData {
                mime_type: header(&request.headers, "content-type").unwrap_or(""),
                text,
            }),
            headers_size: -1,
            body_size: -1,
        },
        response,
        cache: Cache {},
        timings: Timings {
            blocked: -1,
            dns: -1,
            connect: -1,
            send: 0,
            wait: x.elapsed_ms,
            receive: 0,
        },
        comment: format!("{}: {}", names.join(", "), x.label),
        flareproof: Custom {
            checks: checks
                .iter()
                .map(|c| CheckRef {
                    id: c.id.as_str(),
                    status: c.status.as_str(),
                    version: c.version.as_deref(),
                })
                .collect(),
            label: &x.label,
            at_ms: x.at_ms,
            body_truncated: x.response.as_ref().is_some_and(|r| r.body_truncated),
        },
        error: x.error.as_deref(),
    }
}

fn name_values(headers: &[Header]) -> Vec<NameValue<'_>> {
    headers
        .iter()
        .map(|h| NameValue {
            name: &h.name,
            value: &h.value,
        })
        .collect()
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// `a=1; b=2` as sent in `Cookie`.
fn cookie_pairs(value: &str) -> Vec<Cookie> {
    value
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some(Cookie {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
                path: None,
                domain: None,
                http_only: None,
                secure: None,
            })
        })
        .collect()
}

/// One `Set-Cookie` value; none when it does not parse.
fn set_cookie(value: &str) -> Option<Cookie> {
    let parsed = cookie::Cookie::parse(value).ok()?;
    Some(Cookie {
        name: parsed.name().to_owned(),
        value: parsed.value().to_owned(),
        path: parsed.path().map(str::to_owned),
        domain: parsed.domain().map(str::to_owned),
        http_only: Some(parsed.http_only().unwrap_or(false)),
        secure: Some(parsed.secure().unwrap_or(false)),
    })
}

/// The URL's query parameters, decoded; none when the URL does not parse.
fn query(url: &str) -> Vec<Query> {
    url::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .map(|(n, v)| Query {
                    name: n.into_owned(),
                    value: v.into_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn status_text(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_times_are_the_run_start_plus_at_ms_in_utc_milliseconds() {
        let start = started("2026-11-23T01:00:00+01:00");
        let at = start + time::Duration::milliseconds(1234);
        assert_eq!(date_time(at), "2026-11-23T00:00:01.234Z");
        assert_eq!(date_time(started("not a time")), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn cookies_and_queries_come_from_the_recorded_header_and_url() {
        let sent = cookie_pairs("a=1; __Secure-s=[redacted]");
        assert_eq!(
            sent.iter()
                .map(|c| (c.name.as_str(), c.value.as_str()))
                .collect::<Vec<_>>(),
            [("a", "1"), ("__Secure-s", "[redacted]")]
        );
        let set = set_cookie("s=[redacted]; Path=/; HttpOnly; Secure").unwrap();
        assert_eq!(
            (set.path.as_deref(), set.http_only, set.secure),
            (Some("/"), Some(true), Some(true))
        );
        let q = query("http://x.test/a?b=1&c=%20d");
        assert_eq!((q[1].name.as_str(), q[1].value.as_str()), ("c", " d"));
        assert!(query("not a url").is_empty());
    }
}
