//! What a client may hold: every connection is closed after a bounded idle
//! time, whatever it sent (nothing, half an HTTP/2 preface, a finished
//! keep-alive request), and past the connection cap new connections wait
//! instead of starving the ones being served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wafer_testkit::spawn_app_with;

/// Waits until the peer closes `s` (EOF or reset); returns how long it took,
/// or `None` if it was still open after `limit`.
async fn closed_within(mut s: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a response or a GOAWAY: keep reading
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_whatever_they_sent() {
    let app = spawn_app_with(|s| {
        s.http.header_read_timeout = Duration::from_secs(1);
        s.http.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut conns = Vec::new();
    for i in 0..150 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        match i % 3 {
            0 => {}                                                 // nothing at all
            1 => s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(), // half the HTTP/2 preface
            _ => {
                // One whole keep-alive request, answered, then silence.
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "answered");
            }
        }
        conns.push(s);
    }
    let waits = conns
        .into_iter()
        .map(|s| tokio::spawn(closed_within(s, Duration::from_secs(5))));
    for (i, w) in waits.enumerate() {
        let took = w.await.unwrap();
        assert!(
            took.is_some(),
            "connection {i} (kind {}) still open after 5 s",
            i % 3
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_does_not_hold_the_connection() {
    let app = spawn_app_with(|s| {
        s.http.header_read_timeout = Duration::from_secs(1);
        s.http.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stalled = Vec::new();
    for sent in [&b""[..], b"{"] {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(
            b"POST /mina/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n",
        )
        .await
        .unwrap();
        s.write_all(sent).await.unwrap();
        stalled.push(s);
    }
    for mut s in stalled {
        let started = Instant::now();
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "still open after 5 s");
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains(r#""error":"request_timeout""#), "{text}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_keep_alive_connection_stays_open() {
    let app = spawn_app_with(|s| {
        s.http.header_read_timeout = Duration::from_secs(1);
        s.http.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    // Requests 400 ms apart for 3 s: never idle for the full second.
    for _ in 0..8 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "still served");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_new_connections_wait_for_a_free_slot() {
    let app = spawn_app_with(|s| {
        s.http.max_connections = 2;
        s.http.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let hold = [
        TcpStream::connect(app.addr).await.unwrap(),
        TcpStream::connect(app.addr).await.unwrap(),
    ];
    // Give the server time to take both connections.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::time::timeout(
        Duration::from_millis(500),
        app.client.get(app.url("/healthz")).send(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a third connection waits while two are held"
    );
    drop(hold);
    let served = tokio::time::timeout(
        Duration::from_secs(3),
        app.client.get(app.url("/healthz")).send(),
    )
    .await
    .expect("served once a slot is free")
    .unwrap();
    assert_eq!(served.status(), 200);
}
