//! TLS to Redis: a redis-server of the test's own serving TLS only, with a
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_the_right_ca_only() {
    wafer_testkit::require_servers!();
    let dir = std::env::temp_dir().join(format!("wafer-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_pem = ca(&dir, "ca");
    let other_ca = ca(&dir, "other");
    server_cert(&dir, "ca", "good", "IP:127.0.0.1,DNS:localhost");
    server_cert(&dir, "ca", "elsewhere", "DNS:elsewhere.example");
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
