//! The real client of the original protocol: Tencent's Node server SDK
//! (`qcloud-weapp-server-sdk` 0.8.2 from the npm registry, which
//! `scripts/test` installs into `target/test-tools/wafer-sdk`), in a small
//! business server (tests/sdk/business.js) pointed at wafer's /mina_auth/.
//! Driven with the headers its client SDK sends; what it answers to the
//! mini-program is checked.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use wafer_testkit::backends::free_port;
use wafer_testkit::{TestApp, spawn_app};

const MAGIC: &str = "F2C224D4-2BCE-4C64-AF9F-A6D872000D1A";

/// Where `scripts/test` installed the SDK (`WAFER_TEST_SDK_DIR`).
fn sdk_dir() -> Option<PathBuf> {
    let dir = std::env::var("WAFER_TEST_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/test-tools/wafer-sdk"
            ))
        });
    let installed = dir
        .join("node_modules/qcloud-weapp-server-sdk/package.json")
        .is_file();
    if !installed {
        if wafer_testkit::servers_required() {
            panic!(
                "REQUIRED TEST TOOL MISSING: qcloud-weapp-server-sdk is not installed in {} \
                 (scripts/test installs it with npm)",
                dir.display()
            );
        }
        eprintln!("skipped: qcloud-weapp-server-sdk is not installed (scripts/test installs it)");
        return None;
    }
    Some(dir)
}

struct Business {
    child: Child,
    port: u16,
}

impl Drop for Business {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn business(sdk: &std::path::Path, wafer: &TestApp) -> Business {
    let port = free_port();
    let child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/business.js"
        ))
        .arg(port.to_string())
        .arg(wafer.url("/mina_auth/"))
        .env("NODE_PATH", sdk.join("node_modules"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (scripts/test installs it)");
    let b = Business { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return b;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the SDK's business server did not start");
}

async fn get(app: &TestApp, b: &Business, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = app.client.get(format!("http://127.0.0.1:{}{path}", b.port));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("the business server answers");
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON from the SDK: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_node_sdk_logs_in_and_checks_sessions_against_wafer() {
    let Some(sdk) = sdk_dir() else { return };
    let app = spawn_app().await;
    assert_eq!(
        app.create_app("wxsdk").await,
        1,
        "the SDK names no app: app 1"
    );
    let b = business(&sdk, &app);

    // Login as the client SDK sends it: the code and the user's data.
    let ud = app.user_data("wxsdk", "sue.1").await;
    let login = get(
        &app,
        &b,
        "/login",
        &[
            ("X-WX-Code", "sue.1"),
            ("X-WX-Encrypted-Data", ud["encryptedData"].as_str().unwrap()),
            ("X-WX-IV", ud["iv"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(login[MAGIC], 1, "{login}");
    let id = login["session"]["id"]
        .as_str()
        .expect("session.id")
        .to_owned();
    let skey = login["session"]["skey"]
        .as_str()
        .expect("session.skey")
        .to_owned();

    // Every later request carries the session; the SDK checks it at wafer.
    let user = get(&app, &b, "/user", &[("X-WX-Id", &id), ("X-WX-Skey", &skey)]).await;
    assert_eq!(user["code"], 0, "{user}");
    assert_eq!(user["userInfo"]["nickName"], "sue", "{user}");
    // The session is wafer's own: /mina/auth accepts it too.
    assert_eq!(app.auth(1, &id, &skey).await.status, 200);

    // A wrong code: the SDK's login error, with its magic key.
    let failed = get(&app, &b, "/login", &[("X-WX-Code", "err-40029")]).await;
    assert_eq!(failed[MAGIC], 1, "{failed}");
    assert_eq!(failed["error"], "ERR_LOGIN_FAILED", "{failed}");

    // Revoked by an operator: the SDK tells the mini-program to log in again.
    let revoked = app
        .send(app.admin(Method::DELETE, &format!("/admin/sessions/{id}")))
        .await;
    assert_eq!(revoked.status, 204);
    let gone = get(&app, &b, "/user", &[("X-WX-Id", &id), ("X-WX-Skey", &skey)]).await;
    assert_eq!(gone[MAGIC], 1, "{gone}");
    assert_eq!(gone["error"], "ERR_INVALID_SESSION", "{gone}");
}
