//! The `wechat-mock` program serves what the library does: the walkthrough,
//! the load tests and `scripts/k6-smoke` run it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_program_answers_code_exchanges() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-mock"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
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
    let reply = get(port, "/sns/jscode2session?appid=wxA&js_code=amy.1");
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.expect("it serves").starts_with("HTTP/1.1 200"));
    let reply = reply.expect("it answers");
    let expected = wechat_mock::open_id_for("wxA", "amy.1");
    assert!(reply.contains(&expected), "{reply}");
    assert!(reply.contains("session_key"), "{reply}");
}
