//! The store contract on the tiered store over a local 3-master Redis
//! Cluster: every hot-path script touches one slot (the uuid hash tag), so
//! the same code serves a cluster.

use crate::contract::{self, Fixture, T0, creds, login, new_app};
use wafer::store::{AppStore, SessionStore, TieredStore};
use wafer_testkit::backends::{self, RedisCluster};

async fn store_on(cluster: &RedisCluster) -> Fixture<TieredStore> {
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    let store = backends::tiered_at(&cluster.url(), &db, &prefix).await;
    Fixture::with_guards(store, db, prefix)
}

/// Runs every contract case on a fresh store on `$cluster`. Each case is
/// boxed: nine inlined store futures overflow a test thread's stack.
macro_rules! on_cluster {
    (($cluster:ident) $($case:ident),+) => {
        $(
            let fixture = store_on(&$cluster).await;
            Box::pin(contract::$case(fixture.store.clone())).await;
            drop(fixture);
        )+
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_contract_holds_on_a_redis_cluster() {
    wafer_testkit::require_servers!();
    let cluster = RedisCluster::start();
    contract_cases!(on_cluster!(cluster));

    // Sessions land on every master (their keys spread over the slots), and
    // auth works for each of them without a cross-slot error.
    let fixture = store_on(&cluster).await;
    let s = &fixture.store;
    let app = s.create_app(new_app("wxcluster"), T0).await.unwrap();
    let mut sessions = Vec::new();
    for i in 0..30 {
        let (n, skey) = login(&app, &format!("o-{i}"), None, T0);
        sessions.push((s.upsert_session(n).await.unwrap().uuid, skey));
    }
    for (uuid, skey) in &sessions {
        let c = creds(&app, *uuid, skey, T0.plus_millis(1));
        assert!(s.authenticate(&c).await.unwrap().is_some());
    }
    for port in &cluster.ports {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "DBSIZE"])
            .output()
            .unwrap();
        let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(n > 0, "master on port {port} holds no session");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_near_cache_hears_every_master() {
    wafer_testkit::require_servers!();
    let cluster = RedisCluster::start();
    let db = backends::fresh_database().await;
    let prefix = backends::fresh_prefix();
    // Slides at production intervals (36 s for these sessions): a copy
    // that goes away in the test was dropped by a master's push, not by
    // B's own slide finding the session gone.
    let production = wafer::store::tiered::TieredSettings {
        near: Some(wafer::store::near::NearSettings::DEFAULT),
        ..backends::test_settings()
    };
    let a = backends::tiered_with(&cluster.url(), &db, &prefix, production).await;
    let b = backends::tiered_with(&cluster.url(), &db, &prefix, production).await;
    // Tracking is on on every master, for this prefix's sessions.
    for port in &cluster.ports {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "CLIENT", "LIST"])
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        let tracking = list
            .lines()
            .filter(|l| {
                l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('t'))
            })
            .count();
        assert!(
            tracking >= 2,
            "port {port}: {tracking} tracking clients\n{list}"
        );
    }
    let app = a.create_app(new_app("wxnearcluster"), T0).await.unwrap();
    b.refresh_apps().await;
    let near = b.near_cache().expect("on");
    let mut sessions = Vec::new();
    for i in 0..30 {
        let (n, skey) = login(&app, &format!("o-{i}"), None, T0);
        let uuid = a.upsert_session(n).await.unwrap().uuid;
        let c = creds(&app, uuid, &skey, T0.plus_millis(1));
        // Filled (an auth's own write may drop the copy once; it is
        // fetched again).
        let mut held = false;
        for _ in 0..1_000 {
            assert!(b.authenticate(&c).await.unwrap().is_some());
            if near.holds(uuid) {
                held = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(held, "{uuid} never cached");
        sessions.push(c);
    }
    // Revoked through A, wherever their key lives: refused by B within
    // the latency the docs promise (with a margin).
    for c in &sessions {
        assert!(a.revoke(c.uuid).await.unwrap());
        crate::near_cache::refused_after(&b, c).await;
    }
}
