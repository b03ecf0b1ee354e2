//! A stand-in Cloudflare API on 127.0.0.1 that serves the recorded shapes
//! filled in from a [`Scenario`]: for `demo`, tests and the benchmark, where
//! the real API cannot be reached. It checks the bearer token like the real
//! API does, and nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::shapes::{Scenario, error_body};

/// The path prefix the stand-in serves the v4 API under.
pub const PREFIX: &str = "/client/v4";

/// A running stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    scenario: Arc<Mutex<Scenario>>,
    stop: Option<oneshot::Sender<()>>,
}

impl StandIn {
    /// Binds an ephemeral port on 127.0.0.1 and starts serving.
    pub async fn start(scenario: Scenario) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let scenario = Arc::new(Mutex::new(scenario));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let state = scenario.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let state = state.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(handle(&req, &state)) }
                            });
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    _ = &mut stopped => break,
                }
            }
        });
        Ok(StandIn {
            addr,
            scenario,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:{port}/client/v4`: pass it as `api_base`.
    pub fn api_base(&self) -> url::Url {
        url::Url::parse(&format!("http://{}{PREFIX}", self.addr)).expect("a valid URL")
    }

    /// Replaces what the stand-in serves.
    pub fn set(&self, scenario: Scenario) {
        *self.scenario.lock().expect("scenario poisoned") = scenario;
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn not_found(what: &str) -> Response<Full<Bytes>> {
    json(
        StatusCode::NOT_FOUND,
        &error_body(10007, &format!("{what} not found")),
    )
}

fn handle(req: &Request<Incoming>, state: &Mutex<Scenario>) -> Response<Full<Bytes>> {
    let scenario = state.lock().expect("scenario poisoned").clone();
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == scenario.token.expose());
    if !authorized {
        return json(
            StatusCode::UNAUTHORIZED,
            &error_body(10000, "Authentication error"),
        );
    }
    if req.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            &error_body(10405, "the stand-in is read-only"),
        );
    }
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return not_found("route");
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let query = req.uri().query().unwrap_or("");
    match parts.as_slice() {
        ["accounts", account, ..] if *account != scenario.account_id => not_found("account"),
        ["accounts", _, "workers", kind, script, ..]
            if (*kind == "scripts" || *kind == "workers") && *script != scenario.script =>
        {
            not_found("script")
        }
        ["accounts", _, "workers", "scripts", _, "deployments"] => {
            json(StatusCode::OK, &scenario.deployments_body())
        }
        ["accounts", _, "workers", "scripts", _, "versions", id] => {
            match scenario.version_body(id) {
                Some(body) => json(StatusCode::OK, &body),
                None => not_found("version"),
            }
        }
        ["accounts", _, "workers", "workers", _, "versions", id]
            if query.split('&').any(|q| q == "include=modules") =>
        {
            match scenario.version_modules_body(id) {
                Some(_) if !scenario.beta_modules => not_found("route"),
                Some(body) => json(StatusCode::OK, &body),
                None => not_found("version"),
            }
        }
        ["accounts", _, "workers", "scripts", _, "settings"] => {
            json(StatusCode::OK, &scenario.settings_body())
        }
        ["accounts", _, "workers", "scripts", _, "script-settings"] => {
            json(StatusCode::OK, &scenario.script_settings_body())
        }
        ["accounts", _, "workers", "scripts", _, "tails"] => {
            json(StatusCode::OK, &scenario.tails_body())
        }
        ["accounts", _, "workers", "scripts", _, "routes"] => {
            json(StatusCode::OK, &scenario.routes_body())
        }
        ["accounts", _, "workers", "domains"] => json(StatusCode::OK, &scenario.domains_body()),
        ["accounts", _, "workers", "scripts", _, "subdomain"] => {
            json(StatusCode::OK, &scenario.subdomain_body())
        }
        ["accounts", _, "workers", "subdomain"] => {
            json(StatusCode::OK, &scenario.account_subdomain_body())
        }
        ["zones", zone, "workers", "routes"] if *zone == scenario.zone_id => {
            json(StatusCode::OK, &scenario.zone_routes_body())
        }
        ["accounts", _, "workers", "scripts", _, "content", "v2"] => match scenario.content_v2() {
            Some((content_type, entrypoint, body)) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", content_type)
                .header("cf-entrypoint", entrypoint)
                .body(Full::new(Bytes::from(body)))
                .expect("a valid response"),
            None => not_found("script content"),
        },
        _ => not_found("route"),
    }
}
