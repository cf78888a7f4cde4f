//! Real Redis and PostgreSQL for tests: a fresh database and key prefix per
//! test (so tests run in parallel), private redis-servers to stop and
//! restart, and a TCP proxy that can cut or hang a connection.
//!
//! The servers come from `WAFER_TEST_REDIS_URL` / `WAFER_TEST_DATABASE_URL`
//! (defaults: the local ones). See [`crate::servers`] for what happens when
//! one is missing. Everything a test creates (its database, its keys) is
//! removed when the guard that names it drops, also when the test fails.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;
use wafer::clock::SystemClock;
use wafer::config::{DatabaseSettings, RedisSettings};
use wafer::store::TieredStore;
use wafer::store::near::NearSettings;
use wafer::store::postgres::Postgres;
use wafer::store::tiered::TieredSettings;
use wafer::store::visit_granularity::VisitGranularity;

/// The shared Redis of the test run.
pub fn redis_url() -> String {
    std::env::var("WAFER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// An admin URL of the test run's PostgreSQL (tests create databases).
pub fn pg_admin_url() -> String {
    std::env::var("WAFER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The prefix of every key the tests write to the shared Redis.
pub const KEY_PREFIX: &str = "wafer-test:";

/// The prefix of every database the tests create.
pub const DATABASE_PREFIX: &str = "wafer_test_";

/// A key prefix no other test uses; its keys are deleted from the shared
/// Redis when it drops.
#[derive(Debug)]
pub struct TestPrefix(String);

impl TestPrefix {
    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TestPrefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TestPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.0);
        off_runtime(move || async move {
            let _ = delete_keys(&redis_url(), &pattern).await;
        });
    }
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> TestPrefix {
    TestPrefix(format!("{KEY_PREFIX}{}:", Uuid::new_v4().simple()))
}

/// Deletes the keys matching `pattern` on the (single-node) Redis at
/// `url`; returns how many. `KEYS` walks the whole keyspace: fine for a test
/// Redis, never for production.
pub async fn delete_keys(url: &str, pattern: &str) -> Result<i64, fred::error::Error> {
    use fred::prelude::{ClientLike, LuaInterface};
    const SCRIPT: &str = "local n = 0 \
        for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
          n = n + redis.call('UNLINK', k) end return n";
    let client =
        fred::prelude::Builder::from_config(fred::prelude::Config::from_url(url)?).build()?;
    client.init().await?;
    let deleted = client
        .eval::<i64, _, _, _>(SCRIPT, Vec::<String>::new(), vec![pattern.to_owned()])
        .await;
    let _ = client.quit().await;
    deleted
}

/// Runs async clean-up from `Drop`: on a thread of its own with a runtime
/// of its own, because a drop may run inside a runtime (which must not
/// block) or during a panic (whose runtime may be going away).
fn off_runtime<F, Fut>(work: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let joined = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), work()).await;
            });
        }
    })
    .join();
    let _ = joined;
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..cut])
}

async fn admin_client() -> tokio_postgres::Client {
    let url = pg_admin_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {url} ({e}); run scripts/test, which starts it")
        });
    tokio::spawn(conn);
    client
}

/// A database of one test's own, dropped (with its connections) when this
/// guard drops.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    /// Its URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl std::ops::Deref for TestDb {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        off_runtime(move || async move {
            if let Ok(admin) = try_admin_client().await {
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
        });
    }
}

async fn try_admin_client() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&pg_admin_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Creates an empty database for one test.
pub async fn fresh_database() -> TestDb {
    let admin = admin_client().await;
    let name = format!("{DATABASE_PREFIX}{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create the test database");
    TestDb {
        url: with_database(&pg_admin_url(), &name),
        name,
    }
}

/// The database settings of the tests (wafer's own defaults, a small pool),
/// so that tests build their clients as `wafer serve` does.
pub fn database_settings(pool: u16) -> DatabaseSettings {
    DatabaseSettings {
        pool,
        ..DatabaseSettings::default()
    }
}

/// A client of the database at `url`, built as `wafer serve` builds it.
pub fn postgres(url: &str) -> Postgres {
    database_settings(2)
        .connect(&url.into())
        .expect("a valid database URL")
}

/// Fast background work, so tests need not wait long.
pub fn test_settings() -> TieredSettings {
    TieredSettings {
        flush_every: Duration::from_millis(100),
        apps_refresh_every: Duration::from_millis(100),
        purge_every: Duration::from_secs(3600),
        repair_every: Duration::from_millis(100),
        // Every visit due: the tests check that each one reaches PostgreSQL.
        visit: VisitGranularity::Every(Duration::from_millis(1)),
        // Slides reach Redis within 100 ms (sessions of a second or more
        // are served from the near cache).
        near: Some(NearSettings {
            slide: VisitGranularity::Every(Duration::from_millis(100)),
            ..NearSettings::DEFAULT
        }),
        ..TieredSettings::default()
    }
}

/// A tiered store over `redis_url` and `db_url` with `prefix`, migrated.
pub async fn tiered_at(redis_url: &str, db_url: &str, prefix: &str) -> Arc<TieredStore> {
    tiered_with(redis_url, db_url, prefix, test_settings()).await
}

/// [`tiered_at`] with background timings of the test's choosing.
pub async fn tiered_with(
    redis_url: &str,
    db_url: &str,
    prefix: &str,
    every: TieredSettings,
) -> Arc<TieredStore> {
    tiered_recording(redis_url, db_url, prefix, every, Default::default()).await
}

/// [`tiered_with`], recording the store's series in `metrics`.
pub async fn tiered_recording(
    redis_url: &str,
    db_url: &str,
    prefix: &str,
    every: TieredSettings,
    metrics: wafer::store::metrics::StoreMetrics,
) -> Arc<TieredStore> {
    let pg = database_settings(8)
        .connect(&db_url.into())
        .expect("pg config");
    pg.migrate().await.expect("migrations apply");
    let redis = RedisSettings {
        prefix: prefix.to_owned(),
        pool: 2,
        timeout: Duration::from_millis(500),
        ..RedisSettings::default()
    }
    .connect(&redis_url.into())
    .expect("redis config");
    let connected = redis.wait_connected(Duration::from_secs(5)).await;
    let store = TieredStore::start(redis, pg, Arc::new(SystemClock), every, metrics)
        .await
        .expect("tiered store starts");
    if connected {
        wait_near_live(&store).await;
    }
    store
}

/// Waits (up to 5 s) until the store's near cache, if it has one, serves:
/// tests then run with it, not before it.
pub async fn wait_near_live(store: &TieredStore) {
    assert!(
        store.wait_near_live(Duration::from_secs(5)).await,
        "the near cache did not come live within 5 s"
    );
}

/// A store with the guards of the database and key prefix it was made on:
/// they drop (and clean up) after the store.
pub struct Fixture<S> {
    /// The store.
    pub store: Arc<S>,
    _db: Option<TestDb>,
    _prefix: Option<TestPrefix>,
}

impl<S> Fixture<S> {
    /// A store on `db` and `prefix`, which drop after it.
    pub fn with_guards(store: Arc<S>, db: TestDb, prefix: TestPrefix) -> Self {
        Fixture {
            store,
            _db: Some(db),
            _prefix: Some(prefix),
        }
    }

    /// A store that needs no clean-up.
    pub fn bare(store: Arc<S>) -> Self {
        Fixture {
            store,
            _db: None,
            _prefix: None,
        }
    }
}

/// A fresh tiered store on the shared servers; `None` when they are
/// missing and not required (see [`crate::servers_ready`]).
pub async fn tiered() -> Option<Fixture<TieredStore>> {
    if !crate::servers_ready("the tiered store contract") {
        return None;
    }
    let db = fresh_database().await;
    let prefix = fresh_prefix();
    Some(Fixture {
        store: tiered_at(&redis_url(), &db, &prefix).await,
        _db: Some(db),
        _prefix: Some(prefix),
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server of one test's own, to stop and restart.
pub struct PrivateRedis {
    /// The port it serves on.
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> PrivateRedis {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start on port {}", self.port);
    }

    /// Runs `redis-cli` against it and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a [`Proxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards.
    Pass,
    /// Refuses: closes every connection at once (a server that is down).
    Down,
    /// Accepts and never answers (a hung server).
    Hang,
}

/// A TCP proxy in front of a real server, to take it away from one test.
pub struct Proxy {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    mode: Arc<Mutex<ProxyMode>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Proxies to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mode = Arc::new(Mutex::new(ProxyMode::Pass));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mode = *m.lock().unwrap();
                let target = target.clone();
                let task = tokio::spawn(async move {
                    match mode {
                        ProxyMode::Down => drop(inbound),
                        ProxyMode::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(inbound);
                        }
                        ProxyMode::Pass => {
                            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                                // Without these, Nagle's algorithm holds
                                // small writes (a pushed invalidation)
                                // for up to 40 ms: the servers set them.
                                let _ = inbound.set_nodelay(true);
                                let _ = outbound.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            mode,
            conns,
            accept,
        }
    }

    /// Switches mode; anything but `Pass` also cuts the open connections.
    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
        if mode != ProxyMode::Pass {
            for task in self.conns.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }

    /// `postgres://…` URL through this proxy to the database of `db_url`.
    pub fn pg_url(&self, db_url: &str) -> String {
        db_url.replacen(&host_port(db_url), &self.addr.to_string(), 1)
    }

    /// `redis://…` URL through this proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

/// A local 3-master Redis Cluster of one test's own, on loopback ports,
/// torn down when dropped.
pub struct RedisCluster {
    /// The masters' ports.
    pub ports: Vec<u16>,
    nodes: Vec<Child>,
    dir: std::path::PathBuf,
    /// The CA file of a TLS cluster.
    tls: Option<std::path::PathBuf>,
    /// The certificates' directory and the server certificate's name, for
    /// nodes that join later.
    certs: Option<(std::path::PathBuf, String)>,
}

impl RedisCluster {
    /// Starts three cluster-enabled redis-servers and joins them with
    /// `redis-cli --cluster create`; waits for `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        Self::start_with(None)
    }

    /// [`RedisCluster::start`] with TLS only, clients and the cluster bus
    /// alike: the server certificate `<cert>.pem`/`.key` and the CA
    /// `ca.pem`, files of the directory `tls`.
    pub fn start_tls(tls: &std::path::Path, cert: &str) -> RedisCluster {
        Self::start_with(Some((tls, cert)))
    }

    fn start_with(tls: Option<(&std::path::Path, &str)>) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("wafer-cluster-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut cluster = RedisCluster {
            ports: ports.clone(),
            nodes: Vec::new(),
            dir: dir.clone(),
            tls: tls.map(|(d, _)| d.join("ca.pem")),
            certs: tls.map(|(d, c)| (d.to_path_buf(), c.to_string())),
        };
        for port in &ports {
            let child = cluster.spawn_node(*port);
            cluster.nodes.push(child);
        }
        for port in &ports {
            let mut up = false;
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(up, "cluster node on port {port} did not start");
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = cluster
            .cli()
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for _ in 0..200 {
            let ok = ports.iter().all(|p| {
                cluster
                    .cli()
                    .args(["-p", &p.to_string(), "CLUSTER", "INFO"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                return cluster;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the Redis Cluster did not reach cluster_state:ok");
    }

    /// Starts a cluster-enabled redis-server on `port` (not joined yet).
    fn spawn_node(&self, port: u16) -> Child {
        let mut cmd = Command::new("redis-server");
        cmd.current_dir(&self.dir);
        match &self.certs {
            None => {
                cmd.args(["--port", &port.to_string()]);
            }
            Some((certs, cert)) => {
                let file = |name: String| certs.join(name).to_string_lossy().into_owned();
                cmd.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--tls-cluster",
                    "yes",
                ])
                .args(["--tls-cert-file", &file(format!("{cert}.pem"))])
                .args(["--tls-key-file", &file(format!("{cert}.key"))])
                .args(["--tls-ca-cert-file", &file("ca.pem".into())])
                .args(["--tls-auth-clients", "no"]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)")
    }

    /// The node id of the master on `port`.
    pub fn node_id(&self, port: u16) -> String {
        let out = self
            .cli()
            .args(["-p", &port.to_string(), "CLUSTER", "MYID"])
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a fourth (fifth, ...) master and joins it to the running
    /// cluster, owning no slots yet; answers its port.
    pub fn add_primary(&mut self) -> u16 {
        let port = free_port();
        let child = self.spawn_node(port);
        self.nodes.push(child);
        let mut up = false;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(up, "new cluster node on port {port} did not start");
        let out = self
            .cli()
            .args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("127.0.0.1:{}", self.ports[0]))
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster add-node failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        self.ports.push(port);
        // Known to every node before slots move to it.
        for _ in 0..200 {
            let known = self.ports.iter().all(|p| {
                self.cli()
                    .args(["-p", &p.to_string(), "CLUSTER", "NODES"])
                    .output()
                    .map(|o| {
                        let nodes = String::from_utf8_lossy(&o.stdout);
                        nodes.lines().filter(|l| l.contains("master")).count() == self.ports.len()
                            && !nodes.contains("handshake")
                    })
                    .unwrap_or(false)
                    && self
                        .cli()
                        .args(["-p", &p.to_string(), "CLUSTER", "INFO"])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                        .unwrap_or(false)
            });
            if known {
                return port;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the new master on port {port} did not join the cluster");
    }

    /// Moves `slots` slots (and their keys) from the master on `from` to
    /// the master on `to`, as `redis-cli --cluster reshard` does while
    /// clients keep using the cluster.
    pub fn move_slots(&self, from: u16, to: u16, slots: u32) {
        let out = self
            .cli()
            .args(["--cluster", "reshard"])
            .arg(format!("127.0.0.1:{}", self.ports[0]))
            .args(["--cluster-from", &self.node_id(from)])
            .args(["--cluster-to", &self.node_id(to)])
            .args(["--cluster-slots", &slots.to_string()])
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster reshard failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether the master on `port` holds `key` (it owns the key's slot
    /// and the key exists there).
    pub fn holds(&self, port: u16, key: &str) -> bool {
        let out = self
            .cli()
            .args(["-p", &port.to_string(), "EXISTS", key])
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// `redis-cli`, over TLS for a TLS cluster.
    fn cli(&self) -> Command {
        let mut c = Command::new("redis-cli");
        if let Some(ca) = &self.tls {
            c.arg("--tls").arg("--cacert").arg(ca);
        }
        c
    }

    /// The `redis-cluster://` URL naming every node (`rediss-cluster://`
    /// for a TLS cluster).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss-cluster"
        } else {
            "redis-cluster"
        };
        let mut url = format!("{scheme}://127.0.0.1:{}", self.ports[0]);
        for (i, p) in self.ports[1..].iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{p}"));
        }
        url
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
