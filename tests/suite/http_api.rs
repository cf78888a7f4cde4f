//! Black-box tests of the HTTP API: wafer on port 0 against the WeChat mock,
//! covering every row of the status table.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wafer_testkit::{TOKEN, assert_admin_fail, assert_fail, spawn_app, spawn_app_with};

#[tokio::test]
async fn welcome_health_ready_and_metrics() {
    let app = spawn_app().await;
    let a = app.send(app.client.get(app.url("/mina/"))).await;
    assert_eq!((a.status, a.body.clone()), (200, json!({"msg": "welcome"})));
    assert_eq!(a.headers["content-type"], "application/json; charset=utf-8");
    let a = app.send(app.client.get(app.url("/healthz"))).await;
    assert_eq!(a.status, 200);
    let a = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        json!({"status": "ok", "stores": {"embedded": "ok"}})
    );
    let a = app.send(app.client.get(app.url("/metrics"))).await;
    assert_eq!(a.status, 200);
    assert!(
        a.text
            .contains("wafer_requests_total{route=\"/readyz\",outcome=\"ok\"} 1"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn login_auth_logout_round_trip() {
    let app = spawn_app().await;
    let id = app.create_app("wxround").await;
    let a = app
        .post("/mina/login", json!({"code": "alice.1", "app_id": id}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["ok"], "success");
    assert_eq!(a.body["msg"], "login ok");
    assert_eq!(a.body["data"]["duration"], 2_592_000);
    assert_eq!(a.body["data"]["user_info"], Value::Null);
    let uuid = a.body["data"]["uuid"].as_str().unwrap();
    let skey = a.body["data"]["skey"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
    assert!(skey.len() >= 43, "skey carries 256 bits");
    assert!(!a.text.contains("session_key"));

    let a = app.auth(id, uuid, skey).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["msg"], "auth ok");
    assert_eq!(
        a.body["data"]["open_id"],
        wechat_mock::open_id_for("wxround", "alice.1")
    );
    assert_eq!(a.body["data"]["union_id"], Value::Null);
    assert_eq!(a.body["data"]["user_info"], Value::Null);

    let a = app
        .post(
            "/mina/logout",
            json!({"uuid": uuid, "skey": skey, "app_id": id}),
        )
        .await;
    assert_eq!((a.status, a.body["ok"].clone()), (200, json!("success")));
    assert_fail(&app.auth(id, uuid, skey).await, 401, "session_invalid");
    assert_fail(
        &app.post(
            "/mina/logout",
            json!({"uuid": uuid, "skey": skey, "app_id": id}),
        )
        .await,
        401,
        "session_invalid",
    );
}

#[tokio::test]
async fn relogin_keeps_uuid_rotates_skey_and_keeps_user_info() {
    let app = spawn_app().await;
    let id = app.create_app("wxre").await;
    let d = app.user_data("wxre", "union-bob.1").await;
    let a = app
        .post(
            "/mina/login",
            json!({"code": "union-bob.1", "app_id": id, "encrypt_data": d["encryptedData"], "iv": d["iv"],
                   "raw_data": d["rawData"], "signature": d["signature"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["data"]["user_info"]["nickName"], "union-bob");
    assert_eq!(a.body["data"]["user_info"]["watermark"]["appid"], "wxre");
    let uuid = a.body["data"]["uuid"].as_str().unwrap().to_owned();
    let old_skey = a.body["data"]["skey"].as_str().unwrap().to_owned();

    let (uuid2, new_skey) = app.login(id, "union-bob.2").await;
    assert_eq!(uuid, uuid2, "same user keeps the uuid");
    assert_ne!(old_skey, new_skey);
    assert_fail(
        &app.auth(id, &uuid, &old_skey).await,
        401,
        "session_invalid",
    );
    let a = app.auth(id, &uuid, &new_skey).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body["data"]["user_info"]["nickName"], "union-bob",
        "kept without new data"
    );
    assert_eq!(
        a.body["data"]["union_id"],
        wechat_mock::union_id_for("union-bob.1").unwrap()
    );

    let (uuid3, _) = app.login(id, "carol.1").await;
    assert_ne!(uuid, uuid3, "another user, another session");
}

#[tokio::test]
async fn concurrent_logins_of_one_user_converge() {
    let app = spawn_app().await;
    let id = app.create_app("wxconc").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (client, url) = (app.client.clone(), app.url("/mina/login"));
        tasks.spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"code": format!("dave.{i}"), "app_id": id}))
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            (
                v["data"]["uuid"].as_str().unwrap().to_owned(),
                v["data"]["skey"].as_str().unwrap().to_owned(),
            )
        });
    }
    let results = tasks.join_all().await;
    let first = &results[0].0;
    assert!(results.iter().all(|(u, _)| u == first), "one uuid");
    let mut valid = 0;
    for (u, s) in &results {
        if app.auth(id, u, s).await.status == 200 {
            valid += 1;
        }
    }
    assert_eq!(valid, 1, "exactly the last skey works");
}

#[tokio::test]
async fn sliding_and_absolute_expiry() {
    let app = spawn_app().await;
    app.wechat.register_app("wxexp", "s");
    let a = app
        .send(app.admin(Method::POST, "/admin/apps").json(
            &json!({"title": "short", "appid": "wxexp", "secret": "s", "login_duration": 1, "session_duration": 3600}),
        ))
        .await;
    let id = a.body["id"].as_i64().unwrap();
    let (uuid, skey) = app.login(id, "erin.1").await;
    // Visits every 50 minutes keep it alive past the sliding hour...
    for _ in 0..20 {
        app.clock.advance(Duration::from_secs(50 * 60));
        assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    }
    // ...until the absolute day is over (20 × 50 min = 16h40; 9 more visits pass 24h).
    let mut refused_at = None;
    for i in 0..10 {
        app.clock.advance(Duration::from_secs(50 * 60));
        if app.auth(id, &uuid, &skey).await.status == 401 {
            refused_at = Some(i);
            break;
        }
    }
    assert_eq!(refused_at, Some(8), "dies once 24h since login have passed");

    let (uuid, skey) = app.login(id, "erin.2").await;
    app.clock.advance(Duration::from_secs(3600));
    assert_fail(&app.auth(id, &uuid, &skey).await, 401, "session_invalid");
}

#[tokio::test]
async fn session_invalid_for_every_cause_with_one_message() {
    let app = spawn_app().await;
    let id = app.create_app("wxinv").await;
    let other = app.create_app("wxinv2").await;
    let (uuid, skey) = app.login(id, "frank.1").await;
    let answers = [
        app.auth(id, &uuid, "wrong-skey").await,
        app.auth(id, &uuid::Uuid::new_v4().to_string(), &skey).await,
        app.auth(id, "not-a-uuid", &skey).await,
        app.auth(other, &uuid, &skey).await,
    ];
    for a in &answers {
        assert_fail(a, 401, "session_invalid");
        assert_eq!(a.body["msg"], answers[0].body["msg"]);
    }
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200, "still valid");
}

#[tokio::test]
async fn bad_requests() {
    let app = spawn_app().await;
    app.create_app("wxbad").await;
    let cases: Vec<(Option<&str>, &str)> = vec![
        (None, "{not json"),
        (None, "[]"),
        (None, r#"{"app_id":1}"#),
        (None, r#"{"code":5}"#),
        (None, r#"{"code":""}"#),
        (None, r#"{"code":"c","app_id":0}"#),
        (None, r#"{"code":"c","app_id":-4}"#),
        (None, r#"{"code":"c","app_id":1.5}"#),
        (None, r#"{"code":"c","app_id":true}"#),
        (None, r#"{"code":"c","encrypt_data":"abc"}"#),
        (None, "   "),
        (Some("application/x-www-form-urlencoded"), "app_id=1"),
    ];
    for (ct, body) in cases {
        let a = app.post_raw("/mina/login", ct, body.to_owned()).await;
        assert_fail(&a, 400, "bad_request");
    }
    assert_fail(
        &app.post_raw("/mina/auth", None, r#"{"uuid":"u"}"#).await,
        400,
        "bad_request",
    );
    assert_fail(
        &app.post_raw("/mina/auth", None, "").await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn app_id_forms_and_app_not_found() {
    let app = spawn_app().await;
    let id = app.create_app("wxforms").await;
    assert_eq!(id, 1);
    for app_id in [
        json!(1),
        json!("1"),
        json!("wxforms"),
        json!(null),
        json!(""),
    ] {
        let a = app
            .post("/mina/login", json!({"code": "gina.1", "app_id": app_id}))
            .await;
        assert_eq!(a.status, 200, "{app_id}: {}", a.text);
    }
    let a = app.post("/mina/login", json!({"code": "gina.1"})).await;
    assert_eq!(a.status, 200, "omitted means 1");
    assert_fail(
        &app.post("/mina/login", json!({"code": "g", "app_id": 99}))
            .await,
        404,
        "app_not_found",
    );
    assert_fail(
        &app.post("/mina/login", json!({"code": "g", "app_id": "wxnone"}))
            .await,
        404,
        "app_not_found",
    );
    assert_fail(
        &app.post(
            "/mina/auth",
            json!({"uuid": "u", "skey": "s", "app_id": 99}),
        )
        .await,
        404,
        "app_not_found",
    );
}

#[tokio::test]
async fn form_bodies_work_on_mina_routes() {
    let app = spawn_app().await;
    app.create_app("wxform").await;
    let form = "application/x-www-form-urlencoded";
    let a = app
        .post_raw(
            "/mina/login",
            Some(form),
            "code=hank.1&app_id=wxform&extra=1",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let uuid = a.body["data"]["uuid"].as_str().unwrap();
    let skey = a.body["data"]["skey"].as_str().unwrap();
    let body = format!("uuid={uuid}&skey={skey}");
    assert_eq!(
        app.post_raw("/mina/auth", Some(form), body.clone())
            .await
            .status,
        200
    );
    // `curl -d '{…}'` labels JSON as a form: read as JSON.
    let json_as_form = format!(r#"{{"uuid":"{uuid}","skey":"{skey}"}}"#);
    assert_eq!(
        app.post_raw("/mina/auth", Some(form), json_as_form)
            .await
            .status,
        200
    );
    assert_eq!(
        app.post_raw("/mina/logout", Some(form), body.clone())
            .await
            .status,
        200
    );
    assert_fail(
        &app.post_raw("/mina/auth", Some(form), body).await,
        401,
        "session_invalid",
    );
}

#[tokio::test]
async fn encrypted_data_and_signature_checks() {
    let app = spawn_app().await;
    app.create_app("wxenc").await;
    let other = app.user_data("wxother", "ivy.1").await;
    let mine = app.user_data("wxenc", "ivy.1").await;
    let login = |extra: Value| {
        let mut body = json!({"code": "ivy.1"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.post("/mina/login", body)
    };
    // Watermark of another app.
    let a = login(json!({"encrypt_data": other["encryptedData"], "iv": other["iv"]})).await;
    assert_fail(&a, 400, "bad_encrypted_data");
    // Not base64.
    let a = login(json!({"encrypt_data": "***", "iv": mine["iv"]})).await;
    assert_fail(&a, 400, "bad_encrypted_data");
    // Encrypted with another code's session key.
    let a = app
        .post(
            "/mina/login",
            json!({"code": "ivy.2", "encrypt_data": mine["encryptedData"], "iv": mine["iv"]}),
        )
        .await;
    assert_fail(&a, 400, "bad_encrypted_data");
    // Bad signature.
    let a = login(json!({"encrypt_data": mine["encryptedData"], "iv": mine["iv"], "raw_data": mine["rawData"], "signature": "00"})).await;
    assert_fail(&a, 400, "bad_signature");
    // Empty strings are absent.
    let a = login(json!({"encrypt_data": "", "iv": "", "raw_data": "", "signature": ""})).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn wechat_errors_map_to_statuses() {
    let app = spawn_app_with(|s| s.wechat.timeout = Duration::from_millis(300)).await;
    app.create_app("wxerr").await;
    let cases = [
        ("err-40029", 401, "code_rejected"),
        ("err-40163", 401, "code_rejected"),
        ("err-45011", 429, "rate_limited"),
        ("err-40013", 502, "upstream_error"),
        ("err-40125", 502, "upstream_error"),
        ("err--1", 502, "upstream_error"),
        ("err-40226", 502, "upstream_error"),
        ("http-500", 502, "upstream_error"),
        ("non-json", 502, "upstream_error"),
        ("slow-2000", 504, "upstream_timeout"),
    ];
    for (code, status, error) in cases {
        let a = app.post("/mina/login", json!({"code": code})).await;
        assert_fail(&a, status, error);
        assert!(
            !a.text.contains("secret-of-wxerr"),
            "no secret in {}",
            a.text
        );
    }
    let a = app.post("/mina/login", json!({"code": "err-40125"})).await;
    assert!(
        a.body["msg"].as_str().unwrap().contains("credentials"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn a_failed_code_exchange_is_never_retried() {
    // A code is single-use: sending it again could only fail (40163) or,
    // worse, log a user in twice. Each failure kind reaches WeChat once.
    let app = spawn_app_with(|s| s.wechat.timeout = Duration::from_millis(300)).await;
    app.create_app("wxonce").await;
    for (code, status) in [
        ("err-40029", 401),
        ("err--1", 502),
        ("http-500", 502),
        ("http-503", 502),
        ("slow-1000.t", 504),
    ] {
        let a = app.post("/mina/login", json!({"code": code})).await;
        assert_eq!(a.status, status, "{code}: {}", a.text);
    }
    // Longer than a retry after the timeout would take to arrive.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for code in ["err-40029", "err--1", "http-500", "http-503", "slow-1000.t"] {
        assert_eq!(app.wechat.calls(code), 1, "{code} reached WeChat once");
    }
    // The counter itself counts: a second login with one code is a second call.
    app.post("/mina/login", json!({"code": "err-40029"})).await;
    assert_eq!(app.wechat.calls("err-40029"), 2);
}

#[tokio::test]
async fn unreachable_wechat_is_upstream_error() {
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn_app_with(|s| s.wechat.api_base = format!("http://{closed}")).await;
    app.create_app("wxdown").await;
    assert_fail(
        &app.post("/mina/login", json!({"code": "a"})).await,
        502,
        "upstream_error",
    );
}

#[tokio::test]
async fn routes_methods_media_types_and_sizes() {
    let app = spawn_app_with(|s| s.http.max_body = 1024).await;
    app.create_app("wxhttp").await;
    assert_fail(&app.post("/nope", json!({})).await, 404, "not_found");
    let a = app.send(app.client.put(app.url("/mina/auth"))).await;
    assert_fail(&a, 405, "method_not_allowed");
    assert_eq!(a.headers["allow"], "GET, HEAD, POST");
    let a = app.send(app.client.get(app.url("/mina/login"))).await;
    assert_fail(&a, 405, "method_not_allowed");
    assert_eq!(a.headers["allow"], "POST");
    let a = app.send(app.admin(Method::PUT, "/admin/apps/1")).await;
    assert_admin_fail(&a, 405, "method_not_allowed");
    assert_eq!(a.headers["allow"], "GET, PATCH, DELETE");
    assert_fail(
        &app.post_raw("/mina/auth", Some("text/xml"), "<x/>").await,
        415,
        "unsupported_media_type",
    );
    let big = format!(r#"{{"code":"c","pad":"{}"}}"#, "x".repeat(2000));
    assert_fail(
        &app.post_raw("/mina/login", None, big.clone()).await,
        413,
        "body_too_large",
    );
    // Chunked (no Content-Length) is limited too.
    let head = chunked_post(app.addr, "/mina/login", big.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // A chunked body under the limit arrives in several frames and is read whole.
    let parts = format!(r#"{{"code":"kim.0","pad":"{}"}}"#, "x".repeat(700));
    let head = chunked_post(app.addr, "/mina/login", parts.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Trailing slashes are accepted.
    assert_eq!(
        app.post("/mina/login/", json!({"code": "kim.1"}))
            .await
            .status,
        200
    );
}

/// Sends a chunked POST over a raw connection; returns the status line.
async fn chunked_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .into_bytes();
    for chunk in body.chunks(500) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    conn.write_all(&req).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn admin_token_rules() {
    let app = spawn_app().await;
    let a = app.send(app.client.get(app.url("/admin/apps"))).await;
    assert_admin_fail(&a, 403, "forbidden");
    let a = app
        .send(app.client.get(app.url("/admin/apps")).bearer_auth("wrong"))
        .await;
    assert_admin_fail(&a, 403, "forbidden");
    let a = app
        .send(app.client.get(app.url("/admin/apps")).bearer_auth(TOKEN))
        .await;
    assert_eq!((a.status, a.body.clone()), (200, json!({"apps": []})));

    let off = spawn_app_with(|s| s.admin.token = None).await;
    let a = off
        .send(off.client.get(off.url("/admin/apps")).bearer_auth(TOKEN))
        .await;
    assert_admin_fail(&a, 403, "forbidden");
}

#[tokio::test]
async fn admin_app_lifecycle() {
    let app = spawn_app().await;
    app.wechat.register_app("wxshop", "very-secret");
    let a = app
        .send(app.admin(Method::POST, "/admin/apps").json(
            &json!({"title": "Shop", "appid": "wxshop", "secret": "very-secret", "ignored": 1}),
        ))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["login_duration"], 30);
    assert_eq!(a.body["session_duration"], 2_592_000);
    assert!(a.body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(a.body.get("secret").is_none());
    let id = a.body["id"].as_i64().unwrap();

    let dup = app
        .send(
            app.admin(Method::POST, "/admin/apps")
                .json(&json!({"title": "Other", "appid": "wxshop", "secret": "x"})),
        )
        .await;
    assert_admin_fail(&dup, 409, "conflict");
    for bad in [
        json!({"title": "", "appid": "a", "secret": "s"}),
        json!({"title": "t".repeat(31), "appid": "a", "secret": "s"}),
        json!({"title": "t", "appid": "a", "secret": "s", "login_duration": 0}),
        json!({"title": "t", "appid": "a", "secret": "s", "session_duration": 315_360_001u64}),
        json!({"title": "t", "appid": "a"}),
        json!({"title": 5, "appid": "a", "secret": "s"}),
    ] {
        let a = app
            .send(app.admin(Method::POST, "/admin/apps").json(&bad))
            .await;
        assert_admin_fail(&a, 400, "bad_request");
    }
    let form = app
        .send(
            app.admin(Method::POST, "/admin/apps")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("title=t"),
        )
        .await;
    assert_admin_fail(&form, 415, "unsupported_media_type");

    let a = app
        .send(
            app.admin(Method::PATCH, &format!("/admin/apps/{id}"))
                .json(&json!({"session_duration": 60, "title": "Shop 2"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        (a.body["session_duration"].clone(), a.body["title"].clone()),
        (json!(60), json!("Shop 2"))
    );
    let a = app
        .send(app.admin(Method::GET, &format!("/admin/apps/{id}")))
        .await;
    assert_eq!(a.body["session_duration"], 60);
    let a = app.send(app.admin(Method::GET, "/admin/apps")).await;
    assert_eq!(a.body["apps"].as_array().unwrap().len(), 1);
    assert!(!a.text.contains("very-secret"));

    let (uuid, skey) = app.login(id, "lena.1").await;
    let a = app
        .send(app.admin(Method::DELETE, &format!("/admin/apps/{id}")))
        .await;
    assert_eq!(a.status, 204);
    assert_fail(&app.auth(id, &uuid, &skey).await, 404, "app_not_found");
    let a = app
        .send(app.admin(Method::DELETE, &format!("/admin/apps/{id}")))
        .await;
    assert_admin_fail(&a, 404, "not_found");
    let a = app.send(app.admin(Method::GET, "/admin/apps/abc")).await;
    assert_admin_fail(&a, 404, "not_found");
    let a = app
        .send(
            app.admin(Method::PATCH, "/admin/apps/999")
                .json(&json!({"title": "x"})),
        )
        .await;
    assert_admin_fail(&a, 404, "not_found");
}

#[tokio::test]
async fn admin_sessions_paginate_and_revoke() {
    let app = spawn_app().await;
    let id = app.create_app("wxlist").await;
    let mut skeys = Vec::new();
    for i in 0..5 {
        skeys.push(app.login(id, &format!("user{i}.1")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/apps/{id}/sessions?limit=2&cursor={c}"),
            None => format!("/admin/apps/{id}/sessions?limit=2"),
        };
        let a = app.send(app.admin(Method::GET, &path)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        for s in a.body["sessions"].as_array().unwrap() {
            assert!(s["create_time"].is_string() && s["last_visit_time"].is_string());
            seen.push(s["uuid"].as_str().unwrap().to_owned());
        }
        for (_, skey) in &skeys {
            assert!(!a.text.contains(skey.as_str()), "no skey in listings");
        }
        assert!(!a.text.contains("session_key"));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = skeys.iter().map(|(u, _)| u.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected, "every session once, in uuid order");

    let open_id = wechat_mock::open_id_for("wxlist", "user3");
    let a = app
        .send(app.admin(
            Method::GET,
            &format!("/admin/apps/{id}/sessions?open_id={open_id}"),
        ))
        .await;
    assert_eq!(a.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(a.body["sessions"][0]["open_id"], open_id.as_str());
    let a = app
        .send(app.admin(
            Method::GET,
            &format!("/admin/apps/{id}/sessions?limit=1001"),
        ))
        .await;
    assert_admin_fail(&a, 400, "bad_request");
    let a = app
        .send(app.admin(Method::GET, "/admin/apps/77/sessions"))
        .await;
    assert_admin_fail(&a, 404, "not_found");

    let (uuid, skey) = &skeys[0];
    let a = app
        .send(app.admin(Method::DELETE, &format!("/admin/sessions/{uuid}")))
        .await;
    assert_eq!(a.status, 204);
    assert_fail(&app.auth(id, uuid, skey).await, 401, "session_invalid");
    let a = app
        .send(app.admin(Method::DELETE, &format!("/admin/sessions/{uuid}")))
        .await;
    assert_admin_fail(&a, 404, "not_found");
}

#[tokio::test]
async fn full_embedded_store_answers_unavailable() {
    let app = spawn_app_with(|s| s.embedded.max_sessions = 1).await;
    let id = app.create_app("wxfull").await;
    app.login(id, "mia.1").await;
    app.login(id, "mia.2").await; // the same user still fits
    let a = app
        .post("/mina/login", json!({"code": "noah.1", "app_id": id}))
        .await;
    assert_fail(&a, 503, "unavailable");
}

#[tokio::test]
async fn refuses_to_start_with_one_production_store_url() {
    let mock = wechat_mock::spawn().await.unwrap();
    let mut s = wafer_testkit::settings(mock.addr);
    s.redis.url = Some("redis://127.0.0.1:6379".into());
    let e = wafer::startup::Application::build(&s)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("WAFER_REDIS_URL"), "{e}");
}

#[tokio::test]
async fn one_users_session_is_shown_and_revoked_by_open_id() {
    wafer_testkit::check_user_routes(&spawn_app().await, "wxusers").await;
}

#[tokio::test]
async fn forward_auth_answers_a_gateway_in_headers() {
    let app = spawn_app().await;
    let id = app.create_app("wxgate").await;
    let (uuid, skey) = app.login(id, "union-gil.1").await;
    let ask = |headers: &[(&str, &str)]| {
        let mut req = app.client.get(app.url("/mina/auth"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app.send(req)
    };
    let app_text = id.to_string();
    let ok = ask(&[
        ("X-WX-Id", &uuid),
        ("X-WX-Skey", &skey),
        ("X-WX-App", &app_text),
    ])
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let open_id = wechat_mock::open_id_for("wxgate", "union-gil.1");
    assert_eq!(ok.headers["x-wafer-open-id"], open_id.as_str());
    assert_eq!(
        ok.headers["x-wafer-union-id"],
        wechat_mock::union_id_for("union-gil.1").unwrap().as_str()
    );
    assert_eq!(ok.headers["x-wafer-app-id"], app_text.as_str());
    assert_eq!(
        ok.body["data"]["open_id"],
        open_id.as_str(),
        "the POST body"
    );
    // The appid names the app too; the same session checks on POST.
    let by_appid = ask(&[
        ("X-WX-Id", &uuid),
        ("X-WX-Skey", &skey),
        ("X-WX-App", "wxgate"),
    ])
    .await;
    assert_eq!(by_appid.status, 200);
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    // Every refusal a gateway can get is 401: missing, wrong, unknown app.
    for headers in [
        vec![],
        vec![("X-WX-Id", uuid.as_str())],
        vec![
            ("X-WX-Id", uuid.as_str()),
            ("X-WX-Skey", "wrong"),
            ("X-WX-App", &app_text),
        ],
        vec![("X-WX-Id", "not-a-uuid"), ("X-WX-Skey", skey.as_str())],
        vec![
            ("X-WX-Id", uuid.as_str()),
            ("X-WX-Skey", skey.as_str()),
            ("X-WX-App", "wxnone"),
        ],
    ] {
        let a = ask(&headers).await;
        assert_fail(&a, 401, "session_invalid");
        assert!(a.headers.get("x-wafer-open-id").is_none());
    }
    // HEAD answers the status alone, as some gateways ask.
    let head = app
        .send(
            app.client
                .head(app.url("/mina/auth"))
                .header("X-WX-Id", &uuid)
                .header("X-WX-Skey", &skey)
                .header("X-WX-App", &app_text),
        )
        .await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty());
    // Logged out: the gateway is told at once.
    app.post(
        "/mina/logout",
        json!({"uuid": uuid, "skey": skey, "app_id": id}),
    )
    .await;
    let gone = ask(&[
        ("X-WX-Id", &uuid),
        ("X-WX-Skey", &skey),
        ("X-WX-App", &app_text),
    ])
    .await;
    assert_fail(&gone, 401, "session_invalid");
}
