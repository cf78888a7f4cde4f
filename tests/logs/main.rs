//! Logs at the most verbose level never carry a secret: skey, session_key,
//! app secret, admin token, encrypted data, access tokens, phone numbers.
//! Also: the request id is echoed and logged. One global subscriber
//! captures every test of this file.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use wafer::config::LogFormat;
use wafer_testkit::backends;
use wafer_testkit::{TOKEN, TestApp, spawn_app_with, spawn_tiered_on};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The log so far (installing the trace-level subscriber on first use).
fn log() -> String {
    static LOG: OnceLock<Captured> = OnceLock::new();
    let c = LOG.get_or_init(|| {
        let c = Captured::default();
        wafer::telemetry::init_with_writer("trace", LogFormat::Json, c.clone());
        c
    });
    String::from_utf8_lossy(&c.0.lock().unwrap()).into_owned()
}

/// Drives every path that touches a secret; returns the secrets used.
async fn drive(app: &TestApp, appid: &str) -> Vec<String> {
    let id = app.create_app(appid).await;
    let ud = app.user_data(appid, "sam.1").await;
    let enc = ud["encryptedData"].as_str().unwrap().to_owned();
    let login = app
        .post(
            "/mina/login",
            json!({"app_id": id, "code": "sam.1", "encrypt_data": enc, "iv": ud["iv"],
                   "raw_data": ud["rawData"], "signature": ud["signature"]}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let uuid = login.body["data"]["uuid"].as_str().unwrap().to_owned();
    let skey = login.body["data"]["skey"].as_str().unwrap().to_owned();
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    // A phone number and the access token it takes, also after WeChat
    // revoked the token (refreshed, the call repeated).
    let phone = app.phone(id, &uuid, &skey, "sam.p1").await;
    assert_eq!(phone.status, 200, "{}", phone.text);
    assert!(app.wechat.invalidate_token(appid));
    let phone = app.phone(id, &uuid, &skey, "sam.p2").await;
    assert_eq!(phone.status, 200, "{}", phone.text);
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    let token = app.access_token(id).await;
    assert_eq!(token.status, 200, "{}", token.text);
    let access_token = token.body["access_token"].as_str().unwrap().to_owned();
    let open_id = wechat_mock::open_id_for(appid, "sam.1");
    let user = app
        .send(app.admin(
            reqwest::Method::GET,
            &format!("/admin/apps/{id}/users/{open_id}"),
        ))
        .await;
    assert_eq!(user.status, 200);
    let check = app
        .send(app.admin(
            reqwest::Method::GET,
            &format!("/admin/apps/{id}/users/{open_id}/session_key"),
        ))
        .await;
    assert_eq!(check.status, 200, "{}", check.text);
    // Failures log too: a wrong skey, a bad signature, a rejected code.
    assert_eq!(app.auth(id, &uuid, &format!("{skey}x")).await.status, 401);
    let bad_sig = app
        .post(
            "/mina/login",
            json!({"app_id": id, "code": "sam.2", "raw_data": "{}", "signature": "00"}),
        )
        .await;
    assert_eq!(bad_sig.status, 400);
    let bad = app
        .post("/mina/login", json!({"app_id": id, "code": "err-40029"}))
        .await;
    assert_eq!(bad.status, 401);
    let wrong_token = app
        .send(
            app.client
                .get(app.url("/admin/apps"))
                .bearer_auth("not-the-token"),
        )
        .await;
    assert_eq!(wrong_token.status, 403);
    let sessions = app
        .send(app.admin(reqwest::Method::GET, &format!("/admin/apps/{id}/sessions")))
        .await;
    assert_eq!(sessions.status, 200);
    let out = app
        .post(
            "/mina/logout",
            json!({"app_id": id, "uuid": uuid, "skey": skey}),
        )
        .await;
    assert_eq!(out.status, 200);
    // Every access token WeChat issued: the revoked one (which the 40001
    // path handled) as well as the one read after the refresh.
    let tokens = app.wechat.tokens(appid);
    assert_eq!(tokens.len(), 2, "revoked and refreshed: {tokens:?}");
    assert_eq!(tokens[1], access_token);
    let mut secrets = vec![
        skey,
        wechat_mock::session_key_for("sam.1"),
        wechat_mock::session_key_for("sam.2"),
        app.wechat.app_secret(appid).expect("registered"),
        TOKEN.to_owned(),
        enc,
    ];
    secrets.extend(tokens);
    for code in ["sam.p1", "sam.p2"] {
        let (phone, pure, _) = wechat_mock::phone_for(code);
        secrets.extend([phone, pure]);
    }
    secrets
}

fn assert_no_secret(secrets: &[String]) {
    let log = log();
    // Admin changes are audit lines: structured, with action and target.
    assert!(
        log.lines()
            .any(|l| l.contains(r#""audit":true"#) && l.contains(r#""action":"token.read""#)),
        "an audit line for the token read"
    );
    assert!(log.len() > 1000, "the capture works: {} bytes", log.len());
    for s in secrets {
        assert!(!log.contains(s.as_str()), "a secret reached the log: {s}");
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_on_the_embedded_store() {
    log();
    let app = spawn_app_with(|_| {}).await;
    let secrets = drive(&app, "wxlogemb").await;
    assert_no_secret(&secrets);
}

#[tokio::test]
async fn no_secret_reaches_the_log_on_the_tiered_store() {
    wafer_testkit::require_servers!();
    log();
    let db = backends::fresh_database().await;
    let db_url = db.to_string();
    let app = spawn_tiered_on(db, |_| {}).await;
    let secrets = drive(&app, "wxlogtier").await;
    assert_no_secret(&secrets);
    // The database URL may carry a password: it is not logged either.
    assert!(!log().contains(&db_url));
}

#[tokio::test]
async fn the_request_id_is_echoed_and_logged() {
    log();
    let app = spawn_app_with(|_| {}).await;
    let given = app
        .send(
            app.client
                .get(app.url("/mina/"))
                .header("x-request-id", "req-given-7731"),
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "req-given-7731");
    let made = app.send(app.client.get(app.url("/nope"))).await;
    let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 24);
    let log = log();
    assert!(log.contains("req-given-7731"));
    let line = log
        .lines()
        .find(|l| l.contains(&id) && l.contains("request refused"))
        .expect("the failure is logged with its id");
    for field in [
        r#""route":"unmatched""#,
        r#""status":404"#,
        r#""error":"not_found""#,
        "latency_us",
        r#""method":"GET""#,
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

/// A JSON value whose every object has unique keys: serde_json alone keeps
/// the last of two equal keys without a word, and so does many a log
/// pipeline.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("the key {key:?} twice")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

#[tokio::test]
async fn every_json_line_is_valid_json_with_unique_keys() {
    log();
    let app = spawn_app_with(|_| {}).await;
    // Every kind of line: requests, WeChat calls, tokens, audit entries.
    drive(&app, "wxlogjson").await;
    let log = log();
    let audit = log
        .lines()
        .find(|l| l.contains(r#""audit":true"#) && l.contains("app.created"))
        .expect("an audit line");
    let audit: serde_json::Value = serde_json::from_str(audit).expect("JSON");
    // The entry's target and the module that wrote the line, both kept.
    assert!(
        audit["audit_target"]
            .as_str()
            .is_some_and(|t| t.starts_with("app ")),
        "{audit}"
    );
    assert!(
        audit["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("wafer")),
        "{audit}"
    );
    let mut lines = 0;
    for line in log.lines() {
        if let Err(e) = serde_json::from_str::<UniqueKeys>(line) {
            panic!("not a JSON line with unique keys ({e}): {line}");
        }
        lines += 1;
    }
    assert!(lines > 20, "only {lines} lines");
}
