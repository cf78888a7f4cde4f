//! `wafer migrate` and `wafer apps …` as an operator runs them.

use std::process::{Command, Output};

use wafer_testkit::backends;

/// `wafer ARGS` on database `db` and Redis under `prefix`.
fn wafer(db: &str, prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wafer"))
        .args(args)
        .env("WAFER_DATABASE_URL", db)
        .env("WAFER_REDIS_URL", backends::redis_url())
        .env("WAFER_REDIS_PREFIX", prefix)
        .env_remove("WAFER_APP_SECRET")
        .output()
        .expect("wafer runs")
}

/// Asserts that `wafer ARGS` on database `db` alone refuses, naming the
/// Redis setting, instead of leaving sessions behind in Redis.
fn refused_without_redis(db: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_wafer"))
        .args(args)
        .env("WAFER_DATABASE_URL", db)
        .env_remove("WAFER_REDIS_URL")
        .output()
        .expect("wafer runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WAFER_REDIS_URL"));
}

/// Asserts that the trail holds an entry of `action` on `target` (the
/// command line's actions are audited as the admin API's).
async fn assert_audited(app: &wafer_testkit::TestApp, action: &str, target: &str) {
    let trail = app
        .send(app.admin(reqwest::Method::GET, "/admin/audit"))
        .await;
    assert_eq!(trail.status, 200, "{}", trail.text);
    let entries = trail.body["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == action && e["target"] == target),
        "no {action} of {target} in {entries:?}"
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn migrate_then_manage_apps_without_a_server() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let first = wafer(&db, &prefix, &["migrate"]);
    assert!(first.status.success());
    assert!(stdout(&first).contains("0001_init.sql"));
    let again = wafer(&db, &prefix, &["migrate"]);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    let mut add = Command::new(env!("CARGO_BIN_EXE_wafer"));
    add.args(["apps", "add", "--title", "Demo", "--appid", "wxcli"])
        .env("WAFER_DATABASE_URL", db.as_str())
        .env("WAFER_REDIS_URL", backends::redis_url())
        .env("WAFER_REDIS_PREFIX", prefix.as_str())
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

    let list = wafer(&db, &prefix, &["apps", "list"]);
    let listed = stdout(&list);
    assert!(listed.contains("wxcli") && listed.contains("Demo"));
    assert!(
        !listed.contains("cli-secret-9d2"),
        "secrets are never listed"
    );

    let bad = wafer(
        &db,
        &prefix,
        &[
            "apps", "add", "--title", "", "--appid", "wx2", "--secret", "s",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("title"));

    let removed = wafer(&db, &prefix, &["apps", "remove", "wxcli"]);
    assert!(removed.status.success());
    assert!(!stdout(&wafer(&db, &prefix, &["apps", "list"])).contains("wxcli"));
    let missing = wafer(&db, &prefix, &["apps", "remove", "wxcli"]);
    assert!(!missing.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_remove_is_audited_and_ends_the_apps_sessions_in_redis() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxclirm").await;
    let (uuid, _skey) = app.login(id, "rm.1").await;
    let (db, prefix) = (
        app.database_url().unwrap().to_owned(),
        app.redis_prefix().unwrap().to_owned(),
    );
    let key = format!("{prefix}s:{{{uuid}}}");
    let removed_mark = |key: &str| {
        let out = Command::new("redis-cli")
            .args(["-u", &backends::redis_url(), "HGET", key, "removed"])
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli failed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(removed_mark(&key), "", "the session is live in Redis");
    let removed = wafer(&db, &prefix, &["apps", "remove", "wxclirm"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    // The session left Redis with the app (a tombstone in its place, so
    // that no late writer brings it back), not at its expiry.
    assert_eq!(
        removed_mark(&key),
        "1",
        "the session is still live in Redis"
    );
    // Audited as the admin API audits it.
    assert_audited(&app, "app.deleted", &format!("app {id}")).await;
    // Without Redis the command refuses instead of leaving sessions behind.
    refused_without_redis(&db, &["apps", "list"]);
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
    let run = |args: &[&str]| wafer(&db, &prefix, args);
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
    assert_audited(&app, "user.revoked", &format!("app {id} user {open_id}")).await;
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
    refused_without_redis(
        &db,
        &["sessions", "show", "--app", "wxclis", "--open-id", &open_id],
    );
}

#[tokio::test]
async fn apps_of_the_original_wafer_are_imported_once() {
    wafer_testkit::require_servers!();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let file = std::env::temp_dir().join(format!("cappinfo-{}.tsv", uuid::Uuid::new_v4().simple()));
    // What `mysql -B -e 'SELECT … FROM cAppinfo'` prints.
    std::fs::write(
        &file,
        "appid\tsecret\tlogin_duration\tsession_duration\nwxold1\tsecret-one\t7\t3600\nwxold2\tsecret-two\t30\t2592000\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let first = wafer(&db, &prefix, &["apps", "import", path]);
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
    let again = wafer(&db, &prefix, &["apps", "import", path]);
    assert!(
        stdout(&again).contains("imported 0 apps, kept 2"),
        "{}",
        stdout(&again)
    );
    let list = stdout(&wafer(&db, &prefix, &["apps", "list"]));
    assert!(list.contains("wxold1\twxold1\t7\t3600"), "{list}");
    assert!(!list.contains("secret-one"), "secrets are never listed");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_of_the_original_wafer_are_imported_and_stay_logged_in() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wximp").await;
    // A user who already logged in to wafer keeps wafer's session.
    let (taken_uuid, taken_skey) = app.login(id, "taken.1").await;
    // Live rows by the server's (manual) clock, which runs ahead of the
    // system clock; the expired row by the system clock the import
    // command uses. Both clocks agree on which is which.
    let now = u64::try_from(wafer::clock::Clock::now(&*app.clock).0 / 1000).unwrap();
    let system_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (live, expired, taken) = (
        uuid::Uuid::new_v4().simple().to_string(),
        uuid::Uuid::new_v4().simple().to_string(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    let old_key = wechat_mock::session_key_for("imp.old");
    let row = |uuid: &str, skey: &str, created: u64, open_id: &str| {
        format!(
            "{uuid}\t{skey}\t{created}\t{}\t{open_id}\t{old_key}\t{{\"nickName\":\"imp\"}}\n",
            created + 60
        )
    };
    // What `mysql -B` prints for the query the help text gives.
    let text = format!(
        "uuid\tskey\tcreate_time\tlast_visit_time\topen_id\tsession_key\tuser_info\n{}{}{}{}",
        row(
            &live,
            "plain-skey-live",
            now - 3600,
            &wechat_mock::open_id_for("wximp", "imp.1")
        ),
        row(
            &expired,
            "plain-skey-expired",
            system_now - 40 * 86_400,
            "o-gone"
        ),
        row(
            &taken,
            "plain-skey-taken",
            now - 60,
            &wechat_mock::open_id_for("wximp", "taken.1")
        ),
        row("not-a-uuid", "plain-skey-bad", now, "o-bad"),
    );
    let file = std::env::temp_dir().join(format!(
        "csessioninfo-{}.tsv",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&file, text).unwrap();
    let db = app.database_url().unwrap().to_owned();
    // Only PostgreSQL is needed: Redis reads the sessions through.
    let import = || {
        Command::new(env!("CARGO_BIN_EXE_wafer"))
            .args([
                "sessions",
                "import",
                "--app",
                "wximp",
                file.to_str().unwrap(),
            ])
            .env("WAFER_DATABASE_URL", &db)
            .env_remove("WAFER_REDIS_URL")
            .output()
            .expect("wafer runs")
    };
    let first = import();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let said = stdout(&first);
    assert!(
        said.contains("imported 1 sessions into app")
            && said.contains("kept 1")
            && said.contains("1 had expired")
            && said.contains("1 rows unreadable")
            && said.contains("skipped line 5: uuid"),
        "{said}"
    );
    assert!(
        !said.contains("plain-skey"),
        "skeys are never printed: {said}"
    );

    // The business server's check of the imported session passes on both
    // protocols, with the id in the original's form.
    let checked = app.auth(id, &live, "plain-skey-live").await;
    assert_eq!(checked.status, 200, "{}", checked.text);
    assert_eq!(checked.body["data"]["user_info"]["nickName"], "imp");
    wafer_testkit::assert_fail(
        &app.auth(id, &live, "plain-skey-wrong").await,
        401,
        "session_invalid",
    );
    let original = app
        .post(
            "/mina_auth/",
            serde_json::json!({"version": 1, "componentName": "MA", "interface": {
                "interfaceName": "qcloud.cam.auth",
                "para": {"id": live, "skey": "plain-skey-live", "appid": "wximp"}}}),
        )
        .await;
    assert_eq!(original.body["returnCode"], 0, "{}", original.text);
    // Its session_key came along: data fetched later still decrypts.
    let data = wechat_mock::user_data_for("wximp", "imp.old");
    let decrypted = app
        .post(
            "/mina_auth/",
            serde_json::json!({"version": 1, "componentName": "MA", "interface": {
                "interfaceName": "qcloud.cam.decrypt",
                "para": {"id": live, "skey": "plain-skey-live", "appid": "wximp",
                         "encrypt_data": data.encrypted_data, "iv": data.iv}}}),
        )
        .await;
    assert_eq!(decrypted.body["returnCode"], 0, "{}", decrypted.text);
    assert_eq!(decrypted.body["returnData"]["nickName"], "imp");
    // Expired and clashing rows were not imported; wafer's own session stands.
    wafer_testkit::assert_fail(
        &app.auth(id, &expired, "plain-skey-expired").await,
        401,
        "session_invalid",
    );
    wafer_testkit::assert_fail(
        &app.auth(id, &taken, "plain-skey-taken").await,
        401,
        "session_invalid",
    );
    assert_eq!(app.auth(id, &taken_uuid, &taken_skey).await.status, 200);

    // The user's next login keeps the original's id.
    let (uuid, _) = app.login(id, "imp.2").await;
    assert_eq!(
        uuid::Uuid::parse_str(&uuid).unwrap().simple().to_string(),
        live
    );
    // Running it again changes nothing.
    let again = stdout(&import());
    assert!(
        again.contains("imported 0 sessions") && again.contains("kept 2"),
        "{again}"
    );
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_checks_a_users_session_key_from_the_command_line() {
    wafer_testkit::require_servers!();
    let app = wafer_testkit::spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxcheck").await;
    app.login(id, "kim.1").await;
    let open_id = wechat_mock::open_id_for("wxcheck", "kim.1");
    let (db, prefix) = (
        app.database_url().unwrap().to_owned(),
        app.redis_prefix().unwrap().to_owned(),
    );
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_wafer"))
            .args([
                "sessions",
                "check-key",
                "--app",
                "wxcheck",
                "--open-id",
                &open_id,
            ])
            .env("WAFER_DATABASE_URL", &db)
            .env("WAFER_REDIS_URL", backends::redis_url())
            .env("WAFER_REDIS_PREFIX", &prefix)
            .env("WAFER_WECHAT_API_BASE", format!("http://{}", app.mock))
            .output()
            .expect("wafer runs")
    };
    let current = check();
    assert!(
        current.status.success(),
        "{}",
        String::from_utf8_lossy(&current.stderr)
    );
    assert!(
        stdout(&current).contains("is the user's current one"),
        "{}",
        stdout(&current)
    );
    // The user logs in through another server of the app.
    app.login_elsewhere("wxcheck", "kim.2").await;
    let stale = check();
    assert!(
        stdout(&stale).contains("is NOT the user's current one"),
        "{}",
        stdout(&stale)
    );
    assert!(!stdout(&stale).contains(&wechat_mock::session_key_for("kim.1")));
    // The command shares the running wafer's token (one fetch in all).
    assert_eq!(app.wechat.token_calls("wxcheck").normal, 1);
    assert_audited(&app, "key.checked", &format!("app {id} user {open_id}")).await;
}
