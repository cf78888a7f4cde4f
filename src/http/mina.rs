//! The mini-program endpoints: reading their JSON or form bodies into domain
//! inputs, and writing the `/mina` envelope.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::domain::LoginOutput;
use crate::domain::app::AppRef;
use crate::domain::input::{AuthInput, LoginFields, LoginInput};
use crate::domain::session::Profile;
use crate::error::ErrorCode;
use crate::http::body::Format;
use crate::http::response::{Failure, write_opt_str, write_str};

/// `app_id` as sent: a number, a numeric string, a WeChat appid, or absent.
#[derive(Debug, Default)]
struct AppField<'a>(AppRef<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for AppField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = AppField<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive integer, a numeric string or a WeChat appid")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                AppRef::from_i128(v.into()).map(AppField).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                AppRef::from_i128(v.into()).map(AppField).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                AppRef::from_f64(v).map(AppField).map_err(E::custom)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                AppRef::parse_text(Cow::Borrowed(v))
                    .map(AppField)
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                AppRef::parse_text(Cow::Owned(v.to_owned()))
                    .map(AppField)
                    .map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AppField::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AppField::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A JSON string borrowed from the body when it has no escapes. serde's
/// `#[serde(borrow)]` does not reach through `Option<Cow<str>>` (it always
/// allocates there), which cost two allocations per `/mina/auth`.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Unwraps an optional [`Text`].
fn text(t: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    t.map(|t| t.0)
}

#[derive(Deserialize)]
struct LoginJson<'a> {
    #[serde(borrow, default)]
    code: Option<Text<'a>>,
    #[serde(borrow, default)]
    app_id: AppField<'a>,
    #[serde(borrow, default)]
    encrypt_data: Option<Text<'a>>,
    #[serde(borrow, default)]
    iv: Option<Text<'a>>,
    #[serde(borrow, default)]
    raw_data: Option<Text<'a>>,
    #[serde(borrow, default)]
    signature: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct AuthJson<'a> {
    #[serde(borrow, default)]
    uuid: Option<Text<'a>>,
    #[serde(borrow, default)]
    skey: Option<Text<'a>>,
    #[serde(borrow, default)]
    app_id: AppField<'a>,
}

/// An auth's fields plus those of `/mina/decrypt` and `/mina/phone`.
#[derive(Deserialize)]
struct SessionCallJson<'a> {
    #[serde(borrow, default)]
    uuid: Option<Text<'a>>,
    #[serde(borrow, default)]
    skey: Option<Text<'a>>,
    #[serde(borrow, default)]
    app_id: AppField<'a>,
    #[serde(borrow, default)]
    encrypt_data: Option<Text<'a>>,
    #[serde(borrow, default)]
    iv: Option<Text<'a>>,
    #[serde(borrow, default)]
    code: Option<Text<'a>>,
}

/// The fields of a call made with a session: its credentials and the
/// call's own fields (empty strings read as absent).
pub struct SessionCall<'a> {
    /// The session's credentials.
    pub session: AuthInput<'a>,
    encrypt_data: Option<Cow<'a, str>>,
    iv: Option<Cow<'a, str>>,
    code: Option<Cow<'a, str>>,
}

fn required<'a>(v: Option<Cow<'a, str>>, name: &'static str) -> Result<Cow<'a, str>, Failure> {
    v.filter(|v| !v.is_empty()).ok_or_else(|| {
        Failure::new(
            ErrorCode::BadRequest,
            match name {
                "encrypt_data" => "field `encrypt_data` is required",
                "iv" => "field `iv` is required",
                _ => "field `code` is required",
            },
        )
    })
}

impl<'a> SessionCall<'a> {
    /// `encrypt_data` and `iv`, both required (`/mina/decrypt`).
    pub fn encrypted(self) -> Result<(AuthInput<'a>, Cow<'a, str>, Cow<'a, str>), Failure> {
        let data = required(self.encrypt_data, "encrypt_data")?;
        let iv = required(self.iv, "iv")?;
        Ok((self.session, data, iv))
    }

    /// `code`, required (`/mina/phone`).
    pub fn code(self) -> Result<(AuthInput<'a>, Cow<'a, str>), Failure> {
        let code = required(self.code, "code")?;
        Ok((self.session, code))
    }
}

/// Reads a `/mina/decrypt` or `/mina/phone` request.
pub fn parse_session_call(format: Format, body: &Bytes) -> Result<SessionCall<'_>, Failure> {
    let (uuid, skey, app, encrypt_data, iv, code) = match format {
        Format::Json => {
            let j: SessionCallJson = serde_json::from_slice(body).map_err(bad_json)?;
            (
                text(j.uuid),
                text(j.skey),
                j.app_id.0,
                text(j.encrypt_data),
                text(j.iv),
                text(j.code),
            )
        }
        Format::Form => {
            let (mut uuid, mut skey, mut app) = (None, None, AppRef::default());
            let (mut data, mut iv, mut code) = (None, None, None);
            for (k, v) in form_urlencoded::parse(body) {
                match k.as_ref() {
                    "uuid" => uuid = Some(v),
                    "skey" => skey = Some(v),
                    "app_id" => app = form_app(v)?,
                    "encrypt_data" => data = Some(v),
                    "iv" => iv = Some(v),
                    "code" => code = Some(v),
                    _ => {}
                }
            }
            (uuid, skey, app, data, iv, code)
        }
    };
    Ok(SessionCall {
        session: AuthInput::new(uuid, skey, app)?,
        encrypt_data,
        iv,
        code,
    })
}

fn bad_json(e: serde_json::Error) -> Failure {
    Failure::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}"))
}

fn form_app(v: Cow<'_, str>) -> Result<AppRef<'_>, Failure> {
    AppRef::parse_text(v).map_err(|e| Failure::new(ErrorCode::BadRequest, e))
}

/// Reads a login request.
pub fn parse_login(format: Format, body: &Bytes) -> Result<LoginInput<'_>, Failure> {
    let fields = match format {
        Format::Json => {
            let j: LoginJson = serde_json::from_slice(body).map_err(bad_json)?;
            LoginFields {
                code: text(j.code),
                app: j.app_id.0,
                encrypt_data: text(j.encrypt_data),
                iv: text(j.iv),
                raw_data: text(j.raw_data),
                signature: text(j.signature),
            }
        }
        Format::Form => {
            let mut f = LoginFields::default();
            for (k, v) in form_urlencoded::parse(body) {
                match k.as_ref() {
                    "code" => f.code = Some(v),
                    "app_id" => f.app = form_app(v)?,
                    "encrypt_data" => f.encrypt_data = Some(v),
                    "iv" => f.iv = Some(v),
                    "raw_data" => f.raw_data = Some(v),
                    "signature" => f.signature = Some(v),
                    _ => {}
                }
            }
            f
        }
    };
    Ok(LoginInput::new(fields)?)
}

/// Reads an auth or logout request.
pub fn parse_auth(format: Format, body: &Bytes) -> Result<AuthInput<'_>, Failure> {
    let (uuid, skey, app) = match format {
        Format::Json => {
            let j: AuthJson = serde_json::from_slice(body).map_err(bad_json)?;
            (text(j.uuid), text(j.skey), j.app_id.0)
        }
        Format::Form => {
            let (mut uuid, mut skey, mut app) = (None, None, AppRef::default());
            for (k, v) in form_urlencoded::parse(body) {
                match k.as_ref() {
                    "uuid" => uuid = Some(v),
                    "skey" => skey = Some(v),
                    "app_id" => app = form_app(v)?,
                    _ => {}
                }
            }
            (uuid, skey, app)
        }
    };
    Ok(AuthInput::new(uuid, skey, app)?)
}

/// `{"msg":"welcome"}`.
pub const WELCOME: &[u8] = br#"{"msg":"welcome"}"#;

/// The logout success body.
pub const LOGOUT_OK: &[u8] = br#"{"ok":"success","msg":"logout ok","data":{}}"#;

/// The login success body.
pub fn login_ok(out: &LoginOutput) -> Vec<u8> {
    let info = out.user_info.as_deref();
    let mut b = Vec::with_capacity(160 + info.map_or(0, str::len));
    b.extend_from_slice(br#"{"ok":"success","msg":"login ok","data":{"uuid":""#);
    let mut uuid_buf = uuid::Uuid::encode_buffer();
    b.extend_from_slice(out.uuid.hyphenated().encode_lower(&mut uuid_buf).as_bytes());
    b.extend_from_slice(br#"","skey":"#);
    write_str(&mut b, out.skey.expose());
    b.extend_from_slice(br#","user_info":"#);
    b.extend_from_slice(info.unwrap_or("null").as_bytes());
    b.extend_from_slice(br#","duration":"#);
    b.extend_from_slice(out.duration.to_string().as_bytes());
    b.extend_from_slice(b"}}");
    b
}

/// The auth success body. `user_info` is stored as JSON text and copied as is.
pub fn auth_ok(p: &Profile) -> Vec<u8> {
    let info = p.user_info.as_deref();
    let mut b = Vec::with_capacity(112 + p.open_id.len() + info.map_or(0, str::len));
    b.extend_from_slice(br#"{"ok":"success","msg":"auth ok","data":{"user_info":"#);
    b.extend_from_slice(info.unwrap_or("null").as_bytes());
    b.extend_from_slice(br#","open_id":"#);
    write_str(&mut b, &p.open_id);
    b.extend_from_slice(br#","union_id":"#);
    write_opt_str(&mut b, p.union_id.as_deref());
    b.extend_from_slice(br#","phone_number":"#);
    write_opt_str(&mut b, p.phone_number.as_deref());
    b.extend_from_slice(b"}}");
    b
}

/// The decrypt success body; `object` is compact JSON, copied as is.
pub fn decrypt_ok(object: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(48 + object.len());
    b.extend_from_slice(br#"{"ok":"success","msg":"decrypt ok","data":"#);
    b.extend_from_slice(object.as_bytes());
    b.extend_from_slice(b"}");
    b
}

/// The phone success body.
pub fn phone_ok(p: &crate::wechat::PhoneInfo) -> Vec<u8> {
    let mut b = Vec::with_capacity(128);
    b.extend_from_slice(br#"{"ok":"success","msg":"phone ok","data":{"phone_number":"#);
    write_str(&mut b, &p.phone_number);
    b.extend_from_slice(br#","pure_phone_number":"#);
    write_str(&mut b, &p.pure_phone_number);
    b.extend_from_slice(br#","country_code":"#);
    write_str(&mut b, &p.country_code);
    b.extend_from_slice(b"}}");
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn json(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let t: Option<Text> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(t.map(|t| t.0), Some(Cow::Borrowed("plain"))));
        let t: Option<Text> = serde_json::from_str(r#""a\/b""#).unwrap();
        assert!(matches!(t.map(|t| t.0), Some(Cow::Owned(s)) if s == "a/b"));
        let t: Option<Text> = serde_json::from_str("null").unwrap();
        assert!(t.is_none());
        let wrong = json(r#"{"uuid":5,"skey":"s"}"#);
        assert_eq!(
            parse_auth(Format::Json, &wrong)
                .map(|_| ())
                .map_err(|f| f.code),
            Err(ErrorCode::BadRequest)
        );
        let escaped = json(r#"{"code":"ab\u0063"}"#);
        match parse_login(Format::Json, &escaped) {
            Ok(login) => assert_eq!(login.code, "abc"),
            Err(f) => panic!("an escaped string must still parse: {:?}", f.code),
        }
    }

    #[test]
    fn app_id_forms() {
        let parse = |s: &str| {
            let body = json(s);
            parse_auth(Format::Json, &body)
                .map(|a| match a.app {
                    AppRef::Id(id) => AppRef::Id(id),
                    AppRef::Appid(s) => AppRef::Appid(Cow::Owned(s.into_owned())),
                })
                .map_err(|f| f.code)
        };
        let base = r#""uuid":"u","skey":"s""#;
        assert_eq!(parse(&format!("{{{base}}}")), Ok(AppRef::Id(1)));
        assert_eq!(
            parse(&format!(r#"{{{base},"app_id":null}}"#)),
            Ok(AppRef::Id(1))
        );
        assert_eq!(
            parse(&format!(r#"{{{base},"app_id":""}}"#)),
            Ok(AppRef::Id(1))
        );
        assert_eq!(
            parse(&format!(r#"{{{base},"app_id":3}}"#)),
            Ok(AppRef::Id(3))
        );
        assert_eq!(
            parse(&format!(r#"{{{base},"app_id":"3"}}"#)),
            Ok(AppRef::Id(3))
        );
        assert_eq!(
            parse(&format!(r#"{{{base},"app_id":"wxabc"}}"#)),
            Ok(AppRef::Appid("wxabc".into()))
        );
        for bad in ["0", "-1", "1.5", "true", "[1]", r#""-2""#] {
            assert_eq!(
                parse(&format!(r#"{{{base},"app_id":{bad}}}"#)),
                Err(ErrorCode::BadRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_types_and_unknown_fields() {
        let p = |s: &str| {
            parse_auth(Format::Json, &json(s))
                .map(|_| ())
                .map_err(|f| f.code)
        };
        assert_eq!(p(r#"{"uuid":"u","skey":"s","extra":[1,2]}"#), Ok(()));
        assert_eq!(p(r#"{"uuid":5,"skey":"s"}"#), Err(ErrorCode::BadRequest));
        assert_eq!(p(r#"{"uuid":"u"}"#), Err(ErrorCode::BadRequest));
        assert_eq!(p(r#"[1]"#), Err(ErrorCode::BadRequest));
        assert_eq!(p(r#"{"uuid":"u","skey":"s""#), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn forms_read_like_json() {
        let body = json("code=abc&app_id=wxq&encrypt_data=a%2Bb&iv=x%3D%3D&other=1");
        let l = parse_login(Format::Form, &body).unwrap();
        assert_eq!(l.code, "abc");
        assert_eq!(l.app, AppRef::Appid("wxq".into()));
        let (data, iv) = l.encrypted.unwrap();
        assert_eq!((data.as_ref(), iv.as_ref()), ("a+b", "x=="));
        assert!(parse_login(Format::Form, &json("code=c&app_id=0")).is_err());
    }

    #[test]
    fn escaped_json_strings_are_decoded() {
        let body = json(r#"{"uuid":"a\u0062c","skey":"s"}"#);
        let a = parse_auth(Format::Json, &body).unwrap();
        assert_eq!(a.uuid, "abc");
    }

    #[test]
    fn auth_body_is_valid_json() {
        let p = Profile {
            open_id: "o\"1".into(),
            union_id: None,
            user_info: Some(Arc::from(r#"{"nickName":"Band"}"#)),
            phone_number: Some("13800000000".into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&auth_ok(&p)).unwrap();
        assert_eq!(v["ok"], "success");
        assert_eq!(v["data"]["open_id"], "o\"1");
        assert_eq!(v["data"]["union_id"], serde_json::Value::Null);
        assert_eq!(v["data"]["user_info"]["nickName"], "Band");
        assert_eq!(v["data"]["phone_number"], "13800000000");
    }

    #[test]
    fn session_calls_need_their_fields() {
        let base = r#""uuid":"u","skey":"s""#;
        let ok = json(&format!(r#"{{{base},"encrypt_data":"d","iv":"i"}}"#));
        let Ok(call) = parse_session_call(Format::Json, &ok) else {
            panic!("a decrypt call parses")
        };
        let Ok((_, data, iv)) = call.encrypted() else {
            panic!("both fields are there")
        };
        assert_eq!((data.as_ref(), iv.as_ref()), ("d", "i"));
        let missing = json(&format!(r#"{{{base},"encrypt_data":"d","iv":""}}"#));
        let Ok(call) = parse_session_call(Format::Json, &missing) else {
            panic!("a decrypt call parses")
        };
        assert_eq!(
            call.encrypted().map(|_| ()).map_err(|f| f.code),
            Err(ErrorCode::BadRequest)
        );
        let form = json("uuid=u&skey=s&code=c1");
        let Ok(call) = parse_session_call(Format::Form, &form) else {
            panic!("a phone call parses")
        };
        assert_eq!(
            call.code().map(|(_, c)| c.into_owned()).map_err(|f| f.code),
            Ok("c1".to_owned())
        );
        let no_creds = json(r#"{"code":"c"}"#);
        assert!(
            parse_session_call(Format::Json, &no_creds).is_err(),
            "credentials are required"
        );
    }

    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::TestCaseError;
    use serde_json::json;

    /// A field's value as sent: a string, or another JSON value (in a form,
    /// its JSON text).
    #[derive(Debug, Clone)]
    enum Val {
        Str(String),
        Other(serde_json::Value),
    }

    impl Val {
        fn text(&self) -> String {
            match self {
                Val::Str(s) => s.clone(),
                Val::Other(v) => v.to_string(),
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Endpoint {
        Login,
        Auth,
        SessionCall,
    }

    impl Endpoint {
        fn fields(self) -> &'static [&'static str] {
            match self {
                Endpoint::Login => &[
                    "code",
                    "app_id",
                    "encrypt_data",
                    "iv",
                    "raw_data",
                    "signature",
                ],
                Endpoint::Auth => &["uuid", "skey", "app_id"],
                Endpoint::SessionCall => &["uuid", "skey", "app_id", "encrypt_data", "iv", "code"],
            }
        }
    }

    /// A request body as fields in order (a name may repeat).
    #[derive(Debug, Clone)]
    struct Request {
        endpoint: Endpoint,
        format: Format,
        fields: Vec<(String, Val)>,
    }

    impl Request {
        fn body(&self) -> Bytes {
            match self.format {
                // Written by hand: a JSON map cannot repeat a key.
                Format::Json => {
                    let fields: Vec<String> = self
                        .fields
                        .iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Val::Str(s) => json!(s),
                                Val::Other(v) => v.clone(),
                            };
                            format!("{}:{v}", json!(k))
                        })
                        .collect();
                    Bytes::from(format!("{{{}}}", fields.join(",")))
                }
                Format::Form => {
                    let mut form = form_urlencoded::Serializer::new(String::new());
                    for (k, v) in &self.fields {
                        form.append_pair(k, &v.text());
                    }
                    Bytes::from(form.finish())
                }
            }
        }
    }

    /// What an `app_id` value makes: the app named, or the refusal.
    type Made = Result<AppRef<'static>, &'static str>;

    /// `app_id` values and what JSON and a form make of each.
    fn app_cases() -> Vec<(Val, Made, Made)> {
        const POSITIVE_INTEGER: &str = "app_id must be a positive integer";
        const POSITIVE: &str = "app_id must be positive";
        const RANGE: &str = "app_id is out of range";
        const NUL: &str = "field `app_id` must not contain NUL";
        const NOT_JSON: &str = "invalid JSON body";
        let wx = || AppRef::Appid("wx4f4bc4dec97d474b".into());
        vec![
            (Val::Other(json!(7)), Ok(AppRef::Id(7)), Ok(AppRef::Id(7))),
            (
                Val::Other(json!(7.0)),
                Ok(AppRef::Id(7)),
                Err(POSITIVE_INTEGER),
            ),
            (Val::Other(json!(0)), Err(POSITIVE_INTEGER), Err(POSITIVE)),
            (
                Val::Other(json!(-3)),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Other(json!(1.5)),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Other(json!(1e300)),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Other(json!(u64::MAX)),
                Err(POSITIVE_INTEGER),
                Err(RANGE),
            ),
            (
                Val::Other(json!(i64::MAX)),
                Ok(AppRef::Id(i64::MAX)),
                Ok(AppRef::Id(i64::MAX)),
            ),
            (
                Val::Other(json!(null)),
                Ok(AppRef::Id(1)),
                Ok(AppRef::Appid("null".into())),
            ),
            (
                Val::Other(json!(true)),
                Err(NOT_JSON),
                Ok(AppRef::Appid("true".into())),
            ),
            (
                Val::Other(json!([1])),
                Err(NOT_JSON),
                Ok(AppRef::Appid("[1]".into())),
            ),
            (
                Val::Str("12".into()),
                Ok(AppRef::Id(12)),
                Ok(AppRef::Id(12)),
            ),
            (
                Val::Str(" 12 ".into()),
                Ok(AppRef::Id(12)),
                Ok(AppRef::Id(12)),
            ),
            (Val::Str("007".into()), Ok(AppRef::Id(7)), Ok(AppRef::Id(7))),
            (Val::Str("0".into()), Err(POSITIVE), Err(POSITIVE)),
            (
                Val::Str("-1".into()),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Str("1.5".into()),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Str("inf".into()),
                Err(POSITIVE_INTEGER),
                Err(POSITIVE_INTEGER),
            ),
            (
                Val::Str("99999999999999999999".into()),
                Err(RANGE),
                Err(RANGE),
            ),
            (
                Val::Str(String::new()),
                Ok(AppRef::Id(1)),
                Ok(AppRef::Id(1)),
            ),
            (Val::Str("wx4f4bc4dec97d474b".into()), Ok(wx()), Ok(wx())),
            (Val::Str("wx\0ab".into()), Err(NUL), Err(NUL)),
        ]
    }

    /// Valid requests of each endpoint, in either format.
    fn request() -> impl Strategy<Value = Request> {
        let text = || "[^\\x00]{1,30}";
        let app = proptest::option::of(proptest::prop_oneof![
            Just(Val::Other(json!(7))),
            Just(Val::Str("12".into())),
            Just(Val::Str("wx4f4bc4dec97d474b".into())),
        ]);
        let pair = move || proptest::option::of((text(), text()));
        let endpoint = proptest::prop_oneof![
            (text(), pair(), pair()).prop_map(|(code, enc, signed)| {
                let mut f = vec![("code", code)];
                if let Some((data, iv)) = enc {
                    f.extend([("encrypt_data", data), ("iv", iv)]);
                }
                if let Some((raw, sig)) = signed {
                    f.extend([("raw_data", raw), ("signature", sig)]);
                }
                (Endpoint::Login, f)
            }),
            (text(), text()).prop_map(|(u, s)| (Endpoint::Auth, vec![("uuid", u), ("skey", s)])),
            (
                text(),
                text(),
                proptest::collection::vec(proptest::option::of(text()), 3)
            )
                .prop_map(|(u, s, extra)| {
                    let mut f = vec![("uuid", u), ("skey", s)];
                    for (name, v) in ["encrypt_data", "iv", "code"].into_iter().zip(extra) {
                        if let Some(v) = v {
                            f.push((name, v));
                        }
                    }
                    (Endpoint::SessionCall, f)
                }),
        ];
        (
            endpoint,
            app,
            proptest::prop_oneof![Just(Format::Json), Just(Format::Form)],
            proptest::arbitrary::any::<proptest::sample::Index>(),
        )
            .prop_map(|((endpoint, f), app, format, at)| {
                let mut fields: Vec<(String, Val)> = f
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Val::Str(v)))
                    .collect();
                if let Some(app) = app {
                    fields.insert(at.index(fields.len() + 1), ("app_id".into(), app));
                }
                Request {
                    endpoint,
                    format,
                    fields,
                }
            })
    }

    /// What is done to a valid request; indexes are taken modulo the number
    /// of fields (or bytes).
    #[derive(Debug, Clone)]
    enum Mutation {
        Nothing,
        Drop(usize),
        Empty(usize),
        /// A NUL inserted at a char position.
        Nul(usize, usize),
        /// The value replaced with a non-string JSON value.
        WrongType(usize, serde_json::Value),
        /// `app_id` set to one of [`app_cases`].
        App(usize),
        /// The field repeated, with another value.
        Duplicate(usize, String),
        /// A field no endpoint reads.
        Unknown(String, serde_json::Value),
        /// The value made 600 characters long.
        Long(usize),
        Truncate(usize),
        Flip(usize, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        use proptest::arbitrary::any;
        let other = proptest::sample::select(vec![
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
            2 => (0..app_cases().len()).prop_map(Mutation::App),
            1 => (any::<usize>(), "[^\\x00]{1,20}").prop_map(|(i, v)| Mutation::Duplicate(i, v)),
            1 => ("x_[a-z_]{0,10}", other).prop_map(|(k, v)| Mutation::Unknown(k, v)),
            1 => any::<usize>().prop_map(Mutation::Long),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => (any::<usize>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        ]
    }

    /// A request as read: the fields of its endpoint's input.
    #[derive(Debug, PartialEq)]
    enum Read {
        Login {
            code: String,
            app: AppRef<'static>,
            encrypted: Option<(String, String)>,
            signed: Option<(String, String)>,
        },
        Auth {
            uuid: String,
            skey: String,
            app: AppRef<'static>,
        },
        SessionCall {
            uuid: String,
            skey: String,
            app: AppRef<'static>,
            encrypt_data: Option<String>,
            iv: Option<String>,
            code: Option<String>,
        },
    }

    fn owned_app(app: &AppRef<'_>) -> AppRef<'static> {
        match app {
            AppRef::Id(id) => AppRef::Id(*id),
            AppRef::Appid(a) => AppRef::Appid(Cow::Owned(a.to_string())),
        }
    }

    fn pair(p: &Option<(Cow<'_, str>, Cow<'_, str>)>) -> Option<(String, String)> {
        p.as_ref().map(|(a, b)| (a.to_string(), b.to_string()))
    }

    /// Parses `body` as `endpoint` does.
    fn read(endpoint: Endpoint, format: Format, body: &Bytes) -> Result<Read, Failure> {
        Ok(match endpoint {
            Endpoint::Login => {
                let l = parse_login(format, body)?;
                Read::Login {
                    code: l.code.to_string(),
                    app: owned_app(&l.app),
                    encrypted: pair(&l.encrypted),
                    signed: pair(&l.signed),
                }
            }
            Endpoint::Auth => {
                let a = parse_auth(format, body)?;
                Read::Auth {
                    uuid: a.uuid.to_string(),
                    skey: a.skey.to_string(),
                    app: owned_app(&a.app),
                }
            }
            Endpoint::SessionCall => {
                let c = parse_session_call(format, body)?;
                Read::SessionCall {
                    uuid: c.session.uuid.to_string(),
                    skey: c.session.skey.to_string(),
                    app: owned_app(&c.session.app),
                    encrypt_data: c.encrypt_data.map(|v| v.into_owned()),
                    iv: c.iv.map(|v| v.into_owned()),
                    code: c.code.map(|v| v.into_owned()),
                }
            }
        })
    }

    /// What `request` must read as, worked out from the protocol's rules
    /// (not from the parser): the input, or a fragment of the refusal.
    fn expected(request: &Request) -> Result<Read, &'static str> {
        const NOT_JSON: &str = "invalid JSON body";
        let json = request.format == Format::Json;
        let mut text = std::collections::HashMap::<&str, Option<String>>::new();
        let mut app = AppRef::Id(1);
        for &name in request.endpoint.fields() {
            let given: Vec<&Val> = request
                .fields
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v)
                .collect();
            if json && given.len() > 1 {
                return Err(NOT_JSON); // serde refuses a duplicate field
            }
            if name == "app_id" {
                // A form reads every `app_id` given; the last one counts.
                for v in &given {
                    let case = app_cases().into_iter().find(|(c, _, _)| {
                        c.text() == v.text() && matches!(c, Val::Str(_)) == matches!(v, Val::Str(_))
                    });
                    app = match case {
                        Some((_, in_json, in_form)) => if json { in_json } else { in_form }?,
                        // Mutations give app_id only values of the table,
                        // or a NUL (or 600 x) in a valid one.
                        None if v.text().contains('\0') => {
                            return Err("field `app_id` must not contain NUL");
                        }
                        None if json && !matches!(v, Val::Str(_)) && v.text() != "null" => {
                            return Err(NOT_JSON);
                        }
                        None => AppRef::Appid(Cow::Owned(v.text())),
                    };
                }
                continue;
            }
            let value = match given.last() {
                None => None,
                Some(Val::Str(s)) => Some(s.clone()),
                Some(Val::Other(serde_json::Value::Null)) if json => None,
                Some(Val::Other(_)) if json => return Err(NOT_JSON),
                Some(v) => Some(v.text()),
            };
            text.insert(name, value);
        }
        let mut field = |name: &str| text.remove(name).flatten();
        let present = |v: Option<String>| v.filter(|v| !v.is_empty());
        let nul_free = |name: &'static str, v: &Option<String>| match v {
            Some(v) if v.contains('\0') => Err(match name {
                "uuid" => "field `uuid` must not contain NUL",
                "skey" => "field `skey` must not contain NUL",
                "code" => "field `code` must not contain NUL",
                "encrypt_data" => "field `encrypt_data` must not contain NUL",
                "iv" => "field `iv` must not contain NUL",
                "raw_data" => "field `raw_data` must not contain NUL",
                _ => "field `signature` must not contain NUL",
            }),
            _ => Ok(()),
        };
        let credentials = |uuid: Option<String>, skey: Option<String>| {
            let uuid = present(uuid).ok_or("field `uuid` is required")?;
            let skey = present(skey).ok_or("field `skey` is required")?;
            nul_free("uuid", &Some(uuid.clone()))?;
            nul_free("skey", &Some(skey.clone()))?;
            Ok::<_, &'static str>((uuid, skey))
        };
        if let AppRef::Appid(a) = &app
            && a.contains('\0')
        {
            return Err("field `app_id` must not contain NUL");
        }
        Ok(match request.endpoint {
            Endpoint::Auth => {
                let (uuid, skey) = credentials(field("uuid"), field("skey"))?;
                Read::Auth { uuid, skey, app }
            }
            Endpoint::SessionCall => {
                let (uuid, skey) = credentials(field("uuid"), field("skey"))?;
                Read::SessionCall {
                    uuid,
                    skey,
                    app,
                    encrypt_data: field("encrypt_data"),
                    iv: field("iv"),
                    code: field("code"),
                }
            }
            Endpoint::Login => {
                let code = present(field("code")).ok_or("field `code` is required")?;
                nul_free("code", &Some(code.clone()))?;
                let [data, iv, raw, sig] =
                    ["encrypt_data", "iv", "raw_data", "signature"].map(&mut field);
                for (name, v) in [
                    ("encrypt_data", &data),
                    ("iv", &iv),
                    ("raw_data", &raw),
                    ("signature", &sig),
                ] {
                    nul_free(name, v)?;
                }
                if code.len() > 512 {
                    return Err("field `code` is too long");
                }
                let encrypted = match (present(data), present(iv)) {
                    (Some(d), Some(i)) => Some((d, i)),
                    (Some(_), None) => return Err("field `iv` is required with `encrypt_data`"),
                    (None, _) => None,
                };
                let signed = match (present(raw), present(sig)) {
                    (Some(r), Some(s)) => Some((r, s)),
                    _ => None,
                };
                Read::Login {
                    code,
                    app,
                    encrypted,
                    signed,
                }
            }
        })
    }

    /// Mutates `request`, parses it and checks the answer against what the
    /// mutation must cause: the exact input or refusal where the rules say,
    /// else a refusal or a valid input. Returns the outcome ("ok" or the
    /// refusal) so a test can count which checks were reached.
    fn parse_mutated(mut request: Request, mutation: &Mutation) -> Result<String, TestCaseError> {
        use proptest::{prop_assert, prop_assert_eq};
        let n = request.fields.len();
        let mut body = None;
        // `None`: the outcome is not known beforehand.
        let mut known = true;
        match mutation.clone() {
            Mutation::Nothing => {}
            Mutation::Drop(i) => {
                request.fields.remove(i % n);
            }
            Mutation::Empty(i) => request.fields[i % n].1 = Val::Str(String::new()),
            Mutation::Nul(i, at) => {
                let mut s: Vec<char> = request.fields[i % n].1.text().chars().collect();
                s.insert(at % (s.len() + 1), '\0');
                request.fields[i % n].1 = Val::Str(s.into_iter().collect());
            }
            Mutation::WrongType(i, v) => {
                if request.fields[i % n].0 == "app_id" {
                    // The table covers app_id's other values.
                    request.fields[i % n].1 = Val::Other(json!(7));
                } else {
                    request.fields[i % n].1 = Val::Other(v);
                }
            }
            Mutation::App(case) => {
                let value = app_cases().swap_remove(case).0;
                request.fields.retain(|(k, _)| k != "app_id");
                request.fields.push(("app_id".into(), value));
            }
            Mutation::Duplicate(i, v) => {
                let (name, _) = request.fields[i % n].clone();
                // A second app_id must be one the table knows.
                let v = if name == "app_id" {
                    "wx4f4bc4dec97d474b".to_owned()
                } else {
                    v
                };
                request.fields.push((name, Val::Str(v)));
            }
            Mutation::Unknown(k, v) => request.fields.push((k, Val::Other(v))),
            Mutation::Long(i) => request.fields[i % n].1 = Val::Str("x".repeat(600)),
            Mutation::Truncate(at) => {
                let whole = request.body();
                let cut = whole.slice(..at % whole.len());
                // No prefix of a JSON object is JSON; a cut form is a
                // shorter form, read or refused.
                known = false;
                body = Some(cut);
            }
            Mutation::Flip(i, mask) => {
                let mut bytes = request.body().to_vec();
                let i = i % bytes.len();
                bytes[i] ^= mask;
                known = false;
                body = Some(Bytes::from(bytes));
            }
        }
        let truncated_json =
            matches!(mutation, Mutation::Truncate(_)) && request.format == Format::Json;
        let body = body.unwrap_or_else(|| request.body());
        let got = read(request.endpoint, request.format, &body);
        if known || truncated_json {
            let want = if truncated_json {
                Err("invalid JSON body")
            } else {
                expected(&request)
            };
            match (&got, want) {
                (Ok(read), Ok(want)) => prop_assert_eq!(read, &want),
                (Err(f), Err(want)) => {
                    prop_assert_eq!(f.code, ErrorCode::BadRequest);
                    prop_assert!(f.msg.contains(want), "{} is not {want}", f.msg);
                }
                (got, want) => prop_assert!(false, "read {got:?}, want {want:?}"),
            }
        } else {
            match &got {
                Err(f) => prop_assert_eq!(f.code, ErrorCode::BadRequest),
                // Whatever was read passed the rules.
                Ok(Read::Auth { uuid, skey, .. } | Read::SessionCall { uuid, skey, .. }) => {
                    prop_assert!(!uuid.is_empty() && !uuid.contains('\0'));
                    prop_assert!(!skey.is_empty() && !skey.contains('\0'));
                }
                Ok(Read::Login { code, .. }) => {
                    prop_assert!(!code.is_empty() && !code.contains('\0') && code.len() <= 512);
                }
            }
        }
        Ok(match got {
            Ok(_) => "ok".to_owned(),
            // Up to the first `:` or backquote: "invalid JSON body",
            // "field `uuid` …".
            Err(f) => f.msg.split([':']).next().unwrap_or_default().to_owned(),
        })
    }

    #[test]
    fn mutated_requests_reach_every_check() {
        // The property below means something only if its requests get past
        // the JSON and form syntax: count where 2000 of them end.
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..2000 {
            let (r, m) = (request(), mutation())
                .new_tree(&mut runner)
                .unwrap()
                .current();
            *seen.entry(parse_mutated(r, &m).unwrap()).or_default() += 1;
        }
        assert!(seen.get("ok").copied().unwrap_or(0) >= 400, "{seen:?}");
        for check in [
            "invalid JSON body",
            "field `uuid` is required",
            "field `skey` is required",
            "field `code` is required",
            "field `code` is too long",
            "field `iv` is required with `encrypt_data`",
            "field `uuid` must not contain NUL",
            "field `code` must not contain NUL",
            "field `app_id` must not contain NUL",
            "app_id must be positive",
            "app_id must be a positive integer",
            "app_id is out of range",
        ] {
            assert!(
                seen.get(check).copied().unwrap_or(0) >= 3,
                "{check}: {seen:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn mutated_requests_are_read_or_refused_as_the_rules_say(
            r in request(),
            m in mutation(),
        ) {
            parse_mutated(r, &m)?;
        }

        #[test]
        fn credentials_come_back_as_sent(uuid in "[^\\x00]{1,60}", skey in "[^\\x00]{1,60}") {
            let body = serde_json::json!({"uuid": uuid, "skey": skey}).to_string();
            let body = Bytes::from(body);
            let a = parse_auth(Format::Json, &body).map_err(|f| f.code);
            proptest::prop_assert!(a.is_ok());
            if let Ok(a) = a {
                proptest::prop_assert_eq!(a.uuid.as_ref(), uuid.as_str());
                proptest::prop_assert_eq!(a.skey.as_ref(), skey.as_str());
            }
            let form: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("uuid", &uuid)
                .append_pair("skey", &skey)
                .finish();
            let form = Bytes::from(form);
            let f = parse_auth(Format::Form, &form).map_err(|f| f.code);
            proptest::prop_assert!(f.is_ok());
            if let Ok(f) = f {
                proptest::prop_assert_eq!(f.uuid.as_ref(), uuid.as_str());
            }
        }
    }
}
