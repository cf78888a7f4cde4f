//! The HTTP layer: hyper without a framework. Routing, bodies, the mapping of
//! failures to the status table, and the accept loop.

pub(crate) mod admin;
pub use admin::AdminToken;
pub mod body;
pub mod client;
pub mod console;
mod forward;
pub mod metrics;
pub mod mina;
mod original;
mod request_id;
mod response;
pub mod router;
pub(crate) mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Instant;
use tracing::Instrument;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use crate::config::HttpSettings;
use crate::domain::Wafer;
use crate::domain::audit::Caller;
use crate::error::ErrorCode;
use crate::http::body::Format;
use crate::http::metrics::RequestMetrics;
use crate::http::response::{Failure, Reply, json};
use crate::http::router::{Endpoint, Route};
use crate::metrics::Metrics;
use crate::store::Store;

/// Longest a scrape waits for the store's sizes.
const SIZES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Answers requests: routes them to the domain and shapes the replies.
pub struct Handler<S> {
    wafer: Wafer<S>,
    trusted_proxies: Vec<ipnet::IpNet>,
    max_body: usize,
    body_timeout: std::time::Duration,
    admin_token: AdminToken,
    metrics: Arc<Metrics>,
    requests: RequestMetrics,
}

impl<S: Store> Handler<S> {
    /// A handler over `wafer`, reading bodies as `http` says (size limit;
    /// the header-read timeout also bounds the body).
    pub fn new(
        wafer: Wafer<S>,
        http: &HttpSettings,
        admin_token: AdminToken,
        metrics: Arc<Metrics>,
    ) -> Self {
        Handler {
            wafer,
            trusted_proxies: Vec::new(),
            max_body: http.max_body,
            body_timeout: http.header_read_timeout,
            admin_token,
            requests: RequestMetrics::register(metrics.recorder()),
            metrics,
        }
    }

    /// Reads a trusted proxy's `X-Forwarded-For` as the client's address
    /// when the peer is in `proxies`.
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The client's address (see [`client::client_ip`]), when the request
    /// came through the server (tests may call the handler directly).
    fn client(&self, parts: &Parts, peer: Option<SocketAddr>) -> Option<std::net::IpAddr> {
        Some(client::client_ip(
            &parts.headers,
            peer?.ip(),
            &self.trusted_proxies,
        ))
    }

    /// Answers one request from `peer` (the connection's remote address).
    /// Never fails: every failure becomes a JSON reply.
    pub async fn handle(&self, req: Request<Incoming>, peer: Option<SocketAddr>) -> Reply {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let id = request_id::of(&parts.headers);
        let (route, params) = Route::of(parts.uri.path());
        // Disabled (no cost) unless debug logging is on: then every line
        // logged while serving carries the request id.
        let span = tracing::debug_span!("request", id = id.to_str().unwrap_or(""));
        let result = match Endpoint::parse(&parts.method, route, params) {
            Some(endpoint) => {
                self.dispatch(endpoint, route, &parts, body, peer)
                    .instrument(span)
                    .await
            }
            None if route == Route::Unmatched => {
                Err(Failure::new(ErrorCode::NotFound, "no such route"))
            }
            None => Err(Failure::method_not_allowed(route.allow())),
        };
        let admin = route.is_admin() || parts.uri.path().starts_with("/admin/");
        let elapsed = started.elapsed();
        let outcome = result.as_ref().err().map(|f| f.code);
        self.requests.record(route, outcome, elapsed.as_secs_f64());
        let mut reply = match result {
            Ok(reply) => reply,
            Err(f) => {
                log_failure(&parts.method, route, &id, &f, elapsed);
                if route == Route::Original {
                    original::failed(&f)
                } else if admin {
                    f.into_admin()
                } else {
                    f.into_mina()
                }
            }
        };
        tracing::debug!(
            request_id = id.to_str().unwrap_or(""),
            method = %parts.method,
            route = route.label(),
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

    /// Runs one endpoint: the one place a request meets its handler. The
    /// checks of a session (the hot path) run inline; every other endpoint
    /// runs boxed, so that its future (logins, WeChat calls and admin work
    /// are large, in debug builds hundreds of KiB) does not grow the hot
    /// path's future, nor the stack that polls it.
    async fn dispatch(
        &self,
        endpoint: Endpoint<'_>,
        route: Route,
        parts: &Parts,
        body: Incoming,
        peer: Option<SocketAddr>,
    ) -> Result<Reply, Failure> {
        if route.is_admin() {
            self.admin_token.check(&parts.headers)?;
        }
        match endpoint {
            Endpoint::Auth => self.auth(parts, body).await,
            Endpoint::ForwardAuth => self.forward_auth(parts).await,
            cold => Box::pin(self.dispatch_cold(cold, parts, body, peer)).await,
        }
    }

    /// `POST /mina/auth`: the hot path.
    async fn auth(&self, parts: &Parts, body: Incoming) -> Result<Reply, Failure> {
        let (format, body) = self.mina_body(parts, body).await?;
        let input = mina::parse_auth(format, &body)?;
        let profile = self.wafer.auth(&input).await?;
        Ok(json(StatusCode::OK, mina::auth_ok(&profile)))
    }

    /// `GET /mina/auth`: forward auth, credentials in headers.
    async fn forward_auth(&self, parts: &Parts) -> Result<Reply, Failure> {
        let input = forward::parse(&parts.headers)?;
        let (app, profile) = self
            .wafer
            .auth_in_app(&input)
            .await
            .map_err(|e| forward::failure(e.into()))?;
        Ok(forward::ok(app, &profile))
    }

    /// Every other endpoint (boxed by [`Handler::dispatch`]).
    async fn dispatch_cold(
        &self,
        endpoint: Endpoint<'_>,
        parts: &Parts,
        body: Incoming,
        peer: Option<SocketAddr>,
    ) -> Result<Reply, Failure> {
        let w = &self.wafer;
        // Who an admin action is audited as: worked out only for those.
        let caller = || Caller::Api(self.client(parts, peer));
        match endpoint {
            Endpoint::Auth => self.auth(parts, body).await,
            Endpoint::ForwardAuth => self.forward_auth(parts).await,
            Endpoint::MinaIndex => Ok(json(StatusCode::OK, Bytes::from_static(mina::WELCOME))),
            Endpoint::Login => {
                let (format, body) = self.mina_body(parts, body).await?;
                let input = mina::parse_login(format, &body)?;
                let out = w.login(input, self.client(parts, peer)).await?;
                Ok(json(StatusCode::OK, mina::login_ok(&out)))
            }
            Endpoint::Original => {
                let body =
                    body::read(&parts.headers, body, self.max_body, self.body_timeout).await?;
                match original::parse(&body)? {
                    original::Call::IdSkey(input) => {
                        let out = w
                            .login(input, self.client(parts, peer))
                            .await
                            .map_err(original::failure)?;
                        Ok(original::logged_in(&out))
                    }
                    original::Call::Auth(input) => {
                        let p = w.auth(&input).await.map_err(original::failure)?;
                        Ok(original::authenticated(p.user_info.as_deref()))
                    }
                    original::Call::Decrypt { session, data, iv } => {
                        let object = w
                            .decrypt(&session, &data, &iv)
                            .await
                            .map_err(original::failure)?;
                        Ok(original::decrypted(&object))
                    }
                }
            }
            Endpoint::Decrypt => {
                let (format, body) = self.mina_body(parts, body).await?;
                let (session, data, iv) = mina::parse_session_call(format, &body)?.encrypted()?;
                let object = w.decrypt(&session, &data, &iv).await?;
                Ok(json(StatusCode::OK, mina::decrypt_ok(&object)))
            }
            Endpoint::Phone => {
                let (format, body) = self.mina_body(parts, body).await?;
                let (session, code) = mina::parse_session_call(format, &body)?.code()?;
                let phone = w.phone(&session, &code).await?;
                Ok(json(StatusCode::OK, mina::phone_ok(&phone)))
            }
            Endpoint::Logout => {
                let (format, body) = self.mina_body(parts, body).await?;
                let input = mina::parse_auth(format, &body)?;
                w.logout(&input).await?;
                Ok(json(StatusCode::OK, Bytes::from_static(mina::LOGOUT_OK)))
            }
            // The console is off when the admin API is: it can do nothing else.
            Endpoint::Console(asset) => {
                if self.admin_token.is_on() {
                    Ok(console::serve(asset))
                } else {
                    Err(Failure::new(
                        ErrorCode::Forbidden,
                        "the console is off: no admin token is configured",
                    ))
                }
            }
            Endpoint::Healthz => Ok(json(
                StatusCode::OK,
                Bytes::from_static(br#"{"status":"ok"}"#),
            )),
            Endpoint::Readyz => Ok(self.readyz().await),
            Endpoint::Metrics => {
                // Sizes are read at scrape time, bounded so that a hung store
                // cannot hang the scrape (the gauges then keep their last value).
                if let Ok((sessions, apps)) =
                    tokio::time::timeout(SIZES_TIMEOUT, w.store().sizes()).await
                {
                    self.metrics.set_store_sizes(sessions, apps);
                }
                let mut r = json(StatusCode::OK, self.metrics.render());
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                );
                Ok(r)
            }
            Endpoint::ListApps => admin::list_apps(w).await,
            Endpoint::CreateApp => {
                let body = self.admin_body(parts, body).await?;
                admin::create_app(w, &body, caller()).await
            }
            Endpoint::GetApp(id) => admin::get_app(w, id).await,
            Endpoint::UpdateApp(id) => {
                let body = self.admin_body(parts, body).await?;
                admin::update_app(w, id, &body, caller()).await
            }
            Endpoint::DeleteApp(id) => admin::delete_app(w, id, caller()).await,
            Endpoint::ListSessions(id) => admin::app_sessions(w, id, parts.uri.query()).await,
            Endpoint::RevokeSession(uuid) => admin::revoke(w, uuid, caller()).await,
            Endpoint::GetUser(id, open_id) => admin::user_session(w, id, open_id).await,
            Endpoint::RevokeUser(id, open_id) => admin::revoke_user(w, id, open_id, caller()).await,
            Endpoint::CheckUserKey(id, open_id) => {
                admin::check_session_key(w, id, open_id, caller()).await
            }
            Endpoint::AccessToken(id) => admin::access_token(w, id, caller()).await,
            Endpoint::AuditTrail => admin::audit_trail(w, parts.uri.query()).await,
        }
    }

    async fn mina_body(&self, parts: &Parts, body: Incoming) -> Result<(Format, Bytes), Failure> {
        let format = body::format(&parts.headers, true)?;
        let bytes = body::read(&parts.headers, body, self.max_body, self.body_timeout).await?;
        Ok((body::sniff(format, &bytes), bytes))
    }

    async fn admin_body(&self, parts: &Parts, body: Incoming) -> Result<Bytes, Failure> {
        body::format(&parts.headers, false)?;
        body::read(&parts.headers, body, self.max_body, self.body_timeout).await
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
    route: Route,
    id: &hyper::header::HeaderValue,
    f: &Failure,
    elapsed: std::time::Duration,
) {
    let status = f.code.status().as_u16();
    let route = route.label();
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
