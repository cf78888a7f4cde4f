//! The load-test scripts must parse, quickly and without k6: each k6 script
//! is checked by node as an ES module (a `.mjs` copy; `node --check` parses
//! without resolving `k6/*` imports), and `loadtest/run.sh` and
//! `loadtest/faults.sh` by `bash -n`.
//! `scripts/k6-smoke` (run by `scripts/test`) then runs each k6 script for
//! real against a wafer.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); scripts/test installs node"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn k6_scripts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("loadtest/k6"))
        .expect("loadtest/k6 exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    v.sort();
    v
}

fn mjs_copy(dir: &Path, script: &Path) -> PathBuf {
    let text = std::fs::read_to_string(script).expect("readable script");
    let name = script.file_stem().and_then(|s| s.to_str()).expect("a name");
    let copy = dir.join(format!("{name}.mjs"));
    std::fs::write(&copy, text.replace("./common.js", "./common.mjs")).expect("writable");
    copy
}

#[test]
fn k6_scripts_parse_as_es_modules() {
    let scripts = k6_scripts();
    let names: Vec<_> = scripts
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    assert_eq!(
        names,
        ["auth.js", "common.js", "forward.js", "login.js", "mixed.js"]
    );
    let dir = std::env::temp_dir().join(format!("wafer-k6-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    for script in &scripts {
        let copy = mjs_copy(&dir, script);
        let (ok, err) = run(Command::new("node").arg("--check").arg(&copy));
        assert!(ok, "{} does not parse:\n{err}", script.display());
    }
    // The check is real: a broken script is refused.
    let broken = dir.join("broken.mjs");
    std::fs::write(&broken, "export default function ( {").expect("writable");
    assert!(!run(Command::new("node").arg("--check").arg(&broken)).0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn k6_load_scripts_have_thresholds_and_read_the_sessions_file() {
    let common = std::fs::read_to_string(root().join("loadtest/k6/common.js")).expect("common.js");
    assert!(common.contains("open(path)") && common.contains("WAFER_SESSIONS"));
    for name in ["auth.js", "forward.js", "login.js", "mixed.js"] {
        let text =
            std::fs::read_to_string(root().join("loadtest/k6").join(name)).expect("a k6 script");
        assert!(text.contains("thresholds"), "{name} has no thresholds");
        assert!(
            text.contains("http_req_failed"),
            "{name} does not fail on errors"
        );
    }
    let mixed = std::fs::read_to_string(root().join("loadtest/k6/mixed.js")).expect("mixed.js");
    for route in ["/mina/auth", "/mina/login", "/mina/logout"] {
        assert!(mixed.contains(route), "mixed.js never calls {route}");
    }
}

#[test]
fn the_load_runner_parses() {
    for script in [
        "loadtest/run.sh",
        "loadtest/faults.sh",
        "loadtest/near-cache-churn.sh",
    ] {
        let (ok, err) = run(Command::new("bash").arg("-n").arg(root().join(script)));
        assert!(ok, "{script}: {err}");
    }
}
