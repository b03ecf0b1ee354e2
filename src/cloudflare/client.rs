//! A read-only Cloudflare API client: bearer token, the v4 envelope, and
//! retries (429 honours `Retry-After`, seconds or HTTP date, up to a cap;
//! 5xx and dropped connections back off exponentially, a bounded number of
//! times).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::model::{Exchange, Header, HttpRequest, HttpResponse, Secret};
use crate::probe::Redactor;

use super::envelope::{Envelope, describe, errors_of};
use super::error::ApiError;

/// The account and token to read with. `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account_id: String,
    pub token: Secret,
}

/// How hard to try. The defaults follow wrangler: 3 retries, `Retry-After`
/// honoured up to 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// First backoff after a 5xx or a dropped connection; doubles each time.
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; longer waits are cut to this.
    pub retry_after_cap: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(500),
            retry_after_cap: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A response that came back with a 2xx status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    retry: RetryPolicy,
    started: Instant,
    /// The most of one answer's body read ([`MAX_API_BODY`]).
    max_body: u64,
    transcript: Mutex<Vec<Exchange>>,
    /// Knows the token, in every encoding an API might echo it in: error
    /// details and the transcript pass through it.
    redactor: Redactor,
}

/// Cheap to clone; clones share the transcript.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Response headers worth keeping as evidence.
const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "retry-after",
    "cf-entrypoint",
    "cf-ray",
    "content-length",
];
/// Error bodies longer than this are cut in the transcript.
const MAX_EVIDENCE_BODY: usize = 2048;

/// The most of one API answer's body that is read; a longer one is an
/// error. The largest answer a read legitimately gets is a version's
/// modules: a Worker may be 10 MiB after compression (paid plan) and 64 MiB
/// before, and the API hands the modules over uncompressed, base64-encoded
/// in JSON (4/3 of their size, about 86 MiB at most) or as a multipart
/// download. 128 MiB holds the largest bundle with room; an answer past it
/// is no Worker's, and reading it would only exhaust memory.
pub const MAX_API_BODY: u64 = 128 * 1024 * 1024;

impl Client {
    pub fn new(
        api_base: &url::Url,
        credentials: Credentials,
        retry: RetryPolicy,
    ) -> Result<Client, ApiError> {
        let base = api_base.as_str().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .user_agent(concat!("flareproof/", env!("CARGO_PKG_VERSION")))
            .timeout(retry.timeout)
            .build()
            .map_err(|source| ApiError::Send {
                url: base.clone(),
                source,
            })?;
        let redactor = Redactor::new();
        redactor.learn(&credentials.token);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                credentials,
                retry,
                started: Instant::now(),
                max_body: MAX_API_BODY,
                transcript: Mutex::new(Vec::new()),
                redactor,
            }),
        })
    }

    /// `{api_base}/accounts/{account_id}/{path}`.
    pub fn account_url(&self, path: &str) -> String {
        format!(
            "{}/accounts/{}/{}",
            self.inner.base,
            self.inner.credentials.account_id,
            path.trim_start_matches('/')
        )
    }

    /// Every exchange so far, the token redacted.
    pub fn transcript(&self) -> Vec<Exchange> {
        self.inner
            .transcript
            .lock()
            .expect("transcript poisoned")
            .clone()
    }

    /// The exchanges whose label starts with `prefix`.
    pub fn exchanges(&self, prefix: &str) -> Vec<Exchange> {
        self.transcript()
            .into_iter()
            .filter(|e| e.label.starts_with(prefix))
            .collect()
    }

    /// GETs `url` and unwraps the envelope's `result`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        label: &str,
        url: &str,
    ) -> Result<T, ApiError> {
        let response = self.get(label, url, "application/json").await?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&response.body).map_err(|source| ApiError::Malformed {
                url: url.to_owned(),
                source,
            })?;
        if !envelope.success {
            return Err(ApiError::Envelope {
                url: url.to_owned(),
                detail: self.detail(&envelope.errors),
            });
        }
        envelope.result.ok_or_else(|| ApiError::Shape {
            url: url.to_owned(),
            problem: "`success` is true but `result` is missing".to_owned(),
        })
    }

    /// GETs `url`, retrying 429, 5xx and dropped connections; any other
    /// non-2xx status is an error.
    pub async fn get(&self, label: &str, url: &str, accept: &str) -> Result<Response, ApiError> {
        let retry = self.inner.retry;
        let attempts = retry.attempts.max(1);
        let mut backoff = retry.backoff;
        for attempt in 1..=attempts {
            let last = attempt == attempts;
            let at = self.inner.started.elapsed();
            let sent = Instant::now();
            let result = self
                .inner
                .http
                .get(url)
                .header(
                    AUTHORIZATION,
                    format!("Bearer {}", self.inner.credentials.token.expose()),
                )
                .header(ACCEPT, accept)
                .send()
                .await;
            let response = match result {
                Ok(r) => r,
                Err(source) => {
                    self.record(label, url, accept, at, sent, None, Some(&source));
                    if last || !(source.is_connect() || source.is_timeout() || source.is_request())
                    {
                        return Err(ApiError::Send {
                            url: url.to_owned(),
                            source,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = match read_capped(response, self.inner.max_body).await {
                Ok(Some(body)) => body,
                Ok(None) => {
                    // Not transient: the same read would answer the same.
                    self.record(
                        label,
                        url,
                        accept,
                        at,
                        sent,
                        Some((status, &headers, b"")),
                        None,
                    );
                    return Err(ApiError::TooLarge {
                        url: url.to_owned(),
                        status,
                        limit: self.inner.max_body,
                    });
                }
                Err(source) => {
                    self.record(
                        label,
                        url,
                        accept,
                        at,
                        sent,
                        Some((status, &headers, b"")),
                        Some(&source),
                    );
                    if last {
                        return Err(ApiError::Body {
                            url: url.to_owned(),
                            status,
                            source,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
            };
            self.record(
                label,
                url,
                accept,
                at,
                sent,
                Some((status, &headers, &body)),
                None,
            );
            match status {
                200..=299 => {
                    return Ok(Response {
                        status,
                        headers,
                        body,
                    });
                }
                401 | 403 => {
                    return Err(ApiError::Unauthorized {
                        url: url.to_owned(),
                        status,
                        detail: self.detail(&errors_of(&body)),
                    });
                }
                429 | 500..=599 if !last => {
                    let wait = if status == 429 {
                        retry_after(&headers)
                            .unwrap_or(backoff)
                            .min(retry.retry_after_cap)
                    } else {
                        backoff
                    };
                    backoff *= 2;
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return Err(ApiError::Status {
                        url: url.to_owned(),
                        status,
                        attempts: attempt,
                        detail: self.detail(&errors_of(&body)),
                    });
                }
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// The API's error messages, which may echo the token: scrubbed.
    fn detail(&self, errors: &[super::envelope::ApiMessage]) -> String {
        self.inner.redactor.scrub(&describe(errors))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        label: &str,
        url: &str,
        accept: &str,
        at: Duration,
        sent: Instant,
        response: Option<(u16, &HeaderMap, &[u8])>,
        error: Option<&reqwest::Error>,
    ) {
        let scrub = |s: String| self.inner.redactor.scrub(&s);
        let response = response.map(|(status, headers, body)| {
            let kept = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    headers.get(*name).map(|v| Header {
                        name: (*name).to_owned(),
                        value: scrub(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    })
                })
                .collect();
            // Successful bodies are modules and settings, recorded elsewhere;
            // error bodies say why.
            let show = !(200..300).contains(&status) && !body.is_empty();
            let cut = body.len().min(MAX_EVIDENCE_BODY);
            HttpResponse {
                status,
                headers: kept,
                body: show.then(|| scrub(String::from_utf8_lossy(&body[..cut]).into_owned())),
                body_truncated: show && cut < body.len(),
            }
        });
        let exchange = Exchange {
            label: label.to_owned(),
            request: HttpRequest {
                method: "GET".to_owned(),
                url: url.to_owned(),
                headers: vec![
                    Header {
                        name: "authorization".to_owned(),
                        value: "Bearer [redacted]".to_owned(),
                    },
                    Header {
                        name: "accept".to_owned(),
                        value: accept.to_owned(),
                    },
                ],
                body: None,
            },
            response,
            error: error.map(|e| scrub(crate::error_chain(e))),
            at_ms: at.as_millis() as u64,
            elapsed_ms: sent.elapsed().as_millis() as u64,
        };
        self.inner
            .transcript
            .lock()
            .expect("transcript poisoned")
            .push(exchange);
    }
}

/// Reads a body of at most `cap` bytes, streaming; `None` when it is longer
/// (a `Content-Length` over the cap is not read at all).
async fn read_capped(
    mut response: reqwest::Response,
    cap: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    let announced = response.content_length().unwrap_or(0);
    if announced > cap {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(body)))
}

/// `Retry-After` as delay-seconds (fractions allowed) or as an HTTP date
/// (RFC 9110 §10.2.3; a date already past means no wait). Anything else
/// falls back to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // A number too large for a Duration is no usable delay.
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_ignores_junk() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "0.25".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.insert(RETRY_AFTER, "-1".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        // Numbers a Duration cannot hold are no delay, never a panic.
        for huge in ["1e30", "18446744073709551616", "inf", "NaN"] {
            h.insert(RETRY_AFTER, huge.parse().unwrap());
            assert_eq!(retry_after(&h), None, "{huge}");
        }
    }

    #[test]
    fn retry_after_takes_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:05 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_at(&h, now), Some(Duration::from_secs(5)));
        // A date already past: retry now.
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:27:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_at(&h, now), Some(Duration::ZERO));
        // Not a date in the IMF-fixdate (or obsolete) forms.
        h.insert(RETRY_AFTER, "2015-10-21T07:28:05Z".parse().unwrap());
        assert_eq!(retry_after_at(&h, now), None);
    }

    /// An answer longer than the cap is an error naming the endpoint and
    /// the cap, read no further and not retried; one at the cap is read.
    #[tokio::test]
    async fn an_api_body_over_the_cap_is_an_error_not_a_crash() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};
        let server = MockServer::start().await;
        for (name, len) in [("big", 1025), ("fits", 1024)] {
            Mock::given(path(format!("/accounts/acc/{name}")))
                .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; len]))
                .mount(&server)
                .await;
        }
        let mut client = Client::new(
            &server.uri().parse().unwrap(),
            Credentials {
                account_id: "acc".to_owned(),
                token: Secret::new("cf-cap-token-123456".to_owned()),
            },
            RetryPolicy::default(),
        )
        .unwrap();
        Arc::get_mut(&mut client.inner).unwrap().max_body = 1024;
        let url = client.account_url("big");
        let error = client
            .get("modules", &url, "application/json")
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                ApiError::TooLarge {
                    limit: 1024,
                    status: 200,
                    ..
                }
            ),
            "{error:?}"
        );
        let text = crate::error_chain(&error);
        assert!(text.contains(&url) && text.contains("1024 bytes"), "{text}");
        assert!(error.hint("T").contains("api_base"), "{}", error.hint("T"));
        assert_eq!(client.transcript().len(), 1, "not retried");
        let fits = client
            .get("modules", &client.account_url("fits"), "application/json")
            .await
            .unwrap();
        assert_eq!(fits.body.len(), 1024);
    }

    #[tokio::test]
    async fn api_error_details_do_not_echo_the_token() {
        use base64::Engine as _;
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
        let token = "cf-detail-token/Qm38+vXz1LpR7";
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        let server = MockServer::start().await;
        let errors = serde_json::json!({
            "success": false,
            "errors": [
                { "code": 10000, "message": format!("bad token {token}") },
                { "code": 10001, "message": format!("as sent: Bearer {b64}") },
            ],
        });
        for status in [403, 400] {
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(status).set_body_json(&errors))
                .up_to_n_times(1)
                .mount(&server)
                .await;
            let client = Client::new(
                &server.uri().parse().unwrap(),
                Credentials {
                    account_id: "acc".to_owned(),
                    token: Secret::new(token.to_owned()),
                },
                RetryPolicy::default(),
            )
            .unwrap();
            let error = client
                .get("read", &client.account_url("x"), "application/json")
                .await
                .unwrap_err();
            let text = crate::error_chain(&error);
            assert_eq!(error.status(), Some(status));
            assert!(text.contains("bad token [redacted]"), "{text}");
            assert!(!text.contains(token) && !text.contains(&b64), "{text}");
            let transcript = format!("{:?}", client.transcript());
            assert!(!transcript.contains(token) && !transcript.contains(&b64));
        }
    }
}
