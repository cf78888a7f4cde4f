//! A stand-in for WeChat's API (`jscode2session`, `stable_token`,
//! `getuserphonenumber`, `checksession`), for tests, walkthroughs and load
//! tests (WeChat itself is not reachable from them).
//!
//! WeChat knows only the apps registered with the mock, each with its
//! secret: [`Mock::register_app`] in process, `POST
//! /mock/apps?appid=…&secret=…` over HTTP, `wechat-mock --app APPID=SECRET`
//! (or `WECHAT_MOCK_APPS=APPID=SECRET,…`) at start. `jscode2session` and
//! `stable_token` check both as WeChat does (an appid it does not know:
//! 40013 `invalid appid, rid: …`; another secret: 40125 `invalid appsecret,
//! rid: …`), before anything else, so a caller that sends the wrong secret
//! (say, one still sealed) fails whatever the code.
//!
//! Deterministic: a code names its user by the part before the first `.`, so
//! `alice.1` and `alice.2` are the same user (same `openid` per appid) with
//! different session keys. Users named `union-…` also get a `unionid`.
//! Special codes select error modes:
//!
//! | code | reply |
//! |---|---|
//! | `err-<n>` (e.g. `err-40029`, `err--1`) | `{"errcode": n, "errmsg": …}` |
//! | `http-<status>` | that HTTP status, text body |
//! | `non-json` | 200 with an HTML body |
//! | `slow-<ms>[.x]` | a normal reply after `ms` milliseconds |
//!
//! `GET /mock/user_data?code=…&appid=…` answers the `encryptedData`, `iv`,
//! `rawData` and `signature` a mini-program would get for that code's user,
//! encrypted with the session key that code yields.
//!
//! The mock counts the `jscode2session` calls it received per code
//! ([`Mock::calls`] in process, `GET /mock/calls?code=…` over HTTP), so a
//! test can assert that a single-use code was sent exactly once.
//!
//! It encrypts and signs with its own code, not wafer's: a test then checks
//! wafer's decryption against an independent implementation.
//!
//! Access tokens, phone numbers and session-key checks: see [`api`]'s rules.
//! Over HTTP: `GET /mock/token_calls?appid=…` (`{"normal": n, "forced": n}`),
//! `POST /mock/invalidate_token?appid=…`, `GET /mock/phone_calls?code=…`,
//! `POST /mock/token_lifetime?secs=…`.

#![warn(missing_docs)]

pub mod api;

pub use api::{TokenCalls, phone_for, session_signature};

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// The user a code names: the part before the first `.`.
pub fn user_of(code: &str) -> &str {
    code.split('.').next().unwrap_or(code)
}

/// The `openid` the mock answers for a code's user in an app.
pub fn open_id_for(appid: &str, code: &str) -> String {
    let d = URL_SAFE_NO_PAD.encode(digest(&["open_id", appid, user_of(code)]));
    format!("o{}", &d[..27])
}

/// The `unionid` of a code's user, when the user has one (`union-…` users).
pub fn union_id_for(code: &str) -> Option<String> {
    let user = user_of(code);
    user.starts_with("union-").then(|| {
        format!(
            "u{}",
            &URL_SAFE_NO_PAD.encode(digest(&["union_id", user]))[..27]
        )
    })
}

/// The `session_key` the mock answers for a code: new for every code.
pub fn session_key_for(code: &str) -> String {
    STANDARD.encode(session_key_bytes(code))
}

/// User data as a mini-program receives it from `wx.getUserInfo`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserData {
    /// Base64 AES-128-CBC ciphertext.
    #[serde(rename = "encryptedData")]
    pub encrypted_data: String,
    /// Base64 IV.
    pub iv: String,
    /// The public profile JSON.
    #[serde(rename = "rawData")]
    pub raw_data: String,
    /// `sha1(rawData + session_key)`.
    pub signature: String,
}

/// The user data for a code's user in an app (about 300 bytes of profile).
pub fn user_data_for(appid: &str, code: &str) -> UserData {
    let user = user_of(code);
    let profile = serde_json::json!({
        "nickName": user,
        "gender": 1,
        "language": "zh_CN",
        "city": "Guangzhou",
        "province": "Guangdong",
        "country": "CN",
        "avatarUrl": format!("https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132", URL_SAFE_NO_PAD.encode(digest(&["avatar", user]))),
    });
    let raw_data = profile.to_string();
    let mut full = profile;
    full["openId"] = open_id_for(appid, code).into();
    if let Some(u) = union_id_for(code) {
        full["unionId"] = u.into();
    }
    full["watermark"] = serde_json::json!({"timestamp": 1_700_000_000, "appid": appid});
    let key = session_key_bytes(code);
    let iv = iv_bytes(code);
    UserData {
        encrypted_data: encrypt(&key, &iv, full.to_string().as_bytes()),
        iv: STANDARD.encode(iv),
        signature: sign(&raw_data, &session_key_for(code)),
        raw_data,
    }
}

fn session_key_bytes(code: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest(&["session_key", code])[..16]);
    k
}

fn iv_bytes(code: &str) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&digest(&["iv", code])[..16]);
    iv
}

/// AES-128-CBC with PKCS#7, base64 out, as WeChat encrypts user data.
pub fn encrypt(key: &[u8; 16], iv: &[u8; 16], plaintext: &[u8]) -> String {
    let data = Aes128CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext);
    STANDARD.encode(data)
}

/// `sha1(raw_data + session_key)` as lowercase hex, as WeChat signs `rawData`.
pub fn sign(raw_data: &str, session_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(raw_data.as_bytes());
    h.update(session_key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `jscode2session` calls received, per code.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, u64>>>);

/// Everything the mock remembers.
#[derive(Clone, Default)]
struct State {
    calls: Calls,
    api: Arc<api::Api>,
}

impl Calls {
    fn count(&self, code: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(code.to_owned()).or_default() += 1;
        }
    }

    fn of(&self, code: &str) -> u64 {
        self.0
            .lock()
            .map_or(0, |m| m.get(code).copied().unwrap_or(0))
    }
}

async fn jscode2session(query: &str, state: &State) -> Response<Full<Bytes>> {
    let calls = &state.calls;
    // WeChat answers errors and successes as JSON with a text/plain type.
    const TYPE: &str = "text/plain";
    let appid = query_param(query, "appid").unwrap_or_default();
    let code = query_param(query, "js_code").unwrap_or_default();
    calls.count(&code);
    let secret = query_param(query, "secret").unwrap_or_default();
    if let Err(refused) = state.api.check_credentials(&appid, &secret) {
        return reply(StatusCode::OK, TYPE, refused.to_string());
    }
    let Some(code) = Some(code).filter(|c| !c.is_empty()) else {
        return reply(
            StatusCode::OK,
            TYPE,
            r#"{"errcode":41008,"errmsg":"missing code"}"#,
        );
    };
    if let Some(n) = code.strip_prefix("err-") {
        return reply(
            StatusCode::OK,
            TYPE,
            format!(
                r#"{{"errcode":{},"errmsg":"mock error"}}"#,
                n.parse::<i64>().unwrap_or(-1)
            ),
        );
    }
    if let Some(s) = code.strip_prefix("http-") {
        let status = s
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok());
        return reply(
            status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            TYPE,
            "mock upstream failure",
        );
    }
    if code == "non-json" {
        return reply(StatusCode::OK, "text/html", "<html>not json</html>");
    }
    if let Some(ms) = user_of(&code).strip_prefix("slow-") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
    }
    let (open_id, session_key) = (open_id_for(&appid, &code), session_key_for(&code));
    state.api.logged_in(&appid, &open_id, &session_key);
    let mut body = serde_json::json!({"openid": open_id, "session_key": session_key});
    if let Some(u) = union_id_for(&code) {
        body["unionid"] = u.into();
    }
    reply(StatusCode::OK, TYPE, body.to_string())
}

async fn handle(req: Request<Incoming>, state: State) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let query = req.uri().query().unwrap_or("").to_owned();
    let path = req.uri().path().to_owned();
    let param = |name: &str| query_param(&query, name).unwrap_or_default();
    let json = |v: serde_json::Value| reply(StatusCode::OK, "application/json", v.to_string());
    match path.as_str() {
        "/sns/jscode2session" => jscode2session(&query, &state).await,
        "/cgi-bin/stable_token" | "/wxa/business/getuserphonenumber" => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return reply(StatusCode::BAD_REQUEST, "text/plain", "unreadable body"),
            };
            if path == "/cgi-bin/stable_token" {
                json(state.api.stable_token(&body))
            } else {
                json(state.api.phone_number(&param("access_token"), &body))
            }
        }
        "/wxa/checksession" => json(state.api.check_session(
            &param("access_token"),
            &param("openid"),
            &param("signature"),
            &param("sig_method"),
        )),
        "/mock/apps" if req.method() == hyper::Method::POST => {
            let (appid, secret) = (param("appid"), param("secret"));
            if appid.is_empty() || secret.is_empty() {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "POST /mock/apps?appid=…&secret=…",
                );
            }
            state.api.register(&appid, &secret);
            // Never the secret: a log of the caller may keep the answer.
            json(serde_json::json!({"appid": appid, "registered": true}))
        }
        "/mock/calls" => {
            let code = param("code");
            json(serde_json::json!({"code": code, "calls": state.calls.of(&code)}))
        }
        "/mock/token_calls" => {
            let c = state.api.token_calls(&param("appid"));
            json(serde_json::json!({"normal": c.normal, "forced": c.forced}))
        }
        "/mock/invalidate_token" => {
            json(serde_json::json!({"invalidated": state.api.invalidate(&param("appid"))}))
        }
        "/mock/phone_calls" => {
            let code = param("code");
            json(serde_json::json!({"code": code, "calls": state.api.phone_calls(&code)}))
        }
        "/mock/token_lifetime" => {
            let secs = param("secs").parse().unwrap_or(7200);
            state.api.set_lifetime(Duration::from_secs(secs));
            json(serde_json::json!({"secs": secs}))
        }
        "/mock/user_data" => {
            let data = serde_json::to_string(&user_data_for(&param("appid"), &param("code")))
                .unwrap_or_default();
            reply(StatusCode::OK, "application/json", data)
        }
        "/healthz" => reply(StatusCode::OK, "application/json", r#"{"status":"ok"}"#),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

/// Serves the mock on `listener` until the runtime stops, knowing `apps`
/// (appid, secret) from the start.
pub async fn serve(listener: TcpListener, apps: &[(String, String)]) {
    let state = State::default();
    for (appid, secret) in apps {
        state.api.register(appid, secret);
    }
    serve_state(listener, state).await
}

async fn serve_state(listener: TcpListener, state: State) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(req, state).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(conn);
    }
}

/// A mock running in this process.
#[derive(Clone)]
pub struct Mock {
    /// Where it serves.
    pub addr: SocketAddr,
    state: State,
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock").field("addr", &self.addr).finish()
    }
}

impl Mock {
    /// Makes `appid` an app WeChat knows, with `secret`; registering it again
    /// resets the secret (the old one is refused from then on), as WeChat's
    /// console does.
    pub fn register_app(&self, appid: &str, secret: &str) {
        self.state.api.register(appid, secret)
    }

    /// The secret `appid` was registered with.
    pub fn app_secret(&self, appid: &str) -> Option<String> {
        self.state.api.secret(appid)
    }

    /// Every access token issued for `appid`, oldest first (revoked and
    /// expired ones too).
    pub fn tokens(&self, appid: &str) -> Vec<String> {
        self.state.api.tokens(appid)
    }

    /// The access token each `getuserphonenumber` call with `code` carried,
    /// in the order received.
    pub fn phone_tokens(&self, code: &str) -> Vec<String> {
        self.state.api.phone_tokens(code)
    }

    /// How many `jscode2session` calls carried `code`.
    pub fn calls(&self, code: &str) -> u64 {
        self.state.calls.of(code)
    }

    /// How often `appid`'s access token was asked for.
    pub fn token_calls(&self, appid: &str) -> TokenCalls {
        self.state.api.token_calls(appid)
    }

    /// Revokes `appid`'s current access token, as WeChat does with a leaked
    /// one; `false` when it has none.
    pub fn invalidate_token(&self, appid: &str) -> bool {
        self.state.api.invalidate(appid)
    }

    /// The lifetime of tokens issued from now on (default 7200 s).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.api.set_lifetime(lifetime)
    }

    /// How many `getuserphonenumber` calls carried `code`.
    pub fn phone_calls(&self, code: &str) -> u64 {
        self.state.api.phone_calls(code)
    }
}

/// Starts the mock on a free loopback port, knowing no app yet
/// ([`Mock::register_app`]).
pub async fn spawn() -> std::io::Result<Mock> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let state = State::default();
    tokio::spawn(serve_state(listener, state.clone()));
    Ok(Mock { addr, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_user_same_open_id_fresh_session_key() {
        assert_eq!(open_id_for("wx1", "alice.1"), open_id_for("wx1", "alice.2"));
        assert_ne!(open_id_for("wx1", "alice.1"), open_id_for("wx2", "alice.1"));
        assert_ne!(open_id_for("wx1", "alice"), open_id_for("wx1", "bob"));
        assert_ne!(session_key_for("alice.1"), session_key_for("alice.2"));
        assert_eq!(open_id_for("wx1", "a").len(), 28);
        assert!(union_id_for("union-x.1").is_some() && union_id_for("x").is_none());
    }

    #[test]
    fn official_signature_example() {
        // WeChat's documented example.
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        assert_eq!(
            sign(raw, "HyVFkGl5F5OQWJZZaNzBBg=="),
            "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
        );
    }

    #[test]
    fn user_data_is_padded_blocks_of_about_300_bytes() {
        let d = user_data_for("wxA", "union-bob.7");
        let raw = STANDARD.decode(&d.encrypted_data).unwrap();
        assert_eq!(raw.len() % 16, 0);
        assert!(raw.len() > 300 && raw.len() < 600, "{}", raw.len());
        assert_eq!(STANDARD.decode(&d.iv).unwrap().len(), 16);
    }
}
