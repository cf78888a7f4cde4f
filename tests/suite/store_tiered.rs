//! The store contract on the tiered store (Redis + PostgreSQL), and what only
//! it does: read-through, write-behind, one round trip per auth, faults.

use std::sync::Arc;
use std::time::Duration;

use crate::contract::{T0, creds, login, new_app};
use wafer::clock::Timestamp;
use wafer::domain::app::App;
use wafer::store::postgres::Postgres;
use wafer::store::{AppStore, SessionStore, StoreError, StoreHealth, TieredStore};
use wafer_testkit::backends::{self, PrivateRedis, Proxy, ProxyMode};

store_contract!(backends::tiered);

async fn app_in(s: &TieredStore, appid: &str) -> Arc<App> {
    s.create_app(new_app(appid), T0).await.unwrap()
}

async fn pg(db_url: &str) -> Postgres {
    backends::postgres(db_url)
}

/// Waits until the store's near cache no longer holds `uuid` (after a change
/// made behind its back, which Redis tells it of).
async fn forgotten(s: &TieredStore, uuid: uuid::Uuid) {
    let near = s.near_cache().expect("the near cache is on");
    for _ in 0..1_000 {
        if !near.holds(uuid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the near cache still holds {uuid}");
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxhash").await;
    let (n, skey) = login(&app, "o-h", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let key = format!("{prefix}s:{{{uuid}}}");
    // A hash an operator can read: named fields, the skey only as its hash.
    let cached = redis_cli(&backends::redis_url(), &["HGETALL", &key]);
    let fields: Vec<&str> = cached.lines().collect();
    let get = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv[0] == name)
            .map(|kv| kv[1].to_owned())
    };
    assert_eq!(get("open_id").as_deref(), Some("o-h"), "{cached}");
    assert_eq!(get("app"), Some(app.id.to_string()));
    let hex: String = skey.hash().0.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(get("skey_sha256"), Some(hex));
    assert!(!cached.contains(skey.expose()), "plain skey in Redis");
    assert!(
        !cached.contains("c2Vzc2lvbmtleTEyMzQ1Ng=="),
        "session_key in Redis"
    );
    let record = pg(&db).await.session(uuid).await.unwrap().unwrap();
    assert_eq!(record.skey_hash, skey.hash());
    // The open_id index names the session, for at most its absolute limit.
    let index = format!("{prefix}o:{{{}:o-h}}", app.id);
    assert_eq!(
        redis_cli(&backends::redis_url(), &["GET", &index]).trim(),
        uuid.to_string()
    );
    let ttl: i64 = redis_cli(&backends::redis_url(), &["PTTL", &index])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 30 * 86_400_000, "{ttl}");
}

#[tokio::test]
async fn a_redis_miss_reads_through_and_repopulates() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxmiss").await;
    let (n, skey) = login(&app, "o-m", Some(r#"{"nickName":"m"}"#), T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let key = format!("{prefix}s:{{{uuid}}}");
    assert_eq!(
        redis_cli(&backends::redis_url(), &["DEL", &key]).trim(),
        "1"
    );
    let later = T0.plus_millis(10_000);
    let p = s
        .authenticate(&creds(&app, uuid, &skey, later))
        .await
        .unwrap()
        .expect("read through");
    assert_eq!(p.user_info.as_deref(), Some(r#"{"nickName":"m"}"#));
    assert_eq!(
        redis_cli(&backends::redis_url(), &["EXISTS", &key]).trim(),
        "1"
    );
    // The visit key lives exactly as long as the session has left, the
    // hash a quarter longer.
    let pttl = |k: &str| -> i64 {
        redis_cli(&backends::redis_url(), &["PTTL", k])
            .trim()
            .parse()
            .unwrap()
    };
    let ttl = pttl(&format!("{prefix}v:{{{uuid}}}"));
    assert!(ttl > 3_590_000 && ttl <= 3_600_000, "ttl {ttl}");
    let kept = pttl(&key);
    assert!(kept > 4_490_000 && kept <= 4_500_000, "hash ttl {kept}");
    // A wrong skey is refused on the read-through path too.
    redis_cli(&backends::redis_url(), &["DEL", &key]);
    let other = wafer::domain::skey::Skey::mint().unwrap();
    assert!(
        s.authenticate(&creds(&app, uuid, &other, later))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn last_visit_reaches_postgres_at_most_once_per_granularity() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let every = backends::test_settings();
    let every = wafer::store::tiered::TieredSettings {
        visit: wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(60)),
        // No background flush: the test reads what is pending.
        flush_every: Duration::from_secs(3600),
        // Every auth to Redis (the near cache's slides: near_cache.rs).
        near: None,
        ..every
    };
    let s = backends::tiered_with(&backends::redis_url(), &db, &prefix, every).await;
    let app = app_in(&s, "wxgran").await;
    let (n, skey) = login(&app, "o-g", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let auth_at = |ms: i64| {
        let c = creds(&app, uuid, &skey, T0.plus_millis(ms));
        let s = s.clone();
        async move { s.authenticate(&c).await.unwrap().is_some() }
    };
    // The login wrote T0; slides within the next minute stay in Redis.
    assert!(auth_at(10_000).await);
    assert!(auth_at(59_000).await);
    assert_eq!(s.pending_visits(), 0);
    // A minute after the last write, the visit is due.
    assert!(auth_at(61_000).await);
    assert_eq!(s.pending_visits(), 1);
    s.flush_visits().await;
    let last = |db: String| async move { pg(&db).await.session(uuid).await.unwrap().unwrap() };
    assert_eq!(
        last(db.to_string()).await.last_visit,
        T0.plus_millis(61_000)
    );
    // Not due again until 60 s after that; Redis still slid meanwhile:
    // T0 + 90 s + the 3600 s window is valid, which T0 + 61 s would not be.
    assert!(auth_at(90_000).await);
    assert_eq!(s.pending_visits(), 0);
    assert!(auth_at(90_000 + 3_600_000 - 1_000).await);
    assert_eq!(s.pending_visits(), 1);
}

#[tokio::test]
async fn last_visit_is_written_behind_and_checked_on_read_through() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxwb").await;
    let (n, skey) = login(&app, "o-w", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    // Slide to T0 + 50 min; the session (3600 s sliding) now lives to T0 + 110 min.
    let slid = T0.plus_millis(3_000_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, slid))
            .await
            .unwrap()
            .is_some()
    );
    // The near cache's slide reaches Redis (within its interval), the
    // write-behind PostgreSQL (within a second); here, at once.
    s.write_slides().await;
    s.flush_visits().await;
    let record = pg(&db).await.session(uuid).await.unwrap().unwrap();
    assert_eq!(record.last_visit, slid);
    // Without Redis' copy, the record alone decides: T0 + 100 min is valid
    // only because the slide reached PostgreSQL.
    redis_cli(
        &backends::redis_url(),
        &["DEL", &format!("{prefix}s:{{{uuid}}}")],
    );
    forgotten(&s, uuid).await;
    let at = T0.plus_millis(6_000_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, at))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn restarting_wafer_or_losing_redis_loses_no_session() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let mut redis = PrivateRedis::start();
    let s = backends::tiered_at(&redis.url(), &db, &prefix).await;
    let app = app_in(&s, "wxrestart").await;
    let (n, skey) = login(&app, "o-r", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let slid = T0.plus_millis(1_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, slid))
            .await
            .unwrap()
            .is_some()
    );
    // Graceful stop: pending last visits are flushed.
    s.close().await;
    drop(s);
    assert_eq!(
        pg(&db)
            .await
            .session(uuid)
            .await
            .unwrap()
            .unwrap()
            .last_visit,
        slid
    );
    // All of Redis is lost, and wafer restarts.
    redis.restart();
    let s = backends::tiered_at(&redis.url(), &db, &prefix).await;
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, T0.plus_millis(2_000)))
            .await
            .unwrap()
            .is_some(),
        "the session survives from its record"
    );
    // And Redis was repopulated.
    let key = format!("{prefix}s:{{{uuid}}}");
    assert_eq!(redis.cli(&["EXISTS", &key]).trim(), "1");
}

#[tokio::test]
async fn auth_is_one_redis_round_trip() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let redis = PrivateRedis::start();
    // Without the near cache: what it saves is measured in near_cache.rs.
    let every = wafer::store::tiered::TieredSettings {
        near: None,
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&redis.url(), &db, &prefix, every).await;
    let app = app_in(&s, "wxrtt").await;
    let (n, skey) = login(&app, "o-rtt", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let c = creds(&app, uuid, &skey, T0.plus_millis(1));
    // Warm up (the script may need loading once).
    s.authenticate(&c).await.unwrap().unwrap();
    let total = |stats: &str| -> u64 {
        stats
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    redis.cli(&["CONFIG", "RESETSTAT"]);
    const N: u64 = 200;
    for i in 0..N {
        let c = creds(&app, uuid, &skey, T0.plus_millis(10 + i as i64));
        assert!(s.authenticate(&c).await.unwrap().is_some());
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let evalsha: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|l| l.split(',').next()?.parse().ok())
        .unwrap_or(0);
    assert_eq!(evalsha, N, "{stats}");
    // Commands called by the script itself (HMGET, HSET, PEXPIRE) are
    // counted too; what matters is that the client sent N commands. The
    // only client-side commands are EVALSHA, plus the INFO/RESETSTAT of
    // this test and fred's own PINGs.
    let client_side = total(&stats)
        - [
            "hmget",
            "hset",
            "pexpire",
            "pttl",
            "info",
            "config|resetstat",
            "ping",
        ]
        .iter()
        .map(|c| {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{c}:calls=")))
                .and_then(|l| l.split(',').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum::<u64>();
    assert_eq!(client_side, N, "{stats}");
}

#[tokio::test]
async fn redis_down_serves_auth_from_postgres_and_recovers() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let mut redis = PrivateRedis::start();
    let s = backends::tiered_at(&redis.url(), &db, &prefix).await;
    let app = app_in(&s, "wxrdown").await;
    let (n, skey) = login(&app, "o-rd", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = s.health().await;
    let redis_health = health.iter().find(|h| h.name == "redis").unwrap();
    assert!(redis_health.problem.is_some(), "{health:?}");
    assert!(
        health
            .iter()
            .any(|h| h.name == "postgres" && h.problem.is_none())
    );
    // Auth is served from PostgreSQL, still checking everything.
    let t = T0.plus_millis(5_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, t))
            .await
            .unwrap()
            .is_some()
    );
    let bad = wafer::domain::skey::Skey::mint().unwrap();
    assert!(
        s.authenticate(&creds(&app, uuid, &bad, t))
            .await
            .unwrap()
            .is_none()
    );
    // Logins still work (PostgreSQL commits; Redis catches up later).
    let (n, skey2) = login(&app, "o-rd", None, t);
    assert_eq!(s.upsert_session(n).await.unwrap().uuid, uuid);
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, t))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.authenticate(&creds(&app, uuid, &skey2, t))
            .await
            .unwrap()
            .is_some()
    );
    // Redis comes back (empty): no restart needed.
    redis.restart();
    let mut healthy = false;
    for _ in 0..100 {
        if s.health().await.iter().all(|h| h.problem.is_none()) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "redis reconnects");
    assert!(
        s.authenticate(&creds(&app, uuid, &skey2, t))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.authenticate(&creds(&app, uuid, &skey, t))
            .await
            .unwrap()
            .is_none()
    );
}

/// Scheduling and one Redis round trip on top of a repair interval, on a
/// shared 2-core machine running other tests.
const REPAIR_MARGIN: Duration = Duration::from_millis(250);

/// A store behind `proxy` with repairs every `repair`, its app, and a
/// session whose skey is rotated (a re-login) and another revoked while
/// Redis is unreachable; Redis is not restarted, so it still holds both
/// old copies. Answers the store, the old and new credentials of the
/// first, and the revoked one's.
async fn stale_while_away(
    proxy: &Proxy,
    db: &str,
    prefix: &backends::TestPrefix,
    repair: Duration,
) -> (
    Arc<TieredStore>,
    wafer::domain::session::Credentials,
    wafer::domain::session::Credentials,
    wafer::domain::session::Credentials,
) {
    let every = wafer::store::tiered::TieredSettings {
        repair_every: repair,
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&proxy.redis_url(), db, prefix, every).await;
    let app = app_in(&s, "wxstale").await;
    let (n, old) = login(&app, "o-st", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let (n, gone) = login(&app, "o-gone", None, T0);
    let revoked = s.upsert_session(n).await.unwrap().uuid;
    let t = T0.plus_millis(2);
    // Both in Redis (and this instance's near cache) before the outage.
    for c in [creds(&app, uuid, &old, t), creds(&app, revoked, &gone, t)] {
        assert!(s.authenticate(&c).await.unwrap().is_some());
    }
    proxy.set(ProxyMode::Down);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (n, new) = login(&app, "o-st", None, T0.plus_millis(1));
    assert_eq!(s.upsert_session(n).await.unwrap().uuid, uuid);
    assert!(s.revoke(revoked).await.unwrap());
    // Redis itself still holds the replaced copies (generation 1, no
    // tombstone): the store could not tell it.
    let url = backends::redis_url();
    for u in [uuid, revoked] {
        let key = format!("{}s:{{{u}}}", prefix.as_str());
        assert_eq!(redis_cli(&url, &["HGET", &key, "gen"]).trim(), "1");
        assert_eq!(redis_cli(&url, &["HEXISTS", &key, "removed"]).trim(), "0");
    }
    (
        s,
        creds(&app, uuid, &old, t),
        creds(&app, uuid, &new, t),
        creds(&app, revoked, &gone, t),
    )
}

#[tokio::test]
async fn a_stale_redis_copy_is_evicted_when_redis_returns() {
    wafer_testkit::require_servers!();
    // Redis unreachable (not restarted: it keeps the old copy) while a
    // re-login rotates the skey: once it is reachable again, the queued
    // eviction runs at the next repair round (100 ms here), and the old
    // skey fails.
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let proxy = Proxy::start(backends::host_port(&backends::redis_url())).await;
    let repair = Duration::from_millis(100);
    let (s, old, new, _) = stale_while_away(&proxy, &db, &prefix, repair).await;
    proxy.set(ProxyMode::Pass);
    let passed = std::time::Instant::now();
    while s.health().await.iter().any(|h| h.problem.is_some()) {
        // The client reconnects with a backoff of at most 2 s.
        assert!(
            passed.elapsed() < Duration::from_secs(5),
            "redis reconnects"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(repair + REPAIR_MARGIN).await;
    assert!(
        s.authenticate(&old).await.unwrap().is_none(),
        "the old skey still works {:?} after Redis answered",
        repair + REPAIR_MARGIN
    );
    assert!(s.authenticate(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn an_old_skey_works_at_most_one_repair_round_after_redis_returns() {
    wafer_testkit::require_servers!();
    // The gap: Redis, back after an outage, still holds copies this
    // instance replaced or removed meanwhile, and answers auths from them
    // until the repair round evicts them. Measured at the production
    // repair interval (1 s), with auths of the old skey and of the revoked
    // session all along.
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let proxy = Proxy::start(backends::host_port(&backends::redis_url())).await;
    let repair = wafer::store::tiered::TieredSettings::default().repair_every;
    let (s, old, new, revoked) = stale_while_away(&proxy, &db, &prefix, repair).await;
    // While Redis is away, both are refused (PostgreSQL answers).
    assert!(s.authenticate(&old).await.unwrap().is_none());
    assert!(s.authenticate(&revoked).await.unwrap().is_none());
    proxy.set(ProxyMode::Pass);
    let passed = std::time::Instant::now();
    // Redis is back from the first moment it answers: its health, or an
    // acceptance (PostgreSQL refuses both).
    let mut back: Option<std::time::Instant> = None;
    let mut last_accepted: Option<std::time::Instant> = None;
    let watch = repair * 2 + REPAIR_MARGIN;
    while back.is_none_or(|b| b.elapsed() < watch) {
        assert!(
            passed.elapsed() < Duration::from_secs(10),
            "redis reconnects"
        );
        let asked = std::time::Instant::now();
        for c in [&old, &revoked] {
            if s.authenticate(c).await.unwrap().is_some() {
                back.get_or_insert(asked);
                last_accepted = Some(std::time::Instant::now());
            }
        }
        if back.is_none() && s.health().await.iter().all(|h| h.problem.is_none()) {
            back = Some(asked);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let back = back.unwrap();
    let gap = last_accepted.map_or(Duration::ZERO, |l| l.saturating_duration_since(back));
    println!("an ended session was accepted for {gap:?} after Redis came back");
    assert!(
        gap <= repair + REPAIR_MARGIN,
        "an ended session was accepted {gap:?} after Redis came back (repair every {repair:?})"
    );
    assert!(s.authenticate(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn a_change_its_instance_could_not_tell_redis_is_told_by_another() {
    wafer_testkit::require_servers!();
    // Instance A cannot reach Redis (only PostgreSQL: a bastion running
    // `wafer sessions revoke`, or one instance cut off from Redis) while
    // it revokes a session and logs a user in again. Instance B, with
    // Redis, must stop accepting what A ended: the changes are recorded
    // with their commit, and any instance tells Redis what A could not.
    // Without that, B accepts both until the sessions' absolute limit.
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let proxy = Proxy::start(backends::host_port(&backends::redis_url())).await;
    let fast = wafer::store::tiered::TieredSettings {
        repair_every: Duration::from_millis(100),
        ..backends::test_settings()
    };
    let a = backends::tiered_with(&proxy.redis_url(), &db, &prefix, fast).await;
    let b = backends::tiered_with(&backends::redis_url(), &db, &prefix, fast).await;
    let app = app_in(&b, "wxtold").await;
    a.refresh_apps().await;
    let (n, old) = login(&app, "o-again", None, T0);
    let uuid = b.upsert_session(n).await.unwrap().uuid;
    let (n, gone) = login(&app, "o-gone", None, T0);
    let revoked = b.upsert_session(n).await.unwrap().uuid;
    let t = T0.plus_millis(2);
    let (old, gone) = (creds(&app, uuid, &old, t), creds(&app, revoked, &gone, t));
    for c in [&old, &gone] {
        assert!(b.authenticate(c).await.unwrap().is_some());
    }

    proxy.set(ProxyMode::Down);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (n, new) = login(&app, "o-again", None, T0.plus_millis(1));
    assert_eq!(a.upsert_session(n).await.unwrap().uuid, uuid);
    assert!(a.revoke(revoked).await.unwrap());
    let new = creds(&app, uuid, &new, t);
    let acknowledged = std::time::Instant::now();

    // B, with Redis, refuses the revoked session within a second (A could
    // not mark the removal told: any instance tells Redis of it after
    // 200 ms), and the old skey within the logins' grace (2 s) and a round.
    let (mut revoke_seen, mut login_seen) = (None, None);
    while revoke_seen.is_none() || login_seen.is_none() {
        let elapsed = acknowledged.elapsed();
        if revoke_seen.is_none() && b.authenticate(&gone).await.unwrap().is_none() {
            revoke_seen = Some(elapsed);
        }
        if login_seen.is_none() && b.authenticate(&old).await.unwrap().is_none() {
            login_seen = Some(elapsed);
        }
        assert!(
            elapsed < Duration::from_secs(6),
            "B still accepts what A ended after {elapsed:?} (revoke seen: {revoke_seen:?}, \
             re-login seen: {login_seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let revoke_seen = revoke_seen.unwrap_or_default();
    println!("B refused the revoke after {revoke_seen:?}, the old skey after {login_seen:?}");
    assert!(
        revoke_seen < Duration::from_secs(1),
        "a revoke A could not tell Redis of was accepted by B for {revoke_seen:?}"
    );
    assert!(
        b.authenticate(&new).await.unwrap().is_some(),
        "the new skey works on B"
    );
    assert!(
        b.authenticate(&gone).await.unwrap().is_none(),
        "and stays refused"
    );
}

#[tokio::test]
async fn a_logout_cut_off_after_its_commit_is_enforced() {
    wafer_testkit::require_servers!();
    // A logout whose request is dropped after PostgreSQL committed it (the
    // client disconnected, or the process died) never writes its
    // tombstone: here the commit is made by a bare PostgreSQL client, so
    // Redis keeps the session's copy. The running store must refuse the
    // session anyway, within a second.
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_with(
        &backends::redis_url(),
        &db,
        &prefix,
        backends::test_settings(),
    )
    .await;
    let app = app_in(&s, "wxcut").await;
    let (n, skey) = login(&app, "o-cut", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let c = creds(&app, uuid, &skey, T0.plus_millis(1));
    assert!(s.authenticate(&c).await.unwrap().is_some());

    let cut_off = backends::postgres(&db);
    assert!(
        cut_off
            .delete_session(uuid, Some(&skey.hash()))
            .await
            .unwrap()
            .is_some()
    );
    let committed = std::time::Instant::now();
    while s.authenticate(&c).await.unwrap().is_some() {
        assert!(
            committed.elapsed() < Duration::from_secs(1),
            "a logout committed but never told to Redis is still accepted after {:?}",
            committed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "refused {:?} after the cut-off logout's commit",
        committed.elapsed()
    );
    // And for good: the tombstone is in Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.authenticate(&c).await.unwrap().is_none());
}

#[tokio::test]
async fn a_full_write_behind_counts_the_visits_it_drops() {
    wafer_testkit::require_servers!();
    // With PostgreSQL away for long the write-behind fills; what it turns
    // away is counted on /metrics (here it holds one session's visit).
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let settings = wafer::store::tiered::TieredSettings {
        flush_every: Duration::from_secs(3600),
        near: None,
        write_behind_cap: 1,
        ..backends::test_settings()
    };
    let metrics = wafer::metrics::Metrics::new();
    let s = backends::tiered_recording(
        &backends::redis_url(),
        &db,
        &prefix,
        settings,
        wafer::store::metrics::StoreMetrics::register(metrics.recorder()),
    )
    .await;
    let app = app_in(&s, "wxfull").await;
    let dropped = || {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("wafer_write_behind_dropped_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    for user in ["o-1", "o-2", "o-3"] {
        let (n, skey) = login(&app, user, None, T0);
        let uuid = s.upsert_session(n).await.unwrap().uuid;
        assert!(
            s.authenticate(&creds(&app, uuid, &skey, T0.plus_millis(5)))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(s.pending_visits(), 1, "one session's visit held");
    assert_eq!(dropped(), 0, "counted at the flush");
    s.flush_visits().await;
    assert_eq!(dropped(), 2, "the two visits the full queue turned away");
}

#[tokio::test]
async fn a_phone_number_keeps_the_sessions_newest_visit_in_redis() {
    wafer_testkit::require_servers!();
    // PostgreSQL's last visit lags Redis' by up to a visit granularity
    // (here a minute). Storing a phone number rewrites the Redis copy: it
    // must live from the newest visit, not from PostgreSQL's older one, or
    // Redis drops a session that is still valid and the record, lagging,
    // refuses it.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let settings = wafer::store::tiered::TieredSettings {
        visit: wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(60)),
        flush_every: Duration::from_secs(3600),
        near: None,
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&backends::redis_url(), &db, &prefix, settings).await;
    let mut spec = new_app("wxphonevisit");
    spec.session_duration = 10;
    let app = s.create_app(spec, T0).await.unwrap();
    let (n, skey) = login(&app, "o-pv", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    // Slid in Redis at T0 + 6 s; PostgreSQL still says T0.
    let at = |ms: i64| creds(&app, uuid, &skey, T0.plus_millis(ms));
    assert!(s.authenticate(&at(6_000)).await.unwrap().is_some());
    assert!(s.set_phone(&at(6_000), "13800138000").await.unwrap());
    // Past PostgreSQL's deadline (T0 + 10 s), within Redis' (T0 + 16 s),
    // after more than the 4 s the copy would have had from T0.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert!(
        s.authenticate(&at(12_000)).await.unwrap().is_some(),
        "a session valid until T0 + 16 s was refused at T0 + 12 s"
    );
}

#[tokio::test]
async fn the_purge_waits_out_any_instances_visit_lag() {
    wafer_testkit::require_servers!();
    // This instance writes every visit at once (1 ms), but another may
    // write them once per 6 h, and a visit marked written may wait one
    // more round: a record whose PostgreSQL deadline passed less than two
    // of the longest granularities ago may still be sliding in Redis. The
    // purge must keep it, whatever this instance's own setting.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let s = backends::tiered_with(
        &backends::redis_url(),
        &db,
        &prefix,
        backends::test_settings(),
    )
    .await;
    let app = app_in(&s, "wxpurgelag").await;
    let (n, _) = login(&app, "o-lag", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    const HOUR: i64 = 3_600_000;
    // The app's sessions last an hour idle: PostgreSQL's deadline is T0 + 1 h.
    s.purge(T0.plus_millis(HOUR + 11 * HOUR)).await;
    assert!(
        pg(&db).await.session(uuid).await.unwrap().is_some(),
        "purged 11 h past its PostgreSQL deadline, within another instance's lag"
    );
    s.purge(T0.plus_millis(HOUR + 12 * HOUR + 61_000)).await;
    assert!(pg(&db).await.session(uuid).await.unwrap().is_none());
}

#[tokio::test]
async fn the_string_layouts_tombstone_keeps_refusing_and_is_never_overwritten() {
    wafer_testkit::require_servers!();
    // A rolling upgrade from the release that kept a session as one
    // string: its revoke leaves the string tombstone `X`, here raced by
    // this release reading the record before the revoke's delete. Neither
    // an auth nor a write of this release may bring the session back.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let settings = wafer::store::tiered::TieredSettings {
        near: None,
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&backends::redis_url(), &db, &prefix, settings).await;
    let app = app_in(&s, "wxoldtomb").await;
    let (n, skey) = login(&app, "o-old", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let url = backends::redis_url();
    let key = format!("{}s:{{{uuid}}}", prefix.as_str());
    redis_cli(&url, &["DEL", &key]);
    redis_cli(&url, &["SET", &key, "X", "PX", "60000"]);

    let c = creds(&app, uuid, &skey, T0.plus_millis(1));
    assert!(
        s.authenticate(&c).await.unwrap().is_none(),
        "the old tombstone refuses"
    );
    assert!(
        s.set_phone(&c, "13800138000").await.unwrap(),
        "the record still had it"
    );
    assert_eq!(redis_cli(&url, &["TYPE", &key]).trim(), "string");
    assert_eq!(
        redis_cli(&url, &["GET", &key]).trim(),
        "X",
        "never overwritten"
    );
    assert!(s.authenticate(&c).await.unwrap().is_none());
}

#[tokio::test]
async fn postgres_down_keeps_auth_and_refuses_writes_quickly() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let proxy = Proxy::start(backends::host_port(&db)).await;
    let s = backends::tiered_at(&backends::redis_url(), &proxy.pg_url(&db), &prefix).await;
    let app = app_in(&s, "wxpgdown").await;
    let (n, skey) = login(&app, "o-pd", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    for mode in [ProxyMode::Down, ProxyMode::Hang] {
        proxy.set(mode);
        let t = T0.plus_millis(1_000);
        assert!(
            s.authenticate(&creds(&app, uuid, &skey, t))
                .await
                .unwrap()
                .is_some(),
            "auth from Redis with PostgreSQL {mode:?}"
        );
        let started = std::time::Instant::now();
        let (n, _) = login(&app, "o-new", None, t);
        assert!(matches!(
            s.upsert_session(n).await,
            Err(StoreError::Unavailable { .. })
        ));
        assert!(matches!(
            s.create_app(new_app("wxnope"), t).await,
            Err(StoreError::Unavailable { .. })
        ));
        // Bounded by the 2 s store timeout, twice.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let health = s.health().await;
        assert!(
            health
                .iter()
                .any(|h| h.name == "postgres" && h.problem.is_some()),
            "{health:?}"
        );
    }
    proxy.set(ProxyMode::Pass);
    // Back without a restart; the last visits kept meanwhile are flushed.
    let mut back = false;
    for _ in 0..50 {
        let (n, _) = login(&app, "o-new", None, T0.plus_millis(2_000));
        if s.upsert_session(n).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "logins work again once PostgreSQL is back");
    s.flush_visits().await;
    let record = pg(&db).await.session(uuid).await.unwrap().unwrap();
    assert_eq!(record.last_visit, T0.plus_millis(1_000));
}

#[tokio::test]
async fn app_changes_reach_another_instance_within_a_second() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let (prefix_a, prefix_b) = (backends::fresh_prefix(), backends::fresh_prefix());
    let a = backends::tiered_at(&backends::redis_url(), &db, &prefix_a).await;
    let b = backends::tiered_at(&backends::redis_url(), &db, &prefix_b).await;
    let app = app_in(&a, "wxshared").await;
    let by_id = wafer::domain::app::AppRef::Id(app.id);
    let seen = |s: Arc<TieredStore>, want: Option<u32>| {
        let by_id = by_id.clone();
        async move {
            for _ in 0..20 {
                let got = s.app(&by_id).await.unwrap().map(|a| a.session_duration);
                if got == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(seen(b.clone(), Some(3600)).await);
    let patch = wafer::domain::app::AppPatch {
        session_duration: Some(60),
        ..Default::default()
    };
    a.update_app(app.id, patch, T0).await.unwrap();
    assert!(seen(b.clone(), Some(60)).await);
    a.delete_app(app.id).await.unwrap();
    assert!(seen(b, None).await);
}

#[tokio::test]
async fn expired_sessions_are_purged_from_postgres() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxpurge").await;
    // Logged in long ago (by the wall clock the purge uses).
    let long_ago = Timestamp(1_600_000_000_000);
    let (n, _) = login(&app, "o-old", None, long_ago);
    let old = s.upsert_session(n).await.unwrap().uuid;
    let (n, _) = login(&app, "o-new", None, T0);
    let new = s.upsert_session(n).await.unwrap().uuid;
    s.purge(Timestamp(1_700_000_000_000)).await;
    let pg = pg(&db).await;
    assert!(pg.session(old).await.unwrap().is_none());
    assert!(pg.session(new).await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let runs = (0..4).map(|_| {
        let db = db.to_string();
        tokio::spawn(async move { pg(&db).await.migrate().await.unwrap() })
    });
    let mut applied = 0;
    for r in runs {
        applied += r.await.unwrap().len();
    }
    assert_eq!(applied, wafer::store::postgres::migrate::MIGRATIONS.len());
    assert!(pg(&db).await.migrate().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_hung_redis_costs_an_auth_at_most_its_timeout() {
    wafer_testkit::require_servers!();
    // Bound for the whole test: its keys are deleted when it drops.
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let proxy = Proxy::start(backends::host_port(&backends::redis_url())).await;
    let s = backends::tiered_at(&proxy.redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxrhang").await;
    let (n, skey) = login(&app, "o-hang", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    proxy.set(ProxyMode::Hang);
    // Every auth still answers, from PostgreSQL, within the 500 ms Redis
    // timeout of the test store (plus the PostgreSQL read).
    for i in 0..3 {
        let started = std::time::Instant::now();
        let c = creds(&app, uuid, &skey, T0.plus_millis(1_000 + i));
        assert!(s.authenticate(&c).await.unwrap().is_some());
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            started.elapsed()
        );
    }
    proxy.set(ProxyMode::Pass);
}

#[tokio::test]
async fn the_open_id_index_follows_its_session_out() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxidx").await;
    let url = backends::redis_url();
    let index = |open_id: &str| format!("{prefix}o:{{{}:{open_id}}}", app.id);
    let indexed = |open_id: &str| redis_cli(&url, &["GET", &index(open_id)]).trim().to_owned();
    // Logout, revoke, revoke by user: each removes the index entry.
    let (n, k) = login(&app, "o-out", None, T0);
    let a = s.upsert_session(n).await.unwrap().uuid;
    assert_eq!(indexed("o-out"), a.to_string());
    assert!(s.logout(&creds(&app, a, &k, T0)).await.unwrap());
    assert_eq!(indexed("o-out"), "");
    let (n, _) = login(&app, "o-rev", None, T0);
    let b = s.upsert_session(n).await.unwrap().uuid;
    assert!(s.revoke(b).await.unwrap());
    assert_eq!(indexed("o-rev"), "");
    let (n, _) = login(&app, "o-user", None, T0);
    s.upsert_session(n).await.unwrap();
    assert!(s.revoke_user(app.id, "o-user").await.unwrap());
    assert_eq!(indexed("o-user"), "");
    // Deleting the app removes its users' entries.
    let (n, _) = login(&app, "o-app", None, T0);
    s.upsert_session(n).await.unwrap();
    assert_ne!(indexed("o-app"), "");
    s.delete_app(app.id).await.unwrap();
    assert_eq!(indexed("o-app"), "");
}

#[tokio::test]
async fn sessions_in_the_old_string_layout_survive_the_upgrade() {
    // A deployment upgraded in place has sessions written by the previous
    // version: one string per session. The first auth of each drops it and
    // reads the session through from PostgreSQL; it then lives on as a hash.
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxold").await;
    let url = backends::redis_url();
    let mut sessions = Vec::new();
    for i in 0..5 {
        let (n, k) = login(&app, &format!("o-old-{i}"), None, T0);
        let uuid = s.upsert_session(n).await.unwrap().uuid;
        let key = format!("{prefix}s:{{{uuid}}}");
        // What the previous version wrote: 'S', generation, app, times,
        // the skey hash, the profile (layout of commit 27d6981).
        let mut old = vec![b'S'];
        old.extend_from_slice(&1i64.to_le_bytes());
        old.extend_from_slice(&app.id.to_le_bytes());
        old.extend_from_slice(&T0.0.to_le_bytes());
        old.extend_from_slice(&T0.0.to_le_bytes());
        old.extend_from_slice(&T0.0.to_le_bytes());
        old.extend_from_slice(&k.hash().0);
        old.extend_from_slice(&5u16.to_le_bytes());
        old.extend_from_slice(format!("o-o-{i}").as_bytes());
        old.extend_from_slice(&u16::MAX.to_le_bytes());
        let hex: String = old.iter().map(|b| format!("\\x{b:02x}")).collect();
        // redis-cli unescapes "\xNN" inside double quotes.
        let set = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "redis-cli -u '{url}' SET '{key}' \"{hex}\" PX 3600000"
            ))
            .output()
            .unwrap();
        assert!(set.status.success());
        assert_eq!(redis_cli(&url, &["TYPE", &key]).trim(), "string");
        sessions.push((uuid, k, key));
    }
    for (uuid, k, key) in &sessions {
        let c = creds(&app, *uuid, k, T0.plus_millis(1_000));
        assert!(
            s.authenticate(&c).await.unwrap().is_some(),
            "kept across the upgrade"
        );
        assert_eq!(redis_cli(&url, &["TYPE", key]).trim(), "hash", "rewritten");
        let c = creds(&app, *uuid, k, T0.plus_millis(2_000));
        assert!(
            s.authenticate(&c).await.unwrap().is_some(),
            "and served from Redis"
        );
    }
    // A wrong skey is still refused, old layout or not.
    let (uuid, _, key) = &sessions[0];
    redis_cli(&url, &["DEL", key]);
    let wrong = wafer::domain::skey::Skey::mint().unwrap();
    assert!(
        s.authenticate(&creds(&app, *uuid, &wrong, T0.plus_millis(3_000)))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_default_granularity_is_a_share_of_the_apps_session() {
    // Apps of the contract have one-hour sessions: 1% is 36 s.
    wafer_testkit::require_servers!();
    let prefix = backends::fresh_prefix();
    let db = backends::fresh_database().await;
    let every = wafer::store::tiered::TieredSettings {
        visit: wafer::store::visit_granularity::VisitGranularity::DEFAULT,
        // No background flush: the test reads what is pending.
        flush_every: Duration::from_secs(3600),
        // Every auth to Redis (the near cache's slides: near_cache.rs).
        near: None,
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&backends::redis_url(), &db, &prefix, every).await;
    let app = app_in(&s, "wxshare").await;
    assert_eq!(app.session_duration, 3600);
    let (n, skey) = login(&app, "o-share", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let auth_at = |ms: i64| {
        let c = creds(&app, uuid, &skey, T0.plus_millis(ms));
        let s = s.clone();
        async move { s.authenticate(&c).await.unwrap().is_some() }
    };
    assert!(auth_at(35_000).await);
    assert_eq!(s.pending_visits(), 0, "35 s after the login: not due");
    assert!(auth_at(36_500).await);
    assert_eq!(s.pending_visits(), 1, "36 s after the last write: due");
}

#[tokio::test]
async fn wafer_reads_the_hash_encoding_setting_it_warns_about() {
    wafer_testkit::require_servers!();
    let redis = PrivateRedis::start();
    let r = wafer::store::redis::Redis::connect(&redis.url(), "w:", 1, Duration::from_millis(500))
        .unwrap();
    assert!(r.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(r.hash_listpack_value().await, Some(64), "Redis' default");
    redis.cli(&["CONFIG", "SET", "hash-max-listpack-value", "512"]);
    assert_eq!(r.hash_listpack_value().await, Some(512));
}

/// Redis' `auth.lua` is the one copy of the lifetime rule outside the
/// domain (`domain/lifetime.rs`); the two agree on every boundary of both
/// limits: one millisecond before, at, and after each.
#[tokio::test]
async fn redis_and_the_domain_agree_on_every_lifetime_boundary() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let s = backends::tiered_at(&backends::redis_url(), &db, &prefix).await;
    let app = app_in(&s, "wxlife").await;
    let (short, long) = (60_000, 86_400_000);
    // Sliding limit alone, then the absolute one alone.
    let cases = [
        wafer::domain::lifetime::Limits {
            login_ms: long,
            session_ms: short,
        },
        wafer::domain::lifetime::Limits {
            login_ms: short,
            session_ms: long,
        },
    ];
    let mut checked = 0;
    for (i, limits) in cases.into_iter().enumerate() {
        for d in [short - 1, short, short + 1] {
            // A fresh session each time: an accepted auth slides it.
            let (n, skey) = login(&app, &format!("o-life-{i}-{d}"), None, T0);
            let uuid = s.upsert_session(n).await.unwrap().uuid;
            // Redis answers, not a read-through from PostgreSQL.
            let key = format!("{prefix}s:{{{uuid}}}");
            let held = redis_cli(&backends::redis_url(), &["HEXISTS", &key, "skey_sha256"]);
            assert_eq!(held.trim(), "1", "the session is not in Redis");
            let now = T0.plus_millis(d);
            let mut c = creds(&app, uuid, &skey, now);
            c.limits = limits;
            let redis = s.authenticate(&c).await.unwrap().is_some();
            let domain = limits.alive(T0, T0, now);
            assert_eq!(
                redis, domain,
                "{limits:?} at {d} ms after login: Redis says {redis}, the domain {domain}"
            );
            checked += usize::from(domain);
        }
    }
    // One millisecond before each limit is alive, at and after it is not.
    assert_eq!(checked, 2);
}
