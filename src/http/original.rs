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

    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::TestCaseError;

    /// A para's value as sent: a string, or another JSON value.
    #[derive(Debug, Clone)]
    enum Val {
        Str(String),
        Other(Value),
    }

    impl Val {
        fn json(&self) -> Value {
            match self {
                Val::Str(s) => Value::String(s.clone()),
                Val::Other(v) => v.clone(),
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Para {
        /// An object, fields in order (a name may repeat: the last counts).
        Fields(Vec<(String, Val)>),
        /// Something else in its place (`None`: no `para` at all).
        Not(Option<Value>),
    }

    /// A request: the interface's own fields and its para, or a whole
    /// other body in their place.
    #[derive(Debug, Clone)]
    struct Request {
        interface: Vec<(String, Value)>,
        para: Para,
        instead: Option<Value>,
    }

    /// A JSON object written by hand: serde_json's map cannot repeat a key.
    fn object<'a>(fields: impl Iterator<Item = (&'a str, Value)>) -> String {
        let fields: Vec<String> = fields.map(|(k, v)| format!("{}:{v}", json!(k))).collect();
        format!("{{{}}}", fields.join(","))
    }

    impl Request {
        fn body(&self) -> Bytes {
            if let Some(v) = &self.instead {
                return Bytes::from(v.to_string());
            }
            let mut interface = object(self.interface.iter().map(|(k, v)| (k.as_str(), v.clone())));
            let para = match &self.para {
                Para::Fields(f) => Some(object(f.iter().map(|(k, v)| (k.as_str(), v.json())))),
                Para::Not(v) => v.as_ref().map(Value::to_string),
            };
            if let Some(para) = para {
                interface.pop();
                let sep = if self.interface.is_empty() { "" } else { "," };
                interface = format!(r#"{interface}{sep}"para":{para}}}"#);
            }
            Bytes::from(format!(
                r#"{{"version":1,"componentName":"MA","interface":{interface}}}"#
            ))
        }

        /// The last value of `name` in the interface, as `serde_json` keeps it.
        fn interface_field(&self, name: &str) -> Option<&Value> {
            self.interface
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
        }
    }

    /// What an `appid` value makes: the app named, or the protocol's code
    /// and message.
    type Made = Result<AppRef<'static>, (i64, &'static str)>;

    /// `appid` values and what the protocol makes of each.
    fn app_cases() -> Vec<(Val, Made)> {
        const NO: Result<AppRef<'static>, (i64, &str)> = Err(code::NO_APPID);
        vec![
            (Val::Other(json!(7)), Ok(AppRef::Id(7))),
            (Val::Other(json!(7.0)), NO),
            (Val::Other(json!(0)), NO),
            (Val::Other(json!(-3)), NO),
            (Val::Other(json!(1.5)), NO),
            (Val::Other(json!(1e300)), NO),
            (Val::Other(json!(u64::MAX)), NO),
            (Val::Other(json!(i64::MAX)), Ok(AppRef::Id(i64::MAX))),
            (Val::Other(json!(null)), Ok(AppRef::Id(1))),
            (Val::Other(json!(true)), NO),
            (Val::Other(json!([1])), NO),
            (Val::Other(json!({"id": 1})), NO),
            (Val::Str("12".into()), Ok(AppRef::Id(12))),
            (Val::Str(" 12 ".into()), Ok(AppRef::Id(12))),
            (Val::Str("007".into()), Ok(AppRef::Id(7))),
            (Val::Str("0".into()), NO),
            (Val::Str("-1".into()), NO),
            (Val::Str("1.5".into()), NO),
            (Val::Str("inf".into()), NO),
            (Val::Str("99999999999999999999".into()), NO),
            (Val::Str(String::new()), Ok(AppRef::Id(1))),
            (
                Val::Str("wx4f4bc4dec97d474b".into()),
                Ok(AppRef::Appid("wx4f4bc4dec97d474b".into())),
            ),
            // The app is read, then the credentials refuse the NUL.
            (Val::Str("wx\0ab".into()), Err(code::PARA_ERR)),
        ]
    }

    const ID_SKEY: &str = "qcloud.cam.id_skey";
    const AUTH: &str = "qcloud.cam.auth";
    const DECRYPT: &str = "qcloud.cam.decrypt";

    /// Valid requests of each interface.
    fn request() -> impl Strategy<Value = Request> {
        let text = || "[^\\x00]{1,30}";
        let paras = proptest::prop_oneof![
            (text(), proptest::option::of((text(), text()))).prop_map(|(code, enc)| {
                let mut f = vec![("code", code)];
                if let Some((data, iv)) = enc {
                    f.extend([("encrypt_data", data), ("iv", iv)]);
                }
                (ID_SKEY, f)
            }),
            (text(), text()).prop_map(|(id, skey)| (AUTH, vec![("id", id), ("skey", skey)])),
            (text(), text(), text(), text()).prop_map(|(id, skey, data, iv)| {
                let f = vec![
                    ("id", id),
                    ("skey", skey),
                    ("encrypt_data", data),
                    ("iv", iv),
                ];
                (DECRYPT, f)
            }),
        ];
        let app = proptest::option::of((
            proptest::prop_oneof![
                Just(Val::Other(json!(7))),
                Just(Val::Str("12".into())),
                Just(Val::Str("wx4f4bc4dec97d474b".into())),
            ],
            proptest::arbitrary::any::<bool>(),
        ));
        (paras, app).prop_map(|((name, f), app)| {
            let mut para: Vec<(String, Val)> = f
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Val::Str(v)))
                .collect();
            let mut interface = vec![("interfaceName".to_owned(), json!(name))];
            match app {
                Some((v, true)) => interface.push(("appid".into(), v.json())),
                Some((v, false)) => para.push(("appid".into(), v)),
                None => {}
            }
            Request {
                interface,
                para: Para::Fields(para),
                instead: None,
            }
        })
    }

    /// What is done to a valid request; indexes are taken modulo the number
    /// of para fields (or bytes).
    #[derive(Debug, Clone)]
    enum Mutation {
        Nothing,
        Drop(usize),
        Empty(usize),
        /// A NUL inserted at a char position.
        Nul(usize, usize),
        /// The value replaced with a non-string JSON value.
        WrongType(usize, Value),
        /// The value made 600 characters long.
        Long(usize),
        /// The field repeated with another value (the last counts).
        Duplicate(usize, String),
        /// A para no interface reads.
        Unknown(String, Value),
        /// `appid` set to one of [`app_cases`]: in the interface, the para
        /// or both (the interface's counts, even `null`).
        App(usize, u8),
        /// `interfaceName` set to this (`None`: removed).
        Name(Option<Value>),
        /// `para` replaced (`None`: removed).
        NoPara(Option<Value>),
        /// The whole body replaced by JSON with no interface object.
        NoInterface(Value),
        Truncate(usize),
        Flip(usize, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        use proptest::arbitrary::any;
        use proptest::sample::select;
        let other = select(vec![
            json!(null),
            json!(true),
            json!(12),
            json!([1]),
            json!({"a": 1}),
        ]);
        proptest::prop_oneof![
            3 => Just(Mutation::Nothing),
            1 => any::<usize>().prop_map(Mutation::Drop),
            1 => any::<usize>().prop_map(Mutation::Empty),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(i, at)| Mutation::Nul(i, at)),
            1 => (any::<usize>(), other.clone()).prop_map(|(i, v)| Mutation::WrongType(i, v)),
            1 => any::<usize>().prop_map(Mutation::Long),
            1 => (any::<usize>(), "[^\\x00]{1,20}").prop_map(|(i, v)| Mutation::Duplicate(i, v)),
            1 => ("x_[a-z_]{0,10}", other).prop_map(|(k, v)| Mutation::Unknown(k, v)),
            2 => (0..app_cases().len(), 0u8..3).prop_map(|(c, at)| Mutation::App(c, at)),
            1 => proptest::option::of(select(vec![
                json!("qcloud.cam.initdata"),
                json!("qcloud.cam.nope"),
                json!("QCLOUD.CAM.AUTH"),
                json!(3),
                json!(null),
            ]))
            .prop_map(Mutation::Name),
            1 => proptest::option::of(select(vec![json!(null), json!("p"), json!([]), json!(1)]))
                .prop_map(Mutation::NoPara),
            1 => select(vec![
                json!([1]),
                json!(3),
                json!({"version": 1}),
                json!({"interface": "x"}),
                json!({"interface": [1]}),
                json!({"interface": null}),
            ])
            .prop_map(Mutation::NoInterface),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => (any::<usize>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        ]
    }

    /// A call as read.
    #[derive(Debug, PartialEq)]
    enum Read {
        IdSkey {
            code: String,
            app: AppRef<'static>,
            encrypted: Option<(String, String)>,
        },
        Auth {
            id: String,
            skey: String,
            app: AppRef<'static>,
        },
        Decrypt {
            id: String,
            skey: String,
            app: AppRef<'static>,
            data: String,
            iv: String,
        },
    }

    fn read(body: &Bytes) -> Result<Read, Failure> {
        let session =
            |s: &AuthInput<'static>| (s.uuid.to_string(), s.skey.to_string(), s.app.clone());
        Ok(match parse(body)? {
            Call::IdSkey(l) => {
                if l.signed.is_some() {
                    return Err(Failure::new(ErrorCode::Internal, "raw_data is not a para"));
                }
                Read::IdSkey {
                    code: l.code.to_string(),
                    app: l.app,
                    encrypted: l.encrypted.map(|(d, i)| (d.into_owned(), i.into_owned())),
                }
            }
            Call::Auth(a) => {
                let (id, skey, app) = session(&a);
                Read::Auth { id, skey, app }
            }
            Call::Decrypt {
                session: s,
                data,
                iv,
            } => {
                let (id, skey, app) = session(&s);
                Read::Decrypt {
                    id,
                    skey,
                    app,
                    data,
                    iv,
                }
            }
        })
    }

    /// What `request` must read as, worked out from API.md's rules (not
    /// from the parser): the call, or the `returnCode` of the refusal.
    fn expected(request: &Request) -> Result<Read, (i64, &'static str)> {
        if request.instead.is_some() {
            return Err(code::NO_INTERFACE); // the mutation gives no other body
        }
        let name = match request.interface_field("interfaceName") {
            Some(Value::String(name)) => name.as_str(),
            _ => return Err(code::NO_INTERFACE),
        };
        let fields = match &request.para {
            Para::Fields(f) => f,
            Para::Not(_) => return Err(code::NO_PARA),
        };
        if ![ID_SKEY, AUTH, DECRYPT].contains(&name) {
            return Err(code::UNKNOWN_INTERFACE);
        }
        let para = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.json())
        };
        // A string para, or why not.
        let text = |name: &str| match para(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(code::PARA_ERR),
        };
        let required = |name: &str| text(name)?.filter(|s| !s.is_empty()).ok_or(code::PARA_ERR);
        let app = || {
            let given = match request.interface_field("appid") {
                Some(v) => Some(v.clone()),
                None => para("appid"),
            };
            let Some(given) = given else {
                return Ok(AppRef::Id(1));
            };
            let case = app_cases().into_iter().find(|(c, _)| c.json() == given);
            match (case, given) {
                (Some((_, want)), _) => want,
                // Mutations give appid only values of the table, or a NUL
                // (or 600 x) in a valid one.
                (None, Value::String(s)) if s.contains('\0') => Err(code::PARA_ERR),
                (None, Value::String(s)) => Ok(AppRef::Appid(Cow::Owned(s))),
                (None, _) => Err(code::NO_APPID),
            }
        };
        let no_nul = |v: &str| {
            if v.contains('\0') {
                Err(code::PARA_ERR)
            } else {
                Ok(())
            }
        };
        let session = || {
            let app = app()?;
            let (id, skey) = (required("id")?, required("skey")?);
            no_nul(&id)?;
            no_nul(&skey)?;
            Ok((id, skey, app))
        };
        Ok(match name {
            ID_SKEY => {
                let code = required("code")?;
                let app = app()?;
                let (data, iv) = (text("encrypt_data")?, text("iv")?);
                for v in [Some(&code), data.as_ref(), iv.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    no_nul(v)?;
                }
                if code.len() > 512 {
                    return Err(code::PARA_ERR);
                }
                let present = |v: Option<String>| v.filter(|v| !v.is_empty());
                let encrypted = match (present(data), present(iv)) {
                    (Some(d), Some(i)) => Some((d, i)),
                    (Some(_), None) => return Err(code::PARA_ERR),
                    (None, _) => None,
                };
                Read::IdSkey {
                    code,
                    app,
                    encrypted,
                }
            }
            AUTH => {
                let (id, skey, app) = session()?;
                Read::Auth { id, skey, app }
            }
            _ => {
                let (id, skey, app) = session()?;
                Read::Decrypt {
                    id,
                    skey,
                    app,
                    data: required("encrypt_data")?,
                    iv: required("iv")?,
                }
            }
        })
    }

    /// Mutates `request`, parses it and checks the answer against what the
    /// mutation must cause: the exact call or `returnCode` where the rules
    /// say, else a refusal of the table or a valid call. Returns the outcome
    /// ("ok" or the `returnMessage`) so a test can count which checks were
    /// reached.
    fn parse_mutated(mut r: Request, mutation: &Mutation) -> Result<&'static str, TestCaseError> {
        use proptest::{prop_assert, prop_assert_eq};
        let Para::Fields(para) = &mut r.para else {
            return Err(TestCaseError::fail("request() makes a para object"));
        };
        let n = para.len();
        let mut body = None;
        match mutation.clone() {
            Mutation::Nothing => {}
            Mutation::Drop(i) => {
                para.remove(i % n);
            }
            Mutation::Empty(i) => para[i % n].1 = Val::Str(String::new()),
            Mutation::Nul(i, at) => {
                let text = match &para[i % n].1 {
                    Val::Str(s) => s.clone(),
                    Val::Other(v) => v.to_string(),
                };
                let mut s: Vec<char> = text.chars().collect();
                s.insert(at % (s.len() + 1), '\0');
                para[i % n].1 = Val::Str(s.into_iter().collect());
            }
            Mutation::WrongType(i, v) => {
                // The table covers appid's other values.
                let v = if para[i % n].0 == "appid" {
                    json!(7)
                } else {
                    v
                };
                para[i % n].1 = Val::Other(v);
            }
            Mutation::Long(i) => para[i % n].1 = Val::Str("x".repeat(600)),
            Mutation::Duplicate(i, v) => {
                let name = para[i % n].0.clone();
                let v = if name == "appid" {
                    "wx4f4bc4dec97d474b".to_owned()
                } else {
                    v
                };
                para.push((name, Val::Str(v)));
            }
            Mutation::Unknown(k, v) => para.push((k, Val::Other(v))),
            Mutation::App(case, at) => {
                let value = app_cases().swap_remove(case).0;
                para.retain(|(k, _)| k != "appid");
                r.interface.retain(|(k, _)| k != "appid");
                if at != 1 {
                    r.interface.push(("appid".into(), value.json()));
                }
                if at == 1 {
                    para.push(("appid".into(), value));
                } else if at == 2 {
                    // Never read: the interface's appid counts.
                    para.push(("appid".into(), Val::Other(json!(0))));
                }
            }
            Mutation::Name(v) => {
                r.interface.retain(|(k, _)| k != "interfaceName");
                if let Some(v) = v {
                    r.interface.push(("interfaceName".into(), v));
                }
            }
            Mutation::NoPara(v) => r.para = Para::Not(v),
            Mutation::NoInterface(v) => r.instead = Some(v),
            Mutation::Truncate(at) => {
                let whole = r.body();
                body = Some(whole.slice(..at % whole.len()));
            }
            Mutation::Flip(i, mask) => {
                let mut bytes = r.body().to_vec();
                let i = i % bytes.len();
                bytes[i] ^= mask;
                body = Some(Bytes::from(bytes));
            }
        }
        let got = read(&body.clone().unwrap_or_else(|| r.body()));
        let want = match mutation {
            // No prefix of a JSON object is JSON.
            Mutation::Truncate(_) => Some(Err(code::NOT_JSON)),
            Mutation::Flip(..) => None,
            _ => Some(expected(&r)),
        };
        match (&got, want) {
            (Ok(read), Some(Ok(want))) => prop_assert_eq!(read, &want),
            (Err(f), Some(Err(want))) => prop_assert_eq!(f.original, Some(want)),
            (got, Some(want)) => prop_assert!(false, "read {got:?}, want {want:?}"),
            (Err(f), None) => {
                prop_assert!(f.original.is_some_and(|c| REFUSALS.contains(&c)), "{f:?}");
            }
            // Whatever was read passed the rules.
            (Ok(Read::IdSkey { code, .. }), None) => {
                prop_assert!(!code.is_empty() && !code.contains('\0') && code.len() <= 512);
            }
            (Ok(Read::Auth { id, skey, .. } | Read::Decrypt { id, skey, .. }), None) => {
                prop_assert!(!id.is_empty() && !id.contains('\0'));
                prop_assert!(!skey.is_empty() && !skey.contains('\0'));
            }
        }
        Ok(match got {
            Ok(_) => "ok",
            Err(f) => f.original.map_or("no returnCode", |c| c.1),
        })
    }

    /// The protocol's refusals a mutated request can meet.
    const REFUSALS: [(i64, &str); 6] = [
        code::NOT_JSON,
        code::NO_INTERFACE,
        code::NO_PARA,
        code::PARA_ERR,
        code::UNKNOWN_INTERFACE,
        code::NO_APPID,
    ];

    #[test]
    fn mutated_requests_reach_every_check() {
        // The property below means something only if its requests get past
        // the JSON syntax: count where 2000 of them end.
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for _ in 0..2000 {
            let (r, m) = (request(), mutation())
                .new_tree(&mut runner)
                .unwrap()
                .current();
            *seen.entry(parse_mutated(r, &m).unwrap()).or_default() += 1;
        }
        assert!(seen.get("ok").copied().unwrap_or(0) >= 400, "{seen:?}");
        for c in REFUSALS {
            assert!(
                seen.get(c.1).copied().unwrap_or(0) >= 20,
                "{}: {seen:?}",
                c.1
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn mutated_requests_are_read_or_refused_as_the_table_says(
            r in request(),
            m in mutation(),
        ) {
            parse_mutated(r, &m)?;
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
