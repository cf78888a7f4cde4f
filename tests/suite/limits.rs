//! Login rate limits: per client address (the socket's peer, or what a
//! trusted proxy names) and per app, answered 429 with `Retry-After`
//! before WeChat is asked.

use serde_json::json;
use wafer_testkit::{TestApp, assert_fail, spawn_app_with};

async fn login_from(
    app: &TestApp,
    id: i64,
    code: &str,
    client: Option<&str>,
) -> wafer_testkit::Answer {
    let mut req = app
        .client
        .post(app.url("/mina/login"))
        .json(&json!({"code": code, "app_id": id}));
    if let Some(ip) = client {
        req = req.header("x-forwarded-for", ip);
    }
    app.send(req).await
}

#[tokio::test]
async fn a_client_past_its_budget_is_refused_before_wechat() {
    let app = spawn_app_with(|s| s.limits.login_per_ip = 2).await;
    let id = app.create_app("wxlim").await;
    assert_eq!(login_from(&app, id, "li.1", None).await.status, 200);
    assert_eq!(login_from(&app, id, "li.2", None).await.status, 200);
    let refused = login_from(&app, id, "li.3", None).await;
    assert_fail(&refused, 429, "rate_limited");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(app.wechat.calls("li.3"), 0, "WeChat was not asked");
    // X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    let spoofed = login_from(&app, id, "li.4", Some("198.51.100.7")).await;
    assert_fail(&spoofed, 429, "rate_limited");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = spawn_app_with(|s| {
        s.limits.login_per_ip = 1;
        s.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let id = app.create_app("wxprox").await;
    assert_eq!(
        login_from(&app, id, "pa.1", Some("198.51.100.1"))
            .await
            .status,
        200
    );
    assert_fail(
        &login_from(&app, id, "pa.2", Some("198.51.100.1")).await,
        429,
        "rate_limited",
    );
    assert_eq!(
        login_from(&app, id, "pb.1", Some("198.51.100.2"))
            .await
            .status,
        200
    );
    // A client that prepends an address of its own is still itself.
    let spoof = login_from(&app, id, "pa.3", Some("198.51.100.9, 198.51.100.1")).await;
    assert_fail(&spoof, 429, "rate_limited");
}

#[tokio::test]
async fn an_app_past_its_budget_is_refused_for_every_client() {
    let app = spawn_app_with(|s| {
        s.limits.login_per_app = 2;
        s.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let id = app.create_app("wxapplim").await;
    let other = app.create_app("wxother").await;
    assert_eq!(
        login_from(&app, id, "qa.1", Some("198.51.100.1"))
            .await
            .status,
        200
    );
    assert_eq!(
        login_from(&app, id, "qb.1", Some("198.51.100.2"))
            .await
            .status,
        200
    );
    assert_fail(
        &login_from(&app, id, "qc.1", Some("198.51.100.3")).await,
        429,
        "rate_limited",
    );
    assert_eq!(
        login_from(&app, other, "qc.1", Some("198.51.100.3"))
            .await
            .status,
        200
    );
    // The original protocol is limited too (its clients see a WeChat-side
    // refusal, the closest code it has).
    let original = app
        .post(
            "/mina_auth/",
            json!({"version": 1, "componentName": "MA", "interface": {
                "interfaceName": "qcloud.cam.id_skey",
                "para": {"code": "qd.1", "appid": "wxapplim"}}}),
        )
        .await;
    assert_eq!(original.status, 200);
    assert_eq!(original.body["returnCode"], 40029, "{}", original.text);
    assert_eq!(app.wechat.calls("qd.1"), 0);
}

/// `wafer_store_read_through_total{reason="miss"}` now.
async fn misses(app: &TestApp) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"wafer_store_read_through_total{reason="miss"} "#)?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_ids_cost_postgresql_a_bounded_number_of_reads() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|s| s.database.read_through_limit = 5).await;
    let id = app.create_app("wxflood").await;
    let before = misses(&app).await;
    // The same unknown id, again and again: PostgreSQL is asked once.
    let ghost = uuid::Uuid::new_v4().to_string();
    for _ in 0..5 {
        assert_fail(&app.auth(id, &ghost, "nope").await, 401, "session_invalid");
    }
    assert_eq!(misses(&app).await - before, 1.0);
    // Fresh random ids past the budget: 503, never a wrong answer, and no
    // more reads than the budget allows.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let a = app
            .auth(id, &uuid::Uuid::new_v4().to_string(), "nope")
            .await;
        statuses.push(a.status);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the budget was reached: {statuses:?}"
    );
    let reads = misses(&app).await - before - 1.0;
    assert!(reads <= 8.0, "{reads} reads for 30 unknown ids");
    // A real session is served from Redis, whatever the flood.
    let (uuid, skey) = app.login(id, "real.1").await;
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
}
