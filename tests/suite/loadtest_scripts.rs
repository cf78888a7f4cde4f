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

/// The entries of the object literal that opens right after `opening` in
/// `script`: `(metric, [expressions])`, sorted. The scripts write them one
/// per line as `'metric{tag:value}': ['expression', …]`.
fn threshold_object(script: &str, opening: &str) -> Vec<(String, Vec<String>)> {
    let start = script
        .find(opening)
        .unwrap_or_else(|| panic!("no `{opening}` in the script"))
        + opening.len();
    let body = &script[start..];
    // Up to the brace that closes it (a metric's `{route:…}` nests).
    let mut depth = 1;
    let end = body
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        })
        .expect("the object closes");
    let body: Vec<&str> = body[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect();
    let mut rest = body.join("\n");
    let mut entries = Vec::new();
    while let Some(open) = rest.find('[') {
        let close = open + rest[open..].find(']').expect("a closed list");
        let metric = rest[..open]
            .trim_matches(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == '\'');
        let expressions = rest[open + 1..close]
            .split(',')
            .map(|e| e.trim().trim_matches('\'').to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        entries.push((metric.to_owned(), expressions));
        rest = rest[close + 1..].to_owned();
    }
    entries.sort();
    entries
}

#[test]
fn k6_load_scripts_have_thresholds_and_read_the_sessions_file() {
    let k6 = root().join("loadtest/k6");
    let common = std::fs::read_to_string(k6.join("common.js")).expect("common.js");
    assert!(common.contains("open(path)") && common.contains("WAFER_SESSIONS"));
    // BENCHMARKS.md's targets: auth p99 < 3 ms, >= 5,000 logins/s with a
    // p99 under 50 ms; no request fails and every check passes.
    let never_fail = [("checks", "rate==1"), ("http_req_failed", "rate==0")];
    let auth = ("http_req_duration{route:auth}", "p(99)<3");
    let login = [
        ("http_req_duration{route:login}", "p(99)<50"),
        ("http_reqs{route:login}", "rate>=5000"),
    ];
    let forward = ("http_req_duration{route:forward}", "p(99)<3");
    let scripts: [(&str, Vec<(&str, &str)>); 4] = [
        ("auth.js", vec![auth]),
        ("forward.js", vec![forward]),
        ("login.js", login.to_vec()),
        ("mixed.js", vec![auth, login[0]]),
    ];
    for (name, targets) in scripts {
        let text = std::fs::read_to_string(k6.join(name)).expect("a k6 script");
        let mut want: Vec<(String, Vec<String>)> = never_fail
            .iter()
            .chain(&targets)
            .map(|(m, e)| (m.to_string(), vec![e.to_string()]))
            .collect();
        want.sort();
        assert_eq!(
            threshold_object(&text, "thresholds: thresholds({"),
            want,
            "{name}'s thresholds"
        );
        // A threshold on a tag no request carries has no samples, and k6
        // passes it whatever the speed.
        for (metric, _) in &targets {
            let tag = metric
                .split_once("{route:")
                .and_then(|(_, t)| t.strip_suffix('}'))
                .expect("a route tag");
            assert!(
                text.contains(&format!("tags: {{ route: '{tag}' }}")),
                "{name}: no request is tagged route:{tag}"
            );
        }
    }
    // A smoke run keeps only what holds at any speed, and at least one
    // request.
    let mut smoke: Vec<(String, Vec<String>)> = never_fail
        .iter()
        .chain(&[("http_reqs", "count>0")])
        .map(|(m, e)| (m.to_string(), vec![e.to_string()]))
        .collect();
    smoke.sort();
    assert_eq!(
        threshold_object(&common, "if (SMOKE) {\n    return {"),
        smoke
    );

    let mixed = std::fs::read_to_string(k6.join("mixed.js")).expect("mixed.js");
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
