//! The `jscode2session` HTTP client: pooled, with connect and total timeouts,
//! and no retries (a login code is single-use).

use std::time::Duration;

use crate::metrics::WechatMetrics;

use crate::wechat::reply::{CodeSession, WechatError, interpret};

/// WeChat's API base.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The HTTP client for WeChat could not be built (its TLS set-up failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for WeChat")]
pub struct WechatClientError;

/// Client of WeChat's code-exchange API.
#[derive(Clone, Debug)]
pub struct WechatClient {
    http: reqwest::Client,
    url: String,
    metrics: WechatMetrics,
}

impl WechatClient {
    /// A client of the API at `api_base`, giving up on a call after `timeout`
    /// and on a connection attempt after `connect_timeout`.
    pub fn new(
        api_base: &str,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, WechatClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout.min(timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .user_agent(concat!("wafer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| WechatClientError)?;
        Ok(WechatClient {
            http,
            url: format!("{}/sns/jscode2session", api_base.trim_end_matches('/')),
            metrics: WechatMetrics::default(),
        })
    }

    /// Records every call in `metrics`.
    pub fn with_metrics(mut self, metrics: WechatMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Trades a login code for the user's identity.
    pub async fn code_to_session(
        &self,
        appid: &str,
        secret: &str,
        code: &str,
    ) -> Result<CodeSession, WechatError> {
        let started = std::time::Instant::now();
        let out = self.exchange(appid, secret, code).await;
        self.metrics
            .record(out.as_ref().map(drop), started.elapsed());
        out
    }

    async fn exchange(
        &self,
        appid: &str,
        secret: &str,
        code: &str,
    ) -> Result<CodeSession, WechatError> {
        let reply = self
            .http
            .get(&self.url)
            .query(&[
                ("appid", appid),
                ("secret", secret),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(classify)?;
        let status = reply.status().as_u16();
        let body = reply.bytes().await.map_err(classify)?;
        interpret(status, &body)
    }
}

/// Maps a transport error. Its text is not kept: reqwest's errors carry the
/// request URL, and that URL holds the app secret.
fn classify(e: reqwest::Error) -> WechatError {
    if e.is_timeout() {
        WechatError::Timeout
    } else if e.is_connect() {
        WechatError::Unreachable
    } else {
        tracing::debug!(error = %e.without_url(), "WeChat transport error");
        WechatError::Malformed
    }
}
