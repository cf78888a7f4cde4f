//! The audit trail of admin actions: one entry per change (and per token
//! read or key check), newest first, paged, with the caller's address and
//! never a secret; kept in PostgreSQL on the tiered store.

use serde_json::json;
use wafer_testkit::{TestApp, spawn_app, spawn_tiered_with};

async fn trail(app: &TestApp, query: &str) -> serde_json::Value {
    let a = app
        .send(app.admin(reqwest::Method::GET, &format!("/admin/audit{query}")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

async fn audited(app: TestApp, appid: &str) {
    let id = app.create_app(appid).await;
    // The secret is reset at WeChat, then given to wafer.
    app.wechat.register_app(appid, "rotated-secret-77");
    let patch = app
        .send(
            app.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
                .json(&json!({"secret": "rotated-secret-77"})),
        )
        .await;
    assert_eq!(patch.status, 200);
    let (uuid, _) = app.login(id, "aud.1").await;
    let revoke = app
        .send(app.admin(reqwest::Method::DELETE, &format!("/admin/sessions/{uuid}")))
        .await;
    assert_eq!(revoke.status, 204);
    let token = app.access_token(id).await;
    assert_eq!(token.status, 200);
    // Reads and failures are not audited: a refused request changed nothing.
    let _ = app
        .send(app.admin(reqwest::Method::GET, "/admin/apps"))
        .await;
    let missing = app
        .send(app.admin(reqwest::Method::DELETE, "/admin/apps/999"))
        .await;
    assert_eq!(missing.status, 404);
    let gone = app
        .send(app.admin(reqwest::Method::DELETE, &format!("/admin/apps/{id}")))
        .await;
    assert_eq!(gone.status, 204);

    let all = trail(&app, "").await;
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "app.deleted",
            "token.read",
            "session.revoked",
            "app.changed",
            "app.created"
        ]
    );
    let first = &all["entries"][4];
    assert_eq!(first["target"], format!("app {id}"));
    assert_eq!(first["caller"], "127.0.0.1");
    assert!(first["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all["entries"][2]["target"], format!("session {uuid}"));
    assert!(
        !all.to_string().contains("rotated-secret-77"),
        "never a secret"
    );
    assert!(all["next_cursor"].is_null());

    // Paged, newest first.
    let page = trail(&app, "?limit=2").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = trail(&app, &format!("?limit=10&cursor={cursor}")).await;
    assert_eq!(rest["entries"][0]["action"], "session.revoked");
    assert_eq!(rest["entries"].as_array().unwrap().len(), 3);
    let bad = app
        .send(app.admin(reqwest::Method::GET, "/admin/audit?limit=0"))
        .await;
    assert_eq!(bad.status, 400);
    let anonymous = app.send(app.client.get(app.url("/admin/audit"))).await;
    assert_eq!(anonymous.status, 403);
}

#[tokio::test]
async fn admin_actions_are_audited_on_the_embedded_store() {
    audited(spawn_app().await, "wxaudemb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_are_audited_in_postgresql() {
    wafer_testkit::require_servers!();
    let app = spawn_tiered_with(|_| {}).await;
    audited(app, "wxaudtier").await;
}
