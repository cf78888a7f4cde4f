//! The store contract on the embedded store, plus what only it does
//! (capacity bound, reclaiming expired sessions).

use crate::contract::{self, Fixture};
use wafer::domain::app::AppRef;
use wafer::store::{AppStore, EmbeddedStore, SessionStore, StoreError};

async fn make_store() -> Option<Fixture<EmbeddedStore>> {
    Some(Fixture::bare(std::sync::Arc::new(EmbeddedStore::new(
        10_000,
    ))))
}

store_contract!(make_store);

#[tokio::test]
async fn purge_reclaims_expired_sessions_only() {
    let s = EmbeddedStore::new(100);
    let app = s
        .create_app(contract::new_app("wxpurge"), contract::T0)
        .await
        .unwrap();
    let (n, k_old) = contract::login(&app, "o-old", None, contract::T0);
    let old = s.upsert_session(n).await.unwrap().uuid;
    let later = contract::T0.plus_millis(3_000_000);
    let (n, k_new) = contract::login(&app, "o-new", None, later);
    let new = s.upsert_session(n).await.unwrap().uuid;
    assert_eq!(s.session_count(), 2);
    // An hour after the first login: the first is past its 3600 s sliding limit.
    let now = contract::T0.plus_millis(3_600_000);
    assert_eq!(s.purge_expired(now), 1);
    assert_eq!(s.session_count(), 1);
    assert!(
        s.authenticate(&contract::creds(&app, old, &k_old, now))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.authenticate(&contract::creds(&app, new, &k_new, now))
            .await
            .unwrap()
            .is_some()
    );
    // The purged user can log in again and gets a fresh session.
    let (n, _) = contract::login(&app, "o-old", None, now);
    assert_ne!(s.upsert_session(n).await.unwrap().uuid, old);
}

#[tokio::test]
async fn purge_drops_sessions_of_deleted_apps_and_capacity_is_bounded() {
    let s = EmbeddedStore::new(2);
    let app = s
        .create_app(contract::new_app("wxcap"), contract::T0)
        .await
        .unwrap();
    for who in ["a", "b"] {
        let (n, _) = contract::login(&app, who, None, contract::T0);
        s.upsert_session(n).await.unwrap();
    }
    let (n, _) = contract::login(&app, "c", None, contract::T0);
    assert!(matches!(
        s.upsert_session(n).await,
        Err(StoreError::Unavailable { .. })
    ));
    let (n, _) = contract::login(&app, "a", None, contract::T0);
    assert!(
        s.upsert_session(n).await.is_ok(),
        "an existing user still logs in at capacity"
    );
    s.delete_app(app.id).await.unwrap();
    assert_eq!(s.session_count(), 0);
    assert!(s.app(&AppRef::Id(app.id)).await.unwrap().is_none());
}
