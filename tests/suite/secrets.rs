//! Secrets at rest: with data keys, a dump of wafer's database holds
//! neither app secrets nor session keys; `wafer rekey` seals what was
//! stored in plain text and re-seals under a new key; a wafer without the
//! key a value is sealed under refuses to start, saying which key.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use wafer_testkit::spawn_tiered_with;

fn dump(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["--data-only", db])
        .output()
        .expect("pg_dump runs (scripts/test installs postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rekey(db: &str, keys: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wafer"))
        .arg("rekey")
        .env("WAFER_DATABASE_URL", db)
        .env("WAFER_DATA_KEYS", keys)
        .output()
        .expect("wafer runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_holds_no_secret_and_keys_rotate() {
    wafer_testkit::require_servers!();
    let k1 = format!("k1:{}", STANDARD.encode([7u8; 32]));
    let k2 = format!("k2:{}", STANDARD.encode([9u8; 32]));
    // Plain text first, as a deployment from before data keys.
    let plain = spawn_tiered_with(|_| {}).await;
    let db = plain.database_url().unwrap().to_owned();
    let id = plain.create_app("wxseal").await;
    let (uuid, skey) = plain.login(id, "sue.1").await;
    let (secret, session_key) = ("secret-of-wxseal", wechat_mock::session_key_for("sue.1"));
    let before = dump(&db);
    assert!(
        before.contains(secret) && before.contains(&session_key),
        "plain at first"
    );

    // rekey seals both, online.
    let said = rekey(&db, &k1);
    assert!(
        said.contains("sealed 1 app secrets and 1 session keys"),
        "{said}"
    );
    let sealed = dump(&db);
    assert!(!sealed.contains(secret), "no app secret in the dump");
    assert!(!sealed.contains(&session_key), "no session key in the dump");
    assert!(sealed.contains("sealed:v1:k1:"));

    // A wafer with the key works on the sealed values: logins (the app
    // secret), decryption (the session key).
    let sealed_app = plain
        .sibling_with(|s| s.database.data_keys = Some(k1.as_str().into()))
        .await
        .expect("starts with the key");
    let data = sealed_app.user_data("wxseal", "sue.1").await;
    let dec = sealed_app
        .post(
            "/mina/decrypt",
            serde_json::json!({"app_id": id, "uuid": uuid, "skey": skey,
                "encrypt_data": data["encryptedData"], "iv": data["iv"]}),
        )
        .await;
    assert_eq!(dec.status, 200, "{}", dec.text);
    let (_, _) = sealed_app.login(id, "tom.1").await;
    assert!(
        !dump(&db).contains(&wechat_mock::session_key_for("tom.1")),
        "new logins are sealed"
    );

    // Rotation: a new key first, the old one still listed; rekey moves all.
    let both = format!("{k2},{k1}");
    let said = rekey(&db, &both);
    assert!(
        said.contains("sealed 1 app secrets and 2 session keys"),
        "{said}"
    );
    let rotated = dump(&db);
    assert!(rotated.contains("sealed:v1:k2:") && !rotated.contains("sealed:v1:k1:"));
    assert!(rekey(&db, &both).contains("sealed 0 app secrets and 0 session keys"));

    // Without the key, wafer says which one it needs instead of serving.
    let Err(e) = plain
        .sibling_with(|s| s.database.data_keys = Some(k1.as_str().into()))
        .await
    else {
        panic!("a wafer without key k2 must not start")
    };
    assert!(e.to_string().contains("k2"), "{e}");
    let Err(e) = plain.sibling_with(|_| {}).await else {
        panic!("a wafer without data keys must not start on sealed secrets")
    };
    assert!(e.to_string().contains("WAFER_DATA_KEYS"), "{e}");
}
