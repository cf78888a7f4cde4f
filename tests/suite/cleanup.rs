//! A test leaves nothing behind, also when it fails: its database and its
//! Redis keys are removed by guards that run while the panic unwinds.

use wafer_testkit::backends;

async fn database_exists(name_in_url: &str) -> bool {
    let name = name_in_url.rsplit('/').next().unwrap_or("").to_owned();
    let (client, conn) = tokio_postgres::connect(&backends::pg_admin_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL answers");
    tokio::spawn(conn);
    let rows = client
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("query");
    !rows.is_empty()
}

/// Runs `redis-cli` on the test Redis; its output. A redis-cli that could
/// not connect prints nothing on stdout: unchecked, that read as "no keys".
fn redis_cli(args: &[&str]) -> String {
    let url = backends::redis_url();
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url.as_str()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}, {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn redis_keys(pattern: &str) -> usize {
    redis_cli(&["--scan", "--pattern", pattern]).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_still_removes_its_database_and_keys() {
    wafer_testkit::require_servers!();
    // A "test" on a thread of its own that creates both, then fails.
    let failed = std::thread::spawn(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let db = backends::fresh_database().await;
            let prefix = backends::fresh_prefix();
            let key = format!("{prefix}probe");
            assert_eq!(redis_cli(&["SET", &key, "1"]).trim(), "OK");
            let names = (db.to_string(), format!("{prefix}*"));
            std::panic::panic_any(names);
        })
    })
    .join();
    let payload = failed.expect_err("the inner test failed");
    let (db_url, pattern) = payload
        .downcast::<(String, String)>()
        .map(|b| *b)
        .expect("the names");
    assert!(!database_exists(&db_url).await, "its database was dropped");
    assert_eq!(redis_keys(&pattern), 0, "its keys were deleted");
    // Both checks can see what they look for: an existing database, a key
    // under a live prefix.
    assert!(database_exists(&backends::pg_admin_url()).await);
    let live = backends::fresh_prefix();
    assert_eq!(
        redis_cli(&["SET", &format!("{live}probe"), "1"]).trim(),
        "OK"
    );
    assert_eq!(redis_keys(&format!("{live}*")), 1, "the scan finds a key");
}
