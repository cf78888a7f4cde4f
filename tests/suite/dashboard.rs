//! The Grafana dashboard queries only series wafer exports, and wafer
//! exports (with help text) every series it documents.

use std::collections::BTreeSet;

use wafer::metrics::register::{Kind, SERIES};
use wafer_testkit::spawn_app;

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/wafer.json"
    ))
    .expect("dashboards/wafer.json exists");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

fn queried_series(d: &serde_json::Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for panel in d["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("wafer_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    names
}

#[test]
fn every_queried_series_is_exported() {
    let d = dashboard();
    let names = queried_series(&d);
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let known = SERIES.iter().any(|(series, kind, _)| match kind {
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(series)),
            _ => name == series,
        });
        assert!(
            known,
            "the dashboard queries {name}, which wafer does not export"
        );
    }
}

#[test]
fn the_dashboard_is_importable_with_a_datasource_variable() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource")
    );
    for panel in d["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for t in panel["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}");
        }
    }
    for title in [
        "Request rate by route",
        "Error ratio by route",
        "Latency p50 / p99 by route",
        "WeChat calls by API and result",
        "Access tokens and phone numbers",
        "Redis read-through rate",
        "Write-behind backlog",
        "Sessions stored",
    ] {
        assert!(
            d["panels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["title"] == title),
            "panel {title} missing"
        );
    }
}

#[tokio::test]
async fn every_documented_series_is_rendered_with_help() {
    let app = spawn_app().await;
    // The token age is one series per app, there once a token was served.
    let id = app.create_app("wxhelp").await;
    let token = app.access_token(id).await;
    assert_eq!(token.status, 200, "{}", token.text);
    let text = app.send(app.client.get(app.url("/metrics"))).await.text;
    for (name, _, _) in SERIES {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
}
