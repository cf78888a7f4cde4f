//! Several wafer instances on one Redis and one PostgreSQL, as a production
//! deployment runs them: what one does, the other sees.

use std::time::Duration;

use serde_json::json;
use wafer_testkit::{assert_fail, spawn_tiered_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_revocations_and_apps() {
    wafer_testkit::require_servers!();
    let a = spawn_tiered_with(|_| {}).await;
    let b = a.sibling().await;
    let id = a.create_app("wxtwins").await;
    // B learns of the app from PostgreSQL within its refresh period.
    let mut seen = false;
    for _ in 0..20 {
        let page = b
            .send(b.admin(reqwest::Method::GET, &format!("/admin/apps/{id}")))
            .await;
        if page.status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "B serves an app A created within 2 s");

    // A login on one authenticates on the other.
    let (uuid, skey) = a.login(id, "ivy.1").await;
    assert_eq!(b.auth(id, &uuid, &skey).await.status, 200);
    let (uuid2, skey2) = b.login(id, "jon.1").await;
    assert_eq!(a.auth(id, &uuid2, &skey2).await.status, 200);

    // A logout on B is refused on A at once, and a revoke on A on B.
    let out = b
        .post(
            "/mina/logout",
            json!({"app_id": id, "uuid": uuid, "skey": skey}),
        )
        .await;
    assert_eq!(out.status, 200);
    assert_fail(&a.auth(id, &uuid, &skey).await, 401, "session_invalid");
    let revoked = a
        .send(a.admin(reqwest::Method::DELETE, &format!("/admin/sessions/{uuid2}")))
        .await;
    assert_eq!(revoked.status, 204);
    assert_fail(&b.auth(id, &uuid2, &skey2).await, 401, "session_invalid");

    // An app's change on A is used by B within a second: a shorter sliding
    // limit expires B's sessions accordingly.
    let (uuid3, skey3) = b.login(id, "kay.1").await;
    let patched = a
        .send(
            a.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
                .json(&json!({"session_duration": 60})),
        )
        .await;
    assert_eq!(patched.status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    b.clock.advance(Duration::from_secs(61));
    assert_fail(&b.auth(id, &uuid3, &skey3).await, 401, "session_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_one_instance_loses_nothing_while_the_other_serves() {
    wafer_testkit::require_servers!();
    let a = spawn_tiered_with(|_| {}).await;
    let b = a.sibling().await;
    let id = a.create_app("wxstop").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Logins go to A while it is asked to stop (what SIGTERM does): those
    // it acknowledged must all be there; the others failed visibly.
    let (client, url) = (a.client.clone(), a.url("/mina/login"));
    let logins = tokio::spawn(async move {
        let mut made = Vec::new();
        for i in 0..300 {
            let sent = client
                .post(&url)
                .json(&json!({"app_id": id, "code": format!("lou{i}.1")}))
                .send()
                .await;
            let Ok(reply) = sent else { continue };
            if reply.status() != 200 {
                continue;
            }
            let body: serde_json::Value = reply.json().await.expect("a JSON reply");
            let data = &body["data"];
            made.push((
                data["uuid"].as_str().unwrap().to_owned(),
                data["skey"].as_str().unwrap().to_owned(),
            ));
        }
        made
    });
    // One login surely in flight when A is asked to stop: WeChat (the mock)
    // has received its code and holds the reply for 1.5 s.
    const HELD: &str = "slow-1500.held";
    let held = tokio::spawn({
        let (client, url) = (a.client.clone(), a.url("/mina/login"));
        async move {
            client
                .post(&url)
                .json(&json!({"app_id": id, "code": HELD}))
                .send()
                .await
        }
    });
    for _ in 0..500 {
        if a.wechat.calls(HELD) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.wechat.calls(HELD), 1, "the held login reached WeChat");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!held.is_finished(), "the held login is in flight");
    // The rest of `a` (its database and keys) lives to the end of the test.
    let server = a.server;
    server.stop().await;
    let made = logins.await.expect("the login loop ends");
    assert!(!made.is_empty(), "A acknowledged logins before it stopped");
    // The login in flight was drained, not cut: answered, and kept.
    let reply = held
        .await
        .expect("the held login ends")
        .expect("A answered the login in flight when it stopped");
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await.expect("a JSON reply");
    let (uuid, skey) = (&body["data"]["uuid"], &body["data"]["skey"]);
    let (uuid, skey) = (uuid.as_str().unwrap(), skey.as_str().unwrap());
    assert_eq!(b.auth(id, uuid, skey).await.status, 200, "held: {uuid}");
    // Every session A acknowledged authenticates on B.
    for (uuid, skey) in &made {
        assert_eq!(b.auth(id, uuid, skey).await.status, 200, "{uuid}");
    }
    // And B goes on logging in.
    let (uuid, skey) = b.login(id, "max.1").await;
    assert_eq!(b.auth(id, &uuid, &skey).await.status, 200);
}
