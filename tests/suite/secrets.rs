//! Secrets at rest: with data keys, a dump of wafer's database holds
//! neither app secrets nor session keys; `wafer rekey` seals what was
//! stored in plain text and re-seals under a new key; a wafer without the
//! key a value is sealed under refuses to start, saying which key; WeChat
//! gets the opened secret, never the sealed text.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wafer_testkit::{assert_admin_fail, assert_fail, spawn_tiered_with};

fn dump(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["--data-only", db])
        .output()
        .expect("pg_dump runs (scripts/test installs postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rekey(db: &str, keys: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wafer"))
        .arg("rekey")
        .env("WAFER_DATABASE_URL", db)
        .env("WAFER_DATA_KEYS", keys)
        .output()
        .expect("wafer runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_holds_no_secret_and_keys_rotate() {
    wafer_testkit::require_servers!();
    let k1 = format!("k1:{}", STANDARD.encode([7u8; 32]));
    let k2 = format!("k2:{}", STANDARD.encode([9u8; 32]));
    // Plain text first, as a deployment from before data keys.
    let plain = spawn_tiered_with(|_| {}).await;
    let db = plain.database_url().unwrap().to_owned();
    let id = plain.create_app("wxseal").await;
    let (uuid, skey) = plain.login(id, "sue.1").await;
    let (secret, session_key) = ("secret-of-wxseal", wechat_mock::session_key_for("sue.1"));
    let before = dump(&db);
    assert!(
        before.contains(secret) && before.contains(&session_key),
        "plain at first"
    );

    // rekey seals both, online.
    let said = rekey(&db, &k1);
    assert!(
        said.contains("sealed 1 app secrets and 1 session keys"),
        "{said}"
    );
    let sealed = dump(&db);
    assert!(!sealed.contains(secret), "no app secret in the dump");
    assert!(!sealed.contains(&session_key), "no session key in the dump");
    assert!(sealed.contains("sealed:v1:k1:"));

    // A wafer with the key works on the sealed values: logins (the app
    // secret), decryption (the session key).
    let sealed_app = plain
        .sibling_with(|s| s.database.data_keys = Some(k1.as_str().into()))
        .await
        .expect("starts with the key");
    let data = sealed_app.user_data("wxseal", "sue.1").await;
    let dec = sealed_app
        .post(
            "/mina/decrypt",
            serde_json::json!({"app_id": id, "uuid": uuid, "skey": skey,
                "encrypt_data": data["encryptedData"], "iv": data["iv"]}),
        )
        .await;
    assert_eq!(dec.status, 200, "{}", dec.text);
    let (_, _) = sealed_app.login(id, "tom.1").await;
    assert!(
        !dump(&db).contains(&wechat_mock::session_key_for("tom.1")),
        "new logins are sealed"
    );

    // Rotation: a new key first, the old one still listed; rekey moves all.
    let both = format!("{k2},{k1}");
    let said = rekey(&db, &both);
    assert!(
        said.contains("sealed 1 app secrets and 2 session keys"),
        "{said}"
    );
    let rotated = dump(&db);
    assert!(rotated.contains("sealed:v1:k2:") && !rotated.contains("sealed:v1:k1:"));
    assert!(rekey(&db, &both).contains("sealed 0 app secrets and 0 session keys"));

    // Without the key, wafer says which one it needs instead of serving.
    let Err(e) = plain
        .sibling_with(|s| s.database.data_keys = Some(k1.as_str().into()))
        .await
    else {
        panic!("a wafer without key k2 must not start")
    };
    assert!(e.to_string().contains("k2"), "{e}");
    let Err(e) = plain.sibling_with(|_| {}).await else {
        panic!("a wafer without data keys must not start on sealed secrets")
    };
    assert!(e.to_string().contains("WAFER_DATA_KEYS"), "{e}");
}

/// The app secret as PostgreSQL holds it.
async fn stored_secret(db: &str, appid: &str) -> String {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers");
    tokio::spawn(conn);
    client
        .query_one("SELECT secret FROM apps WHERE appid = $1", &[&appid])
        .await
        .expect("the app's row")
        .get(0)
}

/// What the mock answers to `secret` for `appid` on both APIs that take
/// it: (jscode2session's errcode, stable_token's errcode and errmsg).
async fn mock_answers(app: &wafer_testkit::TestApp, appid: &str, secret: &str) -> [Value; 3] {
    let base = format!("http://{}", app.mock);
    let session: Value = app
        .client
        .get(format!("{base}/sns/jscode2session"))
        .query(&[
            ("appid", appid),
            ("secret", secret),
            ("js_code", "probe.1"),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .expect("the mock answers")
        .json()
        .await
        .expect("JSON");
    let token: Value = app
        .client
        .post(format!("{base}/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": appid, "secret": secret}))
        .send()
        .await
        .expect("the mock answers")
        .json()
        .await
        .expect("JSON");
    [
        session["errcode"].clone(),
        token["errcode"].clone(),
        token["errmsg"].clone(),
    ]
}

/// The mock checks every app secret it is sent, so a wafer that sent the
/// stored text (`sealed:v1:…`) instead of the secret it seals would fail
/// here: WeChat gets the opened secret under one key and after rotation,
/// and the sealed text itself is refused (40125), which wafer answers 502
/// `upstream_error` as API.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_gets_the_opened_secret_under_sealed_and_rotated_keys() {
    wafer_testkit::require_servers!();
    let k1 = format!("k1:{}", STANDARD.encode([3u8; 32]));
    let k2 = format!("k2:{}", STANDARD.encode([5u8; 32]));
    let app = spawn_tiered_with(|s| s.database.data_keys = Some(k1.as_str().into())).await;
    let db = app.database_url().unwrap().to_owned();
    let id = app.create_app("wxopen").await;
    // Its token is first fetched after the rotation.
    let later = app.create_app("wxopen2").await;
    let secret = app.wechat.app_secret("wxopen").expect("registered");
    let sealed = stored_secret(&db, "wxopen").await;
    assert!(sealed.starts_with("sealed:v1:k1:"), "stored sealed");
    assert!(!sealed.contains(&secret));

    // Sealed under k1: a login and a token fetch pass WeChat's check.
    app.login(id, "una.1").await;
    assert_eq!(app.wechat.calls("una.1"), 1);
    let token = app.access_token(id).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(
        app.wechat.tokens("wxopen"),
        [token.body["access_token"].as_str().unwrap()]
    );

    // Rotated: sealed under k2, k1 still listed; a wafer started now opens
    // the k2 values.
    let both = format!("{k2},{k1}");
    rekey(&db, &both);
    let sealed = stored_secret(&db, "wxopen2").await;
    assert!(sealed.starts_with("sealed:v1:k2:"), "re-sealed under k2");
    let rotated = app
        .sibling_with(|s| s.database.data_keys = Some(both.as_str().into()))
        .await
        .expect("starts with both keys");
    rotated.login(id, "una.2").await;
    let token = rotated.access_token(later).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(
        rotated.wechat.tokens("wxopen2"),
        [token.body["access_token"].as_str().unwrap()]
    );

    // The sealed text is not the secret: WeChat refuses it as it refuses any
    // wrong secret, on both APIs.
    let [session, token, msg] = mock_answers(&rotated, "wxopen2", &sealed).await;
    assert_eq!((session, token), (json!(40125), json!(40125)));
    assert!(
        msg.as_str()
            .is_some_and(|m| m.starts_with("invalid appsecret, rid: ")),
        "{msg}"
    );
    // A wafer that sends it: its secret set to that text. Logins and token
    // fetches reach WeChat and are refused: 502 upstream_error.
    let patched = rotated
        .send(
            rotated
                .admin(reqwest::Method::PATCH, &format!("/admin/apps/{later}"))
                .json(&json!({"secret": sealed})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let login = rotated
        .post("/mina/login", json!({"app_id": later, "code": "una.3"}))
        .await;
    assert_fail(&login, 502, "upstream_error");
    assert_eq!(rotated.wechat.calls("una.3"), 1, "refused at WeChat");
    let token = rotated.access_token(later).await;
    assert_admin_fail(&token, 502, "upstream_error");
    for answer in [&login, &token] {
        assert!(!answer.text.contains(&sealed) && !answer.text.contains(&secret));
    }
    let metrics = rotated.metrics().await;
    assert!(
        metrics.contains(
            r#"wafer_wechat_requests_total{api="jscode2session",result="app_credentials"} 1"#
        ),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("wafer_wechat_requests_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
