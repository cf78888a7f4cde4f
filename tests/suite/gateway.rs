//! Forward auth with a real gateway: nginx, configured with the very file
//! shipped in deploy/nginx/, in front of a small business service. A valid
//! session reaches the service with the user's ids set by nginx; a missing,
//! revoked or expired one is stopped at nginx with the body the original
//! wafer client SDK reads as "log in again".

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wafer_testkit::backends::free_port;
use wafer_testkit::{TestApp, spawn_app};

const MAGIC: &str = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A";

/// The business service: answers every request with the X-Wafer-Open-Id
/// it was given, and records the request heads it saw.
async fn business() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request head at a time (GETs, no bodies): nginx
                    // keeps the connection alive between them.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    buf.drain(..end);
                    let open_id = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-wafer-open-id: "))
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    log.lock().unwrap().push(head);
                    let body = format!("business saw {open_id}");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

struct Nginx {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx with deploy/nginx/wafer-auth.conf, its addresses pointed at
/// `wafer` and `business`.
fn nginx(
    bin: &std::path::Path,
    wafer: std::net::SocketAddr,
    business: std::net::SocketAddr,
) -> Nginx {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/nginx/wafer-auth.conf"
    ))
    .expect("deploy/nginx/wafer-auth.conf");
    let port = free_port();
    let mut conf = shipped.clone();
    for (marked, addr) in [
        ("127.0.0.1:8080; # wafer", wafer.to_string()),
        (
            "127.0.0.1:9000; # the business service",
            business.to_string(),
        ),
        ("127.0.0.1:8000; # nginx", format!("127.0.0.1:{port}")),
    ] {
        assert!(conf.contains(marked), "the shipped file marks `{marked}`");
        conf = conf.replace(marked, &format!("{addr};"));
    }
    let dir = std::env::temp_dir().join(format!("wafer-nginx-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wafer-auth.conf"), conf).unwrap();
    let d = dir.display();
    let main = format!(
        "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/wafer-auth.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child, port, dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start: {log}");
}

async fn through(app: &TestApp, port: u16, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = app.client.get(format!("http://127.0.0.1:{port}/orders/42"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("nginx answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_lets_only_valid_sessions_through() {
    let Some(bin) = wafer_testkit::tool("nginx", module_path!()) else {
        return;
    };
    let app = spawn_app().await;
    // App 1, as the shipped file names it, with one-minute sessions.
    app.wechat.register_app("wxgw", "s");
    let created = app
        .send(app.admin(Method::POST, "/admin/apps").json(&json!({
            "title": "gateway", "appid": "wxgw", "secret": "s", "session_duration": 60
        })))
        .await;
    assert_eq!(created.body["id"], 1, "{}", created.text);
    let (upstream, seen) = business().await;
    let gate = nginx(&bin, app.addr, upstream);

    let (uuid, skey) = app.login(1, "nia.1").await;
    let open_id = wechat_mock::open_id_for("wxgw", "nia.1");
    let valid = [("X-WX-Id", uuid.as_str()), ("X-WX-Skey", skey.as_str())];
    // A forged identity is replaced by the one wafer vouches for.
    let mut forged = valid.to_vec();
    forged.push(("X-Wafer-Open-Id", "o-evil"));
    let (status, body) = through(&app, gate.port, &forged).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("business saw {}", open_id.to_lowercase()));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].contains("x-wafer-app-id: 1"), "{}", seen[0]);
        assert!(
            !seen[0].contains("x-wx-skey"),
            "the skey stops at nginx: {}",
            seen[0]
        );
        assert!(!seen[0].contains("o-evil"), "{}", seen[0]);
    }

    let stopped = |status: u16, body: &str| {
        assert_eq!(status, 401, "{body}");
        let j: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(j[MAGIC], 1, "{body}");
        assert_eq!(j["error"], "ERR_INVALID_SESSION", "{body}");
    };
    // No session, a wrong skey.
    let (status, body) = through(&app, gate.port, &[]).await;
    stopped(status, &body);
    let (status, body) = through(
        &app,
        gate.port,
        &[("X-WX-Id", &uuid), ("X-WX-Skey", "wrong")],
    )
    .await;
    stopped(status, &body);
    // Revoked by an operator.
    let revoked = app
        .send(app.admin(Method::DELETE, &format!("/admin/sessions/{uuid}")))
        .await;
    assert_eq!(revoked.status, 204);
    let (status, body) = through(&app, gate.port, &valid).await;
    stopped(status, &body);
    // Expired: a minute without a visit.
    let (uuid2, skey2) = app.login(1, "noa.1").await;
    let second = [("X-WX-Id", uuid2.as_str()), ("X-WX-Skey", skey2.as_str())];
    assert_eq!(through(&app, gate.port, &second).await.0, 200);
    app.clock.advance(Duration::from_secs(61));
    let (status, body) = through(&app, gate.port, &second).await;
    stopped(status, &body);
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no refused request reached the service"
    );
}
