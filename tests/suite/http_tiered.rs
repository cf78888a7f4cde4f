//! wafer over HTTP in its production shape (Redis + PostgreSQL): the same
//! API, readiness per store, 503 when PostgreSQL is gone, last visits
//! flushed on graceful shutdown, and the start-up refusal of half a config.

use std::time::Duration;

use serde_json::json;
use wafer::config::Settings;
use wafer::startup::Application;
use wafer::store::visit_granularity::VisitGranularity;
use wafer_testkit::backends::{self, Proxy, ProxyMode};
use wafer_testkit::{assert_fail, spawn_tiered_on, spawn_tiered_with};

#[tokio::test]
async fn the_api_works_tiered_and_readyz_names_both_stores() {
    wafer_testkit::require_servers!();
    let app = spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxtiered").await;
    let (uuid, skey) = app.login(id, "tina.1").await;
    let ok = app.auth(id, &uuid, &skey).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let (uuid2, skey2) = app.login(id, "tina.2").await;
    assert_eq!(uuid2, uuid, "re-login keeps the uuid");
    assert_fail(&app.auth(id, &uuid, &skey).await, 401, "session_invalid");
    let out = app
        .post(
            "/mina/logout",
            json!({"app_id": id, "uuid": uuid, "skey": skey2}),
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_fail(&app.auth(id, &uuid, &skey2).await, 401, "session_invalid");
    let ready = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["stores"]["redis"], "ok");
    assert_eq!(ready.body["stores"]["postgres"], "ok");

    let metrics = app.send(app.client.get(app.url("/metrics"))).await.text;
    for series in [
        r#"wafer_wechat_requests_total{api="jscode2session",result="ok"} 2"#,
        r#"wafer_store_operations_total{backend="postgres",op="login",result="ok"} 2"#,
        r#"wafer_store_operations_total{backend="redis",op="tombstone",result="ok"} 1"#,
        "wafer_store_operation_duration_seconds_bucket{backend=\"redis\",op=\"auth\"",
        r#"wafer_build_info{version=""#,
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
    // Four checks (two auths, the stale skey, the logout's): each answered
    // by Redis or by the near cache (a copy fetched again after a change is
    // op="peek", not an auth).
    let count = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    let near = count(r#"wafer_near_cache_hits_total{answer="accepted"}"#)
        + count(r#"wafer_near_cache_hits_total{answer="refused"}"#);
    let asked = count(r#"wafer_store_operations_total{backend="redis",op="auth",result="ok"}"#);
    assert_eq!(near + asked, 4.0, "{metrics}");
}

#[tokio::test]
async fn postgres_down_answers_503_for_logins_and_keeps_auth() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let proxy = Proxy::start(backends::host_port(&db)).await;
    let pg_url = proxy.pg_url(&db);
    let app = spawn_tiered_on(db, |s| {
        s.database.url = Some(pg_url.as_str().into());
        s.database.timeout = Duration::from_millis(500);
    })
    .await;
    let id = app.create_app("wxpg503").await;
    let (uuid, skey) = app.login(id, "pat.1").await;
    proxy.set(ProxyMode::Hang);
    let started = std::time::Instant::now();
    let login = app
        .post("/mina/login", json!({"app_id": id, "code": "pat.2"}))
        .await;
    assert_fail(&login, 503, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    let ready = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["status"], "unavailable");
    assert_eq!(ready.body["stores"]["redis"], "ok");
    assert_ne!(ready.body["stores"]["postgres"], "ok");
    proxy.set(ProxyMode::Pass);
}

#[tokio::test]
async fn graceful_shutdown_flushes_last_visits() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let db_url = db.as_str().to_owned();
    // A visit due after 90 s (the default, 1% of 30 days, would be 6 h).
    let app = spawn_tiered_on(db, |s| {
        s.database.visit_granularity = VisitGranularity::Every(Duration::from_secs(1));
    })
    .await;
    let id = app.create_app("wxflush").await;
    let (uuid, skey) = app.login(id, "fay.1").await;
    app.clock.advance(Duration::from_secs(90));
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    let visited = wafer::clock::Clock::now(&*app.clock);
    app.server.stop().await;
    let pg = backends::postgres(&db_url);
    let record = pg.session(uuid.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(record.last_visit, visited);
}

#[tokio::test]
async fn half_a_production_config_is_refused() {
    for (redis, database, missing) in [
        (Some("redis://127.0.0.1:6379"), None, "WAFER_DATABASE_URL"),
        (
            None,
            Some("postgres://postgres@127.0.0.1/x"),
            "WAFER_REDIS_URL",
        ),
    ] {
        let mut s = Settings::default();
        s.http.listen = "127.0.0.1:0".parse().unwrap();
        s.redis.url = redis.map(Into::into);
        s.database.url = database.map(Into::into);
        let err = match Application::build(&s).await {
            Ok(_) => panic!("started with half a config"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(missing), "{err}");
        assert!(err.contains("is not"), "{err}");
    }
}

#[tokio::test]
async fn nul_characters_are_refused_before_they_reach_postgres() {
    // PostgreSQL refuses NUL in text (22021). Such input is the caller's
    // mistake: 400, never the 503 that would page someone about an outage.
    wafer_testkit::require_servers!();
    let app = spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxnul").await;
    let post = |body: serde_json::Value| {
        app.send(app.admin(reqwest::Method::POST, "/admin/apps").json(&body))
    };
    for body in [
        json!({"title": "a\u{0}b", "appid": "wxn1", "secret": "s"}),
        json!({"title": "t", "appid": "wx\u{0}n2", "secret": "s"}),
        json!({"title": "t", "appid": "wxn3", "secret": "s\u{0}"}),
    ] {
        wafer_testkit::assert_admin_fail(&post(body).await, 400, "bad_request");
    }
    let patch = app
        .send(
            app.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
                .json(&json!({"title": "\u{0}"})),
        )
        .await;
    wafer_testkit::assert_admin_fail(&patch, 400, "bad_request");
    let list = app
        .send(app.admin(
            reqwest::Method::GET,
            &format!("/admin/apps/{id}/sessions?open_id=%00"),
        ))
        .await;
    wafer_testkit::assert_admin_fail(&list, 400, "bad_request");
    let login = app
        .post("/mina/login", json!({"app_id": id, "code": "nul\u{0}.1"}))
        .await;
    assert_fail(&login, 400, "bad_request");
    let (uuid, _) = app.login(id, "nina.1").await;
    let auth = app
        .post(
            "/mina/auth",
            json!({"app_id": id, "uuid": uuid, "skey": "\u{0}"}),
        )
        .await;
    assert_fail(&auth, 400, "bad_request");
    // Nothing of it counted as an outage.
    let metrics = app.metrics().await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains(r#"outcome="unavailable""#) && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_users_session_is_shown_and_revoked_by_open_id_tiered() {
    wafer_testkit::require_servers!();
    let app = spawn_tiered_with(|_| {}).await;
    wafer_testkit::check_user_routes(&app, "wxuserst").await;
}
