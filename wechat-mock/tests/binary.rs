//! The `wechat-mock` program serves what the library does: the walkthrough,
//! the load tests and `scripts/k6-smoke` run it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn request(port: u16, method: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn get(port: u16, path: &str) -> Option<String> {
    request(port, "GET", path)
}

#[test]
fn the_program_answers_code_exchanges() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    // The flag wins over the environment, as for every clap setting.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-mock"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--app", "wxA=sA"])
        .env("WECHAT_MOCK_APPS", "wxB=sB")
        .stderr(Stdio::null())
        .spawn()
        .expect("wechat-mock starts");
    let mut health = None;
    for _ in 0..100 {
        health = get(port, "/healthz");
        if health.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exchange = |appid: &str, secret: &str| {
        get(
            port,
            &format!("/sns/jscode2session?appid={appid}&secret={secret}&js_code=amy.1"),
        )
        .unwrap_or_default()
    };
    let reply = exchange("wxA", "sA");
    let wrong = exchange("wxA", "sB");
    let unknown = exchange("wxB", "sB");
    let added = request(port, "POST", "/mock/apps?appid=wxB&secret=sB").unwrap_or_default();
    let known = exchange("wxB", "sB");
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.expect("it serves").starts_with("HTTP/1.1 200"));
    let expected = wechat_mock::open_id_for("wxA", "amy.1");
    assert!(reply.contains(&expected), "{reply}");
    assert!(reply.contains("session_key"), "{reply}");
    assert!(
        wrong.contains(r#"{"errcode":40125,"errmsg":"invalid appsecret, rid: "#),
        "{wrong}"
    );
    assert!(
        unknown.contains(r#"{"errcode":40013,"errmsg":"invalid appid, rid: "#),
        "{unknown}"
    );
    assert!(added.contains(r#""registered":true"#), "{added}");
    assert!(!added.contains("sB"), "the secret is not echoed: {added}");
    assert!(
        known.contains(&wechat_mock::open_id_for("wxB", "amy.1")),
        "{known}"
    );
}

#[test]
fn the_environment_lists_apps_and_a_bad_one_stops_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-mock"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("WECHAT_MOCK_APPS", "wxC=sC,wxD=sD")
        .stderr(Stdio::null())
        .spawn()
        .expect("wechat-mock starts");
    let mut reply = None;
    for _ in 0..100 {
        reply = get(
            port,
            "/sns/jscode2session?appid=wxD&secret=sD&js_code=bea.1",
        );
        if reply.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let reply = reply.expect("it answers");
    assert!(
        reply.contains(&wechat_mock::open_id_for("wxD", "bea.1")),
        "{reply}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_wechat-mock"))
        .args(["--listen", "127.0.0.1:0", "--app", "wxE-without-secret"])
        .output()
        .expect("wechat-mock runs");
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("APPID=SECRET"), "{said}");
}
