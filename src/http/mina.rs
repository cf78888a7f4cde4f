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

    proptest::proptest! {
        #[test]
        fn any_body_parses_or_is_refused_without_panicking(body: Vec<u8>) {
            let body = Bytes::from(body);
            for format in [Format::Json, Format::Form] {
                let _ = parse_auth(format, &body);
                let _ = parse_login(format, &body);
                let _ = parse_session_call(format, &body);
            }
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
