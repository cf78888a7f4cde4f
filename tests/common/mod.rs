//! Test harness: starts the WeChat mock and a wafer on port 0, and talks to
//! them over real HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wafer::clock::{ManualClock, Timestamp};
use wafer::config::Settings;
use wafer::http::server::Server;

/// The admin token the test servers use.
pub const TOKEN: &str = "test-admin-token-5f1c";

/// A running wafer with its mock and clock.
pub struct TestApp {
    pub addr: SocketAddr,
    pub mock: SocketAddr,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub server: Server,
}

/// Default test settings pointing at `mock`.
pub fn settings(mock: SocketAddr) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        wechat_api_base: format!("http://{mock}"),
        wechat_timeout: Duration::from_secs(2),
        admin_token: Some(TOKEN.into()),
        ..Settings::default()
    }
}

/// Starts wafer with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts wafer after `tweak` adjusted its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mock = wafer::wechat_mock::spawn().await.expect("mock starts");
    let mut s = settings(mock);
    tweak(&mut s);
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let server = wafer::startup::start_with_clock(&s, clock.clone())
        .await
        .expect("wafer starts");
    TestApp {
        addr: server.local_addr(),
        mock,
        client: reqwest::Client::new(),
        clock,
        server,
    }
}

/// A reply: status, headers and parsed JSON body (Null when empty).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.expect("request is answered");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body reads");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// POSTs a JSON value.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// POSTs raw bytes with an optional Content-Type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        self.send(req).await
    }

    /// An admin request with the right token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
    }

    /// Creates an app; returns its id.
    pub async fn create_app(&self, appid: &str) -> i64 {
        let a = self
            .send(self.admin(reqwest::Method::POST, "/admin/apps").json(
                &json!({"title": "demo", "appid": appid, "secret": format!("secret-of-{appid}")}),
            ))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body["id"].as_i64().expect("id")
    }

    /// Logs in `code` to app `app_id`; returns (uuid, skey).
    pub async fn login(&self, app_id: i64, code: &str) -> (String, String) {
        let a = self
            .post("/mina/login", json!({"code": code, "app_id": app_id}))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        (
            a.body["data"]["uuid"].as_str().unwrap().to_owned(),
            a.body["data"]["skey"].as_str().unwrap().to_owned(),
        )
    }

    /// Auth status for (uuid, skey) in app `app_id`.
    pub async fn auth(&self, app_id: i64, uuid: &str, skey: &str) -> Answer {
        self.post(
            "/mina/auth",
            json!({"uuid": uuid, "skey": skey, "app_id": app_id}),
        )
        .await
    }

    /// The mock's user data for a code.
    pub async fn user_data(&self, appid: &str, code: &str) -> Value {
        let url = format!(
            "http://{}/mock/user_data?appid={appid}&code={code}",
            self.mock
        );
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Asserts a `/mina` failure with status and code.
pub fn assert_fail(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.body["ok"], "fail", "{}", a.text);
    assert_eq!(a.body["error"], code, "{}", a.text);
    assert!(
        a.body.get("data").is_none(),
        "no data on failure: {}",
        a.text
    );
    assert_eq!(a.headers["content-type"], "application/json; charset=utf-8");
}

/// Asserts an admin failure with status and code.
pub fn assert_admin_fail(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.body["error"], code, "{}", a.text);
    assert!(a.body["msg"].is_string(), "{}", a.text);
}
pub mod backends;
