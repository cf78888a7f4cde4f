//! A wafer on port 0 with the WeChat mock, talked to over real HTTP: a
//! typed test app with a method per endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wafer::clock::{ManualClock, Timestamp};
use wafer::config::Settings;
use wafer::startup::Application;

use crate::backends::{TestDb, TestPrefix};

/// The admin token the test servers use.
pub const TOKEN: &str = "test-admin-token-5f1c";

/// A running wafer with its mock and clock.
pub struct TestApp {
    /// Where wafer serves.
    pub addr: SocketAddr,
    /// Where the WeChat mock serves.
    pub mock: SocketAddr,
    /// The mock itself, to count the calls it received.
    pub wechat: wechat_mock::Mock,
    /// A client for both.
    pub client: reqwest::Client,
    /// wafer's clock.
    pub clock: Arc<ManualClock>,
    /// The running wafer; `stop` it to test shutdown.
    pub server: Application,
    /// The settings it runs with.
    pub settings: Settings,
    // Dropped after the server: the database and keys it used.
    guards: Guards,
}

/// What a tiered test app was made on, cleaned up when it drops.
#[derive(Default)]
pub struct Guards {
    /// The test's database.
    pub db: Option<TestDb>,
    /// The test's Redis key prefix.
    pub prefix: Option<TestPrefix>,
}

/// Default test settings pointing at the mock at `mock`.
pub fn settings(mock: SocketAddr) -> Settings {
    let mut s = Settings::default();
    s.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    s.wechat.api_base = format!("http://{mock}");
    s.wechat.timeout = Duration::from_secs(2);
    s.admin.token = Some(TOKEN.into());
    s
}

/// Starts wafer with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts wafer after `tweak` adjusted its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_guarded(tweak, Guards::default()).await
}

/// Starts wafer in its production shape on the shared Redis (a fresh
/// prefix) and a fresh database, after `tweak`.
pub async fn spawn_tiered_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = crate::backends::fresh_database().await;
    spawn_tiered_on(db, tweak).await
}

/// [`spawn_tiered_with`] on a database of the caller's.
pub async fn spawn_tiered_on(db: TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let prefix = crate::backends::fresh_prefix();
    let (url, prefix_text) = (db.as_str().to_owned(), prefix.as_str().to_owned());
    let guards = Guards {
        db: Some(db),
        prefix: Some(prefix),
    };
    spawn_guarded(
        move |s| {
            s.redis.url = Some(crate::backends::redis_url().as_str().into());
            s.database.url = Some(url.as_str().into());
            s.redis.prefix = prefix_text;
            tweak(s);
        },
        guards,
    )
    .await
}

async fn spawn_guarded(tweak: impl FnOnce(&mut Settings), guards: Guards) -> TestApp {
    let wechat = wechat_mock::spawn().await.expect("mock starts");
    let mut s = settings(wechat.addr);
    tweak(&mut s);
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let server = Application::build_with_clock(&s, clock.clone())
        .await
        .expect("wafer starts");
    TestApp {
        addr: server.local_addr(),
        mock: wechat.addr,
        wechat,
        client: reqwest::Client::new(),
        clock,
        server,
        settings: s,
        guards,
    }
}

impl TestApp {
    /// A second wafer with the same settings (so, tiered, on the same
    /// database and Redis prefix), the same WeChat mock and a clock at the
    /// same time: another instance of one deployment, or this one
    /// restarted. It cleans nothing up; this app does.
    pub async fn sibling(&self) -> TestApp {
        self.sibling_with(|_| {}).await.expect("the sibling starts")
    }

    /// [`TestApp::sibling`] after `tweak` changed its settings; the start-up
    /// error when it does not start.
    pub async fn sibling_with(
        &self,
        tweak: impl FnOnce(&mut Settings),
    ) -> Result<TestApp, wafer::startup::StartError> {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        let clock = Arc::new(ManualClock::new(wafer::clock::Clock::now(&*self.clock)));
        let server = Application::build_with_clock(&settings, clock.clone()).await?;
        Ok(TestApp {
            addr: server.local_addr(),
            mock: self.mock,
            wechat: self.wechat.clone(),
            client: reqwest::Client::new(),
            clock,
            server,
            settings,
            guards: Guards::default(),
        })
    }

    /// The database URL of a tiered app.
    pub fn database_url(&self) -> Option<&str> {
        self.guards.db.as_ref().map(|d| d.as_str())
    }

    /// The Redis key prefix of a tiered app.
    pub fn redis_prefix(&self) -> Option<&str> {
        self.guards.prefix.as_ref().map(|p| p.as_str())
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.send(self.client.get(self.url("/metrics"))).await.text
    }
}

/// A reply: status, headers and parsed JSON body (Null when empty).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (a JSON string if it was not JSON; Null if empty).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl TestApp {
    /// The URL of `path` on this wafer.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `req` and reads the whole reply.
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

    /// Creates an app with the secret `secret-of-{appid}`, registered with
    /// the WeChat mock first (as an app is made in WeChat's console before
    /// wafer is told of it); returns its id.
    pub async fn create_app(&self, appid: &str) -> i64 {
        let secret = format!("secret-of-{appid}");
        self.wechat.register_app(appid, &secret);
        let a = self
            .send(
                self.admin(reqwest::Method::POST, "/admin/apps")
                    .json(&json!({"title": "demo", "appid": appid, "secret": secret})),
            )
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

    /// `POST /mina/phone` for (uuid, skey) in app `app_id` with a
    /// `getPhoneNumber` code.
    pub async fn phone(&self, app_id: i64, uuid: &str, skey: &str, code: &str) -> Answer {
        self.post(
            "/mina/phone",
            json!({"uuid": uuid, "skey": skey, "app_id": app_id, "code": code}),
        )
        .await
    }

    /// `GET /admin/apps/{app_id}/access_token`.
    pub async fn access_token(&self, app_id: i64) -> Answer {
        let path = format!("/admin/apps/{app_id}/access_token");
        self.send(self.admin(reqwest::Method::GET, &path)).await
    }

    /// A login of `code`'s user through another server of app `appid` (which
    /// holds the app's current secret): a `jscode2session` call straight to
    /// the mock, which gives the user a session key wafer does not have.
    pub async fn login_elsewhere(&self, appid: &str, code: &str) {
        let secret = self
            .wechat
            .app_secret(appid)
            .expect("the app is registered with the mock");
        let url = format!("http://{}/sns/jscode2session", self.mock);
        let query = [
            ("appid", appid),
            ("secret", secret.as_str()),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ];
        let r = self
            .client
            .get(url)
            .query(&query)
            .send()
            .await
            .expect("the mock answers");
        let body: Value = r.json().await.expect("the mock answers JSON");
        assert!(body["openid"].is_string(), "the mock answered {body}");
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

/// Drives the per-user admin routes on `app`: lookup, revoke, 404s.
pub async fn check_user_routes(app: &TestApp, appid: &str) {
    use reqwest::Method;
    let id = app.create_app(appid).await;
    let (uuid, skey) = app.login(id, "ula.1").await;
    let open_id = wechat_mock::open_id_for(appid, "ula.1");
    let path = format!("/admin/apps/{id}/users/{open_id}");
    let got = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["uuid"], uuid.as_str());
    assert_eq!(got.body["open_id"], open_id.as_str());
    assert!(got.body["create_time"].is_string() && got.body["last_visit_time"].is_string());
    assert!(!got.text.contains(&skey), "no skey in an admin reply");
    let none = format!("/admin/apps/{id}/users/o-nobody");
    assert_admin_fail(
        &app.send(app.admin(Method::GET, &none)).await,
        404,
        "not_found",
    );
    let no_app = format!("/admin/apps/999/users/{open_id}");
    assert_admin_fail(
        &app.send(app.admin(Method::GET, &no_app)).await,
        404,
        "not_found",
    );
    let anonymous = app.send(app.client.get(app.url(&path))).await;
    assert_admin_fail(&anonymous, 403, "forbidden");
    let revoked = app.send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_fail(&app.auth(id, &uuid, &skey).await, 401, "session_invalid");
    assert_admin_fail(
        &app.send(app.admin(Method::DELETE, &path)).await,
        404,
        "not_found",
    );
    assert_admin_fail(
        &app.send(app.admin(Method::GET, &path)).await,
        404,
        "not_found",
    );
    let put = app.send(app.admin(Method::PUT, &path)).await;
    assert_admin_fail(&put, 405, "method_not_allowed");
    assert_eq!(put.headers["allow"], "GET, HEAD, DELETE");
}
