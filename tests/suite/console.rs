//! The console's files as the server serves them: the page, its script and
//! style, with the headers that keep the page from running anything else;
//! off when the admin API is off. (What the page does is for a browser test.)

use wafer_testkit::{spawn_app, spawn_app_with};

#[tokio::test]
async fn the_console_is_served_with_strict_headers() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let a = app.send(app.client.get(app.url(path))).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.headers["content-type"], kind, "{path}");
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(a.headers["x-frame-options"], "DENY");
        assert_eq!(a.headers["referrer-policy"], "no-referrer");
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
    }
    let page = app.send(app.client.get(app.url("/console/"))).await.text;
    assert!(page.contains(r#"<label for="token">Admin token</label>"#));
    let post = app.send(app.client.post(app.url("/console/"))).await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn the_console_is_off_without_an_admin_token() {
    let app = spawn_app_with(|s| s.admin.token = None).await;
    let a = app.send(app.client.get(app.url("/console/"))).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.text.contains("console is off"));
}

#[test]
fn the_console_script_parses() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/console/app.js");
    let out = std::process::Command::new("node")
        .arg("--check")
        .arg(script)
        .output()
        .expect("node runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/console/drive.js` in headless Chromium against the wafer at
/// `addr`.
fn drive(addr: std::net::SocketAddr, test: &str) {
    let Some(chromium) = wafer_testkit::tool("chromium", test) else {
        return;
    };
    let modules = std::env::var("WAFER_TEST_BROWSER_DIR").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-tools/browser").to_owned()
    });
    let modules = std::path::Path::new(&modules).join("node_modules");
    if !modules.join("puppeteer-core").exists() {
        assert!(
            !wafer_testkit::servers_required(),
            "puppeteer-core is not installed in {} (scripts/test installs it)",
            modules.display()
        );
        eprintln!("skipped {test}: puppeteer-core is not installed");
        return;
    }
    // Screenshots go to target/ (WAFER_CONSOLE_SHOTS=docs refreshes the
    // README's).
    let shots = std::env::var("WAFER_CONSOLE_SHOTS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-shots").to_owned()
    });
    std::fs::create_dir_all(&shots).expect("a folder for the screenshots");
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/console/drive.js"
        ))
        .arg(format!("http://{addr}"))
        .arg(wafer_testkit::TOKEN)
        .arg(chromium)
        .arg(&shots)
        .env("NODE_PATH", &modules)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_and_revokes_a_session_in_a_browser_embedded() {
    let app = spawn_app().await;
    // The app drive.js creates, known to WeChat.
    app.wechat.register_app("wxconsole", "console-secret");
    let addr = app.addr;
    tokio::task::spawn_blocking(move || drive(addr, "console browser test (embedded)"))
        .await
        .expect("the browser test ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_and_revokes_a_session_in_a_browser_tiered() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|_| {}).await;
    app.wechat.register_app("wxconsole", "console-secret");
    let addr = app.addr;
    tokio::task::spawn_blocking(move || drive(addr, "console browser test (tiered)"))
        .await
        .expect("the browser test ran");
}
