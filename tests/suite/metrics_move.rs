//! Every series wafer documents moves under the load that should move it:
//! a series that exists but never changes would leave a dashboard panel or
//! an alert silently blind (the write-behind series once were).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use wafer::metrics::register::{Kind, SERIES};
use wafer_testkit::backends::{self, Proxy, ProxyMode};
use wafer_testkit::{TestApp, spawn_tiered_on};

/// Per series: the sum of its samples (a histogram: of its `_count`).
fn totals(page: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key);
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        *out.entry(name.to_owned()).or_insert(0.0) += v;
    }
    out
}

/// The value of one exact series (`name{labels}` as rendered), or 0.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Label values that an alert or a dashboard panel reads: each must move.
const WATCHED: &[&str] = &[
    r#"wafer_requests_total{route="/mina/login",outcome="unavailable"}"#,
    r#"wafer_requests_total{route="/mina/auth",outcome="session_invalid"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="ok"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="app_credentials"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="rate_limited"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="errcode"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="http_error"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="malformed"}"#,
    r#"wafer_wechat_requests_total{api="jscode2session",result="timeout"}"#,
    r#"wafer_wechat_requests_total{api="stable_token",result="ok"}"#,
    r#"wafer_wechat_requests_total{api="phone",result="ok"}"#,
    r#"wafer_wechat_requests_total{api="phone",result="token_invalid"}"#,
    r#"wafer_store_read_through_total{reason="miss"}"#,
    r#"wafer_store_read_through_total{reason="redis_down"}"#,
    r#"wafer_store_operations_total{backend="redis",op="auth",result="ok"}"#,
    r#"wafer_store_operations_total{backend="postgres",op="record_visits",result="error"}"#,
];

fn value(totals: &BTreeMap<String, f64>, series: &str, kind: Kind) -> f64 {
    let name = match kind {
        Kind::Histogram => format!("{series}_count"),
        _ => series.to_owned(),
    };
    totals.get(&name).copied().unwrap_or(0.0)
}

/// Polls `/metrics` until `done` holds; returns the totals. Fails the test,
/// naming `what` it waited for, after 10 s: the steps after a wait rely on
/// it, and one that ran out silently let them check a state never reached.
async fn wait_for(
    app: &TestApp,
    what: &str,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    for _ in 0..100 {
        let now = totals(&app.metrics().await);
        if done(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wafer: BTreeMap<_, _> = totals(&app.metrics().await)
        .into_iter()
        .filter(|(k, _)| k.starts_with("wafer_"))
        .collect();
    panic!("10 s passed waiting for {what}; /metrics totals: {wafer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_series_moves_under_load() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let proxy = Proxy::start(backends::host_port(&db)).await;
    let pg_url = proxy.pg_url(&db);
    let redis_proxy = Proxy::start(backends::host_port(&backends::redis_url())).await;
    let redis_url = redis_proxy.redis_url();
    let app = spawn_tiered_on(db, |s| {
        s.database.url = Some(pg_url.as_str().into());
        s.database.timeout = Duration::from_millis(300);
        s.redis.url = Some(redis_url.as_str().into());
        s.wechat.timeout = Duration::from_millis(300);
        // Visits due after the 2 s the clock is advanced by (the default,
        // 1% of 30 days, would be 6 h).
        s.database.visit_granularity =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(1));
        // Near-cache slides written within the test.
        s.redis.near_cache_slide =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_millis(100));
    })
    .await;
    let first_page = app.metrics().await;
    let before = totals(&first_page);

    // Requests of every kind, logins at WeChat, auths from Redis.
    let id = app.create_app("wxmoves").await;
    let mut sessions = Vec::new();
    for user in ["ann", "ben", "cai"] {
        sessions.push(app.login(id, &format!("{user}.1")).await);
    }
    for (uuid, skey) in &sessions {
        assert_eq!(app.auth(id, uuid, skey).await.status, 200);
    }
    assert_eq!(app.auth(id, &sessions[0].0, "wrong").await.status, 401);
    // Every way WeChat fails that an alert tells apart.
    for code in [
        "err-40125",
        "err-45011",
        "err--1",
        "http-500",
        "non-json",
        "slow-2000.x",
    ] {
        let a = app
            .post("/mina/login", json!({"app_id": id, "code": code}))
            .await;
        assert!(a.status >= 400, "{code}: {}", a.text);
    }
    // A phone number, then another after WeChat revoked the app's token:
    // fetches, a forced refresh, the token's age.
    // (WeChat's timeout is 300 ms here, for the slow code above: on a busy
    // machine a call may time out, so each step may take a few codes.)
    let (uuid, skey) = &sessions[0];
    let phone_ok = |step: &'static str| {
        let app = &app;
        async move {
            for i in 0..5 {
                let a = app.phone(id, uuid, skey, &format!("ann.{step}{i}")).await;
                if a.status == 200 {
                    return;
                }
                assert_eq!(a.status, 504, "{}", a.text);
            }
            panic!("no phone call succeeded ({step})");
        }
    };
    phone_ok("p").await;
    assert!(app.wechat.invalidate_token("wxmoves"));
    phone_ok("q").await;
    // A Redis miss: the session is read through from PostgreSQL (once the
    // near cache has heard of the deletion, which Redis pushes at once).
    let invalidations = |t: &BTreeMap<String, f64>| {
        t.get("wafer_near_cache_invalidations_total")
            .copied()
            .unwrap_or(0.0)
    };
    let heard = invalidations(&totals(&app.metrics().await));
    let key = format!("{}s:{{{}}}", app.redis_prefix().unwrap(), sessions[1].0);
    let deleted = std::process::Command::new("redis-cli")
        .args(["-u", &backends::redis_url(), "DEL", &key])
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "1");
    wait_for(&app, "the near cache to hear of the deletion", |t| {
        invalidations(t) > heard
    })
    .await;
    assert_eq!(
        app.auth(id, &sessions[1].0, &sessions[1].1).await.status,
        200
    );
    // Visits become due (the granularity is 1 s) and reach PostgreSQL at
    // the next flush.
    app.clock.advance(Duration::from_secs(2));
    for (uuid, skey) in &sessions {
        assert_eq!(app.auth(id, uuid, skey).await.status, 200);
    }
    // The token served now is 2 s old.
    let token = app.access_token(id).await;
    assert_eq!(token.status, 200, "{}", token.text);
    let flushed = wait_for(&app, "a flush of due visits", |t| {
        value(t, "wafer_write_behind_flush_sessions", Kind::Histogram) > 0.0
            && t.get("wafer_sessions_stored").copied().unwrap_or(0.0) > 0.0
    })
    .await;
    assert!(
        value(
            &flushed,
            "wafer_write_behind_flush_sessions",
            Kind::Histogram
        ) > 0.0
    );

    // PostgreSQL hangs: auth goes on from Redis, flushes fail and the
    // backlog stays pending.
    proxy.set(ProxyMode::Hang);
    app.clock.advance(Duration::from_secs(2));
    for (uuid, skey) in &sessions {
        assert_eq!(app.auth(id, uuid, skey).await.status, 200);
    }
    let login = app
        .post("/mina/login", json!({"app_id": id, "code": "dan.1"}))
        .await;
    assert_eq!(login.status, 503, "{}", login.text);
    let after = wait_for(&app, "failed flushes and a pending backlog", |t| {
        t.get("wafer_write_behind_flush_failures_total")
            .copied()
            .unwrap_or(0.0)
            > 0.0
            && t.get("wafer_write_behind_pending").copied().unwrap_or(0.0) > 0.0
    })
    .await;
    // Redis down: auth is served from PostgreSQL (back now).
    proxy.set(ProxyMode::Pass);
    redis_proxy.set(ProxyMode::Down);
    // Cutting Redis empties the near cache (at once: the connection ends).
    let flushed = |t: &BTreeMap<String, f64>| {
        t.get("wafer_near_cache_flushes_total")
            .copied()
            .unwrap_or(0.0)
    };
    wait_for(&app, "the near cache to be flushed", |t| {
        flushed(t) > flushed(&before)
    })
    .await;
    assert_eq!(
        app.auth(id, &sessions[2].0, &sessions[2].1).await.status,
        200
    );
    redis_proxy.set(ProxyMode::Pass);
    let last_page = app.metrics().await;
    let last = totals(&last_page);
    for series in WATCHED {
        let (was, now) = (sample(&first_page, series), sample(&last_page, series));
        assert!(now > was, "{series} did not move: {was} -> {now}");
    }
    // Once PostgreSQL caught up, nothing is pending any more: the backlog
    // alert clears.
    let caught_up = wait_for(&app, "the write-behind backlog to drain", |t| {
        t.get("wafer_write_behind_pending") == Some(&0.0)
    })
    .await;
    assert_eq!(caught_up.get("wafer_write_behind_pending"), Some(&0.0));

    for (name, kind, _) in SERIES {
        if *name == "wafer_build_info" {
            // Constant by design: one sample of 1 naming the build.
            assert!(after.get(*name) == Some(&1.0), "{name}");
            continue;
        }
        if let Some((_, test)) = MOVED_ELSEWHERE.iter().find(|(n, _)| n == name) {
            // Nonzero only for moments this load cannot hold still for a
            // scrape: `test` moves it and checks it comes back; it must
            // still exist.
            let (module, f) = test.split_once("::").expect("module::test");
            let path = format!("{}/tests/suite/{module}.rs", env!("CARGO_MANIFEST_DIR"));
            let source = std::fs::read_to_string(&path).expect("the test's module");
            assert!(
                source.contains(&format!("async fn {f}()")),
                "{name}: no test {test}"
            );
            continue;
        }
        // Gauges are read where they peak (under the PostgreSQL outage);
        // what moves only on a Redis fault, after it.
        let now = value(&after, name, *kind).max(value(&last, name, *kind));
        let was = value(&before, name, *kind);
        assert!(now > was, "{name} did not move under load: {was} -> {now}");
    }
}

/// Series this load cannot move, and the tests that do: gauges of
/// something in flight for a moment (a fill waiting on Redis, a visit held
/// back until the next slide round), and the near cache standing aside.
const MOVED_ELSEWHERE: &[(&str, &str)] = &[
    (
        "wafer_near_cache_fills_in_flight",
        "near_cache::requests_reset_over_http_hold_nothing",
    ),
    (
        "wafer_near_cache_slides_pending",
        "near_cache::with_redis_away_no_slide_is_sent",
    ),
    // Needs a full cache that mostly misses: many more sessions than
    // this load's.
    (
        "wafer_near_cache_aside",
        "near_cache::a_cache_that_only_churns_steps_aside_and_back",
    ),
    (
        "wafer_near_cache_bypassed_total",
        "near_cache::a_cache_that_only_churns_steps_aside_and_back",
    ),
    // Needs two million sessions' visits waiting for PostgreSQL.
    (
        "wafer_write_behind_dropped_total",
        "store_tiered::a_full_write_behind_counts_the_visits_it_drops",
    ),
];

#[test]
fn the_readme_names_only_exported_series() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut rest = readme.as_str();
    let mut named = 0;
    while let Some(i) = rest.find("wafer_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        if name == "wafer_" || name.starts_with("wafer_test") {
            continue;
        }
        named += 1;
        let known = SERIES.iter().any(|(series, kind, _)| {
            name == *series
                || (matches!(kind, Kind::Histogram)
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(*series)))
        });
        assert!(
            known,
            "the README names {name}, which wafer does not export"
        );
    }
    assert!(named >= 10, "the README's metric table was found: {named}");
}
