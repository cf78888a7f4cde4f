//! The store contract: what every [`Store`] must do, written once against the
//! trait. The cases are listed once, in [`contract_cases!`]; a test module
//! instantiates them all with `store_contract!(make_store)`, where
//! `make_store` is an async fn returning a [`Fixture`] of a fresh, empty
//! store (which cleans up after the case), or `None` to skip.

use std::sync::Arc;

use uuid::Uuid;
use wafer::clock::Timestamp;
use wafer::domain::app::{App, AppPatch, AppRef, NewApp};
use wafer::domain::session::{Credentials, NewSession, SessionQuery};
use wafer::domain::skey::{Skey, SkeyHash};
use wafer::store::{Store, StoreError};
pub use wafer_testkit::backends::Fixture;

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub fn new_app(appid: &str) -> NewApp {
    NewApp {
        title: "contract".into(),
        appid: appid.into(),
        secret: "s3cret".into(),
        login_duration: 30,
        session_duration: 3600,
    }
}

pub fn login(
    app: &App,
    open_id: &str,
    user_info: Option<&str>,
    now: Timestamp,
) -> (NewSession, Skey) {
    let skey = Skey::mint().unwrap();
    (
        NewSession {
            app_id: app.id,
            open_id: open_id.into(),
            union_id: None,
            session_key: "c2Vzc2lvbmtleTEyMzQ1Ng==".into(),
            skey_hash: skey.hash(),
            user_info: user_info.map(str::to_owned),
            now,
        },
        skey,
    )
}

pub fn creds(app: &App, uuid: Uuid, skey: &Skey, now: Timestamp) -> Credentials {
    Credentials {
        uuid,
        skey_hash: SkeyHash::of(skey.expose()),
        app_id: app.id,
        limits: app.limits(),
        now,
    }
}

pub async fn apps_crud<S: Store>(s: Arc<S>) {
    let a = s.create_app(new_app("wxc1"), T0).await.unwrap();
    let b = s.create_app(new_app("wxc2"), T0).await.unwrap();
    assert_ne!(a.id, b.id);
    assert!(matches!(
        s.create_app(new_app("wxc1"), T0).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.app(&AppRef::Id(a.id)).await.unwrap().unwrap().appid,
        "wxc1"
    );
    assert_eq!(
        s.app(&AppRef::Appid("wxc2".into()))
            .await
            .unwrap()
            .unwrap()
            .id,
        b.id
    );
    assert!(s.app(&AppRef::Id(9999)).await.unwrap().is_none());
    let list = s.list_apps().await.unwrap();
    assert_eq!(
        list.iter().map(|a| a.appid.as_str()).collect::<Vec<_>>(),
        ["wxc1", "wxc2"]
    );

    let patch = AppPatch {
        appid: Some("wxc2".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.update_app(a.id, patch, T0).await,
        Err(StoreError::Conflict)
    ));
    let later = T0.plus_millis(5_000);
    let patch = AppPatch {
        appid: Some("wxc1b".into()),
        session_duration: Some(60),
        ..Default::default()
    };
    let updated = s.update_app(a.id, patch, later).await.unwrap();
    assert_eq!(
        (
            updated.appid.as_str(),
            updated.session_duration,
            updated.updated_at
        ),
        ("wxc1b", 60, later)
    );
    assert_eq!(updated.created_at, T0);
    assert!(
        s.app(&AppRef::Appid("wxc1".into()))
            .await
            .unwrap()
            .is_none(),
        "old appid gone"
    );
    assert!(matches!(
        s.update_app(9999, AppPatch::default(), T0).await,
        Err(StoreError::NotFound)
    ));
    s.delete_app(a.id).await.unwrap();
    assert!(matches!(
        s.delete_app(a.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.app(&AppRef::Id(a.id)).await.unwrap().is_none());
}

pub async fn upsert_keeps_uuid_and_rotates_skey<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxu"), T0).await.unwrap();
    let (n1, k1) = login(&app, "o-1", Some(r#"{"a":1}"#), T0);
    let first = s.upsert_session(n1).await.unwrap();
    assert_eq!(first.user_info.as_deref(), Some(r#"{"a":1}"#));
    let t1 = T0.plus_millis(1_000);
    let (n2, k2) = login(&app, "o-1", None, t1);
    let second = s.upsert_session(n2).await.unwrap();
    assert_eq!(first.uuid, second.uuid);
    assert_eq!(
        second.user_info.as_deref(),
        Some(r#"{"a":1}"#),
        "kept without new data"
    );
    assert!(
        s.authenticate(&creds(&app, first.uuid, &k1, t1))
            .await
            .unwrap()
            .is_none(),
        "old skey dead"
    );
    let p = s
        .authenticate(&creds(&app, first.uuid, &k2, t1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*p.open_id, "o-1");

    let (n3, _) = login(&app, "o-1", Some(r#"{"b":2}"#), t1);
    assert_eq!(
        s.upsert_session(n3).await.unwrap().user_info.as_deref(),
        Some(r#"{"b":2}"#),
        "replaced"
    );
    let (n4, _) = login(&app, "o-2", None, t1);
    assert_ne!(s.upsert_session(n4).await.unwrap().uuid, first.uuid);
}

pub async fn union_id_is_kept_when_a_login_lacks_it<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxun"), T0).await.unwrap();
    let (mut n1, _) = login(&app, "o-u", None, T0);
    n1.union_id = Some("union-1".into());
    s.upsert_session(n1).await.unwrap();
    let (n2, k2) = login(&app, "o-u", None, T0);
    let uuid = s.upsert_session(n2).await.unwrap().uuid;
    let p = s
        .authenticate(&creds(&app, uuid, &k2, T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.union_id.as_deref(), Some("union-1"));
}

pub async fn auth_checks_app_skey_and_both_limits<S: Store>(s: Arc<S>) {
    let mut spec = new_app("wxa");
    spec.login_duration = 1;
    spec.session_duration = 600;
    let app = s.create_app(spec, T0).await.unwrap();
    let other = s.create_app(new_app("wxa2"), T0).await.unwrap();
    let (n, k) = login(&app, "o-a", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let at = |ms: i64| T0.plus_millis(ms);
    assert!(
        s.authenticate(&creds(&other, uuid, &k, at(1)))
            .await
            .unwrap()
            .is_none(),
        "other app"
    );
    assert!(
        s.authenticate(&creds(&app, Uuid::new_v4(), &k, at(1)))
            .await
            .unwrap()
            .is_none(),
        "unknown"
    );
    let wrong = Skey::mint().unwrap();
    assert!(
        s.authenticate(&creds(&app, uuid, &wrong, at(1)))
            .await
            .unwrap()
            .is_none(),
        "wrong skey"
    );
    // Sliding: checks every 500 s keep it alive; each slides last_visit.
    let mut t = 0;
    while t + 500_000 < 86_400_000 {
        t += 500_000;
        assert!(
            s.authenticate(&creds(&app, uuid, &k, at(t)))
                .await
                .unwrap()
                .is_some(),
            "alive at {t}"
        );
    }
    // Absolute: a day after login it is over, however recent the last visit.
    assert!(
        s.authenticate(&creds(&app, uuid, &k, at(86_400_000)))
            .await
            .unwrap()
            .is_none()
    );

    let (n, k) = login(&app, "o-b", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    assert!(
        s.authenticate(&creds(&app, uuid, &k, at(599_999)))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.authenticate(&creds(&app, uuid, &k, at(599_999 + 600_000)))
            .await
            .unwrap()
            .is_none(),
        "idle too long"
    );
}

pub async fn logout_and_revoke<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxl"), T0).await.unwrap();
    let (n, k) = login(&app, "o-l", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let wrong = Skey::mint().unwrap();
    assert!(
        !s.logout(&creds(&app, uuid, &wrong, T0)).await.unwrap(),
        "wrong skey cannot log out"
    );
    assert!(s.logout(&creds(&app, uuid, &k, T0)).await.unwrap());
    assert!(!s.logout(&creds(&app, uuid, &k, T0)).await.unwrap());
    assert!(
        s.authenticate(&creds(&app, uuid, &k, T0))
            .await
            .unwrap()
            .is_none()
    );

    let (n, k) = login(&app, "o-l", None, T0);
    let uuid2 = s.upsert_session(n).await.unwrap().uuid;
    assert!(
        s.authenticate(&creds(&app, uuid2, &k, T0))
            .await
            .unwrap()
            .is_some(),
        "login after logout works"
    );
    assert!(s.revoke(uuid2).await.unwrap());
    assert!(!s.revoke(uuid2).await.unwrap());
    assert!(
        s.authenticate(&creds(&app, uuid2, &k, T0))
            .await
            .unwrap()
            .is_none(),
        "no resurrection"
    );
}

pub async fn one_users_session_is_found_and_revoked<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxu"), T0).await.unwrap();
    let other = s.create_app(new_app("wxu2"), T0).await.unwrap();
    let (n, k) = login(&app, "o-u", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let (n, _) = login(&app, "o-v", None, T0);
    s.upsert_session(n).await.unwrap();
    // Slid once: the lookup shows the newest visit.
    let later = T0.plus_millis(5_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &k, later))
            .await
            .unwrap()
            .is_some()
    );
    let found = s.user_session(app.id, "o-u").await.unwrap().expect("found");
    assert_eq!((found.uuid, found.open_id.as_str()), (uuid, "o-u"));
    assert_eq!(found.create_time, T0);
    assert_eq!(found.last_visit_time, later);
    assert!(s.user_session(app.id, "o-nobody").await.unwrap().is_none());
    assert!(
        s.user_session(other.id, "o-u").await.unwrap().is_none(),
        "the same open_id in another app is another user"
    );
    // A re-login keeps the uuid; the lookup follows it.
    let (n, k2) = login(&app, "o-u", None, T0.plus_millis(9_000));
    assert_eq!(s.upsert_session(n).await.unwrap().uuid, uuid);
    assert_eq!(
        s.user_session(app.id, "o-u").await.unwrap().unwrap().uuid,
        uuid
    );
    assert!(s.revoke_user(app.id, "o-u").await.unwrap());
    assert!(!s.revoke_user(app.id, "o-u").await.unwrap(), "gone");
    assert!(s.user_session(app.id, "o-u").await.unwrap().is_none());
    let after = T0.plus_millis(10_000);
    assert!(
        s.authenticate(&creds(&app, uuid, &k2, after))
            .await
            .unwrap()
            .is_none(),
        "a revoked user's session no longer authenticates"
    );
    assert!(
        s.user_session(app.id, "o-v").await.unwrap().is_some(),
        "others stay"
    );
}

pub async fn the_session_key_is_given_only_for_valid_credentials<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxk"), T0).await.unwrap();
    let (n, k) = login(&app, "o-k", None, T0);
    let stored = s.upsert_session(n).await.unwrap();
    assert!(stored.new, "a first login is new");
    let c = creds(&app, stored.uuid, &k, T0.plus_millis(1));
    assert_eq!(
        s.session_key(&c).await.unwrap().as_deref(),
        Some("c2Vzc2lvbmtleTEyMzQ1Ng==")
    );
    let wrong = Skey::mint().unwrap();
    let bad = creds(&app, stored.uuid, &wrong, T0.plus_millis(2));
    assert!(s.session_key(&bad).await.unwrap().is_none());
    let (n, k2) = login(&app, "o-k", None, T0.plus_millis(3));
    assert!(!s.upsert_session(n).await.unwrap().new, "a re-login is not");
    assert!(
        s.session_key(&c).await.unwrap().is_none(),
        "the old skey no longer opens it"
    );
    let c2 = creds(&app, stored.uuid, &k2, T0.plus_millis(4));
    assert!(s.logout(&c2).await.unwrap());
    assert!(
        s.session_key(&c2).await.unwrap().is_none(),
        "gone with the session"
    );
}

pub async fn concurrent_upserts_converge<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxcc"), T0).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (s, app) = (s.clone(), app.clone());
        tasks.spawn(async move {
            let (n, _) = login(&app, "o-same", None, T0);
            s.upsert_session(n).await.unwrap().uuid
        });
    }
    let uuids = tasks.join_all().await;
    assert!(uuids.iter().all(|u| *u == uuids[0]), "{uuids:?}");
    let page = s
        .list_sessions(
            app.id,
            &SessionQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.sessions.len(), 1);
}

pub async fn sessions_list_paginates_and_filters<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxp"), T0).await.unwrap();
    let other = s.create_app(new_app("wxp2"), T0).await.unwrap();
    let mut made = Vec::new();
    for i in 0..7 {
        let (n, _) = login(&app, &format!("o-{i}"), None, T0);
        made.push(s.upsert_session(n).await.unwrap().uuid);
    }
    let (n, _) = login(&other, "o-x", None, T0);
    s.upsert_session(n).await.unwrap();
    made.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = SessionQuery {
            limit: 3,
            after,
            open_id: None,
        };
        let page = s.list_sessions(app.id, &q).await.unwrap();
        assert!(page.sessions.len() <= 3);
        seen.extend(page.sessions.iter().map(|s| s.uuid));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, made);
    let q = SessionQuery {
        limit: 10,
        after: None,
        open_id: Some("o-4".into()),
    };
    let page = s.list_sessions(app.id, &q).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].open_id, "o-4");
    assert_eq!(page.sessions[0].create_time, T0);
}

pub async fn delete_app_removes_its_sessions<S: Store>(s: Arc<S>) {
    let app = s.create_app(new_app("wxd"), T0).await.unwrap();
    let keep = s.create_app(new_app("wxd2"), T0).await.unwrap();
    let (n, k) = login(&app, "o-d", None, T0);
    let uuid = s.upsert_session(n).await.unwrap().uuid;
    let (n, kk) = login(&keep, "o-d", None, T0);
    let kept = s.upsert_session(n).await.unwrap().uuid;
    s.delete_app(app.id).await.unwrap();
    assert!(
        s.authenticate(&creds(&app, uuid, &k, T0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.revoke(uuid).await.unwrap(), "session gone with its app");
    assert!(
        s.authenticate(&creds(&keep, kept, &kk, T0))
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn health_reports_every_backend_ok<S: Store>(s: Arc<S>) {
    let h = s.health().await;
    assert!(!h.is_empty());
    assert!(h.iter().all(|b| b.problem.is_none()), "{h:?}");
}

/// Instantiates the contract for a store built by `$make` (an async fn).
#[macro_export]
/// Calls `$then!` with `($args)` and the name of every contract case: the
/// one list of cases, used by [`store_contract!`] and the Redis Cluster run.
macro_rules! contract_cases {
    ($then:ident!($($args:tt)*)) => {
        $then!(($($args)*)
            apps_crud,
            upsert_keeps_uuid_and_rotates_skey,
            union_id_is_kept_when_a_login_lacks_it,
            auth_checks_app_skey_and_both_limits,
            logout_and_revoke,
            one_users_session_is_found_and_revoked,
            the_session_key_is_given_only_for_valid_credentials,
            concurrent_upserts_converge,
            sessions_list_paginates_and_filters,
            delete_app_removes_its_sessions,
            health_reports_every_backend_ok
        );
    };
}

/// One test per contract case, each on a fresh store from `$make`.
macro_rules! store_contract {
    ($make:path) => {
        contract_cases!(contract_tests!($make));
    };
}

macro_rules! contract_tests {
    (($make:path) $($case:ident),+) => {
        mod store_contract {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    // None: the store's servers are missing and not
                    // required (see wafer_testkit::servers_ready).
                    let Some(fixture) = $make().await else { return };
                    crate::contract::$case(fixture.store.clone()).await
                }
            )+
        }
    };
}
