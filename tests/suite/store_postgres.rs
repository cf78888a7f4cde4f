//! The PostgreSQL statements on their own, against the real server: the
//! edges the tiered store's contract does not reach (stale skeys, paging
//! boundaries, the purge's batches and grace, constraint violations,
//! rekey's pages). Each test has a fresh, migrated database.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use wafer::clock::Timestamp;
use wafer::domain::app::{App, AppPatch, NewApp};
use wafer::domain::audit::{AuditAction, AuditEntry};
use wafer::domain::session::SessionQuery;
use wafer::domain::skey::SkeyHash;
use wafer::import::ImportedSession;
use wafer::store::StoreError;
use wafer::store::postgres::Postgres;
use wafer::store::sealed::DataKeys;
use wafer_testkit::backends::{self, TestDb};

use crate::contract::{T0, login, new_app};

/// A fresh, migrated database and a client of it; `None` to skip.
async fn fresh() -> Option<(TestDb, Postgres)> {
    if !wafer_testkit::servers_ready("the PostgreSQL statements") {
        return None;
    }
    let db = backends::fresh_database().await;
    let pg = backends::postgres(&db);
    pg.migrate().await.expect("migrations apply");
    Some((db, pg))
}

/// A plain connection to `db`, for what the store has no call for.
async fn raw(db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(conn);
    client
}

async fn app(pg: &Postgres, appid: &str) -> Arc<App> {
    pg.create_app(&new_app(appid), T0).await.unwrap()
}

/// Logs `open_id` in to `app` at `now`: the session's uuid and skey hash.
async fn signed_in(pg: &Postgres, app: &App, open_id: &str, now: Timestamp) -> (Uuid, SkeyHash) {
    let (n, skey) = login(app, open_id, None, now);
    (pg.upsert_session(&n).await.unwrap().uuid, skey.hash())
}

fn query(limit: usize, after: Option<Uuid>) -> SessionQuery {
    SessionQuery {
        open_id: None,
        limit,
        after,
    }
}

fn imported(uuid: Uuid, open_id: &str, at: Timestamp) -> ImportedSession {
    ImportedSession {
        uuid,
        open_id: open_id.into(),
        union_id: Some("union-1".into()),
        skey_hash: SkeyHash([7; 32]),
        session_key: format!("key-of-{open_id}"),
        user_info: Some(r#"{"nickName":"x"}"#.into()),
        create_time: at,
        last_visit: at.plus_millis(1_000),
    }
}

fn data_keys() -> DataKeys {
    DataKeys::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

#[tokio::test]
async fn a_second_login_keeps_the_row_its_uuid_and_what_it_does_not_bring() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxup").await;
    let (mut first, _) = login(&a, "o-1", Some(r#"{"a":1}"#), T0);
    first.union_id = Some("u-1".into());
    let first = pg.upsert_session(&first).await.unwrap();
    assert_eq!(first.generation, 1);
    let phoned = pg
        .set_phone(first.uuid, &first.skey_hash, "13800138000")
        .await
        .unwrap()
        .expect("the skey is current");
    assert_eq!(phoned.generation, 2);

    // A login without union_id or user_info keeps both, and the phone.
    let later = T0.plus_millis(5_000);
    let (again, skey) = login(&a, "o-1", None, later);
    let again = pg.upsert_session(&again).await.unwrap();
    assert_eq!(again.uuid, first.uuid);
    assert_eq!(again.generation, 3);
    assert_eq!(again.skey_hash, skey.hash());
    assert_eq!(again.union_id.as_deref(), Some("u-1"));
    assert_eq!(again.user_info.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(again.phone_number.as_deref(), Some("13800138000"));
    // The absolute limit starts again at the new login.
    assert_eq!((again.create_time, again.last_visit), (later, later));

    // New user data replaces the old.
    let (third, _) = login(&a, "o-1", Some(r#"{"a":2}"#), later);
    let third = pg.upsert_session(&third).await.unwrap();
    assert_eq!(third.user_info.as_deref(), Some(r#"{"a":2}"#));
    assert_eq!(third.generation, 4);
    let page = pg.list_sessions(a.id, &query(10, None)).await.unwrap();
    assert_eq!(page.sessions.len(), 1, "one row per (app, open_id)");

    // The same open_id in another app is another session.
    let b = app(&pg, "wxup2").await;
    let (n, _) = login(&b, "o-1", None, T0);
    let other = pg.upsert_session(&n).await.unwrap();
    assert_ne!(other.uuid, first.uuid);
    assert_eq!(other.generation, 1);
}

#[tokio::test]
async fn writes_for_a_missing_app_are_not_found() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxgone").await;
    let (mut n, _) = login(&a, "o-1", None, T0);
    n.app_id = a.id + 1_000;
    assert!(matches!(
        pg.upsert_session(&n).await,
        Err(StoreError::NotFound)
    ));
    let s = imported(Uuid::new_v4(), "o-1", T0);
    assert!(matches!(
        pg.import_session(a.id + 1_000, &s).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn a_stale_skey_reads_and_changes_nothing() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxstale").await;
    let (n, skey) = login(&a, "o-1", None, T0);
    let (mut s, hash) = (pg.upsert_session(&n).await.unwrap(), skey.hash());
    assert!(s.change.take().is_some(), "a login answers with its change");
    let wrong = SkeyHash([0xee; 32]);

    assert_eq!(pg.session_key(s.uuid, &wrong).await.unwrap(), None);
    assert_eq!(
        pg.session_key(s.uuid, &hash).await.unwrap().as_deref(),
        Some("c2Vzc2lvbmtleTEyMzQ1Ng==")
    );
    assert_eq!(pg.session_key(Uuid::new_v4(), &hash).await.unwrap(), None);

    assert_eq!(pg.set_phone(s.uuid, &wrong, "1").await.unwrap(), None);
    let unchanged = pg.session(s.uuid).await.unwrap().unwrap();
    assert_eq!(unchanged, s, "no phone, no generation bump");

    assert!(
        pg.delete_session(s.uuid, Some(&wrong))
            .await
            .unwrap()
            .is_none()
    );
    assert!(pg.session(s.uuid).await.unwrap().is_some());
    assert!(
        pg.delete_session(s.uuid, Some(&hash))
            .await
            .unwrap()
            .is_some()
    );
    assert!(pg.session(s.uuid).await.unwrap().is_none());

    // Without a hash (an admin revoke) any skey goes; a second time, none.
    let (s2, _) = signed_in(&pg, &a, "o-2", T0).await;
    assert!(pg.delete_session(s2, None).await.unwrap().is_some());
    assert!(pg.delete_session(s2, None).await.unwrap().is_none());
}

#[tokio::test]
async fn a_users_session_key_is_looked_up_in_its_own_app() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let (a, b) = (app(&pg, "wxk1").await, app(&pg, "wxk2").await);
    let (mut n, _) = login(&a, "o-1", None, T0);
    n.session_key = "key-in-a".into();
    pg.upsert_session(&n).await.unwrap();
    let (mut n, _) = login(&b, "o-1", None, T0);
    n.session_key = "key-in-b".into();
    pg.upsert_session(&n).await.unwrap();
    let key = |app, user: &'static str| {
        let pg = pg.clone();
        async move { pg.user_session_key(app, user).await.unwrap() }
    };
    assert_eq!(key(a.id, "o-1").await.as_deref(), Some("key-in-a"));
    assert_eq!(key(b.id, "o-1").await.as_deref(), Some("key-in-b"));
    assert_eq!(key(a.id, "o-2").await, None);
}

#[tokio::test]
async fn session_pages_end_exactly_where_the_rows_do() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let (a, b) = (app(&pg, "wxpage").await, app(&pg, "wxpage2").await);
    let empty = app(&pg, "wxempty").await;
    let mut uuids = Vec::new();
    for i in 0..5 {
        uuids.push(signed_in(&pg, &a, &format!("o-{i}"), T0).await.0);
    }
    signed_in(&pg, &b, "o-b", T0).await;
    uuids.sort();
    let uuids_of = |page: &wafer::domain::session::SessionPage| {
        page.sessions.iter().map(|s| s.uuid).collect::<Vec<_>>()
    };

    // Pages of 2: 2, 2, 1; each but the last says where the next starts.
    let mut seen = Vec::new();
    let mut after = None;
    let mut sizes = Vec::new();
    loop {
        let page = pg.list_sessions(a.id, &query(2, after)).await.unwrap();
        sizes.push(page.sessions.len());
        seen.extend(uuids_of(&page));
        if let Some(next) = page.next {
            assert_eq!(Some(&next), seen.last(), "the cursor is the page's last");
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, uuids, "every session of the app once, in uuid order");

    // Exactly as many as the limit: no next page.
    let page = pg.list_sessions(a.id, &query(5, None)).await.unwrap();
    assert_eq!((uuids_of(&page), page.next), (uuids.clone(), None));
    // One fewer: a next page, starting after the fourth.
    let page = pg.list_sessions(a.id, &query(4, None)).await.unwrap();
    assert_eq!(page.next, Some(uuids[3]));
    // After the last row: nothing, and no next page.
    let page = pg
        .list_sessions(a.id, &query(2, Some(uuids[4])))
        .await
        .unwrap();
    assert!(page.sessions.is_empty() && page.next.is_none());
    // An app without sessions.
    let page = pg.list_sessions(empty.id, &query(2, None)).await.unwrap();
    assert!(page.sessions.is_empty() && page.next.is_none());
    // One user, and a user of another app.
    let page = pg
        .list_sessions(a.id, &SessionQuery::user("o-3"))
        .await
        .unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].open_id, "o-3");
    let page = pg
        .list_sessions(a.id, &SessionQuery::user("o-b"))
        .await
        .unwrap();
    assert!(page.sessions.is_empty());
    // A limit as large as the type allows still lists everything.
    for limit in [i64::MAX as usize, usize::MAX] {
        let page = pg.list_sessions(a.id, &query(limit, None)).await.unwrap();
        assert_eq!((page.sessions.len(), page.next), (5, None), "{limit}");
    }
}

#[tokio::test]
async fn a_last_visit_never_moves_back_and_unknown_sessions_are_skipped() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxvisit").await;
    let (s, _) = signed_in(&pg, &a, "o-1", T0).await;
    let last_visit = |pg: Postgres| async move { pg.session(s).await.unwrap().unwrap().last_visit };
    let (t10, t5, t20) = (
        T0.plus_millis(10_000),
        T0.plus_millis(5_000),
        T0.plus_millis(20_000),
    );

    let n = pg
        .record_visits(&[s, Uuid::new_v4()], &[t10, t20])
        .await
        .unwrap();
    assert_eq!(n, 1, "only the known session is written");
    assert_eq!(last_visit(pg.clone()).await, t10);
    assert_eq!(pg.record_visits(&[s], &[t5]).await.unwrap(), 0);
    assert_eq!(pg.record_visits(&[s], &[t10]).await.unwrap(), 0);
    assert_eq!(last_visit(pg.clone()).await, t10, "not moved back");
    assert_eq!(pg.record_visits(&[s], &[t20]).await.unwrap(), 1);
    assert_eq!(last_visit(pg.clone()).await, t20);
    assert_eq!(pg.record_visits(&[], &[]).await.unwrap(), 0);
}

#[tokio::test]
async fn the_purge_deletes_in_batches_and_keeps_live_sessions() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    // new_app: 30 days absolute, 3600 s sliding.
    let a = app(&pg, "wxpurge").await;
    let mut stale = Vec::new();
    for i in 0..3 {
        stale.push(signed_in(&pg, &a, &format!("o-{i}"), T0).await.0);
    }
    let now = T0.plus_millis(2 * 3_600_000);
    let (live, _) = signed_in(&pg, &a, "o-live", now).await;

    assert_eq!(pg.purge_expired(now, 2).await.unwrap(), 2);
    assert_eq!(pg.purge_expired(now, 2).await.unwrap(), 1);
    assert_eq!(pg.purge_expired(now, 2).await.unwrap(), 0);
    for uuid in stale {
        assert!(pg.session(uuid).await.unwrap().is_none());
    }
    assert!(pg.session(live).await.unwrap().is_some());
}

#[tokio::test]
async fn the_purge_waits_out_the_grace_period_past_the_sliding_limit() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxgrace").await;
    let (s, _) = signed_in(&pg, &a, "o-1", T0).await;
    // Expired at T0 + 3600 s; kept one more minute for the write-behind.
    let edge = T0.plus_millis(3_600_000 + 60_000);
    assert_eq!(pg.purge_expired(edge, 10).await.unwrap(), 0);
    assert!(pg.session(s).await.unwrap().is_some());
    assert_eq!(pg.purge_expired(edge.plus_millis(1), 10).await.unwrap(), 1);
}

#[tokio::test]
async fn the_purge_counts_a_login_day_as_24_hours_in_any_time_zone() {
    if !wafer_testkit::servers_ready("the PostgreSQL statements") {
        return;
    }
    let db = backends::fresh_database().await;
    // A server whose time zone has daylight saving time: there, the
    // calendar day before 9 March 2025 12:00 is 23 hours long.
    raw(&db)
        .await
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone TO %L', \
             current_database(), 'America/New_York'); END $$",
        )
        .await
        .unwrap();
    let zone = raw(&db)
        .await
        .query_one("SHOW timezone", &[])
        .await
        .unwrap();
    assert_eq!(zone.get::<_, String>(0), "America/New_York");
    let pg = backends::postgres(&db);
    pg.migrate().await.unwrap();
    let a = pg
        .create_app(
            &NewApp {
                login_duration: 1,
                session_duration: 315_360_000,
                ..new_app("wxdst")
            },
            T0,
        )
        .await
        .unwrap();
    // Logged in 2025-03-08 16:30 UTC; the purge runs 23 h 31 min later,
    // when wafer still accepts the session.
    let login_at = Timestamp(1_741_451_400_000);
    let now = Timestamp(1_741_536_060_000);
    let (s, _) = signed_in(&pg, &a, "o-1", login_at).await;
    assert!(a.limits().alive(login_at, login_at, now));
    assert_eq!(pg.purge_expired(now, 10).await.unwrap(), 0);
    assert!(pg.session(s).await.unwrap().is_some());
    // 24 hours and the grace period after the login, it goes.
    let gone = login_at.plus_millis(86_400_000 + 60_000 + 1);
    assert_eq!(pg.purge_expired(gone, 10).await.unwrap(), 1);
}

#[tokio::test]
async fn deleting_an_app_returns_its_sessions_and_only_those() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let (a, b) = (app(&pg, "wxdel").await, app(&pg, "wxkeep").await);
    let mut mine = Vec::new();
    for i in 0..2 {
        mine.push(signed_in(&pg, &a, &format!("o-{i}"), T0).await.0);
    }
    let (theirs, _) = signed_in(&pg, &b, "o-0", T0).await;

    let mut deleted: Vec<Uuid> = pg
        .delete_app(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(uuid, _)| uuid)
        .collect();
    deleted.sort();
    mine.sort();
    assert_eq!(deleted, mine);
    for uuid in &mine {
        assert!(pg.session(*uuid).await.unwrap().is_none());
    }
    assert!(pg.session(theirs).await.unwrap().is_some());
    let ids: Vec<_> = pg.list_apps().await.unwrap().iter().map(|a| a.id).collect();
    assert_eq!(ids, [b.id]);
    assert!(matches!(
        pg.delete_app(a.id).await,
        Err(StoreError::NotFound)
    ));
    // An app without sessions deletes to an empty list.
    let removed = pg.delete_app(b.id).await.unwrap();
    assert_eq!(
        removed.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        [theirs]
    );
    let c = app(&pg, "wxnone").await;
    assert!(pg.delete_app(c.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn app_writes_map_the_servers_refusals() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxdup").await;
    // Only the appid is unique; titles may repeat.
    assert!(matches!(
        pg.create_app(&new_app("wxdup"), T0).await,
        Err(StoreError::Conflict)
    ));
    let b = app(&pg, "wxother").await;
    assert_eq!(a.title, b.title);
    // A bound the schema checks, which wafer validates first: refused, not
    // a conflict.
    let bad = NewApp {
        login_duration: 0,
        ..new_app("wxbad")
    };
    match pg.create_app(&bad, T0).await {
        Err(StoreError::Rejected { code, .. }) => assert_eq!(code.to_string(), "23514"),
        other => panic!("expected a check violation, got {other:?}"),
    }

    let taken = AppPatch {
        appid: Some("wxother".into()),
        ..Default::default()
    };
    assert!(matches!(
        pg.update_app(a.id, &taken, T0).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        pg.update_app(b.id + 1_000, &AppPatch::default(), T0).await,
        Err(StoreError::NotFound)
    ));
    // An empty patch changes nothing but the time of the change.
    let later = T0.plus_millis(1_000);
    let same = pg
        .update_app(a.id, &AppPatch::default(), later)
        .await
        .unwrap();
    let rewound = App {
        updated_at: T0,
        ..(*same).clone()
    };
    assert!(rewound == *a, "only updated_at changed");
    assert_eq!(same.updated_at, later);
    let patch = AppPatch {
        secret: Some("n3w".into()),
        login_duration: Some(7),
        ..Default::default()
    };
    let changed = pg.update_app(a.id, &patch, later).await.unwrap();
    assert_eq!(
        (
            changed.secret.as_str(),
            changed.login_duration,
            changed.appid.as_str()
        ),
        ("n3w", 7, "wxdup")
    );
}

#[tokio::test]
async fn audit_pages_go_back_from_before() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    for i in 0..5 {
        let entry = AuditEntry {
            id: 0,
            at: T0.plus_millis(i),
            action: AuditAction::ALL[i as usize % AuditAction::ALL.len()],
            target: format!("app {i}"),
            caller: (i % 2 == 0).then_some(v6),
        };
        pg.record_audit(&entry).await.unwrap();
    }
    let all = pg.audit_trail(None, 10).await.unwrap();
    assert_eq!(all.next, None);
    let targets: Vec<&str> = all.entries.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["app 4", "app 3", "app 2", "app 1", "app 0"]);
    let ids: Vec<i64> = all.entries.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let oldest = &all.entries[4];
    assert_eq!(
        (oldest.at, oldest.action, oldest.caller),
        (T0, AuditAction::ALL[0], Some(v6))
    );
    assert_eq!(all.entries[3].caller, None);

    let first = pg.audit_trail(None, 2).await.unwrap();
    assert_eq!(first.entries, all.entries[..2]);
    assert_eq!(first.next, Some(ids[1]));
    let second = pg.audit_trail(first.next, 2).await.unwrap();
    assert_eq!(second.entries, all.entries[2..4], "before is exclusive");
    assert_eq!(second.next, Some(ids[3]));
    let last = pg.audit_trail(second.next, 2).await.unwrap();
    assert_eq!(
        (last.entries.as_slice(), last.next),
        (&all.entries[4..], None)
    );
    let past = pg.audit_trail(Some(ids[4]), 2).await.unwrap();
    assert!(past.entries.is_empty() && past.next.is_none());
    // Exactly as many as the limit: no next page.
    assert_eq!(pg.audit_trail(None, 5).await.unwrap().next, None);
    for limit in [i64::MAX as usize, usize::MAX] {
        let page = pg.audit_trail(None, limit).await.unwrap();
        assert_eq!((page.entries.len(), page.next), (5, None), "{limit}");
    }
}

#[tokio::test]
async fn an_import_never_replaces_a_session() {
    let Some((_db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wximport").await;
    let first = imported(Uuid::new_v4(), "o-1", T0);
    assert!(pg.import_session(a.id, &first).await.unwrap());
    let stored = pg.session(first.uuid).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.open_id.as_str(),
            stored.create_time,
            stored.last_visit,
            stored.generation
        ),
        ("o-1", T0, T0.plus_millis(1_000), 1)
    );
    assert_eq!(
        pg.session_key(first.uuid, &first.skey_hash)
            .await
            .unwrap()
            .as_deref(),
        Some("key-of-o-1")
    );

    // The same uuid for another user, or another uuid for the same user.
    let same_uuid = imported(first.uuid, "o-2", T0.plus_millis(9));
    assert!(!pg.import_session(a.id, &same_uuid).await.unwrap());
    let same_user = imported(Uuid::new_v4(), "o-1", T0.plus_millis(9));
    assert!(!pg.import_session(a.id, &same_user).await.unwrap());
    assert_eq!(pg.session(first.uuid).await.unwrap().unwrap(), stored);
    assert!(pg.session(same_user.uuid).await.unwrap().is_none());
    // A user who logged in with wafer keeps that login.
    let (n, _) = login(&a, "o-3", None, T0);
    let mut live = pg.upsert_session(&n).await.unwrap();
    live.change = None; // a read carries no change
    let over = imported(Uuid::new_v4(), "o-3", T0);
    assert!(!pg.import_session(a.id, &over).await.unwrap());
    assert_eq!(pg.session(live.uuid).await.unwrap().unwrap(), live);
}

#[tokio::test]
async fn rekey_seals_every_page_once() {
    let Some((db, plain)) = fresh().await else {
        return;
    };
    let a = app(&plain, "wxrekey").await;
    // One more than rekey's page of 500.
    raw(&db)
        .await
        .execute(
            "INSERT INTO sessions (uuid, app_id, open_id, session_key, skey_hash, \
             create_time, last_visit_time) \
             SELECT gen_random_uuid(), $1, 'o-' || i, 'key-' || i, \
             decode(repeat('ab', 32), 'hex'), now(), now() \
             FROM generate_series(1, 501) AS i",
            &[&a.id],
        )
        .await
        .unwrap();
    assert_eq!(
        plain.rekey().await.unwrap(),
        (0, 0),
        "no keys, nothing to do"
    );

    let sealed = backends::postgres(&db).with_data_keys(Some(data_keys()));
    assert_eq!(sealed.rekey().await.unwrap(), (1, 501));
    assert_eq!(sealed.rekey().await.unwrap(), (0, 0));
    let stored: i64 = raw(&db)
        .await
        .query_one(
            "SELECT count(*) FROM sessions WHERE session_key LIKE 'sealed:v1:k1:%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 501);
    assert_eq!(
        sealed
            .user_session_key(a.id, "o-501")
            .await
            .unwrap()
            .as_deref(),
        Some("key-501")
    );
    assert_eq!(sealed.list_apps().await.unwrap()[0].secret, "s3cret");

    // A plain value among sealed ones: only it is sealed.
    let late = imported(Uuid::new_v4(), "o-late", T0);
    assert!(plain.import_session(a.id, &late).await.unwrap());
    assert_eq!(sealed.rekey().await.unwrap(), (0, 1));
}

#[tokio::test]
async fn the_session_estimate_reads_the_statistics() {
    let Some((db, pg)) = fresh().await else {
        return;
    };
    assert_eq!(pg.session_estimate().await.unwrap(), 0);
    let a = app(&pg, "wxcount").await;
    let writer = raw(&db).await;
    writer
        .execute(
            "INSERT INTO sessions (uuid, app_id, open_id, session_key, skey_hash, \
             create_time, last_visit_time) \
             SELECT gen_random_uuid(), $1, 'o-' || i, 'k', \
             decode(repeat('ab', 32), 'hex'), now(), now() \
             FROM generate_series(1, 3) AS i",
            &[&a.id],
        )
        .await
        .unwrap();
    // Statistics reach the server when the writer next goes idle.
    writer
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    let mut estimate = 0;
    for _ in 0..100 {
        estimate = pg.session_estimate().await.unwrap();
        if estimate == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(estimate, 3);
}

/// The outbox's changes as recorded: (uuid, change, told to Redis).
async fn changes(db: &str) -> Vec<(Uuid, String, bool)> {
    raw(db)
        .await
        .query(
            "SELECT uuid, change, redis_synced FROM session_changes ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn every_change_is_recorded_by_its_own_statement_and_nothing_else_is() {
    let Some((db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxout").await;
    let (n, skey) = login(&a, "o-1", None, T0);
    let s = pg.upsert_session(&n).await.unwrap();
    let phoned = pg
        .set_phone(s.uuid, &skey.hash(), "1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        phoned.change > s.change,
        "each change has its own, later seq"
    );
    // A stale skey changes nothing, so records nothing.
    let wrong = SkeyHash([0xee; 32]);
    assert_eq!(pg.set_phone(s.uuid, &wrong, "2").await.unwrap(), None);
    assert_eq!(pg.delete_session(s.uuid, Some(&wrong)).await.unwrap(), None);
    let logout = pg.delete_session(s.uuid, Some(&skey.hash())).await.unwrap();
    assert!(logout.is_some());
    let (s2, _) = signed_in(&pg, &a, "o-2", T0).await;
    pg.delete_session(s2, None).await.unwrap().unwrap();
    assert_eq!(pg.delete_session(s2, None).await.unwrap(), None);
    let (s3, _) = signed_in(&pg, &a, "o-3", T0).await;
    pg.delete_app(a.id).await.unwrap();

    let all = changes(&db).await;
    // Only a first login is recorded as told: Redis holds nothing older.
    let told: Vec<bool> = all.iter().map(|c| c.2).collect();
    assert_eq!(told, [true, false, false, true, false, true, false]);
    let recorded: Vec<(Uuid, &str)> = all
        .iter()
        .map(|(u, c, _)| {
            (
                *u,
                match c.as_str() {
                    "login" => "login",
                    "phone" => "phone",
                    "logout" => "logout",
                    "revoke" => "revoke",
                    "app_removed" => "app_removed",
                    other => panic!("unknown change {other}"),
                },
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (s.uuid, "login"),
            (s.uuid, "phone"),
            (s.uuid, "logout"),
            (s2, "login"),
            (s2, "revoke"),
            (s3, "login"),
            (s3, "app_removed"),
        ]
    );
}

#[tokio::test]
async fn untold_changes_wait_their_grace_and_marked_ones_are_not_told_again() {
    let Some((db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxtold").await;
    // Second logins: each may leave an older copy in Redis to replace.
    let (n, _) = login(&a, "o-1", None, T0);
    pg.upsert_session(&n).await.unwrap();
    let first = pg.upsert_session(&n).await.unwrap();
    let (n, _) = login(&a, "o-2", None, T0);
    pg.upsert_session(&n).await.unwrap();
    let s2 = pg.upsert_session(&n).await.unwrap().uuid;
    // Younger than the grace: left for the instance that made them.
    let young = pg
        .unsynced_changes(Duration::from_secs(60), Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(young.is_empty(), "{young:?}");
    let all = pg
        .unsynced_changes(Duration::ZERO, Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.uuid).collect::<Vec<_>>(),
        [first.uuid, s2]
    );
    assert_eq!(
        pg.unsynced_changes(Duration::ZERO, Duration::ZERO, 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let seq = first.change.unwrap();
    assert_eq!(pg.mark_synced(&[seq]).await.unwrap(), 1);
    assert_eq!(pg.mark_synced(&[seq]).await.unwrap(), 0, "marked once");
    let left = pg
        .unsynced_changes(Duration::ZERO, Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(left.iter().map(|c| c.uuid).collect::<Vec<_>>(), [s2]);

    // Only told changes older than the retention are dropped.
    assert_eq!(
        pg.purge_synced_changes(Duration::from_secs(3600), 10)
            .await
            .unwrap(),
        0
    );
    // The two first logins (told as recorded) and the marked change.
    assert_eq!(
        pg.purge_synced_changes(Duration::ZERO, 10).await.unwrap(),
        3
    );
    let kept: Vec<Uuid> = changes(&db).await.iter().map(|c| c.0).collect();
    assert_eq!(
        kept,
        [s2],
        "the first logins were told already, and dropped too"
    );

    // A removal is told sooner than a login: its maker marks it at once.
    pg.delete_session(s2, None).await.unwrap().unwrap();
    let removals = pg
        .unsynced_changes(Duration::ZERO, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(removals.len(), 1, "only the revoke: {removals:?}");
    assert_eq!(removals[0].uuid, s2);
    assert!(removals[0].seq > seq);
}

#[tokio::test]
async fn a_migration_waiting_for_a_lock_lets_logins_through_and_tries_again() {
    use wafer::store::postgres::migrate::{MIGRATIONS, Migration, migrate_to};
    let Some((db, pg)) = fresh().await else {
        return;
    };
    let a = app(&pg, "wxlock").await;
    // A migration that needs the sessions table to itself, after all of
    // wafer's.
    let mut list: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|m| Migration {
            version: m.version,
            name: m.name,
            sql: m.sql,
        })
        .collect();
    list.push(Migration {
        version: MIGRATIONS.len() as i32 + 1,
        name: "9999_test_alter_sessions.sql",
        sql: "ALTER TABLE sessions ADD COLUMN test_only INTEGER",
    });
    let list: &'static [Migration] = Box::leak(list.into_boxed_slice());

    // A long reader holds the table (as a long flush or purge would).
    let mut reader = raw(&db).await;
    let holding = reader.transaction().await.unwrap();
    holding
        .execute("SELECT 1 FROM sessions LIMIT 1", &[])
        .await
        .unwrap();
    let migrating = {
        let db = db.to_string();
        tokio::spawn(async move {
            let mut client = raw(&db).await;
            migrate_to(&mut client, list).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The migration is queued for its lock; a login must not queue behind
    // it for longer than the migration's lock timeout (1 s), well within
    // its own database timeout (2 s).
    let asked = std::time::Instant::now();
    let (n, _) = login(&a, "o-during", None, T0);
    let login = tokio::time::timeout(Duration::from_secs(8), pg.upsert_session(&n)).await;
    assert!(
        matches!(login, Ok(Ok(_))),
        "a login waited {:?} behind a migration's lock",
        asked.elapsed()
    );
    // The reader ends; the migration, refused its lock, tries again and
    // gets it.
    holding.rollback().await.unwrap();
    let applied = tokio::time::timeout(Duration::from_secs(20), migrating)
        .await
        .expect("the migration finishes once the reader is gone")
        .unwrap()
        .unwrap();
    assert_eq!(applied, ["9999_test_alter_sessions.sql"]);
}
