//! The near cache in the production shape: repeated auths served in
//! process, changes made anywhere seen at once, and nothing stale accepted
//! when Redis goes away.

use std::time::Duration;

use wafer_testkit::spawn_tiered_with;

/// The value of the series `name` (labels included, as rendered) in `text`.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_auths_are_served_in_process() {
    wafer_testkit::require_servers!();
    let a = spawn_tiered_with(|_| {}).await;
    let id = a.create_app("wxnear").await;
    let (uuid, skey) = a.login(id, "amy.1").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..10 {
        assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let m = a.metrics().await;
    for l in m.lines().filter(|l| l.contains("near_cache") || l.contains("read_through") || l.contains("op=\"track\"") ) {
        eprintln!("{l}");
    }
    assert!(series(&m, "wafer_near_cache_hits_total{answer=\"accepted\"}") >= 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_repopulate() {
    wafer_testkit::require_servers!();
    let a = spawn_tiered_with(|_| {}).await;
    let id = a.create_app("wxnear2").await;
    let (uuid, skey) = a.login(id, "amy.1").await;
    let key = format!("{}s:{{{}}}", a.redis_prefix().unwrap(), uuid);
    let cli = |args: &[&str]| {
        let o = std::process::Command::new("redis-cli").arg("-u").arg(wafer_testkit::backends::redis_url()).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).replace('\n', " ")
    };
    eprintln!("DEBUG before {}", cli(&["PTTL", &key]));
    assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    eprintln!("DEBUG after auth {}", cli(&["PTTL", &key]));
    cli(&["DEL", &key]);
    assert_eq!(a.auth(id, &uuid, &skey).await.status, 200);
    eprintln!("DEBUG after rt {}", cli(&["PTTL", &key]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!("DEBUG later {}", cli(&["PTTL", &key]));
}
