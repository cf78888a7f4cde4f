//! The near cache in the production shape: repeated auths answered in
//! process, a change made through any instance refused by every other in
//! milliseconds, slides held back without any session expiring early, and
//! nothing stale accepted when Redis goes away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;
use wafer::clock::{Clock, SystemClock};
use wafer::domain::app::App;
use wafer::domain::session::Credentials;
use wafer::domain::skey::Skey;
use wafer::store::{AppStore, SessionStore, TieredStore};
use wafer_testkit::backends::{self, PrivateRedis};
use wafer_testkit::spawn_tiered_with;

use crate::contract::{T0, creds, login, new_app};

/// The value of the series `series` (name and labels as rendered), or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

const HITS: &str = r#"wafer_near_cache_hits_total{answer="accepted"}"#;
const REDIS_AUTHS: &str = r#"wafer_store_operations_total{backend="redis",op="auth",result="ok"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_auths_are_answered_in_process_unless_it_is_off() {
    wafer_testkit::require_servers!();
    for on in [true, false] {
        let a = spawn_tiered_with(|s| s.redis.near_cache = on).await;
        let id = a.create_app("wxnear").await;
        let (uuid, skey) = a.login(id, "amy.1").await;
        for _ in 0..10 {
            assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
        }
        assert_eq!(a.auth(id, &uuid, "wrong").await.status, 401);
        let m = a.metrics().await;
        let (hits, asked) = (sample(&m, HITS), sample(&m, REDIS_AUTHS));
        if on {
            // The first auth fills the copy; the rest need no round trip.
            // (A fetch-again after the first auth's own write may add one.)
            assert!(hits >= 8.0 && asked <= 3.0, "hits {hits}, redis {asked}");
            assert!(sample(&m, r#"wafer_near_cache_hits_total{answer="refused"}"#) >= 1.0);
            // One session used: one copy held (the gauge is sampled for
            // the scrape).
            assert_eq!(sample(&m, "wafer_near_cache_entries"), 1.0);
        } else {
            assert_eq!((hits, asked), (0.0, 11.0), "off: every auth asks Redis");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_own_slides_cost_the_cache_no_copy() {
    wafer_testkit::require_servers!();
    // Slides every 100 ms: an auth every 20 ms for 1.5 s writes about 15.
    let a = spawn_tiered_with(|s| {
        s.redis.near_cache_slide =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_millis(100));
    })
    .await;
    let id = a.create_app("wxecho").await;
    let (uuid, skey) = a.login(id, "eve.1").await;
    assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = a.metrics().await;
    let until = Instant::now() + Duration::from_millis(1_500);
    // wafer's clock keeps pace with Redis' (which expires the keys).
    let mut last = Instant::now();
    while Instant::now() < until {
        assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.clock.advance(last.elapsed());
        last = Instant::now();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = a.metrics().await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    let slides = moved(r#"wafer_near_cache_slides_total{result="ok"}"#);
    assert!(slides >= 5.0, "slides were written: {slides}");
    // A slide writes the visit key, which the cache does not track: no
    // copy dropped, nothing fetched again from Redis.
    let dropped = moved("wafer_near_cache_invalidations_total");
    assert_eq!(
        dropped, 0.0,
        "{slides} slides dropped the copy {dropped} times"
    );
    let fetched = moved(r#"wafer_store_operations_total{backend="redis",op="peek",result="ok"}"#)
        + moved(REDIS_AUTHS);
    assert_eq!(
        fetched, 0.0,
        "{slides} slides cost {fetched} reads of Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_is_the_auth_in_redis_and_leaves_no_slide_to_write() {
    wafer_testkit::require_servers!();
    // A copy made for an auth: Redis wrote that auth's visit as it answered
    // (as without the cache), so the copy has nothing to slide. A fill that
    // only read left a slide for every copy, a second Redis call each, pure
    // cost for a copy evicted before its next use.
    let a = spawn_tiered_with(|s| {
        s.redis.near_cache_slide =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_millis(100));
    })
    .await;
    let id = a.create_app("wxfill").await;
    let mut sessions = Vec::new();
    for i in 0..10 {
        sessions.push(a.login(id, &format!("fay{i}.1")).await);
    }
    // Past every login's own write, on wafer's clock and Redis'.
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.clock.advance(Duration::from_millis(50));
    let before = a.metrics().await;
    for (uuid, skey) in &sessions {
        assert_eq!(a.auth(id, uuid, skey).await.status, 200);
    }
    let filled_at = a.clock.now().0;
    // Past one and a half slide intervals and a writer round.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = a.metrics().await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(moved(REDIS_AUTHS), 10.0, "one Redis auth per session");
    let slides = moved(r#"wafer_near_cache_slides_total{result="ok"}"#);
    assert_eq!(slides, 0.0, "the fills left {slides} slides to write");
    // Each session's visit is in Redis' visit key, and each copy answers.
    let prefix = a.redis_prefix().expect("tiered").to_owned();
    for (uuid, skey) in &sessions {
        let key = format!("{prefix}v:{{{uuid}}}");
        let visited: i64 = cli(&backends::redis_url(), &["HGET", &key, "visited"])
            .trim()
            .parse()
            .unwrap_or(0);
        assert_eq!(visited, filled_at, "{uuid}: the fill's visit in Redis");
        assert_eq!(a.auth(id, uuid, skey).await.status, 200);
    }
    let hits = sample(&a.metrics().await, HITS) - sample(&after, HITS);
    assert_eq!(hits, 10.0, "every copy was kept");
}

/// Two instances on one Redis and one PostgreSQL (and the guards that
/// clean both up).
struct Pair {
    a: Arc<TieredStore>,
    b: Arc<TieredStore>,
    _guards: (backends::TestDb, backends::TestPrefix),
}

/// Two instances whose slides come at production intervals (1% of the
/// session: 36 s for `new_app`'s hour): a copy that goes away within a test
/// was dropped by Redis' push, not by the instance's own slide finding the
/// session gone (with the test suite's 100 ms slides, that alone refuses a
/// revoked session within ~160 ms).
async fn pair_on(redis_url: &str) -> Pair {
    let production = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings::DEFAULT),
        ..backends::test_settings()
    };
    pair_with(redis_url, production).await
}

/// [`pair_on`] with background timings of the test's choosing.
async fn pair_with(redis_url: &str, every: wafer::store::tiered::TieredSettings) -> Pair {
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let a = backends::tiered_with(redis_url, &db, &prefix, every).await;
    let b = backends::tiered_with(redis_url, &db, &prefix, every).await;
    Pair {
        a,
        b,
        _guards: (db, prefix),
    }
}

/// An app made through `p.a` that `p.b` knows.
async fn shared_app(p: &Pair, appid: &str) -> Arc<App> {
    let app = p.a.create_app(new_app(appid), T0).await.unwrap();
    p.b.refresh_apps().await;
    app
}

/// Whether `s` accepts `c`.
async fn accepts(s: &TieredStore, c: &Credentials) -> bool {
    s.authenticate(c).await.unwrap().is_some()
}

/// Makes `s` hold a copy of `c`'s session (an auth fills it; a change the
/// auth wrote itself may drop it for a moment).
async fn cached(s: &TieredStore, c: &Credentials) {
    let near = s.near_cache().expect("the near cache is on");
    for _ in 0..1_000 {
        assert!(accepts(s, c).await);
        if near.holds(c.uuid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the near cache never held {}", c.uuid);
}

/// How soon another instance refuses a change, at most. The docs promise
/// about a millisecond (RELIABILITY.md: 0.43 ms median, 1.78 ms p99, 19 ms
/// at most over 5,000 changes, release build); this leaves room for a debug
/// build on a shared 2-core machine running other tests, and stays far
/// below any slide interval (1 s at the least, 36 s in these tests), so
/// only Redis' push can meet it.
pub(crate) const SEEN_WITHIN: Duration = Duration::from_millis(200);

/// Time from now until `s` refuses `c` (at most [`SEEN_WITHIN`], then a
/// stale accept is reported); it then keeps refusing.
pub(crate) async fn refused_after(s: &TieredStore, c: &Credentials) -> Duration {
    let started = Instant::now();
    while accepts(s, c).await {
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "a stale session was still accepted after {:?}",
            started.elapsed()
        );
        tokio::task::yield_now().await;
    }
    let took = started.elapsed();
    for _ in 0..3 {
        assert!(!accepts(s, c).await, "accepted again after a refusal");
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_is_refused_by_the_other() {
    wafer_testkit::require_servers!();
    let p = pair_on(&backends::redis_url()).await;
    let app = shared_app(&p, "wxchange").await;
    let at = |ms| T0.plus_millis(ms);
    let session = |open_id: &'static str| {
        let p = &p;
        let app = &app;
        async move {
            let (n, skey) = login(app, open_id, None, T0);
            let uuid = p.a.upsert_session(n).await.unwrap().uuid;
            let c = creds(app, uuid, &skey, at(1_000));
            cached(&p.b, &c).await;
            (uuid, skey, c)
        }
    };

    // A logout.
    let (_, _, c) = session("o-logout").await;
    assert!(p.a.logout(&c).await.unwrap());
    refused_after(&p.b, &c).await;

    // An admin revoke.
    let (uuid, _, c) = session("o-revoke").await;
    assert!(p.a.revoke(uuid).await.unwrap());
    refused_after(&p.b, &c).await;

    // A re-login: the old skey is refused, the new one accepted.
    let (uuid, _, old) = session("o-relogin").await;
    let (n, skey) = login(&app, "o-relogin", None, at(2_000));
    assert_eq!(p.a.upsert_session(n).await.unwrap().uuid, uuid);
    refused_after(&p.b, &old).await;
    assert!(accepts(&p.b, &creds(&app, uuid, &skey, at(3_000))).await);

    // A phone number stored through A is answered by B.
    let (_, _, c) = session("o-phone").await;
    assert!(p.a.set_phone(&c, "13800138000").await.unwrap());
    let started = Instant::now();
    loop {
        let profile = p.b.authenticate(&c).await.unwrap().expect("accepted");
        if profile.phone_number.as_deref() == Some("13800138000") {
            break;
        }
        assert!(
            started.elapsed() < SEEN_WITHIN,
            "B kept the old profile for {:?}",
            started.elapsed()
        );
        tokio::task::yield_now().await;
    }

    // The app deleted: its sessions are refused.
    let (_, _, c) = session("o-app").await;
    p.a.delete_app(app.id).await.unwrap();
    refused_after(&p.b, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slides_held_back_keep_the_session_alive_everywhere() {
    wafer_testkit::require_servers!();
    // Real time: Redis expires keys by its own clock. Sessions of 2 s,
    // slides written every 100 ms (the test settings).
    let p = pair_with(&backends::redis_url(), backends::test_settings()).await;
    let mut short = new_app("wxslide");
    short.session_duration = 2;
    let app = p.a.create_app(short, T0).await.unwrap();
    p.b.refresh_apps().await;
    let now = || SystemClock.now();
    let (mut n, skey) = login(&app, "o-slide", None, now());
    n.now = now();
    let uuid = p.a.upsert_session(n).await.unwrap().uuid;
    cached(&p.a, &creds(&app, uuid, &skey, now())).await;
    // Used on A alone for 3 s, answered there: Redis' copy (a 2 s TTL at
    // login) lives on only through the slides A writes.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(accepts(&p.a, &creds(&app, uuid, &skey, now())).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Served from A's cache (a change of the hash, extended once per
    // quarter session, drops the copy for a moment: it comes back).
    cached(&p.a, &creds(&app, uuid, &skey, now())).await;
    let key = format!("{}s:{{{uuid}}}", p._guards.1.as_str());
    let ttl = std::process::Command::new("redis-cli")
        .args(["-u", &backends::redis_url(), "PTTL", &key])
        .output()
        .unwrap();
    let ttl: i64 = String::from_utf8_lossy(&ttl.stdout).trim().parse().unwrap();
    assert!(ttl > 1_000, "Redis keeps the session: {ttl} ms left");
    // B has never seen it: it asks Redis, which accepts.
    assert!(!p.b.near_cache().unwrap().holds(uuid));
    assert!(accepts(&p.b, &creds(&app, uuid, &skey, now())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_empties_the_cache_and_nothing_stale_is_accepted() {
    wafer_testkit::require_servers!();
    let mut redis = PrivateRedis::start();
    let p = pair_on(&redis.url()).await;
    let app = shared_app(&p, "wxlost").await;
    let (n, skey) = login(&app, "o-lost", None, T0);
    let uuid = p.a.upsert_session(n).await.unwrap().uuid;
    let c = creds(&app, uuid, &skey, T0.plus_millis(1_000));
    cached(&p.b, &c).await;

    // Redis dies: B stops serving its copies at once.
    redis.stop();
    let near = p.b.near_cache().unwrap();
    let started = Instant::now();
    while near.is_live() {
        assert!(started.elapsed() < Duration::from_secs(1), "still serving");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!near.holds(uuid), "emptied");
    // Auth goes on from PostgreSQL, and sees a revoke made meanwhile.
    assert!(accepts(&p.b, &c).await);
    assert!(p.a.revoke(uuid).await.unwrap());
    assert!(!accepts(&p.b, &c).await);

    // Redis back (empty): tracking resumes, and still nothing stale.
    redis.restart();
    assert!(p.b.wait_near_live(Duration::from_secs(10)).await);
    assert!(!accepts(&p.b, &c).await);
    let (n, skey) = login(&app, "o-back", None, T0);
    let back = p.a.upsert_session(n).await.unwrap().uuid;
    cached(&p.b, &creds(&app, back, &skey, T0.plus_millis(1_000))).await;
}

/// Bounds of the revocation latency's median and p99 under load: the docs
/// give 0.43 ms and 1.78 ms (release build); a debug build on a busy
/// machine gets ten times that and more, but nowhere near a slide.
const P50_WITHIN: Duration = Duration::from_millis(10);
const P99_WITHIN: Duration = Duration::from_millis(50);

/// A percentile of sorted `d`.
fn pct(d: &[Duration], p: f64) -> Duration {
    d[((d.len() as f64 * p).ceil() as usize).clamp(1, d.len()) - 1]
}

/// How fast a revoke or re-login through one instance is refused by
/// another whose near cache held the session, under auth load. The figures
/// the docs give are measured by `loadtest/run.sh` in a release build; here
/// (a debug build beside other tests) the distribution is printed and held
/// to bounds far above them and far below the slide interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_latency_under_auth_load() {
    wafer_testkit::require_servers!();
    let n: usize = std::env::var("WAFER_TEST_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let p = pair_on(&backends::redis_url()).await;
    let app = shared_app(&p, "wxlatency").await;
    // Load: B answers auths of 50 other sessions, 25 at a time per task
    // every millisecond.
    let mut others = Vec::new();
    for i in 0..50 {
        let (s, skey) = login(&app, &format!("o-load-{i}"), None, T0);
        let uuid = p.a.upsert_session(s).await.unwrap().uuid;
        others.push(creds(&app, uuid, &skey, T0.plus_millis(1_000)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for part in others.chunks(25) {
        let (b, part, stop) = (p.b.clone(), part.to_vec(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for c in &part {
                    assert!(b.authenticate(c).await.unwrap().is_some());
                    done += 1;
                }
                // Steady load, not a busy loop: the suite runs beside it.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            done
        }));
    }

    let mut revoked = Vec::with_capacity(n);
    let mut relogged = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let open_id = format!("o-{i}");
        let (s, skey) = login(&app, &open_id, None, T0);
        let uuid: Uuid = p.a.upsert_session(s).await.unwrap().uuid;
        let c = creds(&app, uuid, &skey, T0.plus_millis(1_000));
        cached(&p.b, &c).await;
        if i % 2 == 0 {
            assert!(p.a.revoke(uuid).await.unwrap());
            revoked.push(refused_after(&p.b, &c).await);
        } else {
            let (s, _): (_, Skey) = login(&app, &open_id, None, T0.plus_millis(2_000));
            p.a.upsert_session(s).await.unwrap();
            relogged.push(refused_after(&p.b, &c).await);
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut auths = 0;
    for task in load {
        auths += task.await.unwrap();
    }
    let mut all: Vec<Duration> = revoked.iter().chain(&relogged).copied().collect();
    for d in [&mut all, &mut revoked, &mut relogged] {
        d.sort();
    }
    let line = |name: &str, d: &[Duration]| {
        println!(
            "{name:>9}: n={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
            d.len(),
            pct(d, 0.50),
            pct(d, 0.90),
            pct(d, 0.99),
            pct(d, 0.999),
            d[d.len() - 1]
        );
    };
    println!(
        "revocation latency (from the change's acknowledgement to the other instance's refusal), \
         {n} changes in {elapsed:?} under {auths} auths on the other instance:"
    );
    line("all", &all);
    line("revoke", &revoked);
    line("re-login", &relogged);
    assert!(auths > 0, "the load ran");
    // Each change was refused within SEEN_WITHIN (refused_after); most
    // within a few milliseconds, as Redis' push arrives.
    let (p50, p99) = (pct(&all, 0.50), pct(&all, 0.99));
    assert!(p50 <= P50_WITHIN, "median {p50:?} over {P50_WITHIN:?}");
    assert!(p99 <= P99_WITHIN, "p99 {p99:?} over {P99_WITHIN:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_a_held_back_visit_reaches_postgres() {
    wafer_testkit::require_servers!();
    // Slides held for an hour: none is written during the test.
    let mut redis = PrivateRedis::start();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let every = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings {
            slide: wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(
                3600,
            )),
            ..wafer::store::near::NearSettings::DEFAULT
        }),
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&redis.url(), &db, &prefix, every).await;
    let mut spec = new_app("wxheld");
    spec.session_duration = 36_000; // ten slide intervals
    let app = s.create_app(spec, T0).await.unwrap();
    let (n, skey) = login(&app, "o-held", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    // Accepted at T0 + 30,000 s: the visit is held in the near cache only.
    assert!(accepts(&s, &creds(&app, uuid, &skey, T0.plus_millis(30_000_000))).await);
    redis.stop();
    let near = s.near_cache().unwrap();
    let started = Instant::now();
    while near.is_live() {
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // At T0 + 40,000 s PostgreSQL's own copy (T0) is past the sliding
    // limit; the visit held back keeps the session alive.
    assert!(accepts(&s, &creds(&app, uuid, &skey, T0.plus_millis(40_000_000))).await);
    // And past that visit's limit it is refused.
    assert!(!accepts(&s, &creds(&app, uuid, &skey, T0.plus_millis(80_000_000))).await);
}

/// A store on `redis_url` whose slides are held for `slide` (none is
/// written during a test unless it forces one), with its guards. Sessions
/// of ten slides or more are served from its near cache.
async fn held_store(
    redis_url: &str,
    slide: Duration,
) -> (Arc<TieredStore>, backends::TestDb, backends::TestPrefix) {
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let every = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings {
            slide: wafer::store::visit_granularity::VisitGranularity::Every(slide),
            ..wafer::store::near::NearSettings::DEFAULT
        }),
        ..backends::test_settings()
    };
    let s = backends::tiered_with(redis_url, &db, &prefix, every).await;
    (s, db, prefix)
}

/// Runs `redis-cli` with `args` against `url`, answering its output.
fn cli(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_auth_near_the_end_of_the_idle_window_is_never_lost() {
    wafer_testkit::require_servers!();
    // Slides due 2-3 s after an auth; sessions of 30 s.
    let url = backends::redis_url();
    let (s, _db, prefix) = held_store(&url, Duration::from_secs(2)).await;
    let mut spec = new_app("wxlone");
    spec.session_duration = 30;
    let app = s.create_app(spec, T0).await.unwrap();
    let login_at = SystemClock.now();
    let (mut n, skey) = login(&app, "o-lone", None, login_at);
    n.now = login_at;
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    // Redis' copy has 1.5 s left, as at the end of its idle window: the
    // auth below comes 28.5 s into the 30 s window.
    let key = format!("{}s:{{{uuid}}}", prefix.as_str());
    let visit = format!("{}v:{{{uuid}}}", prefix.as_str());
    assert_eq!(cli(&url, &["PEXPIRE", &key, "1500"]), "1");
    assert_eq!(cli(&url, &["PEXPIRE", &visit, "1500"]), "1");
    let at = login_at.plus_millis(28_500);
    assert!(accepts(&s, &creds(&app, uuid, &skey, at)).await);
    // Without the visit written at once, the key would be gone by now and
    // the slide (due in 2-3 s) would find nothing.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    for k in [&key, &visit] {
        let ttl: i64 = cli(&url, &["PTTL", k]).parse().unwrap();
        assert!(ttl > 20_000, "Redis lost the session: PTTL {ttl} of {k}");
    }
    // The user comes back 25 s after that auth (55 s after login): alive.
    let back = at.plus_millis(25_000);
    assert!(accepts(&s, &creds(&app, uuid, &skey, back)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_visits_survive_a_redis_that_comes_back_empty() {
    wafer_testkit::require_servers!();
    let mut redis = PrivateRedis::start();
    let (s, _db, _prefix) = held_store(&redis.url(), Duration::from_secs(2)).await;
    let mut spec = new_app("wxempty");
    spec.session_duration = 30;
    let app = s.create_app(spec, T0).await.unwrap();
    let (n, skey) = login(&app, "o-empty", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let at = |ms| creds(&app, uuid, &skey, T0.plus_millis(ms));
    cached(&s, &at(1_000)).await;
    // Seen at 20 s, held back: only this instance knows that visit.
    assert!(accepts(&s, &at(20_000)).await);
    // Redis restarts empty before the slide is due.
    redis.restart();
    assert!(s.wait_near_live(Duration::from_secs(10)).await);
    // The slide comes due, finds nothing, and hands its visit on.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    s.flush_visits().await;
    // At 45 s the session lives only by the 20 s visit.
    assert!(
        accepts(&s, &at(45_000)).await,
        "the held-back visit was lost with Redis' keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_auths_leave_no_ticket_and_no_slide_marked() {
    wafer_testkit::require_servers!();
    let (s, _db, _prefix) = held_store(&backends::redis_url(), Duration::from_secs(60)).await;
    let near = s.near_cache().unwrap();
    let app = s.create_app(new_app("wxcancel"), T0).await.unwrap();
    // Forged ids, each request dropped while Redis is being asked (a
    // client that went away): the first poll takes a ticket and sends.
    for _ in 0..2_000 {
        let c = creds(
            &app,
            Uuid::new_v4(),
            &Skey::mint().unwrap(),
            T0.plus_millis(1),
        );
        let _ = tokio::time::timeout(Duration::ZERO, s.authenticate(&c)).await;
    }
    assert_eq!(near.fills_in_flight(), 0, "cancelled fills kept tickets");

    // A request cancelled while it writes its session's held-back slide
    // (before asking Redis about it) leaves nothing marked, and the slide
    // queued again.
    let (n, skey) = login(&app, "o-cancel", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let at = |ms| creds(&app, uuid, &skey, T0.plus_millis(ms));
    cached(&s, &at(1_000)).await;
    // A hit leaves a slide pending (the login's own write, pushed back,
    // may drop the first copy once: it is fetched again).
    let mut ms = 2_000;
    while near.slide_backlog().0 != 1 {
        assert!(ms < 3_000, "no slide pending");
        assert!(accepts(&s, &at(ms)).await);
        ms += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Past the copy's own expiry: asked of Redis, after its slide.
    let late = at(40 * 86_400_000);
    let _ = tokio::time::timeout(Duration::ZERO, s.authenticate(&late)).await;
    assert_eq!(s.slides_being_written(), 0, "a session stays marked");
    // And a later request finds it and writes it before asking Redis.
    assert!(accepts(&s, &at(4_000)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_held_slides_do_not_grow_with_the_auth_rate() {
    wafer_testkit::require_servers!();
    let mut redis = PrivateRedis::start();
    let (s, _db, _prefix) = held_store(&redis.url(), Duration::from_secs(60)).await;
    let near = s.near_cache().unwrap();
    let app = s.create_app(new_app("wxaway"), T0).await.unwrap();
    let mut sessions = Vec::new();
    for i in 0..50 {
        let (n, skey) = login(&app, &format!("o-away-{i}"), None, T0);
        let uuid = s.upsert_session(n).await.unwrap().uuid;
        let c = creds(&app, uuid, &skey, T0.plus_millis(1_000));
        cached(&s, &c).await;
        assert!(accepts(&s, &creds(&app, uuid, &skey, T0.plus_millis(2_000))).await);
        sessions.push((uuid, skey));
    }
    assert_eq!(near.slide_backlog().0, 50);
    redis.stop();
    let started = Instant::now();
    while near.is_live() {
        assert!(started.elapsed() < Duration::from_secs(2), "still serving");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // 20,000 auths served from PostgreSQL: each session's slide stays
    // queued once, in one place.
    for round in 0..400 {
        for (uuid, skey) in &sessions {
            let c = creds(&app, *uuid, skey, T0.plus_millis(3_000 + round));
            assert!(accepts(&s, &c).await);
        }
    }
    let (pending, places) = near.slide_backlog();
    assert_eq!(pending, 50);
    assert!(
        places <= 2 * pending + 1_024,
        "{places} places for {pending} slides"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_change_is_seen_by_its_own_instance_at_once() {
    wafer_testkit::require_servers!();
    let redis = PrivateRedis::start();
    let (s, _db, _prefix) = held_store(&redis.url(), Duration::from_secs(60)).await;
    let app = s.create_app(new_app("wxown"), T0).await.unwrap();
    let near = s.near_cache().unwrap();
    let session = |open_id: &'static str| {
        let s = &s;
        let app = &app;
        async move {
            let (n, skey) = login(app, open_id, None, T0);
            let uuid = s.upsert_session(n).await.unwrap().uuid;
            let c = creds(app, uuid, &skey, T0.plus_millis(1_000));
            cached(s, &c).await;
            c
        }
    };
    // Logout, revoke, re-login: the copy is gone when the call returns.
    let c = session("o-own-logout").await;
    assert!(s.logout(&c).await.unwrap());
    assert!(!near.holds(c.uuid));
    assert!(!accepts(&s, &c).await);
    let c = session("o-own-revoke").await;
    assert!(s.revoke(c.uuid).await.unwrap());
    assert!(!near.holds(c.uuid));
    let c = session("o-own-relogin").await;
    let (n, skey) = login(&app, "o-own-relogin", None, T0.plus_millis(2_000));
    assert_eq!(s.upsert_session(n).await.unwrap().uuid, c.uuid);
    assert!(accepts(&s, &creds(&app, c.uuid, &skey, T0.plus_millis(3_000))).await);
    assert!(!accepts(&s, &c).await);

    // Redis takes no writes (tracking still up): the revoke's tombstone is
    // not written, so this instance stops serving copies.
    let c = session("o-own-paused").await;
    assert!(
        redis
            .cli(&["CLIENT", "PAUSE", "2000", "WRITE"])
            .contains("OK")
    );
    assert!(s.revoke(c.uuid).await.unwrap());
    assert!(!near.is_live(), "serving copies it cannot keep true");
    assert!(!accepts(&s, &c).await, "the revoked session accepted");
}
/// A primary joins the cluster and takes slots while B answers auths: B's
/// copies of the moved sessions come from the new primary, and a revoke or
/// re-login there reaches them (B tracks the new primary before it serves
/// copies from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reshard_under_load_loses_no_change() {
    wafer_testkit::require_servers!();
    let mut cluster = backends::RedisCluster::start();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    // Slides held for a minute: only invalidations keep the copies true.
    let every = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings {
            slide: wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(
                60,
            )),
            ..wafer::store::near::NearSettings::DEFAULT
        }),
        ..backends::test_settings()
    };
    let a = backends::tiered_with(&cluster.url(), &db, &prefix, every).await;
    let b = backends::tiered_with(&cluster.url(), &db, &prefix, every).await;
    let app = a.create_app(new_app("wxreshard"), T0).await.unwrap();
    b.refresh_apps().await;
    let mut sessions = Vec::new();
    for i in 0..300 {
        let (n, skey) = login(&app, &format!("o-{i}"), None, T0);
        let uuid = a.upsert_session(n).await.unwrap().uuid;
        sessions.push((
            format!("o-{i}"),
            creds(&app, uuid, &skey, T0.plus_millis(1_000)),
        ));
    }
    // Auth load on B over every session while the cluster reshards.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (b, stop) = (b.clone(), stop.clone());
        let all: Vec<Credentials> = sessions.iter().map(|(_, c)| *c).collect();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for c in &all {
                    assert!(b.authenticate(c).await.unwrap().is_some());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let from = cluster.ports[0];
    let (cluster, to) = tokio::task::spawn_blocking(move || {
        let to = cluster.add_primary();
        cluster.move_slots(from, to, 2_000);
        (cluster, to)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let moved: Vec<&(String, Credentials)> = sessions
        .iter()
        .filter(|(_, c)| cluster.holds(to, &format!("{}s:{{{}}}", prefix.as_str(), c.uuid)))
        .collect();
    assert!(moved.len() >= 10, "{} sessions moved", moved.len());
    assert!(b.wait_near_live(Duration::from_secs(5)).await);
    // B holds copies of the moved sessions (from their new primary).
    for (_, c) in &moved {
        cached(&b, c).await;
    }
    // Revoked or logged in again through A: B refuses the old, accepts
    // the new.
    for (i, (open_id, c)) in moved.iter().enumerate() {
        if i % 2 == 0 {
            assert!(a.revoke(c.uuid).await.unwrap());
            refused_after(&b, c).await;
        } else {
            let (n, skey) = login(&app, open_id, None, T0.plus_millis(2_000));
            assert_eq!(a.upsert_session(n).await.unwrap().uuid, c.uuid);
            refused_after(&b, c).await;
            let new = creds(&app, c.uuid, &skey, T0.plus_millis(3_000));
            assert!(accepts(&b, &new).await, "the new skey refused");
        }
    }
}

/// Requests cancelled by their clients while Redis is slow (HTTP/1: the
/// connection closed; HTTP/2: the stream reset) hold nothing once they are
/// gone: not the fill tickets of the forged ids they asked about (no
/// credentials needed to send them), and not the held-back slides they
/// were writing (a later auth of that session is answered at once, not
/// after a Redis timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reset_over_http_hold_nothing() {
    use tokio::io::AsyncWriteExt;
    wafer_testkit::require_servers!();
    const TICKETS: &str = "wafer_near_cache_fills_in_flight";
    const PENDING: &str = "wafer_near_cache_slides_pending";
    let redis = PrivateRedis::start();
    let url = redis.url();
    let timeout = Duration::from_secs(6);
    let a = spawn_tiered_with(|s| {
        s.redis.url = Some(url.as_str().into());
        s.redis.timeout = timeout;
        s.redis.near_cache_slide =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_secs(60));
    })
    .await;
    let id = a.create_app("wxreset").await;
    // Two sessions held, each with a slide held back.
    let mut held = Vec::new();
    for code in ["ann.1", "bob.1"] {
        let (uuid, skey) = a.login(id, code).await;
        held.push((uuid, skey));
    }
    let started = Instant::now();
    loop {
        // A visit later than the copy's last written one is held back.
        a.clock.advance(Duration::from_secs(1));
        for (uuid, skey) in &held {
            let r = a.auth(id, uuid, skey).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        if sample(&a.metrics().await, PENDING) >= 2.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no slide held back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Redis takes no writes (and so runs no script) for 4 s; tracking
    // stays provable, so the cache stays live.
    assert!(
        redis
            .cli(&["CLIENT", "PAUSE", "4000", "WRITE"])
            .contains("OK")
    );
    let paused = Instant::now();
    // Half a session on: the copies are behind, so each auth writes its
    // session's held-back slide first.
    a.clock.advance(Duration::from_secs(16 * 86_400));
    let body =
        |uuid: &str, skey: &str| format!(r#"{{"uuid":"{uuid}","skey":"{skey}","app_id":{id}}}"#);
    // HTTP/1: 50 forged ids and the first session, each on a connection
    // closed while it waits.
    let mut conns = Vec::new();
    let forged = || (Uuid::new_v4().to_string(), "f".repeat(64));
    let mut h1 = vec![held[0].clone()];
    h1.extend((0..50).map(|_| forged()));
    for (uuid, skey) in &h1 {
        let body = body(uuid, skey);
        let mut c = tokio::net::TcpStream::connect(a.addr).await.unwrap();
        let req = format!(
            "POST /mina/auth HTTP/1.1\r\nhost: wafer\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        c.write_all(req.as_bytes()).await.unwrap();
        conns.push(c);
    }
    // HTTP/2: 50 forged ids and the second session, on one connection,
    // each stream reset while it waits.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut streams = Vec::new();
    let mut h2_reqs = vec![held[1].clone()];
    h2_reqs.extend((0..50).map(|_| forged()));
    for (uuid, skey) in &h2_reqs {
        let req = h2
            .post(a.url("/mina/auth"))
            .header("content-type", "application/json")
            .body(body(uuid, skey));
        streams.push(tokio::spawn(req.send()));
    }
    // Every one of them waits on Redis, holding a ticket.
    let waiting = loop {
        let n = sample(&a.metrics().await, TICKETS);
        if n >= 100.0 {
            break n;
        }
        assert!(
            paused.elapsed() < Duration::from_millis(2_000),
            "{n} fills in flight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The clients go away; Redis is still paused.
    drop(conns);
    for s in &streams {
        s.abort();
    }
    loop {
        let n = sample(&a.metrics().await, TICKETS);
        if n == 0.0 {
            break;
        }
        assert!(
            paused.elapsed() < Duration::from_millis(3_500),
            "{n} of {waiting} fills still held after their requests were reset"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Redis back: both sessions answer at once, their visits kept.
    tokio::time::sleep(Duration::from_millis(4_200).saturating_sub(paused.elapsed())).await;
    for (uuid, skey) in &held {
        let asked = Instant::now();
        assert_eq!(a.auth(id, uuid, skey).await.status, 200);
        assert!(
            asked.elapsed() < timeout / 3,
            "an auth waited {:?} on a slide its cancelled request left marked",
            asked.elapsed()
        );
    }
}

/// A Redis that becomes a replica (a failover demoted it, and the
/// connection stayed) no longer sees the writes that matter: the cache
/// stops serving at the next heartbeat, with no write of its own needed to
/// notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_redis_is_not_trusted() {
    wafer_testkit::require_servers!();
    let redis = PrivateRedis::start();
    let primary = PrivateRedis::start();
    let (s, _db, _prefix) = held_store(&redis.url(), Duration::from_secs(60)).await;
    let near = s.near_cache().unwrap();
    let app = s.create_app(new_app("wxdemoted"), T0).await.unwrap();
    let (n, skey) = login(&app, "o-demoted", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    cached(&s, &creds(&app, uuid, &skey, T0.plus_millis(1_000))).await;
    let port = primary.url().rsplit(':').next().unwrap().to_owned();
    assert!(redis.cli(&["REPLICAOF", "127.0.0.1", &port]).contains("OK"));
    let started = Instant::now();
    while near.is_live() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still serving copies from a replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!near.holds(uuid));
    // And it stays dark: the connection may come back (a demotion can drop
    // it), and tracking turns on on a replica as well as on a primary.
    for _ in 0..100 {
        assert!(!near.is_live(), "serving again from a replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With Redis away, held-back slides are not sent round after round (the
/// Redis client would hold every one until it reconnects: memory growing
/// for as long as the outage lasts); they stay queued for Redis' return,
/// and are written then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_away_no_slide_is_sent() {
    wafer_testkit::require_servers!();
    const PENDING: &str = "wafer_near_cache_slides_pending";
    const FAILED: &str = "wafer_near_cache_slides_total{result=\"error\"}";
    let written = |m: &str| {
        sample(m, "wafer_near_cache_slides_total{result=\"ok\"}")
            + sample(m, "wafer_near_cache_slides_total{result=\"gone\"}")
    };
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let a = spawn_tiered_with(|s| {
        s.redis.url = Some(url.as_str().into());
        s.redis.near_cache_slide =
            wafer::store::visit_granularity::VisitGranularity::Every(Duration::from_millis(200));
    })
    .await;
    let id = a.create_app("wxaway").await;
    let (uuid, skey) = a.login(id, "away.1").await;
    for _ in 0..3 {
        a.clock.advance(Duration::from_secs(1));
        assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    }
    redis.stop();
    // An auth with Redis away (from PostgreSQL) leaves a visit pending.
    a.clock.advance(Duration::from_secs(1));
    assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    let m = a.metrics().await;
    let (pending, failed) = (sample(&m, PENDING), sample(&m, FAILED));
    assert!(pending >= 1.0, "no slide held back");
    // Ten writer rounds later: nothing sent, nothing dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = a.metrics().await;
    assert_eq!(
        sample(&m, FAILED),
        failed,
        "slides sent to a Redis that is away"
    );
    assert_eq!(sample(&m, PENDING), pending);
    // Redis back (empty): the slide goes out, and its visit is kept.
    let before = written(&m);
    redis.restart();
    let started = Instant::now();
    loop {
        let m = a.metrics().await;
        if sample(&m, PENDING) == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the held-back slide was never written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written(&a.metrics().await) > before, "no slide written");
    assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
}

/// Many more sessions in use than the cache holds, used evenly: filling
/// only churns it, so it steps aside (most auths go to Redis the usual way,
/// a sample looks the cache up and fills it) and every auth is still answered;
/// once the sessions in use fit again, it fills again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_only_churns_steps_aside_and_back() {
    use wafer::store::near::admission::WINDOW;
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let small = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings {
            max_entries: 64,
            ..wafer::store::near::NearSettings::DEFAULT
        }),
        ..backends::test_settings()
    };
    let s = backends::tiered_with(&backends::redis_url(), &db, &prefix, small).await;
    backends::wait_near_live(&s).await;
    let near = s.near_cache().unwrap();
    let app = s.create_app(new_app("wxchurn"), T0).await.unwrap();
    let mut all = Vec::new();
    for i in 0..1_000 {
        let (n, skey) = login(&app, &format!("o-churn-{i}"), None, T0);
        let uuid = s.upsert_session(n).await.unwrap().uuid;
        all.push(creds(&app, uuid, &skey, T0.plus_millis(1_000)));
    }
    // Round robin over 1,000 sessions with room for 64: two windows of
    // lookups, nearly all misses.
    let mut i = 0;
    let mut lookups = 0;
    while !near.is_aside() {
        assert!(
            lookups < 4 * WINDOW,
            "still filling after {lookups} lookups"
        );
        assert!(accepts(&s, &all[i % all.len()]).await);
        i += 1;
        lookups += 1;
    }
    // Aside, the cache is emptied, auths are answered all the same, and
    // none fills it.
    for c in all.iter().take(200) {
        assert!(accepts(&s, c).await);
    }
    assert!(all.iter().all(|c| !near.holds(c.uuid)));
    // Eight sessions in use: the shadow sees them fit, and it fills again.
    let hot = &all[..8];
    let mut lookups = 0u64;
    while near.is_aside() {
        assert!(lookups < 8 * WINDOW, "still aside after {lookups} lookups");
        assert!(accepts(&s, &hot[(lookups % 8) as usize]).await);
        lookups += 1;
    }
    // Back: every miss fills again.
    for c in hot {
        cached(&s, c).await;
    }
}
