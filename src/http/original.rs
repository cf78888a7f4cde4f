//! The original wafer protocol, `POST /mina_auth/`: Tencent's wafer session
//! server spoke it, and business servers built on its SDKs (Node, PHP,
//! Java, C#) still do. A codec over the same domain calls as the `/mina`
//! JSON: a session made through one is valid through the other (`id` is the
//! uuid).
//!
//! Every answer is HTTP 200 with the envelope the SDKs read:
//! `{"returnCode", "returnMessage", "returnData", "version": 1,
//! "componentName": "MA"}`, `returnData` being `""` on every failure.

use std::borrow::Cow;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use crate::domain::app::AppRef;
use crate::domain::input::{AuthInput, LoginFields, LoginInput};
use crate::domain::{Error as DomainError, LoginOutput};
use crate::error::ErrorCode;
use crate::http::response::{Failure, Reply, json as json_reply};
use crate::wechat::WechatError;

/// A request of the protocol: which interface, with which parameters.
#[derive(Debug)]
pub enum Call {
    /// `qcloud.cam.id_skey`: log in with a code.
    IdSkey(LoginInput<'static>),
    /// `qcloud.cam.auth`: check a session.
    Auth(AuthInput<'static>),
    /// `qcloud.cam.decrypt`: decrypt data with a session's key.
    Decrypt {
        /// The session.
        session: AuthInput<'static>,
        /// `encrypt_data`.
        data: String,
        /// `iv`.
        iv: String,
    },
}

/// `returnCode` and `returnMessage` of each failure (API.md's table).
pub mod code {
    /// The body is not JSON.
    pub const NOT_JSON: (i64, &str) = (1009, "REQUEST_IS_NOT_JSON");
    /// No `interface.interfaceName`.
    pub const NO_INTERFACE: (i64, &str) = (1002, "NO_INTERFACENAME_PARA");
    /// No `interface.para`.
    pub const NO_PARA: (i64, &str) = (1011, "NO_PARA");
    /// A required para is missing or not a string.
    pub const PARA_ERR: (i64, &str) = (1003, "PARA_ERR");
    /// Unknown interfaceName (`qcloud.cam.initdata` included).
    pub const UNKNOWN_INTERFACE: (i64, &str) = (1010, "INTERFACENAME_PARA_ERR");
    /// No such app.
    pub const NO_APPID: (i64, &str) = (1012, "NO_APPID");
    /// WeChat unreachable, timed out or an HTTP error.
    pub const WEIXIN_NET_ERR: (i64, &str) = (1005, "WEIXIN_NET_ERR");
    /// WeChat answered an errcode.
    pub const WEIXIN_CODE_ERR: (i64, &str) = (40029, "WEIXIN_CODE_ERR");
    /// WeChat's reply lacks `openid` or `session_key`.
    pub const WEIXIN_RETURN_ERR: (i64, &str) = (1007, "WEIXIN_RETURN_ERR");
    /// The session could not be stored (a store is down).
    pub const CHANGE_SESSION_ERR: (i64, &str) = (1006, "CHANGE_SESSION_ERR");
    /// Decryption or the watermark check failed.
    pub const DECRYPT_FAIL: (i64, &str) = (60021, "DECRYPT_FAIL");
    /// Unknown, wrong or expired session.
    pub const AUTH_FAIL: (i64, &str) = (60012, "AUTH_FAIL");
}

fn fail(c: (i64, &'static str), base: ErrorCode) -> Failure {
    Failure {
        original: Some(c),
        ..Failure::new(base, c.1)
    }
}

fn para<'v>(p: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    p.get(name).and_then(Value::as_str)
}

fn required(p: &Map<String, Value>, name: &str) -> Result<String, Failure> {
    para(p, name)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| fail(code::PARA_ERR, ErrorCode::BadRequest))
}

/// The app a request names: `interface.appid`, else `para.appid`, else 1.
fn app(interface: &Map<String, Value>, p: &Map<String, Value>) -> Result<AppRef<'static>, Failure> {
    let given = interface.get("appid").or_else(|| p.get("appid"));
    let text = match given {
        None | Some(Value::Null) => return Ok(AppRef::default()),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(fail(code::NO_APPID, ErrorCode::AppNotFound)),
    };
    AppRef::parse_text(Cow::Owned(text)).map_err(|_| fail(code::NO_APPID, ErrorCode::AppNotFound))
}

fn session(p: &Map<String, Value>, app: AppRef<'static>) -> Result<AuthInput<'static>, Failure> {
    let id = required(p, "id")?;
    let skey = required(p, "skey")?;
    AuthInput::new(Some(id.into()), Some(skey.into()), app)
        .map_err(|_| fail(code::PARA_ERR, ErrorCode::BadRequest))
}

/// Parses a request body.
pub fn parse(body: &Bytes) -> Result<Call, Failure> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| fail(code::NOT_JSON, ErrorCode::BadRequest))?;
    let interface = v
        .get("interface")
        .and_then(Value::as_object)
        .ok_or_else(|| fail(code::NO_INTERFACE, ErrorCode::BadRequest))?;
    let name = interface
        .get("interfaceName")
        .and_then(Value::as_str)
        .ok_or_else(|| fail(code::NO_INTERFACE, ErrorCode::BadRequest))?;
    let p = interface
        .get("para")
        .and_then(Value::as_object)
        .ok_or_else(|| fail(code::NO_PARA, ErrorCode::BadRequest))?;
    // The app is looked up only for the interfaces that exist.
    let app = || app(interface, p);
    match name {
        "qcloud.cam.id_skey" => {
            let code = required(p, "code")?;
            let optional = |name: &str| -> Result<Option<Cow<'static, str>>, Failure> {
                match p.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(Cow::Owned(s.clone()))),
                    Some(_) => Err(fail(code::PARA_ERR, ErrorCode::BadRequest)),
                }
            };
            let fields = LoginFields {
                code: Some(code.into()),
                app: app()?,
                encrypt_data: optional("encrypt_data")?,
                iv: optional("iv")?,
                raw_data: None,
                signature: None,
            };
            // A missing iv with encrypt_data, a NUL, an overlong code.
            let input =
                LoginInput::new(fields).map_err(|_| fail(code::PARA_ERR, ErrorCode::BadRequest))?;
            Ok(Call::IdSkey(input))
        }
        "qcloud.cam.auth" => Ok(Call::Auth(session(p, app()?)?)),
        "qcloud.cam.decrypt" => Ok(Call::Decrypt {
            session: session(p, app()?)?,
            data: required(p, "encrypt_data")?,
            iv: required(p, "iv")?,
        }),
        // qcloud.cam.initdata reset the original's database, unauthenticated:
        // never served.
        _ => Err(fail(code::UNKNOWN_INTERFACE, ErrorCode::BadRequest)),
    }
}

/// A domain failure as the protocol reports it.
pub fn failure(e: DomainError) -> Failure {
    let c = match &e {
        DomainError::SessionInvalid => code::AUTH_FAIL,
        DomainError::AppNotFound => code::NO_APPID,
        DomainError::BadEncryptedData(_)
        | DomainError::StaleSessionKey
        | DomainError::BadSignature => code::DECRYPT_FAIL,
        DomainError::BadRequest(_) => code::PARA_ERR,
        // The original had no limit; its clients treat WeChat's own
        // rate limit (45011) as a code error, and so this.
        DomainError::LoginLimited(_) => code::WEIXIN_CODE_ERR,
        DomainError::Wechat(w) => match w {
            WechatError::Timeout | WechatError::Unreachable | WechatError::HttpStatus(_) => {
                code::WEIXIN_NET_ERR
            }
            WechatError::Malformed => code::WEIXIN_RETURN_ERR,
            WechatError::CodeRejected(_)
            | WechatError::RateLimited
            | WechatError::AppCredentials(_)
            | WechatError::TokenInvalid(_)
            | WechatError::Errcode(_) => code::WEIXIN_CODE_ERR,
        },
        DomainError::Store(_) | DomainError::Internal(_) => code::CHANGE_SESSION_ERR,
        DomainError::NotFound | DomainError::Conflict => code::CHANGE_SESSION_ERR,
    };
    Failure {
        original: Some(c),
        ..Failure::from(e)
    }
}

fn envelope(return_code: i64, message: &str, data: Value) -> Reply {
    let body = json!({
        "returnCode": return_code,
        "returnMessage": message,
        "returnData": data,
        "version": 1,
        "componentName": "MA",
    });
    json_reply(StatusCode::OK, body.to_string())
}

fn user_info(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The answer to `qcloud.cam.id_skey`.
pub fn logged_in(out: &LoginOutput) -> Reply {
    let message = if out.new {
        "NEW_SESSION_SUCCESS"
    } else {
        "UPDATE_SESSION_SUCCESS"
    };
    envelope(
        0,
        message,
        json!({
            "id": out.uuid.hyphenated().to_string(),
            "skey": out.skey.expose(),
            "user_info": user_info(out.user_info.as_deref()),
            "duration": out.duration,
        }),
    )
}

/// The answer to `qcloud.cam.auth`.
pub fn authenticated(info: Option<&str>) -> Reply {
    envelope(0, "AUTH_SUCCESS", json!({ "user_info": user_info(info) }))
}

/// The answer to `qcloud.cam.decrypt`.
pub fn decrypted(object: &str) -> Reply {
    envelope(0, "DECRYPT_SUCCESS", user_info(Some(object)))
}

/// Any failure, in the envelope: HTTP 200, `returnData` `""`. A failure the
/// codec did not name (the body could not be read, say) is a request that
/// is not JSON, or one of the domain's.
pub fn failed(f: &Failure) -> Reply {
    let (c, m) = f.original.unwrap_or(match f.code {
        ErrorCode::SessionInvalid => code::AUTH_FAIL,
        ErrorCode::AppNotFound => code::NO_APPID,
        ErrorCode::Unavailable | ErrorCode::Internal => code::CHANGE_SESSION_ERR,
        _ => code::NOT_JSON,
    });
    envelope(c, m, Value::String(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(body: &str) -> Result<Call, Failure> {
        parse(&Bytes::copy_from_slice(body.as_bytes()))
    }

    fn code_of(body: &str) -> (i64, &'static str) {
        call(body).unwrap_err().original.unwrap()
    }

    const ENVELOPE: &str = r#"{"version":1,"componentName":"MA","interface":"#;

    fn req(interface: &str) -> String {
        format!("{ENVELOPE}{interface}}}")
    }

    #[test]
    fn every_request_error_of_the_table() {
        assert_eq!(code_of("not json"), code::NOT_JSON);
        assert_eq!(code_of(r#"{"interface":{"para":{}}}"#), code::NO_INTERFACE);
        assert_eq!(code_of(r#"{"version":1}"#), code::NO_INTERFACE);
        assert_eq!(
            code_of(&req(r#"{"interfaceName":"qcloud.cam.auth"}"#)),
            code::NO_PARA
        );
        for (name, para) in [
            ("qcloud.cam.id_skey", r#"{}"#),
            ("qcloud.cam.id_skey", r#"{"code":5}"#),
            ("qcloud.cam.id_skey", r#"{"code":"c","encrypt_data":"x"}"#),
            ("qcloud.cam.auth", r#"{"id":"u"}"#),
            ("qcloud.cam.auth", r#"{"id":"u","skey":1}"#),
            ("qcloud.cam.decrypt", r#"{"id":"u","skey":"s","iv":"i"}"#),
        ] {
            let body = req(&format!(r#"{{"interfaceName":"{name}","para":{para}}}"#));
            assert_eq!(code_of(&body), code::PARA_ERR, "{body}");
        }
        for name in ["qcloud.cam.initdata", "qcloud.cam.nope"] {
            let body = req(&format!(r#"{{"interfaceName":"{name}","para":{{}}}}"#));
            assert_eq!(code_of(&body), code::UNKNOWN_INTERFACE, "{name}");
        }
        let zero =
            req(r#"{"interfaceName":"qcloud.cam.auth","appid":0,"para":{"id":"u","skey":"s"}}"#);
        assert_eq!(code_of(&zero), code::NO_APPID);
    }

    #[test]
    fn the_app_comes_from_the_interface_or_the_para() {
        let body = req(
            r#"{"interfaceName":"qcloud.cam.auth","appid":"wxA","para":{"id":"u","skey":"s"}}"#,
        );
        let Ok(Call::Auth(a)) = call(&body) else {
            panic!("auth")
        };
        assert_eq!(a.app, AppRef::Appid("wxA".into()));
        let body =
            req(r#"{"interfaceName":"qcloud.cam.auth","para":{"id":"u","skey":"s","appid":7}}"#);
        let Ok(Call::Auth(a)) = call(&body) else {
            panic!("auth")
        };
        assert_eq!(a.app, AppRef::Id(7));
        let body = req(
            r#"{"interfaceName":"qcloud.cam.id_skey","para":{"code":"c","encrypt_data":"","iv":""}}"#,
        );
        let Ok(Call::IdSkey(l)) = call(&body) else {
            panic!("login")
        };
        assert_eq!(l.app, AppRef::Id(1));
        assert!(
            l.encrypted.is_none(),
            "empty encrypt_data is no encrypted data"
        );
    }

    #[test]
    fn domain_failures_map_to_the_table() {
        let c = |e| failure(e).original.unwrap();
        assert_eq!(c(DomainError::SessionInvalid), code::AUTH_FAIL);
        assert_eq!(c(DomainError::AppNotFound), code::NO_APPID);
        assert_eq!(c(DomainError::BadEncryptedData("x")), code::DECRYPT_FAIL);
        assert_eq!(c(WechatError::Timeout.into()), code::WEIXIN_NET_ERR);
        assert_eq!(c(WechatError::HttpStatus(500).into()), code::WEIXIN_NET_ERR);
        assert_eq!(c(WechatError::Unreachable.into()), code::WEIXIN_NET_ERR);
        assert_eq!(c(WechatError::Malformed.into()), code::WEIXIN_RETURN_ERR);
        assert_eq!(
            c(WechatError::CodeRejected(40163).into()),
            code::WEIXIN_CODE_ERR
        );
        assert_eq!(c(WechatError::Errcode(-1).into()), code::WEIXIN_CODE_ERR);
        assert_eq!(c(DomainError::Internal("x")), code::CHANGE_SESSION_ERR);
    }

    #[test]
    fn failures_are_200_with_an_empty_return_data() {
        let r = failed(&fail(code::AUTH_FAIL, ErrorCode::SessionInvalid));
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()[hyper::header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_parsed_or_refused_without_panicking(body: Vec<u8>) {
            let _ = parse(&Bytes::from(body));
        }

        #[test]
        fn an_auth_envelope_carries_its_credentials(id in "[^\\x00]{1,60}", skey in "[^\\x00]{1,60}") {
            let body = serde_json::json!({"version": 1, "componentName": "MA", "interface": {
                "interfaceName": "qcloud.cam.auth", "para": {"id": id, "skey": skey}}});
            match parse(&Bytes::from(body.to_string())) {
                Ok(Call::Auth(input)) => {
                    proptest::prop_assert_eq!(input.uuid.as_ref(), id.as_str());
                    proptest::prop_assert_eq!(input.skey.as_ref(), skey.as_str());
                }
                _ => proptest::prop_assert!(false, "not read as an auth"),
            }
        }
    }
}
