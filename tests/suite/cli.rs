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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_show_and_revoke_one_user_from_the_command_line() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxclis").await;
    let (uuid, skey) = app.login(id, "cli.1").await;
    let open_id = wechat_mock::open_id_for("wxclis", "cli.1");
    let (db, prefix) = (
        app.database_url().unwrap().to_owned(),
        app.redis_prefix().unwrap().to_owned(),
    );
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wafer"))
            .args(args)
            .env("WAFER_DATABASE_URL", &db)
            .env("WAFER_REDIS_URL", backends::redis_url())
            .env("WAFER_REDIS_PREFIX", &prefix)
            .output()
            .expect("wafer runs")
    };
    let show = run(&["sessions", "show", "--app", "wxclis", "--open-id", &open_id]);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let text = stdout(&show);
    assert!(text.contains(&uuid) && text.contains(&open_id), "{text}");
    assert!(!text.contains(&skey));
    let revoke = run(&[
        "sessions",
        "revoke",
        "--app",
        &id.to_string(),
        "--open-id",
        &open_id,
    ]);
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    // Gone from Redis too: the running server refuses it at once.
    wafer_testkit::assert_fail(&app.auth(id, &uuid, &skey).await, 401, "session_invalid");
    let again = run(&[
        "sessions",
        "revoke",
        "--app",
        "wxclis",
        "--open-id",
        &open_id,
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no session"));
    // Without Redis the command refuses instead of leaving a copy behind.
    let half = Command::new(env!("CARGO_BIN_EXE_wafer"))
        .args(["sessions", "show", "--app", "wxclis", "--open-id", &open_id])
        .env("WAFER_DATABASE_URL", &db)
        .env_remove("WAFER_REDIS_URL")
        .output()
        .unwrap();
    assert!(!half.status.success());
    assert!(String::from_utf8_lossy(&half.stderr).contains("WAFER_REDIS_URL"));
}

#[tokio::test]
async fn apps_of_the_original_wafer_are_imported_once() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let file = std::env::temp_dir().join(format!("cappinfo-{}.tsv", uuid::Uuid::new_v4().simple()));
    // What `mysql -B -e 'SELECT … FROM cAppinfo'` prints.
    std::fs::write(
        &file,
        "appid\tsecret\tlogin_duration\tsession_duration\nwxold1\tsecret-one\t7\t3600\nwxold2\tsecret-two\t30\t2592000\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let first = wafer(&db, &["apps", "import", path]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout(&first).contains("imported 2 apps, kept 0"),
        "{}",
        stdout(&first)
    );
    let again = wafer(&db, &["apps", "import", path]);
    assert!(
        stdout(&again).contains("imported 0 apps, kept 2"),
        "{}",
        stdout(&again)
    );
    let list = stdout(&wafer(&db, &["apps", "list"]));
    assert!(list.contains("wxold1\twxold1\t7\t3600"), "{list}");
    assert!(!list.contains("secret-one"), "secrets are never listed");
    let _ = std::fs::remove_file(&file);
}
