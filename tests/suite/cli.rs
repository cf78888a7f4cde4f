//! `wafer migrate` and `wafer apps …` as an operator runs them.

use std::process::{Command, Output};

use wafer_testkit::backends;

fn wafer(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wafer"))
        .args(args)
        .env("WAFER_DATABASE_URL", db)
        .env_remove("WAFER_APP_SECRET")
        .output()
        .expect("wafer runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn migrate_then_manage_apps_without_a_server() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let first = wafer(&db, &["migrate"]);
    assert!(first.status.success());
    assert!(stdout(&first).contains("0001_init.sql"));
    let again = wafer(&db, &["migrate"]);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    let mut add = Command::new(env!("CARGO_BIN_EXE_wafer"));
    add.args(["apps", "add", "--title", "Demo", "--appid", "wxcli"])
        .env("WAFER_DATABASE_URL", db.as_str())
        .env("WAFER_APP_SECRET", "cli-secret-9d2");
    let added = add.output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(stdout(&added).contains("added app 1 (wxcli)"));
    let dup = add.output().unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));

    let list = wafer(&db, &["apps", "list"]);
    let listed = stdout(&list);
    assert!(listed.contains("wxcli") && listed.contains("Demo"));
    assert!(
        !listed.contains("cli-secret-9d2"),
        "secrets are never listed"
    );

    let bad = wafer(
        &db,
        &[
            "apps", "add", "--title", "", "--appid", "wx2", "--secret", "s",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("title"));

    let removed = wafer(&db, &["apps", "remove", "wxcli"]);
    assert!(removed.status.success());
    assert!(!stdout(&wafer(&db, &["apps", "list"])).contains("wxcli"));
    let missing = wafer(&db, &["apps", "remove", "wxcli"]);
    assert!(!missing.status.success());
}
