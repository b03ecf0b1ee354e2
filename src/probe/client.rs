//! The only HTTP client that talks to targets: every request is admitted by
//! the [`Governor`], recorded as a redacted [`Exchange`], and its cookies
//! parsed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

use super::body::{self, Cut, Keep, KeptBody, Ledger};
use super::budget::{BudgetExhausted, Governor};
use super::cookie::{CookieError, Jar, SetCookie};
use super::redact::Redactor;
use crate::model::{Exchange, Header, HttpRequest, HttpResponse};
use crate::target::Budget;

/// A target that does not answer within this is an error, not a verdict.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Budget(#[from] BudgetExhausted),
    #[error("send {method} `{url}`")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("build HTTP client")]
    Client(#[source] reqwest::Error),
    /// A patient probe met a 429 it could not wait out: the check it serves
    /// tests something other than rate limits, so it could not observe.
    #[error(
        "{label}: still answered 429 after {} sends and {waited_ms} ms of waiting; a spent rate-limit bucket, which this check does not test, stood in its way",
        .exchanges.len()
    )]
    StillRateLimited {
        label: String,
        waited_ms: u128,
        /// Every 429 exchange, one per send, redacted, for the evidence.
        exchanges: Vec<Exchange>,
    },
    /// The answer's body was longer than `budget.max_body_bytes`: it was
    /// cut there, and nothing is judged on a body only partly read.
    #[error(
        "{method} `{url}`: the answer's body exceeds {limit} bytes (`budget.max_body_bytes`); it was not read further"
    )]
    BodyTooLarge {
        method: String,
        url: String,
        limit: u64,
        /// The exchange as far as it was read.
        exchange: Box<Exchange>,
    },
    /// Keeping the answer's body would take what the run holds of
    /// answers past `budget.max_kept_bytes`: it was cut there, and nothing
    /// is judged on a body only partly read.
    #[error(
        "{method} `{url}`: keeping the answer's body would take the run past the {cap} bytes of answers it may hold at once (`budget.max_kept_bytes`; {held} held by other requests); it was not read further"
    )]
    OverKept {
        method: String,
        url: String,
        cap: u64,
        held: u64,
        /// The exchange as far as it was read.
        exchange: Box<Exchange>,
    },
}

/// A request to send. Its headers and body carry credentials (cookies,
/// the service key, passwords), so its `Debug` shows header names only.
#[derive(Clone)]
pub struct Req {
    pub label: String,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// What of the answer's body is kept (see [`Req::keep`]).
    pub keep: Keep,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Req")
            .field("label", &self.label)
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &names)
            .field("body", &self.body.as_ref().map(|b| b.len()))
            .field("keep", &self.keep)
            .finish()
    }
}

impl Req {
    pub fn new(method: Method, url: Url, label: impl Into<String>) -> Self {
        Req {
            label: label.into(),
            method,
            url,
            headers: Vec::new(),
            body: None,
            keep: Keep::Body,
        }
    }

    pub fn get(url: Url, label: impl Into<String>) -> Self {
        Self::new(Method::GET, url, label)
    }

    pub fn post(url: Url, label: impl Into<String>) -> Self {
        Self::new(Method::POST, url, label)
    }

    /// Adds a header. Cookies join the one `Cookie` header, `; `-separated,
    /// as a browser sends them: a second `Cookie` line is not what any
    /// browser sends, and a Worker's `Headers.get` would join the two with
    /// `, `, which no cookie parser reads as two cookies.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if name.eq_ignore_ascii_case("cookie")
            && let Some((_, held)) = self
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        {
            held.push_str("; ");
            held.push_str(&value);
            return self;
        }
        self.headers.push((name.to_owned(), value));
        self
    }

    /// A JSON body with its content type.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Some(value.to_string());
        self.header("content-type", "application/json")
    }

    /// What of the answer's body to keep: [`Keep::Record`] for a caller that
    /// reads status and headers only, so that the body is read and
    /// discarded, not held.
    pub fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }

    /// Sends the jar's cookies, if any.
    pub fn jar(self, jar: &Jar) -> Self {
        match jar.header() {
            Some(h) => self.header("cookie", h),
            None => self,
        }
    }
}

/// What came back, with the redacted record of the exchange.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The whole body, or nothing when the request kept only its record
    /// ([`Keep::Record`]); counted against `budget.max_kept_bytes` while
    /// held.
    pub body: KeptBody,
    pub exchange: Exchange,
}

impl Observed {
    /// Every value of a header, case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// `Retry-After` as delay-seconds, when it is one, clamped to
    /// [`MAX_WIRE_DELAY_S`]: a target controls the number, so no wait or
    /// instant computed from it may overflow.
    pub fn retry_after_s(&self) -> Option<u64> {
        let s: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(s.min(MAX_WIRE_DELAY_S))
    }

    /// Every `Set-Cookie` that parses, in order. One that does not is
    /// ignored, as a user agent ignores it (RFC 6265bis §5.6): it sets
    /// nothing, so a check that needed it finds no cookie, never a pass;
    /// [`Observed::ignored_set_cookies`] says which and why.
    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.header_values("set-cookie")
            .filter_map(|h| SetCookie::parse(h).ok())
            .collect()
    }

    /// Why each `Set-Cookie` that [`Observed::set_cookies`] ignored did not parse.
    pub fn ignored_set_cookies(&self) -> Vec<CookieError> {
        self.header_values("set-cookie")
            .filter_map(|h| SetCookie::parse(h).err())
            .collect()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The budgeted, redacting HTTP client of a run.
#[derive(Debug, Clone)]
pub struct Probe {
    client: reqwest::Client,
    governor: Arc<Governor>,
    /// The answers' bodies the run holds, against `budget.max_kept_bytes`.
    ledger: Arc<Ledger>,
    redactor: Arc<Redactor>,
    epoch: Instant,
    patience: Option<Arc<Patience>>,
    /// The 429 waits of this probe and every patient clone of it.
    waits: Arc<Mutex<Vec<Duration>>>,
    /// Headers sent on every request of the run (after the request's own,
    /// which win on a clash): a run pinned to one Worker version sends
    /// `Cloudflare-Workers-Version-Overrides` here.
    run_headers: Arc<Vec<(String, String)>>,
}

/// How a patient probe waits out 429s (see [`Probe::patient`]).
#[derive(Debug)]
struct Patience {
    /// The longest single wait: about one rate-limit window.
    per_wait: Duration,
    /// No wait of a request may end later than this after the request was
    /// first sent, whenever in the run that is.
    within: Duration,
}

/// Resends of one request after a 429, at most.
const MAX_PATIENT_RESENDS: usize = 2;
/// Waits go this much past `Retry-After`, which is whole seconds.
const PAST_RETRY_AFTER: Duration = Duration::from_millis(100);

/// The longest delay a target's answer may ask for that the harness takes
/// as given (a day); longer ones are clamped to it.
pub const MAX_WIRE_DELAY_S: u64 = 86_400;

impl Probe {
    pub fn new(budget: Budget, redactor: Arc<Redactor>) -> Result<Self, ProbeError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per request: a pooled one the target closed
            // while idle fails the next request with no answer, which would
            // turn a healthy target into an `error`.
            .pool_max_idle_per_host(0)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("flareproof/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ProbeError::Client)?;
        Ok(Probe {
            client,
            governor: Arc::new(Governor::new(budget)),
            ledger: Arc::new(Ledger::new(budget.kept_bytes())),
            redactor,
            epoch: Instant::now(),
            patience: None,
            waits: Arc::default(),
            run_headers: Arc::default(),
        })
    }

    /// The same probe (budget, rate cap, redaction, clock), sending `name:
    /// value` on every request of its own and of every clone made from it
    /// (patient ones included), unless a request sets that header itself.
    pub fn with_run_header(&self, name: &str, value: &str) -> Probe {
        let mut headers = (*self.run_headers).clone();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value.to_owned()));
        Probe {
            run_headers: Arc::new(headers),
            ..self.clone()
        }
    }

    /// The headers every request of this probe carries (see
    /// [`Probe::with_run_header`]).
    pub fn run_headers(&self) -> &[(String, String)] {
        &self.run_headers
    }

    /// The same client (budget, rate cap, redaction, clock), except that a
    /// 429 is waited out and the request resent, for checks that test
    /// something other than rate limits and would otherwise meet a bucket
    /// that an earlier run (or another check sharing the bucket) spent. A
    /// wait lasts until `Retry-After` (or `per_wait` without one), never
    /// longer than `per_wait` (a target's `Retry-After` cannot stall the
    /// run), never past `within` from when that request was first sent (a
    /// check starting late in the run is as patient as one starting at
    /// once), and a request is resent at most twice; a 429 left after that
    /// is [`ProbeError::StillRateLimited`], never an answer the check could
    /// judge. Every resend passes the run's governor (budget and rate cap).
    /// A resent exchange says so in its label.
    ///
    /// Resending a POST assumes what CONTRACT.md implies: a target meters a
    /// request before it acts on it, so a refused write was not made.
    pub fn patient(&self, per_wait: Duration, within: Duration) -> Probe {
        Probe {
            patience: Some(Arc::new(Patience { per_wait, within })),
            ..self.clone()
        }
    }

    /// The 429 waits made by this probe and its patient clones.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().expect("waits poisoned").clone()
    }

    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// What the run holds of answers' bodies, against its cap.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The redactor, shared: for what outlives the probe (a report printed
    /// after the run).
    pub fn redactor_arc(&self) -> Arc<Redactor> {
        self.redactor.clone()
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sends a request. A transport failure is an error: the caller decides
    /// whether it can still tell anything (usually it cannot).
    pub async fn send(&self, req: Req) -> Result<Observed, ProbeError> {
        let first_sent = Instant::now();
        let mut observed = self.send_once(&req).await?;
        let Some(patience) = &self.patience else {
            return Ok(observed);
        };
        let until = first_sent.checked_add(patience.within);
        let mut waited = Duration::ZERO;
        let mut refusals = Vec::new();
        while observed.status == 429 {
            let wait = observed
                .retry_after_s()
                .map_or(patience.per_wait, |s| {
                    Duration::from_secs(s).saturating_add(PAST_RETRY_AFTER)
                })
                .min(patience.per_wait);
            let resend = refusals.len() < MAX_PATIENT_RESENDS
                && Instant::now()
                    .checked_add(wait)
                    .zip(until)
                    .is_some_and(|(at, until)| at <= until);
            refusals.push(observed.exchange);
            if !resend {
                return Err(ProbeError::StillRateLimited {
                    label: self.redactor.scrub(&req.label),
                    waited_ms: waited.as_millis(),
                    exchanges: refusals,
                });
            }
            tokio::time::sleep(wait).await;
            self.waits.lock().expect("waits poisoned").push(wait);
            waited += wait;
            observed = self.send_once(&req).await?;
            observed.exchange.label = format!(
                "{} (resent after waiting {} ms out a 429)",
                observed.exchange.label,
                waited.as_millis()
            );
        }
        Ok(observed)
    }

    async fn send_once(&self, req: &Req) -> Result<Observed, ProbeError> {
        let with_run_headers;
        let req = if self.run_headers.is_empty() {
            req
        } else {
            let mut r = req.clone();
            for (name, value) in self.run_headers.iter() {
                if !r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    r.headers.push((name.clone(), value.clone()));
                }
            }
            with_run_headers = r;
            &with_run_headers
        };
        self.governor.admit().await?;
        let at_ms = self.now_ms();
        let started = Instant::now();
        let mut builder = self.client.request(req.method.clone(), req.url.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let transport = |source| ProbeError::Transport {
            method: req.method.to_string(),
            url: req.url.to_string(),
            source,
        };
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let limit = self.governor.budget().max_body_bytes;
        let mut response = response;
        let read = body::read(&mut response, req.keep, limit, &self.ledger)
            .await
            .map_err(transport)?;
        drop(response);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        // Learn every credential the target hands out before recording
        // (never a cookie or header it merely sets: see `learn_cookie`).
        for (name, value) in &headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                if let Ok(c) = SetCookie::parse(value) {
                    self.redactor.learn_cookie(&c.name, c.value());
                }
            } else {
                self.redactor.learn_header(name, value);
            }
        }
        let mut exchange = self.record(req, status, &headers, &read, at_ms, elapsed_ms);
        if let Some(cut) = read.cut {
            if let Some(response) = exchange.response.as_mut() {
                response.body_truncated = true;
            }
            let (method, url) = (
                req.method.to_string(),
                self.redactor.scrub(req.url.as_str()),
            );
            let exchange = Box::new(exchange);
            return Err(match cut {
                Cut::TooLong => ProbeError::BodyTooLarge {
                    method,
                    url,
                    limit,
                    exchange,
                },
                Cut::OverKept { held } => ProbeError::OverKept {
                    method,
                    url,
                    cap: self.ledger.cap(),
                    held,
                    exchange,
                },
            });
        }
        Ok(Observed {
            status,
            headers,
            body: read.kept,
            exchange,
        })
    }

    fn record(
        &self,
        req: &Req,
        status: u16,
        headers: &[(String, String)],
        read: &body::Read,
        at_ms: u64,
        elapsed_ms: u64,
    ) -> Exchange {
        let r = &self.redactor;
        let (bytes, whole) = read.for_record();
        let (body_text, truncated) = body::recorded(r, bytes, whole);
        Exchange {
            label: r.scrub(&req.label),
            request: HttpRequest {
                method: req.method.to_string(),
                url: r.scrub(req.url.as_str()),
                headers: req
                    .headers
                    .iter()
                    .map(|(n, v)| Header {
                        name: n.clone(),
                        value: r.request_header(n, v),
                    })
                    .collect(),
                body: req.body.as_deref().map(|b| r.body(b)),
            },
            response: Some(HttpResponse {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| Header {
                        name: n.clone(),
                        value: r.response_header(n, v),
                    })
                    .collect(),
                body: body_text,
                body_truncated: truncated,
            }),
            error: None,
            at_ms,
            elapsed_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://127.0.0.1:8787/api/ping").unwrap()
    }

    #[test]
    fn cookies_join_one_cookie_header_as_a_browser_sends_them() {
        let mut jar = Jar::new();
        jar.insert("session", "tok-123456");
        let req = Req::get(url(), "t")
            .jar(&jar)
            .header("Cookie", "tier=admin")
            .header("x-other", "1");
        let cookies: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["session=tok-123456; tier=admin"]);
        // Without a jar, a cookie claim is the whole header.
        let req = Req::get(url(), "t").header("cookie", "tier=admin");
        assert_eq!(
            req.headers,
            [("cookie".to_owned(), "tier=admin".to_owned())]
        );
    }

    #[test]
    fn a_request_debug_prints_no_credential() {
        let req = Req::post(url(), "sign in")
            .header("authorization", "Bearer service-key-abcdef")
            .header("cookie", "session=tok-abcdef")
            .json(&serde_json::json!({ "password": "hunter2-secret" }));
        let shown = format!("{req:?}");
        for secret in ["service-key-abcdef", "tok-abcdef", "hunter2-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("authorization") && shown.contains("sign in"));
    }
}
