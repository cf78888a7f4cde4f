//! Phone numbers (`POST /mina/phone`), later decryption (`POST
//! /mina/decrypt`), the shared access token and the session-key check, on
//! both stores, against the WeChat mock (which counts every call).

use std::time::Duration;

use serde_json::json;
use wafer_testkit::{TestApp, assert_admin_fail, assert_fail, spawn_app, spawn_tiered_with};

async fn admin_get(app: &TestApp, path: &str) -> wafer_testkit::Answer {
    app.send(app.admin(reqwest::Method::GET, path)).await
}

/// Phone numbers: fetched, stored with the session, answered by auth,
/// masked in listings, in full per user; every WeChat error as API.md maps it.
async fn phone_numbers(app: TestApp, appid: &str) {
    let id = app.create_app(appid).await;
    let (uuid, skey) = app.login(id, "ann.1").await;
    let a = app.phone(id, &uuid, &skey, "ann.p1").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let (phone, pure, country) = wechat_mock::phone_for("ann.p1");
    assert_eq!(a.body["msg"], "phone ok");
    assert_eq!(a.body["data"]["phone_number"], phone.as_str());
    assert_eq!(a.body["data"]["pure_phone_number"], pure.as_str());
    assert_eq!(a.body["data"]["country_code"], country.as_str());
    let checked = app.auth(id, &uuid, &skey).await;
    assert_eq!(checked.body["data"]["phone_number"], phone.as_str());

    // Personal data: masked in the listing, whole for the one user.
    let open_id = wechat_mock::open_id_for(appid, "ann.1");
    let list = admin_get(&app, &format!("/admin/apps/{id}/sessions")).await;
    let listed = list.body["sessions"][0]["phone_number"].as_str().unwrap();
    assert_eq!(listed.len(), phone.len());
    assert!(
        listed.contains("****") && !list.text.contains(&phone),
        "{}",
        list.text
    );
    let user = admin_get(&app, &format!("/admin/apps/{id}/users/{open_id}")).await;
    assert_eq!(user.body["phone_number"], phone.as_str());

    // It stays with the user across logins.
    let (again, skey2) = app.login(id, "ann.2").await;
    assert_eq!(again, uuid);
    let checked = app.auth(id, &uuid, &skey2).await;
    assert_eq!(checked.body["data"]["phone_number"], phone.as_str());
    // A user without a number: null.
    let (u2, s2) = app.login(id, "intl-bo.1").await;
    assert!(app.auth(id, &u2, &s2).await.body["data"]["phone_number"].is_null());
    // Outside China: the country code is text, whatever WeChat sent.
    let intl = app.phone(id, &u2, &s2, "intl-bo.p").await;
    assert_eq!(intl.body["data"]["country_code"], "1", "{}", intl.text);

    // Codes are single-use; WeChat's errors map as for a login.
    assert_fail(
        &app.phone(id, &uuid, &skey2, "ann.p1").await,
        401,
        "code_rejected",
    );
    assert_fail(
        &app.phone(id, &uuid, &skey2, "err-40029").await,
        401,
        "code_rejected",
    );
    assert_fail(
        &app.phone(id, &uuid, &skey2, "err-45011").await,
        429,
        "rate_limited",
    );
    assert_fail(
        &app.phone(id, &uuid, &skey2, "err--1").await,
        502,
        "upstream_error",
    );
    // Nothing reaches WeChat without a valid session or a code.
    assert_fail(
        &app.phone(id, &uuid, "wrong", "ann.p9").await,
        401,
        "session_invalid",
    );
    assert_eq!(app.wechat.phone_calls("ann.p9"), 0);
    assert_fail(&app.phone(id, &uuid, &skey2, "").await, 400, "bad_request");
    // A single-use code was sent once, even when refused.
    assert_eq!(app.wechat.phone_calls("err--1"), 1);
}

#[tokio::test]
async fn phone_numbers_on_the_embedded_store() {
    phone_numbers(spawn_app().await, "wxphemb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_on_the_tiered_store() {
    wafer_testkit::require_servers!();
    phone_numbers(spawn_tiered_with(|_| {}).await, "wxphtier").await;
}

/// The one token the mock issued for `appid` so far.
fn only_token(app: &TestApp, appid: &str) -> String {
    let issued = app.wechat.tokens(appid);
    assert_eq!(issued.len(), 1, "one token issued: {issued:?}");
    issued[0].clone()
}

/// A token WeChat revokes is replaced once (forced), and the phone call
/// then succeeds; a storm of calls with the revoked token forces once.
async fn revoked_tokens(app: TestApp, appid: &str) {
    let id = app.create_app(appid).await;
    let (uuid, skey) = app.login(id, "cy.1").await;
    assert_eq!(app.phone(id, &uuid, &skey, "cy.p0").await.status, 200);
    assert_eq!(app.wechat.token_calls(appid).normal, 1);
    let first = only_token(&app, appid);
    assert_eq!(
        app.wechat.phone_tokens("cy.p0"),
        std::slice::from_ref(&first)
    );
    assert_eq!(app.phone(id, &uuid, &skey, "cy.p1").await.status, 200);
    assert_eq!(
        app.wechat.phone_tokens("cy.p1"),
        std::slice::from_ref(&first),
        "the token is cached"
    );
    assert_eq!(app.wechat.token_calls(appid).normal, 1);

    assert!(app.wechat.invalidate_token(appid));
    let a = app.phone(id, &uuid, &skey, "cy.p2").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let calls = app.wechat.token_calls(appid);
    assert_eq!((calls.normal, calls.forced), (1, 1));
    let issued = app.wechat.tokens(appid);
    assert_eq!(issued.len(), 2, "{issued:?}");
    let (revoked, fresh) = (issued[0].clone(), issued[1].clone());
    assert_eq!(revoked, first);
    assert_ne!(fresh, revoked);
    assert_eq!(
        app.wechat.phone_tokens("cy.p2"),
        [revoked.clone(), fresh.clone()],
        "refused once with the revoked token, repeated once with the new one"
    );
    let served = app.access_token(id).await;
    assert_eq!(
        served.body["access_token"],
        fresh.as_str(),
        "{}",
        served.text
    );

    // 100 calls at once meet a revoked token: one forced refresh. (Another
    // app: WeChat ignores a second force of one app within 30 s.)
    let appid2 = format!("{appid}2");
    let id2 = app.create_app(&appid2).await;
    let (uuid, skey) = app.login(id2, "cy.1").await;
    assert_eq!(app.phone(id2, &uuid, &skey, "cy.q0").await.status, 200);
    let revoked = only_token(&app, &appid2);
    assert!(app.wechat.invalidate_token(&appid2));
    let calls = (0..100).map(|i| {
        let (app, uuid, skey) = (&app, uuid.clone(), skey.clone());
        Box::pin(async move { app.phone(id2, &uuid, &skey, &format!("cy.storm{i}")).await })
    });
    let answers = join_all(calls.collect()).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(ok, 100, "every call succeeds on the new token");
    let calls = app.wechat.token_calls(&appid2);
    assert_eq!(
        (calls.normal, calls.forced),
        (1, 1),
        "one forced refresh for the storm"
    );
    let issued = app.wechat.tokens(&appid2);
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert_eq!(issued[0], revoked);
    let fresh = issued[1].clone();
    // Each call carried the revoked token at most once, and succeeded on
    // the one new token.
    for i in 0..100 {
        let carried = app.wechat.phone_tokens(&format!("cy.storm{i}"));
        assert!(
            carried == [fresh.clone()] || carried == [revoked.clone(), fresh.clone()],
            "storm call {i} carried {carried:?} (revoked {revoked}, new {fresh})"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wafer_access_token_refreshes_total 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("access_token"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains(&format!("wafer_access_token_age_seconds{{app=\"{id}\"}}")));
    assert!(metrics.contains(r#"wafer_wechat_requests_total{api="phone",result="token_invalid"}"#));
}

/// Polls every future on this task until all are done (no spawning: they
/// borrow the test's app).
async fn join_all<F: std::future::Future + Unpin>(mut fs: Vec<F>) -> Vec<F::Output> {
    let mut done: Vec<Option<F::Output>> = (0..fs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in fs.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

#[tokio::test]
async fn revoked_tokens_on_the_embedded_store() {
    revoked_tokens(spawn_app().await, "wxrevemb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_on_the_tiered_store() {
    wafer_testkit::require_servers!();
    revoked_tokens(spawn_tiered_with(|_| {}).await, "wxrevtier").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_fetch_one_token() {
    wafer_testkit::require_servers!();
    let a = spawn_tiered_with(|_| {}).await;
    let b = a.sibling().await;
    let id = a.create_app("wxtwo").await;
    let (uuid, skey) = a.login(id, "dee.1").await;
    // B learns of the app within its refresh period.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let path = format!("/admin/apps/{id}/access_token");
    let (ta, tb, pa, pb) = tokio::join!(
        admin_get(&a, &path),
        admin_get(&b, &path),
        a.phone(id, &uuid, &skey, "dee.pa"),
        b.phone(id, &uuid, &skey, "dee.pb"),
    );
    assert_eq!(
        (ta.status, tb.status),
        (200, 200),
        "{} {}",
        ta.text,
        tb.text
    );
    assert_eq!(
        (pa.status, pb.status),
        (200, 200),
        "{} {}",
        pa.text,
        pb.text
    );
    assert_eq!(ta.body["access_token"], tb.body["access_token"]);
    let token = only_token(&a, "wxtwo");
    assert_eq!(ta.body["access_token"], token.as_str());
    assert_eq!(
        a.wechat.phone_tokens("dee.pa"),
        std::slice::from_ref(&token)
    );
    assert_eq!(
        a.wechat.phone_tokens("dee.pb"),
        std::slice::from_ref(&token)
    );
    let left = ta.body["expires_in"].as_u64().unwrap();
    assert!(left > 7000 && left <= 7200, "{left}");
    assert_eq!(ta.headers["cache-control"], "no-store");
    assert_eq!(
        a.wechat.token_calls("wxtwo").normal,
        1,
        "one fetch between them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_number_survives_a_redis_flush_and_a_restart() {
    wafer_testkit::require_servers!();
    let app = spawn_tiered_with(|_| {}).await;
    let id = app.create_app("wxsurv").await;
    let (uuid, skey) = app.login(id, "eve.1").await;
    assert_eq!(app.phone(id, &uuid, &skey, "eve.p").await.status, 200);
    let phone = wechat_mock::phone_for("eve.p").0;
    // Redis loses everything of this deployment: auth reads through.
    let prefix = app.redis_prefix().unwrap().to_owned();
    let url = wafer_testkit::backends::redis_url();
    let deleted = wafer_testkit::backends::delete_keys(&url, &format!("{prefix}*"))
        .await
        .expect("redis answers");
    assert!(deleted >= 2, "the session and its index: {deleted}");
    let checked = app.auth(id, &uuid, &skey).await;
    assert_eq!(
        checked.body["data"]["phone_number"],
        phone.as_str(),
        "{}",
        checked.text
    );
    // Another process on the same stores: the same answer.
    let restarted = app.sibling().await;
    let checked = restarted.auth(id, &uuid, &skey).await;
    assert_eq!(
        checked.body["data"]["phone_number"],
        phone.as_str(),
        "{}",
        checked.text
    );
}

async fn decrypt(app: TestApp, appid: &str) {
    let id = app.create_app(appid).await;
    let (uuid, skey) = app.login(id, "fay.1").await;
    let data = app.user_data(appid, "fay.1").await;
    let body = |skey: &str, data: &serde_json::Value| {
        json!({"app_id": id, "uuid": uuid, "skey": skey,
               "encrypt_data": data["encryptedData"], "iv": data["iv"]})
    };
    let a = app.post("/mina/decrypt", body(&skey, &data)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["msg"], "decrypt ok");
    assert_eq!(a.body["data"]["nickName"], "fay");
    assert_eq!(a.body["data"]["watermark"]["appid"], appid);
    assert_fail(
        &app.post("/mina/decrypt", body("wrong", &data)).await,
        401,
        "session_invalid",
    );
    let no_iv = json!({"app_id": id, "uuid": uuid, "skey": skey, "encrypt_data": "x"});
    assert_fail(&app.post("/mina/decrypt", no_iv).await, 400, "bad_request");
    // A wx.login() after the data was fetched rotates the session key.
    let (_, skey2) = app.login(id, "fay.2").await;
    let stale = app.post("/mina/decrypt", body(&skey2, &data)).await;
    assert_fail(&stale, 400, "bad_encrypted_data");
    let msg = stale.body["msg"].as_str().unwrap();
    assert!(
        msg.contains("wx.login()") && msg.contains("log in again"),
        "{msg}"
    );
    let fresh = app.user_data(appid, "fay.2").await;
    assert_eq!(
        app.post("/mina/decrypt", body(&skey2, &fresh)).await.status,
        200
    );
}

#[tokio::test]
async fn decrypt_on_the_embedded_store() {
    decrypt(spawn_app().await, "wxdecemb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypt_on_the_tiered_store() {
    wafer_testkit::require_servers!();
    decrypt(spawn_tiered_with(|_| {}).await, "wxdectier").await;
}

/// The admin token route, its drops, and the session-key check.
async fn tokens_and_key_checks(app: TestApp, appid: &str) {
    let id = app.create_app(appid).await;
    let path = format!("/admin/apps/{id}/access_token");
    let served = admin_get(&app, &path).await;
    assert_eq!(served.status, 200, "{}", served.text);
    let first = only_token(&app, appid);
    assert_eq!(served.body["access_token"], first.as_str());
    let forbidden = app.send(app.client.get(app.url(&path))).await;
    assert_admin_fail(&forbidden, 403, "forbidden");
    assert_admin_fail(
        &admin_get(&app, "/admin/apps/999/access_token").await,
        404,
        "not_found",
    );
    assert_eq!(app.wechat.token_calls(appid).normal, 1);
    // A new secret (reset at WeChat, then given to wafer): the token of the
    // old one is not served from wafer's store, it is fetched again (WeChat
    // answers its current token, still the same one).
    app.wechat.register_app(appid, "a-new-secret");
    let patched = app
        .send(
            app.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
                .json(&json!({"secret": "a-new-secret"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let second = admin_get(&app, &path).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(
        app.wechat.token_calls(appid).normal,
        2,
        "fetched with the new secret"
    );
    assert_eq!(
        second.body["access_token"],
        first.as_str(),
        "WeChat's current token"
    );
    // A secret WeChat refuses (40125): 502, and the reason is the app's
    // credentials; no token is issued.
    app.send(
        app.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
            .json(&json!({"secret": "wrong-secret"})),
    )
    .await;
    assert_admin_fail(&admin_get(&app, &path).await, 502, "upstream_error");
    assert_eq!(
        app.wechat.token_calls(appid).normal,
        2,
        "a refused call issues nothing"
    );
    assert_eq!(
        app.wechat.tokens(appid),
        std::slice::from_ref(&first),
        "none issued"
    );

    // Support's check: is the stored session key the user's current one?
    app.wechat.register_app(appid, "good-again");
    app.send(
        app.admin(reqwest::Method::PATCH, &format!("/admin/apps/{id}"))
            .json(&json!({"secret": "good-again"})),
    )
    .await;
    app.login(id, "gus.1").await;
    let open_id = wechat_mock::open_id_for(appid, "gus.1");
    let check = format!("/admin/apps/{id}/users/{open_id}/session_key");
    let current = admin_get(&app, &check).await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(current.body["current"], true);
    assert!(
        !current
            .text
            .contains(&wechat_mock::session_key_for("gus.1"))
    );
    // The user logs in through another server of the app: wafer's key is
    // no longer the current one.
    app.login_elsewhere(appid, "gus.2").await;
    assert_eq!(admin_get(&app, &check).await.body["current"], false);
    assert_admin_fail(
        &admin_get(&app, &format!("/admin/apps/{id}/users/nobody/session_key")).await,
        404,
        "not_found",
    );
    // Deleting the app drops its token.
    let gone = app
        .send(app.admin(reqwest::Method::DELETE, &format!("/admin/apps/{id}")))
        .await;
    assert_eq!(gone.status, 204);
    let again = app.create_app(appid).await;
    let before = app.wechat.token_calls(appid).normal;
    let after = admin_get(&app, &format!("/admin/apps/{again}/access_token")).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(app.wechat.token_calls(appid).normal, before + 1);
    assert_eq!(
        after.body["access_token"],
        first.as_str(),
        "WeChat's current token"
    );
}

#[tokio::test]
async fn tokens_and_key_checks_on_the_embedded_store() {
    tokens_and_key_checks(spawn_app().await, "wxtokemb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_key_checks_on_the_tiered_store() {
    wafer_testkit::require_servers!();
    tokens_and_key_checks(spawn_tiered_with(|_| {}).await, "wxtoktier").await;
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let app = spawn_app().await;
    app.wechat.set_token_lifetime(Duration::from_secs(2));
    let id = app.create_app("wxrenew").await;
    let path = format!("/admin/apps/{id}/access_token");
    let first = admin_get(&app, &path).await.body["access_token"].clone();
    assert_eq!(admin_get(&app, &path).await.body["access_token"], first);
    assert_eq!(app.wechat.token_calls("wxrenew").normal, 1);
    // Past the renewal point (half of a 2 s life), still before expiry:
    // a new token, fetched once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.clock.advance(Duration::from_millis(1100));
    let renewed = admin_get(&app, &path).await.body["access_token"].clone();
    assert_ne!(renewed, first);
    assert_eq!(admin_get(&app, &path).await.body["access_token"], renewed);
    assert_eq!(app.wechat.token_calls("wxrenew").normal, 2);
    assert_eq!(app.wechat.tokens("wxrenew"), [first, renewed]);
}
