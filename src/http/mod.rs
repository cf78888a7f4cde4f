//! The HTTP layer: hyper without a framework. Routing, bodies, the mapping of
//! failures to the status table, and the accept loop.

pub mod admin;
pub mod body;
pub mod mina;
pub mod request_id;
pub mod response;
pub mod router;
pub mod server;

use std::sync::Arc;

use std::time::Instant;
use tracing::Instrument;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use crate::domain::Wafer;
use crate::error::ErrorCode;
use crate::http::admin::AdminToken;
use crate::http::body::Format;
use crate::http::response::{Failure, Reply, json};
use crate::http::router::{Route, UNMATCHED};
use crate::metrics::Metrics;
use crate::store::Store;

/// Settings of the HTTP layer.
#[derive(Clone)]
pub struct HttpSettings {
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// The admin token (hashed), or none: admin API off.
    pub admin_token: AdminToken,
}

/// Answers requests: routes them to the domain and shapes the replies.
pub struct Handler<S> {
    wafer: Wafer<S>,
    settings: HttpSettings,
    metrics: Arc<Metrics>,
}

impl<S: Store> Handler<S> {
    /// Lets the store finish its background writes; call after serving.
    pub async fn close(&self) {
        self.wafer.close().await;
    }

    /// A handler over `wafer`.
    pub fn new(wafer: Wafer<S>, settings: HttpSettings, metrics: Arc<Metrics>) -> Self {
        Handler {
            wafer,
            settings,
            metrics,
        }
    }

    /// Answers one request. Never fails: every failure becomes a JSON reply.
    pub async fn handle(&self, req: Request<Incoming>) -> Reply {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let id = request_id::of(&parts.headers);
        let route = Route::of(parts.uri.path());
        // Disabled (no cost) unless debug logging is on: then every line
        // logged while serving carries the request id.
        let span = tracing::debug_span!("request", id = id.to_str().unwrap_or(""));
        let result = match route {
            None => Err(Failure::new(ErrorCode::NotFound, "no such route")),
            Some(r) if !r.allows(&parts.method) => Err(Failure::method_not_allowed(r.allow())),
            Some(r) => self.dispatch(r, &parts, body).instrument(span).await,
        };
        let admin =
            route.as_ref().is_some_and(Route::is_admin) || parts.uri.path().starts_with("/admin/");
        let route_index = route.map_or(UNMATCHED, |r| r.index());
        let elapsed = started.elapsed();
        let outcome = result.as_ref().err().map(|f| f.code);
        self.metrics
            .record_request(route_index, outcome, elapsed.as_secs_f64());
        let mut reply = match result {
            Ok(reply) => reply,
            Err(f) => {
                log_failure(&parts.method, route_index, &id, &f, elapsed);
                if admin { f.into_admin() } else { f.into_mina() }
            }
        };
        tracing::debug!(
            request_id = id.to_str().unwrap_or(""),
            method = %parts.method,
            route = router::LABELS[route_index],
            status = reply.status().as_u16(),
            error = outcome.map_or("", ErrorCode::as_str),
            latency_us = elapsed.as_micros() as u64,
            "request"
        );
        reply.headers_mut().insert(&request_id::HEADER, id);
        if parts.method == Method::HEAD {
            let (parts, _) = reply.into_parts();
            return Reply::from_parts(parts, Default::default());
        }
        reply
    }

    async fn dispatch(
        &self,
        route: Route<'_>,
        parts: &Parts,
        body: Incoming,
    ) -> Result<Reply, Failure> {
        let w = &self.wafer;
        match route {
            Route::MinaIndex => Ok(json(StatusCode::OK, Bytes::from_static(mina::WELCOME))),
            Route::Login => {
                let (format, body) = self.mina_body(parts, body).await?;
                let input = mina::parse_login(format, &body)?;
                let out = w.login(input).await?;
                Ok(json(StatusCode::OK, mina::login_ok(&out)))
            }
            Route::Auth => {
                let (format, body) = self.mina_body(parts, body).await?;
                let input = mina::parse_auth(format, &body)?;
                let profile = w.auth(&input).await?;
                Ok(json(StatusCode::OK, mina::auth_ok(&profile)))
            }
            Route::Logout => {
                let (format, body) = self.mina_body(parts, body).await?;
                let input = mina::parse_auth(format, &body)?;
                w.logout(&input).await?;
                Ok(json(StatusCode::OK, Bytes::from_static(mina::LOGOUT_OK)))
            }
            Route::Healthz => Ok(json(
                StatusCode::OK,
                Bytes::from_static(br#"{"status":"ok"}"#),
            )),
            Route::Readyz => Ok(self.readyz().await),
            Route::Metrics => {
                let mut r = json(StatusCode::OK, self.metrics.render());
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                );
                Ok(r)
            }
            Route::Apps | Route::App(_) | Route::AppSessions(_) | Route::Session(_) => {
                self.settings.admin_token.check(&parts.headers)?;
                self.admin(route, parts, body).await
            }
        }
    }

    async fn admin(
        &self,
        route: Route<'_>,
        parts: &Parts,
        body: Incoming,
    ) -> Result<Reply, Failure> {
        let w = &self.wafer;
        let method = &parts.method;
        match route {
            Route::Apps if method == Method::POST => {
                let body = self.admin_body(parts, body).await?;
                admin::create_app(w, &body).await
            }
            Route::Apps => admin::list_apps(w).await,
            Route::App(id) if method == Method::PATCH => {
                let body = self.admin_body(parts, body).await?;
                admin::app(w, method, id, Some(&body)).await
            }
            Route::App(id) => admin::app(w, method, id, None).await,
            Route::AppSessions(id) => admin::app_sessions(w, id, parts.uri.query()).await,
            Route::Session(uuid) => admin::revoke(w, uuid).await,
            _ => Err(Failure::new(ErrorCode::NotFound, "no such route")),
        }
    }

    async fn mina_body(&self, parts: &Parts, body: Incoming) -> Result<(Format, Bytes), Failure> {
        let format = body::format(&parts.headers, true)?;
        let bytes = body::read(&parts.headers, body, self.settings.max_body).await?;
        Ok((body::sniff(format, &bytes), bytes))
    }

    async fn admin_body(&self, parts: &Parts, body: Incoming) -> Result<Bytes, Failure> {
        body::format(&parts.headers, false)?;
        body::read(&parts.headers, body, self.settings.max_body).await
    }

    async fn readyz(&self) -> Reply {
        let health = self.wafer.health().await;
        let ok = health.iter().all(|h| h.problem.is_none());
        let stores: serde_json::Map<String, serde_json::Value> = health
            .into_iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    h.problem.unwrap_or_else(|| "ok".into()).into(),
                )
            })
            .collect();
        let body = serde_json::json!({
            "status": if ok { "ok" } else { "unavailable" },
            "stores": stores,
        });
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(status, body.to_string())
    }
}

/// One line per failed request: error for 5xx (wafer or a dependency is in
/// trouble), warn for 4xx (the caller's request was refused).
fn log_failure(
    method: &Method,
    route_index: usize,
    id: &hyper::header::HeaderValue,
    f: &Failure,
    elapsed: std::time::Duration,
) {
    let status = f.code.status().as_u16();
    let route = router::LABELS[route_index];
    let request_id = id.to_str().unwrap_or("");
    let error = f.code.as_str();
    let latency_us = elapsed.as_micros() as u64;
    let detail = f.log_detail.as_deref().unwrap_or("");
    if status >= 500 {
        tracing::error!(request_id, method = %method, route, status, error, latency_us, detail, "request failed");
    } else {
        tracing::warn!(request_id, method = %method, route, status, error, latency_us, detail, "request refused");
    }
}
