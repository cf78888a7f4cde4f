//! Every series wafer documents moves under the load that should move it:
//! a series that exists but never changes would leave a dashboard panel or
//! an alert silently blind (the write-behind series once were).

use std::collections::BTreeMap;
use std::time::Duration;

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

fn value(totals: &BTreeMap<String, f64>, series: &str, kind: Kind) -> f64 {
    let name = match kind {
        Kind::Histogram => format!("{series}_count"),
        _ => series.to_owned(),
    };
    totals.get(&name).copied().unwrap_or(0.0)
}

/// Polls `/metrics` until `done` holds (or 10 s pass); returns the totals.
async fn wait_for(
    app: &TestApp,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let mut last = BTreeMap::new();
    for _ in 0..100 {
        last = totals(&app.metrics().await);
        if done(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_series_moves_under_load() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let proxy = Proxy::start(backends::host_port(&db)).await;
    let pg_url = proxy.pg_url(&db);
    let app = spawn_tiered_on(db, |s| {
        s.database.url = Some(pg_url.as_str().into());
        s.database.timeout = Duration::from_millis(300);
    })
    .await;
    let before = totals(&app.metrics().await);

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
    // A Redis miss: the session is read through from PostgreSQL.
    let key = format!("{}s:{{{}}}", app.redis_prefix().unwrap(), sessions[1].0);
    let deleted = std::process::Command::new("redis-cli")
        .args(["-u", &backends::redis_url(), "DEL", &key])
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "1");
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
    let flushed = wait_for(&app, |t| {
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
    let after = wait_for(&app, |t| {
        t.get("wafer_write_behind_flush_failures_total")
            .copied()
            .unwrap_or(0.0)
            > 0.0
            && t.get("wafer_write_behind_pending").copied().unwrap_or(0.0) > 0.0
    })
    .await;
    proxy.set(ProxyMode::Pass);

    for (name, kind, _) in SERIES {
        if *name == "wafer_build_info" {
            // Constant by design: one sample of 1 naming the build.
            assert!(after.get(*name) == Some(&1.0), "{name}");
            continue;
        }
        let (was, now) = (value(&before, name, *kind), value(&after, name, *kind));
        assert!(now > was, "{name} did not move under load: {was} -> {now}");
    }
}

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
