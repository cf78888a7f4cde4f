//! TLS to Redis and PostgreSQL: servers of the test's own serving TLS, with a
//! CA the test generates (openssl). A certificate of that CA for the host
//! connects; another CA, or a certificate for another host name, stops
//! wafer at start with the reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wafer_testkit::backends::free_port;
use wafer_testkit::spawn_tiered_with;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.pem`, `<name>.key`) in `dir`.
fn ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    dir.join(format!("{name}.pem"))
}

/// A server certificate `<name>.pem`/`<name>.key` for `san`, signed by `ca`.
fn server_cert(dir: &Path, ca: &str, name: &str, san: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=wafer-test-server",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// redis-server with TLS only, on a free port; killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(dir: &Path, cert: &str) -> TlsRedis {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .current_dir(dir)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &format!("{cert}.pem"),
                "--tls-key-file",
                &format!("{cert}.key"),
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return TlsRedis { port, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server with TLS did not start (built without TLS?)");
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory with two CAs (`ca`, `other`) and two server
/// certificates of `ca`: `good` (for 127.0.0.1 and localhost) and
/// `elsewhere` (another host name). Answers the directory and both CA files.
fn certificates(prefix: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("{prefix}{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_pem = ca(&dir, "ca");
    let other_ca = ca(&dir, "other");
    server_cert(&dir, "ca", "good", "IP:127.0.0.1,DNS:localhost");
    server_cert(&dir, "ca", "elsewhere", "DNS:elsewhere.example");
    (dir, ca_pem, other_ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_the_right_ca_only() {
    wafer_testkit::require_servers!();
    let (dir, ca_pem, other_ca) = certificates("wafer-tls-");
    let good = TlsRedis::start(&dir, "good");
    let (url, ca_path) = (good.url(), ca_pem.clone());
    let app = spawn_tiered_with(move |s| {
        s.redis.url = Some(url.as_str().into());
        s.redis.tls_ca = Some(ca_path);
    })
    .await;
    let id = app.create_app("wxtls").await;
    let (uuid, skey) = app.login(id, "tess.1").await;
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    let ready = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.body["stores"]["redis"], "ok", "{}", ready.text);
    // The session is in the TLS Redis (its key count grew).
    let keys = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            ca_pem.to_str().unwrap(),
            "-p",
            &good.port.to_string(),
            "dbsize",
        ])
        .output()
        .expect("redis-cli runs");
    let n: u64 = String::from_utf8_lossy(&keys.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        n >= 2,
        "the session and its index are in the TLS Redis: {n}"
    );

    // Another CA: refused at start, saying why.
    let Err(e) = app
        .sibling_with(|s| s.redis.tls_ca = Some(other_ca.clone()))
        .await
    else {
        panic!("a wafer trusting another CA must not start")
    };
    assert!(e.to_string().contains("TLS with Redis"), "{e}");
    // A certificate for another host name: refused too.
    let elsewhere = TlsRedis::start(&dir, "elsewhere");
    let url = elsewhere.url();
    let Err(e) = app
        .sibling_with(|s| s.redis.url = Some(url.as_str().into()))
        .await
    else {
        panic!("a certificate for another host must be refused")
    };
    assert!(e.to_string().contains("TLS with Redis"), "{e}");
    // A Redis Cluster over TLS (clients and the cluster bus): sessions
    // spread over its masters, every one reached over TLS.
    let cluster = wafer_testkit::backends::RedisCluster::start_tls(&dir, "good");
    let cluster_url = cluster.url();
    let on_cluster = app
        .sibling_with(|s| s.redis.url = Some(cluster_url.as_str().into()))
        .await
        .expect("wafer starts on a TLS cluster");
    for i in 0..10 {
        let (uuid, skey) = on_cluster.login(id, &format!("tls{i}.1")).await;
        assert_eq!(on_cluster.auth(id, &uuid, &skey).await.status, 200);
    }
    let ready = on_cluster
        .send(on_cluster.client.get(on_cluster.url("/readyz")))
        .await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    drop(on_cluster);
    drop(cluster);
    // A CA file for a plain redis:// URL is a mistake, said as such.
    let Err(e) = app
        .sibling_with(|s| s.redis.url = Some(wafer_testkit::backends::redis_url().as_str().into()))
        .await
    else {
        panic!("a CA without TLS must be refused")
    };
    assert!(e.to_string().contains("WAFER_REDIS_TLS_CA"), "{e}");
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PostgreSQL cluster of the test's own with TLS on (its certificate
/// `<cert>.pem`/`<cert>.key` from `dir`), on a free port; stopped on drop.
struct TlsPostgres {
    data: PathBuf,
    port: u16,
    root: bool,
}

fn pg_bin(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries are installed (scripts/test installs them)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join(tool).exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("an initdb").join(tool)
}

impl TlsPostgres {
    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let bin = pg_bin(tool);
        let mut cmd = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        cmd.args(args).output().expect("a PostgreSQL tool runs")
    }

    fn start(dir: &Path, cert: &str) -> TlsPostgres {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let data = dir.join(format!("pg-{cert}"));
        std::fs::create_dir_all(&data).unwrap();
        let chown = |p: &Path| {
            if root {
                let ok = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(p)
                    .status();
                assert!(ok.is_ok_and(|s| s.success()));
            }
        };
        chown(&data);
        let pg = TlsPostgres {
            data: data.clone(),
            port: free_port(),
            root,
        };
        let init = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        std::fs::copy(dir.join(format!("{cert}.pem")), data.join("server.crt")).unwrap();
        std::fs::copy(dir.join(format!("{cert}.key")), data.join("server.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        chown(&data);
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c ssl=on \
             -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c fsync=off",
            pg.port,
            data.display()
        );
        let log = data.join("log");
        let start = pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-l",
                log.to_str().unwrap(),
                "start",
            ],
        );
        assert!(
            start.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&start.stderr)
        );
        pg
    }

    fn url(&self, sslmode: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={sslmode}",
            self.port
        )
    }

    /// Connections to it that use TLS now.
    fn tls_connections(&self) -> u64 {
        self.query("SELECT count(*) FROM pg_stat_ssl WHERE ssl")
            .parse()
            .unwrap_or(0)
    }

    /// Client connections named `application_name` now, as the server sees
    /// them: (over TLS, in plain text).
    fn connections_of(&self, application_name: &str) -> (u64, u64) {
        let counts = self.query(&format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = '{application_name}'"
        ));
        let (tls, plain) = counts
            .split_once('|')
            .unwrap_or_else(|| panic!("psql answered {counts:?}"));
        (tls.parse().unwrap(), plain.parse().unwrap())
    }

    /// Runs `sql` over the Unix socket (not a client connection the tests
    /// count), answering its unaligned output.
    fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                self.data.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_over_tls_in_every_sslmode() {
    wafer_testkit::require_servers!();
    let (dir, ca_pem, other_ca) = certificates("wafer-pgtls-");
    let good = TlsPostgres::start(&dir, "good");
    let (url, ca_path) = (good.url("verify-full"), ca_pem.clone());
    let app = spawn_tiered_with(move |s| {
        s.database.url = Some(url.as_str().into());
        s.database.tls_ca = Some(ca_path);
    })
    .await;
    let id = app.create_app("wxpgtls").await;
    let (uuid, skey) = app.login(id, "pat.1").await;
    assert_eq!(app.auth(id, &uuid, &skey).await.status, 200);
    assert!(good.tls_connections() >= 1, "wafer's connections use TLS");

    // Another CA: refused at start, saying why.
    let Err(e) = app
        .sibling_with(|s| s.database.tls_ca = Some(other_ca.clone()))
        .await
    else {
        panic!("a wafer trusting another CA must not start")
    };
    assert!(e.to_string().contains("TLS with PostgreSQL"), "{e}");
    // verify-ca checks the chain too: another CA is refused at start, with
    // the reason, and nothing connected in plain text instead.
    let wrong_ca = format!("{}&application_name=wafer-wrong-ca", good.url("verify-ca"));
    let Err(e) = app
        .sibling_with(|s| {
            s.database.url = Some(wrong_ca.as_str().into());
            s.database.tls_ca = Some(other_ca.clone());
        })
        .await
    else {
        panic!("verify-ca must refuse a certificate of another CA")
    };
    assert!(e.to_string().contains("TLS with PostgreSQL"), "{e}");
    assert_eq!(
        good.connections_of("wafer-wrong-ca"),
        (0, 0),
        "a wafer refused by TLS must not connect otherwise"
    );

    // A certificate for another name: verify-full refuses, verify-ca (the
    // chain only) and require (encryption only) accept.
    let elsewhere = TlsPostgres::start(&dir, "elsewhere");
    let full = elsewhere.url("verify-full");
    let Err(e) = app
        .sibling_with(|s| s.database.url = Some(full.as_str().into()))
        .await
    else {
        panic!("verify-full must refuse a certificate for another host")
    };
    assert!(e.to_string().contains("TLS with PostgreSQL"), "{e}");
    let chain = elsewhere.url("verify-ca");
    let b = app
        .sibling_with(|s| s.database.url = Some(chain.as_str().into()))
        .await
        .expect("verify-ca checks the chain, not the name");
    let other = b.create_app("wxpgca").await;
    assert!(other > 0);
    // verify-ca with another CA, against a certificate for another name:
    // the name is forgiven, the chain is not.
    let chain_other = format!("{chain}&application_name=wafer-wrong-ca");
    let Err(e) = app
        .sibling_with(|s| {
            s.database.url = Some(chain_other.as_str().into());
            s.database.tls_ca = Some(other_ca.clone());
        })
        .await
    else {
        panic!("verify-ca must refuse a certificate of another CA")
    };
    assert!(e.to_string().contains("TLS with PostgreSQL"), "{e}");
    assert_eq!(elsewhere.connections_of("wafer-wrong-ca"), (0, 0));
    // require: this server also takes plain text (its pg_hba has `host`
    // rules), so only the server can tell whether wafer's pool really
    // encrypts: every connection of that wafer must be over TLS.
    let require = format!(
        "{}&application_name=wafer-require",
        elsewhere.url("require")
    );
    let c = app
        .sibling_with(|s| {
            s.database.url = Some(require.as_str().into());
            s.database.tls_ca = None;
        })
        .await
        .expect("require encrypts without checking the certificate");
    assert_eq!(c.send(c.client.get(c.url("/readyz"))).await.status, 200);
    let other = c.create_app("wxpgrequire").await;
    assert!(other > 0);
    let (tls, plain) = elsewhere.connections_of("wafer-require");
    assert!(
        tls >= 1 && plain == 0,
        "sslmode=require: {tls} connections over TLS, {plain} in plain text"
    );
    drop((b, c, app));
    drop((good, elsewhere));
    let _ = std::fs::remove_dir_all(&dir);
}
