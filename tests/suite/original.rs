//! The original wafer protocol, `POST /mina_auth/`, row by row over HTTP:
//! every interface, every returnCode, HTTP 200 and the envelope always, and
//! sessions shared with the `/mina` API.

use std::time::Duration;

use serde_json::{Value, json};
use wafer_testkit::{TestApp, spawn_app_with};

async fn call(app: &TestApp, body: Value) -> Value {
    let a = app.post("/mina_auth/", body).await;
    envelope(&a)
}

fn envelope(a: &wafer_testkit::Answer) -> Value {
    assert_eq!(a.status, 200, "always 200: {}", a.text);
    assert_eq!(a.headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(a.body["version"], 1, "{}", a.text);
    assert_eq!(a.body["componentName"], "MA", "{}", a.text);
    assert!(a.body["returnCode"].is_i64() && a.body["returnMessage"].is_string());
    if a.body["returnCode"] != 0 {
        assert_eq!(
            a.body["returnData"], "",
            "returnData is \"\" on failure: {}",
            a.text
        );
    }
    a.body.clone()
}

fn request(name: &str, para: Value) -> Value {
    json!({"version": 1, "componentName": "MA", "interface": {"interfaceName": name, "para": para}})
}

fn assert_code(v: &Value, code: i64, message: &str) {
    assert_eq!(v["returnCode"], code, "{v}");
    assert_eq!(v["returnMessage"], message, "{v}");
}

#[tokio::test]
async fn every_interface_and_return_code_of_the_original_protocol() {
    let app = spawn_app_with(|s| s.wechat.timeout = Duration::from_millis(300)).await;
    let id = app.create_app("wxorig").await;
    assert_eq!(id, 1, "the default app");

    // qcloud.cam.id_skey: new, then the same user again.
    let first = call(
        &app,
        request(
            "qcloud.cam.id_skey",
            json!({"code": "ola.1", "encrypt_data": "", "iv": ""}),
        ),
    )
    .await;
    assert_code(&first, 0, "NEW_SESSION_SUCCESS");
    let data = &first["returnData"];
    let (sid, skey) = (data["id"].as_str().unwrap(), data["skey"].as_str().unwrap());
    assert_eq!(data["user_info"], Value::Null);
    assert_eq!(data["duration"], 2_592_000);
    let ud = app.user_data("wxorig", "ola.2").await;
    let again = call(
        &app,
        request(
            "qcloud.cam.id_skey",
            json!({"code": "ola.2", "encrypt_data": ud["encryptedData"], "iv": ud["iv"]}),
        ),
    )
    .await;
    assert_code(&again, 0, "UPDATE_SESSION_SUCCESS");
    assert_eq!(again["returnData"]["id"], sid, "one session per user");
    assert_eq!(again["returnData"]["user_info"]["nickName"], "ola");
    let skey = {
        let _ = skey;
        again["returnData"]["skey"].as_str().unwrap().to_owned()
    };

    // qcloud.cam.auth, and the same session on /mina/auth.
    let auth = call(
        &app,
        request("qcloud.cam.auth", json!({"id": sid, "skey": skey})),
    )
    .await;
    assert_code(&auth, 0, "AUTH_SUCCESS");
    assert_eq!(auth["returnData"]["user_info"]["nickName"], "ola");
    assert_eq!(app.auth(id, sid, &skey).await.status, 200);
    // A session made on /mina/login checks here too (appid in the interface).
    let (uuid2, skey2) = app.login(id, "pia.1").await;
    let cross = call(
        &app,
        json!({"interface": {"interfaceName": "qcloud.cam.auth", "appid": "wxorig", "para": {"id": uuid2, "skey": skey2}}}),
    )
    .await;
    assert_code(&cross, 0, "AUTH_SUCCESS");

    // qcloud.cam.decrypt: data fetched with the current session key.
    let fetched = app.user_data("wxorig", "ola.2").await;
    let dec = call(
        &app,
        request("qcloud.cam.decrypt", json!({"id": sid, "skey": skey, "encrypt_data": fetched["encryptedData"], "iv": fetched["iv"]})),
    )
    .await;
    assert_code(&dec, 0, "DECRYPT_SUCCESS");
    assert_eq!(dec["returnData"]["watermark"]["appid"], "wxorig");
    // Data of an older session key (before the last login) does not.
    let stale = app.user_data("wxorig", "ola.1").await;
    let bad = call(
        &app,
        request("qcloud.cam.decrypt", json!({"id": sid, "skey": skey, "encrypt_data": stale["encryptedData"], "iv": stale["iv"]})),
    )
    .await;
    assert_code(&bad, 60021, "DECRYPT_FAIL");

    // Failures, one per row.
    let wrong = call(
        &app,
        request("qcloud.cam.auth", json!({"id": sid, "skey": "nope"})),
    )
    .await;
    assert_code(&wrong, 60012, "AUTH_FAIL");
    let not_json = envelope(
        &app.post_raw("/mina_auth", Some("application/json"), "{{nope")
            .await,
    );
    assert_code(&not_json, 1009, "REQUEST_IS_NOT_JSON");
    let empty = envelope(&app.post_raw("/mina_auth/", None, "").await);
    assert_code(&empty, 1009, "REQUEST_IS_NOT_JSON");
    let no_name = call(&app, json!({"interface": {"para": {}}})).await;
    assert_code(&no_name, 1002, "NO_INTERFACENAME_PARA");
    let no_para = call(
        &app,
        json!({"interface": {"interfaceName": "qcloud.cam.auth"}}),
    )
    .await;
    assert_code(&no_para, 1011, "NO_PARA");
    let para_err = call(&app, request("qcloud.cam.auth", json!({"id": sid}))).await;
    assert_code(&para_err, 1003, "PARA_ERR");
    let initdata = call(&app, request("qcloud.cam.initdata", json!({}))).await;
    assert_code(&initdata, 1010, "INTERFACENAME_PARA_ERR");
    let no_app = call(
        &app,
        json!({"interface": {"interfaceName": "qcloud.cam.auth", "para": {"id": sid, "skey": skey, "appid": "wxnone"}}}),
    )
    .await;
    assert_code(&no_app, 1012, "NO_APPID");
    for (code, want, message) in [
        ("err-40029", 40029, "WEIXIN_CODE_ERR"),
        ("err--1", 40029, "WEIXIN_CODE_ERR"),
        ("http-500", 1005, "WEIXIN_NET_ERR"),
        ("slow-1000.o", 1005, "WEIXIN_NET_ERR"),
        ("non-json", 1007, "WEIXIN_RETURN_ERR"),
    ] {
        let v = call(&app, request("qcloud.cam.id_skey", json!({"code": code}))).await;
        assert_code(&v, want, message);
    }
    // Nothing of a failure reaches returnData, a secret least of all.
    assert!(!wrong.to_string().contains(&skey));
}

#[tokio::test]
async fn a_store_that_cannot_keep_the_session_is_change_session_err() {
    let app = spawn_app_with(|s| s.embedded.max_sessions = 1).await;
    app.create_app("wxfull").await;
    let ok = call(
        &app,
        request("qcloud.cam.id_skey", json!({"code": "one.1"})),
    )
    .await;
    assert_code(&ok, 0, "NEW_SESSION_SUCCESS");
    let full = call(
        &app,
        request("qcloud.cam.id_skey", json!({"code": "two.1"})),
    )
    .await;
    assert_code(&full, 1006, "CHANGE_SESSION_ERR");
}
