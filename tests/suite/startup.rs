//! The production start-up path as an operator runs it: the `wafer` binary,
//! configured by its environment and flags, on Redis and PostgreSQL, stopped
//! by a real SIGTERM. Every other tiered test builds its settings in process
//! and stops the server with a call; this one covers what `main` adds (the
//! variables are read, the signal is heard) and what RELIABILITY.md promises
//! of a SIGTERM: wafer "stops accepting, drains in-flight requests (up to
//! 10 s), flushes sliding, exits".
//!
//! Unlike the other server tests, it fails (never skips) when Redis or
//! PostgreSQL does not answer: it is the one test of the shape production
//! runs in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wafer::domain::skey::SkeyHash;
use wafer_testkit::backends::{self, TestDb, TestPrefix};

const TOKEN: &str = "startup-admin-token-7c2e";
/// RELIABILITY.md: on SIGTERM in-flight requests get up to 10 s.
const DRAIN: Duration = Duration::from_secs(10);
/// A login whose WeChat call takes 3 s: in flight when the signal comes,
/// answered well within the drain.
const SLOW_CODE: &str = "slow-3000.1";

/// A `wafer serve` process of this test's, killed (if still running) and
/// its log removed on drop.
struct Wafer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Wafer {
    /// Starts `wafer serve` as production does: the stores and WeChat named
    /// by the environment, the address by a flag. No `WAFER_` variable of
    /// the test run reaches it except those set here.
    fn start(wechat: SocketAddr, db: &TestDb, prefix: &TestPrefix) -> Wafer {
        let addr = SocketAddr::from(([127, 0, 0, 1], backends::free_port()));
        let log = std::env::temp_dir().join(format!(
            "wafer-startup-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wafer"));
        cmd.args(["serve", "--listen", &addr.to_string()]);
        for (name, _) in std::env::vars() {
            if name.starts_with("WAFER_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("WAFER_REDIS_URL", backends::redis_url())
            .env("WAFER_REDIS_PREFIX", prefix.as_str())
            .env("WAFER_DATABASE_URL", db.as_str())
            .env("WAFER_DATABASE_POOL", "4")
            .env("WAFER_WECHAT_API_BASE", format!("http://{wechat}"))
            // Room for the slow login on a busy machine.
            .env("WAFER_WECHAT_TIMEOUT", "8s")
            .env("WAFER_ADMIN_TOKEN", TOKEN)
            // A visit is due for PostgreSQL a second after the last one ...
            .env("WAFER_VISIT_GRANULARITY", "1s")
            // ... but a near-cache hit's slide is held back for 10 minutes:
            // only the shutdown writes it (to Redis, then PostgreSQL).
            .env("WAFER_NEAR_CACHE_SLIDE", "10min")
            .env("WAFER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("the wafer binary starts");
        Wafer { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200; its body.
    async fn ready(&mut self, client: &reqwest::Client) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wafer exited at start ({status}):\n{}", self.log());
            }
            match client.get(self.url("/readyz")).send().await {
                Ok(r) if r.status() == 200 => {
                    return r.json().await.expect("/readyz answers JSON");
                }
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "wafer was not ready within 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, as `docker stop` and Kubernetes send it.
    fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// The exit status, if the process ended within `within`.
    async fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for wafer") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Wafer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("ms fit")
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-u", &backends::redis_url()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Session `uuid`'s last visit in Redis: the later of its hash's and its
/// visit key's (src/store/redis/layout.rs).
fn redis_visit(prefix: &str, uuid: &str) -> i64 {
    ["s", "v"]
        .iter()
        .map(|kind| {
            let key = format!("{prefix}{kind}:{{{uuid}}}");
            redis_cli(&["HGET", &key, "visited"]).parse().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// The value of the series `series` (name and labels as printed) on a
/// `/metrics` page; 0 when absent.
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = client.post(url).json(&body).send().await.expect("answered");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn accepted_hits(client: &reqwest::Client, wafer: &Wafer) -> f64 {
    let page = client
        .get(wafer.url("/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics reads");
    metric(&page, "wafer_near_cache_hits_total{answer=\"accepted\"}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_on_redis_and_postgres_and_stops_cleanly_on_sigterm() {
    if let Some(missing) = wafer_testkit::servers_missing() {
        panic!("{missing} does not answer: this test needs both servers");
    }
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let mock = wechat_mock::spawn().await.expect("the WeChat mock starts");
    // Dropped first (declared last): the process ends before its database.
    let mut wafer = Wafer::start(mock.addr, &db, &prefix);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");

    // Ready, on both stores.
    let ready = wafer.ready(&client).await;
    assert_eq!(ready["stores"]["redis"], "ok", "{ready}");
    assert_eq!(ready["stores"]["postgres"], "ok", "{ready}");

    // An app, a login and an auth, end to end through the mock. WeChat
    // knows the app first (over the mock's HTTP route, as a mock run
    // beside a binary is told).
    let registered = client
        .post(format!("http://{}/mock/apps", mock.addr))
        .query(&[("appid", "wxstartup"), ("secret", "startup-secret")])
        .send()
        .await
        .expect("the mock answers");
    assert_eq!(registered.status(), 200);
    let created = client
        .post(wafer.url("/admin/apps"))
        .bearer_auth(TOKEN)
        .json(&json!({"title": "startup", "appid": "wxstartup", "secret": "startup-secret"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);
    let app: Value = created.json().await.expect("JSON");
    let id = app["id"].as_i64().expect("an app id");
    let (status, login) = post(
        &client,
        wafer.url("/mina/login"),
        json!({"code": "stan.1", "app_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let uuid = login["data"]["uuid"].as_str().expect("uuid").to_owned();
    let skey = login["data"]["skey"].as_str().expect("skey").to_owned();
    assert_eq!(mock.calls("stan.1"), 1, "the code went to the mock once");
    let creds = json!({"uuid": uuid, "skey": skey, "app_id": id});
    let (status, auth) = post(&client, wafer.url("/mina/auth"), creds.clone()).await;
    assert_eq!(status, 200, "{auth}");
    let open_id = wechat_mock::open_id_for("wxstartup", "stan.1");
    assert_eq!(auth["data"]["open_id"], open_id.as_str());

    // The session is in Redis under this deployment's prefix (not the
    // default one), with its open_id index, and only the skey's hash.
    let hex: String = SkeyHash::of(&skey)
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hash = redis_cli(&["HGETALL", &format!("{prefix}s:{{{uuid}}}")]);
    let fields: Vec<&str> = hash.lines().collect();
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv[0] == name)
            .and_then(|kv| kv.get(1).copied())
    };
    assert_eq!(field("app"), Some(id.to_string().as_str()), "{hash}");
    assert_eq!(field("open_id"), Some(open_id.as_str()), "{hash}");
    assert_eq!(field("skey_sha256"), Some(hex.as_str()), "{hash}");
    assert!(!hash.contains(&skey), "a plain skey in Redis");
    let index = format!("{prefix}o:{{{id}:{open_id}}}");
    assert_eq!(redis_cli(&["GET", &index]), uuid);
    let default = format!("wafer:s:{{{uuid}}}");
    assert_eq!(redis_cli(&["EXISTS", &default]), "0", "the default prefix");
    // And recorded in PostgreSQL.
    let pg = backends::postgres(&db);
    let record = pg
        .session(uuid.parse().expect("a uuid"))
        .await
        .expect("PostgreSQL answers")
        .expect("the session is in PostgreSQL");
    assert_eq!((record.app_id, record.open_id.as_str()), (id, &*open_id));
    assert_eq!(record.skey_hash, SkeyHash::of(&skey));

    // Auths until the near cache answers one: a copy of the session is held.
    let warm = Instant::now() + Duration::from_secs(10);
    let before = accepted_hits(&client, &wafer).await;
    while accepted_hits(&client, &wafer).await == before {
        assert!(
            Instant::now() < warm,
            "the near cache never answered:\n{}",
            wafer.log()
        );
        let (status, _) = post(&client, wafer.url("/mina/auth"), creds.clone()).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A visit granularity past every visit Redis has seen, then auths
    // the near cache answers: their slide is held back in the process.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let hits = accepted_hits(&client, &wafer).await;
    let first_hit = now_ms();
    for _ in 0..5 {
        let (status, _) = post(&client, wafer.url("/mina/auth"), creds.clone()).await;
        assert_eq!(status, 200);
    }
    let last_hit = now_ms();
    assert_eq!(
        accepted_hits(&client, &wafer).await - hits,
        5.0,
        "all five answered by the near cache"
    );
    // Past a write-behind round (1 s): neither store has those visits yet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = redis_visit(&prefix, &uuid);
    assert!(held < first_hit, "Redis has the held-back slide: {held}");
    let record = pg.session(record.uuid).await.expect("pg").expect("row");
    assert!(
        record.last_visit.0 < first_hit,
        "PostgreSQL has the held-back visit before the shutdown"
    );

    // A login in flight (its WeChat call takes 3 s) when SIGTERM comes.
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), wafer.url("/mina/login"));
        async move {
            let body = json!({"code": SLOW_CODE, "app_id": id});
            let r = client.post(url).json(&body).send().await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.json::<Value>().await?))
        }
    });
    let sent = Instant::now() + Duration::from_secs(5);
    while mock.calls(SLOW_CODE) == 0 {
        assert!(Instant::now() < sent, "the slow login never reached WeChat");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wafer.terminate();
    let signalled = Instant::now();

    // New connections are refused at once, while the login is still served.
    let refused = loop {
        match tokio::net::TcpStream::connect(wafer.addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break Instant::now(),
            _ if signalled.elapsed() > Duration::from_secs(2) => {
                panic!("new connections still accepted 2 s after SIGTERM")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(
        !slow.is_finished(),
        "the in-flight login ended before new connections were refused ({:?} after SIGTERM)",
        refused - signalled
    );

    // The in-flight login completes, and is acknowledged only once recorded.
    let (status, slow_login) = match slow.await.expect("the login task") {
        Ok(answer) => answer,
        Err(e) => panic!("the in-flight login was cut: {e}:\n{}", wafer.log()),
    };
    assert_eq!(status, 200, "{slow_login}");
    let slow_uuid = slow_login["data"]["uuid"].as_str().expect("uuid");

    // The process exits 0, within the drain (the in-flight request took 3 s;
    // idle keep-alive connections, such as this client's, do not hold it).
    let status = wafer.exited_within(DRAIN).await.unwrap_or_else(|| {
        panic!(
            "wafer still running {DRAIN:?} after SIGTERM:\n{}",
            wafer.log()
        )
    });
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status}:\n{}", wafer.log());
    assert!(
        tokio::net::TcpStream::connect(wafer.addr).await.is_err(),
        "something still listens on wafer's port"
    );
    let log = wafer.log();
    assert!(
        log.contains("shutting down") && log.contains("wafer stopped"),
        "{log}"
    );
    assert!(!log.contains("still open after the drain timeout"), "{log}");
    // Standard error is a file here, not a terminal: plain text that grep
    // finds, no colour escapes.
    assert!(
        !log.contains('\x1b'),
        "colour escapes in a log file:\n{log}"
    );
    eprintln!("wafer exited 0 {took:?} after SIGTERM");

    // Flushed: the held-back slide reached Redis, and its visit PostgreSQL.
    let slid = redis_visit(&prefix, &uuid);
    assert!(
        (first_hit..=last_hit).contains(&slid),
        "Redis' last visit {slid} is not that of the held-back hits ({first_hit}..={last_hit})"
    );
    let record = pg.session(record.uuid).await.expect("pg").expect("row");
    assert!(
        (first_hit..=last_hit).contains(&record.last_visit.0),
        "PostgreSQL's last visit {} is not that of the held-back hits ({first_hit}..={last_hit})",
        record.last_visit.0
    );
    // The login answered during the drain is in both stores.
    let slow_record = pg
        .session(slow_uuid.parse().expect("a uuid"))
        .await
        .expect("pg");
    assert!(slow_record.is_some(), "the drained login is not recorded");
    let slow_key = format!("{prefix}s:{{{slow_uuid}}}");
    assert_eq!(redis_cli(&["EXISTS", &slow_key]), "1");
}
