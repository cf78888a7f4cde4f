//! wafer's test harness, shared by the test binaries: a running wafer over
//! real HTTP with the WeChat mock ([`app`]), and real Redis and PostgreSQL
//! per test with fault proxies and private servers ([`backends`]).
//!
//! Tests that need Redis or PostgreSQL start with [`require_servers!`]:
//! where the servers answer, the test runs; where they do not, the test
//! fails loudly when `WAFER_TEST_REQUIRE_SERVERS=1` or `CI=true` (what
//! `scripts/test` and CI set), and is skipped with a notice otherwise (a
//! laptop's `cargo test` without servers).

#![warn(missing_docs)]

pub mod app;
pub mod backends;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

pub use app::*;

/// Whether a missing server must fail the run rather than skip the tests.
pub fn servers_required() -> bool {
    let set = |var: &str, value: &str| std::env::var(var).is_ok_and(|v| v == value);
    set("WAFER_TEST_REQUIRE_SERVERS", "1") || set("CI", "true")
}

/// What is wrong with the test servers, or `None` when both answer. Checked
/// once per test binary.
pub fn servers_missing() -> Option<&'static str> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            let mut missing = Vec::new();
            for (name, url) in [
                ("Redis", backends::redis_url()),
                ("PostgreSQL", backends::pg_admin_url()),
            ] {
                if !answers(&backends::host_port(&url)) {
                    missing.push(format!("{name} at {}", redact(&url)));
                }
            }
            (!missing.is_empty()).then(|| missing.join(" and "))
        })
        .as_deref()
}

/// `url` with the password of its user info masked: a URL in a message
/// must not carry a secret.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

fn answers(host_port: &str) -> bool {
    let Ok(addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// `true` when the test may use the servers. Panics (a failed test) when
/// they are missing and required; prints a notice and returns `false`
/// (the caller returns: a skip) when they are missing and not required.
pub fn servers_ready(test: &str) -> bool {
    let Some(missing) = servers_missing() else {
        return true;
    };
    if servers_required() {
        panic!(
            "REQUIRED TEST SERVER MISSING: {missing} does not answer, and this run requires \
             the servers (WAFER_TEST_REQUIRE_SERVERS=1 or CI=true). Run scripts/test, which \
             starts them, or set WAFER_TEST_REDIS_URL / WAFER_TEST_DATABASE_URL."
        );
    }
    eprintln!(
        "skipped {test}: {missing} does not answer (set WAFER_TEST_REQUIRE_SERVERS=1 to fail instead)"
    );
    false
}

/// The path of program `name` (searched in `PATH` and the sbin folders),
/// when the test may use it. Like [`servers_ready`]: a missing program
/// fails the test when the run requires its servers and tools (CI), and
/// skips it with a notice otherwise.
pub fn tool(name: &str, test: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if servers_required() {
            panic!(
                "REQUIRED TEST TOOL MISSING: {name} is not installed, and this run requires it \
                 (WAFER_TEST_REQUIRE_SERVERS=1 or CI=true). Run scripts/test, which installs it."
            );
        }
        eprintln!("skipped {test}: {name} is not installed");
    }
    found
}

/// Returns from the calling test unless the test servers answer; see
/// [`servers_ready`].
#[macro_export]
macro_rules! require_servers {
    () => {
        if !$crate::servers_ready(module_path!()) {
            return;
        }
    };
}
