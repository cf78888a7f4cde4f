//! "Tests fail, not skip, when a server is missing in CI": this binary is
//! run again on one server test with Redis pointed at a closed port, and
//! must fail loudly when CI=true or WAFER_TEST_REQUIRE_SERVERS=1, and skip
//! with a notice otherwise.

use std::process::Command;

use wafer_testkit::backends::free_port;

/// A test that needs both servers.
const SERVER_TEST: &str = "store_tiered::secrets_are_stored_only_as_hashes";

/// Runs [`SERVER_TEST`] in a child with Redis unreachable and `env` set;
/// returns (passed, everything it printed).
fn run_without_redis(env: &[(&str, &str)]) -> (bool, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([SERVER_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(
            "WAFER_TEST_REDIS_URL",
            format!("redis://127.0.0.1:{}", free_port()),
        )
        .env_remove("CI")
        .env_remove("WAFER_TEST_REQUIRE_SERVERS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("1 passed") || text.contains("1 failed"),
        "the test ran: {text}"
    );
    (out.status.success(), text)
}

#[test]
fn a_missing_server_fails_the_run_in_ci() {
    let (passed, text) = run_without_redis(&[("CI", "true")]);
    assert!(!passed, "CI=true with Redis down must fail: {text}");
    assert!(text.contains("REQUIRED TEST SERVER MISSING"), "{text}");
    assert!(text.contains("Redis at redis://127.0.0.1:"), "{text}");
}

#[test]
fn a_missing_server_fails_the_run_when_required() {
    let (passed, text) = run_without_redis(&[("WAFER_TEST_REQUIRE_SERVERS", "1")]);
    assert!(!passed, "{text}");
    assert!(text.contains("REQUIRED TEST SERVER MISSING"), "{text}");
}

#[test]
fn a_missing_server_skips_with_a_notice_otherwise() {
    let (passed, text) = run_without_redis(&[]);
    assert!(passed, "{text}");
    assert!(
        text.contains("skipped") && text.contains("does not answer"),
        "{text}"
    );
}
