//! The store contract on the tiered store over a local 3-master Redis
//! Cluster: every hot-path script touches one slot (the uuid hash tag), so
//! the same code serves a cluster.

mod common;
mod contract;

use std::sync::Arc;

use common::backends::{self, RedisCluster};
use contract::{T0, creds, login, new_app};
use wafer::store::{Store, TieredStore};

async fn store_on(cluster: &RedisCluster) -> Arc<TieredStore> {
    let db = backends::fresh_database().await;
    backends::tiered_at(&cluster.url(), &db, &backends::fresh_prefix()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_contract_holds_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    // Each case is boxed: nine inlined store futures overflow a test
    // thread's stack.
    Box::pin(contract::apps_crud(&*store_on(&cluster).await)).await;
    Box::pin(contract::upsert_keeps_uuid_and_rotates_skey(
        &*store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::union_id_is_kept_when_a_login_lacks_it(
        &*store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::auth_checks_app_skey_and_both_limits(
        &*store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::logout_and_revoke(&*store_on(&cluster).await)).await;
    Box::pin(contract::concurrent_upserts_converge(
        store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::sessions_list_paginates_and_filters(
        &*store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::delete_app_removes_its_sessions(
        &*store_on(&cluster).await,
    ))
    .await;
    Box::pin(contract::health_reports_every_backend_ok(
        &*store_on(&cluster).await,
    ))
    .await;

    // Sessions land on every master (their keys spread over the slots), and
    // auth works for each of them without a cross-slot error.
    let s = store_on(&cluster).await;
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
