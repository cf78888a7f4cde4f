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
