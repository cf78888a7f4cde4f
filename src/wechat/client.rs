//! The WeChat HTTP client: pooled, with connect and total timeouts, and no
//! retries of its own (login and phone codes are single-use; the one retry
//! WeChat's API calls for, after a refused access token, is the domain's).

use std::time::Duration;

use crate::wechat::metrics::WechatMetrics;

use crate::wechat::reply::{
    CodeSession, IssuedToken, PhoneInfo, WechatError, interpret, interpret_check, interpret_phone,
    interpret_token,
};

crate::labels::labelled! {
    /// Which WeChat API a call went to, as the metrics label it.
    pub enum WechatApi {
        /// `/sns/jscode2session`: a login code.
        CodeToSession => "jscode2session",
        /// `/cgi-bin/stable_token`: the app's access token.
        StableToken => "stable_token",
        /// `/wxa/business/getuserphonenumber`: a phone number.
        Phone => "phone",
        /// `/wxa/checksession`: is a session key current.
        CheckSession => "checksession",
    }
}

/// The HTTP client for WeChat could not be built (its TLS set-up failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for WeChat")]
pub struct WechatClientError;

/// Client of WeChat's API.
#[derive(Clone, Debug)]
pub struct WechatClient {
    http: reqwest::Client,
    timeout: Duration,
    base: String,
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
        let base = api_base.trim_end_matches('/').to_owned();
        Ok(WechatClient {
            http,
            timeout,
            url: format!("{base}/sns/jscode2session"),
            base,
            metrics: WechatMetrics::default(),
        })
    }

    /// The longest one call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        let request = self.http.get(&self.url).query(&[
            ("appid", appid),
            ("secret", secret),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ]);
        self.timed(WechatApi::CodeToSession, async {
            let (status, body) = send(request).await?;
            interpret(status, &body)
        })
        .await
    }

    /// Asks `stable_token` for the app's access token; `force` revokes the
    /// current one and issues another (WeChat allows it once per 30 s).
    pub async fn stable_token(
        &self,
        appid: &str,
        secret: &str,
        force: bool,
    ) -> Result<IssuedToken, WechatError> {
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret,
            "force_refresh": force,
        });
        let request = self
            .http
            .post(format!("{}/cgi-bin/stable_token", self.base));
        self.timed(WechatApi::StableToken, async {
            let (status, reply) = send(with_json(request, &body)).await?;
            interpret_token(status, &reply)
        })
        .await
    }

    /// Trades a `getPhoneNumber` button's code for the user's number, with
    /// the app's access token; `appid` is checked against the watermark.
    pub async fn phone_number(
        &self,
        token: &str,
        code: &str,
        appid: &str,
    ) -> Result<PhoneInfo, WechatError> {
        let request = self
            .http
            .post(format!("{}/wxa/business/getuserphonenumber", self.base))
            .query(&[("access_token", token)]);
        let body = serde_json::json!({ "code": code });
        self.timed(WechatApi::Phone, async {
            let (status, reply) = send(with_json(request, &body)).await?;
            interpret_phone(status, &reply, appid)
        })
        .await
    }

    /// Asks `checksession` whether `signature` (see
    /// [`crate::wechat::crypto::session_signature`]) was made with the
    /// user's current session key.
    pub async fn check_session(
        &self,
        token: &str,
        open_id: &str,
        signature: &str,
    ) -> Result<bool, WechatError> {
        let request = self
            .http
            .get(format!("{}/wxa/checksession", self.base))
            .query(&[
                ("access_token", token),
                ("openid", open_id),
                ("signature", signature),
                ("sig_method", "hmac_sha256"),
            ]);
        self.timed(WechatApi::CheckSession, async {
            let (status, reply) = send(request).await?;
            interpret_check(status, &reply)
        })
        .await
    }

    /// Runs `call`, recording it in the metrics as a call to `api`.
    async fn timed<T>(
        &self,
        api: WechatApi,
        call: impl std::future::Future<Output = Result<T, WechatError>>,
    ) -> Result<T, WechatError> {
        let started = std::time::Instant::now();
        let out = call.await;
        self.metrics
            .record(api, out.as_ref().map(drop), started.elapsed());
        out
    }
}

/// `request` with `body` as its JSON body.
fn with_json(
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Sends `request` and reads the whole reply: its status and body.
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, bytes::Bytes), WechatError> {
    let reply = request.send().await.map_err(classify)?;
    let status = reply.status().as_u16();
    Ok((status, reply.bytes().await.map_err(classify)?))
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
