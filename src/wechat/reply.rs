//! Interpretation of WeChat's replies: pure functions from the HTTP status
//! and body to a result or a classified error (`jscode2session`,
//! `stable_token`, `getuserphonenumber`, `checksession`).

use serde::Deserialize;

/// The user identity WeChat returns for a login code.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeSession {
    /// The user's id in this app.
    pub open_id: String,
    /// The key user data is encrypted with; never leaves the server.
    pub session_key: String,
    /// The user's id across the developer's apps, when WeChat sends it.
    pub union_id: Option<String>,
}

impl std::fmt::Debug for CodeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeSession")
            .field("open_id", &self.open_id)
            .field("session_key", &"<redacted>")
            .field("union_id", &self.union_id)
            .finish()
    }
}

/// Why a code exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    /// The code is invalid or used (40029, 40163).
    #[error("WeChat rejected the login code (errcode {0})")]
    CodeRejected(i64),
    /// Too many calls (45011).
    #[error("WeChat rate-limited the code exchange (errcode 45011)")]
    RateLimited,
    /// The access token is invalid or expired (40001, 40014, 42001).
    #[error("WeChat refused the access token (errcode {0})")]
    TokenInvalid(i64),
    /// The app's appid or secret was rejected (40013, 40125).
    #[error(
        "WeChat rejected the app's credentials (errcode {0}): check the app's appid and secret"
    )]
    AppCredentials(i64),
    /// Any other WeChat error code (e.g. -1, system busy).
    #[error("WeChat answered errcode {0}")]
    Errcode(i64),
    /// An HTTP error status from WeChat.
    #[error("WeChat answered HTTP {0}")]
    HttpStatus(u16),
    /// A reply that is not the JSON WeChat documents.
    #[error("WeChat sent a malformed reply")]
    Malformed,
    /// The connection failed.
    #[error("WeChat could not be reached")]
    Unreachable,
    /// No answer within the timeout.
    #[error("WeChat did not answer in time")]
    Timeout,
}

crate::labels::labelled! {
    /// How a WeChat call ended, as the metrics label it.
    pub enum WechatOutcome {
        /// Answered with a session.
        Ok => "ok",
        /// See [`WechatError::CodeRejected`].
        CodeRejected => "code_rejected",
        /// See [`WechatError::RateLimited`].
        RateLimited => "rate_limited",
        /// See [`WechatError::AppCredentials`].
        AppCredentials => "app_credentials",
        /// See [`WechatError::TokenInvalid`].
        TokenInvalid => "token_invalid",
        /// See [`WechatError::Errcode`].
        Errcode => "errcode",
        /// See [`WechatError::HttpStatus`].
        HttpError => "http_error",
        /// See [`WechatError::Malformed`].
        Malformed => "malformed",
        /// See [`WechatError::Unreachable`].
        Unreachable => "unreachable",
        /// See [`WechatError::Timeout`].
        Timeout => "timeout",
    }
}

impl WechatError {
    /// The outcome this error is counted as.
    pub fn outcome(&self) -> WechatOutcome {
        match self {
            WechatError::CodeRejected(_) => WechatOutcome::CodeRejected,
            WechatError::RateLimited => WechatOutcome::RateLimited,
            WechatError::AppCredentials(_) => WechatOutcome::AppCredentials,
            WechatError::TokenInvalid(_) => WechatOutcome::TokenInvalid,
            WechatError::Errcode(_) => WechatOutcome::Errcode,
            WechatError::HttpStatus(_) => WechatOutcome::HttpError,
            WechatError::Malformed => WechatOutcome::Malformed,
            WechatError::Unreachable => WechatOutcome::Unreachable,
            WechatError::Timeout => WechatOutcome::Timeout,
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
}

/// The errcode of a reply, classified; `Ok` for none or 0.
fn check_errcode(errcode: Option<i64>) -> Result<(), WechatError> {
    match errcode.unwrap_or(0) {
        0 => Ok(()),
        c @ (40029 | 40163) => Err(WechatError::CodeRejected(c)),
        45011 => Err(WechatError::RateLimited),
        c @ (40013 | 40125) => Err(WechatError::AppCredentials(c)),
        c @ (40001 | 40014 | 42001) => Err(WechatError::TokenInvalid(c)),
        c => Err(WechatError::Errcode(c)),
    }
}

/// The body of a 2xx reply, or the status as an error.
fn success_body(status: u16, body: &[u8]) -> Result<&[u8], WechatError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(WechatError::HttpStatus(status))
    }
}

/// No NUL: these values reach PostgreSQL, which refuses it.
fn usable(v: &str) -> bool {
    !v.is_empty() && !v.contains('\0')
}

/// Reads a `jscode2session` reply.
pub fn interpret(status: u16, body: &[u8]) -> Result<CodeSession, WechatError> {
    let reply: Reply =
        serde_json::from_slice(success_body(status, body)?).map_err(|_| WechatError::Malformed)?;
    check_errcode(reply.errcode)?;
    match (reply.openid, reply.session_key) {
        (Some(open_id), Some(session_key)) if usable(&open_id) && usable(&session_key) => {
            Ok(CodeSession {
                open_id,
                session_key,
                union_id: reply.unionid.filter(|u| usable(u)),
            })
        }
        _ => Err(WechatError::Malformed),
    }
}

/// An access token as `stable_token` issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token. A secret: never logged.
    pub value: String,
    /// Seconds it stays valid from now.
    pub expires_in: u64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("value", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a `stable_token` reply.
pub fn interpret_token(status: u16, body: &[u8]) -> Result<IssuedToken, WechatError> {
    let reply: TokenReply =
        serde_json::from_slice(success_body(status, body)?).map_err(|_| WechatError::Malformed)?;
    check_errcode(reply.errcode)?;
    match (reply.access_token, reply.expires_in) {
        // WeChat keeps at least 512 characters of room for a token.
        (Some(value), Some(expires_in))
            if usable(&value) && value.len() <= 2048 && expires_in > 0 =>
        {
            Ok(IssuedToken { value, expires_in })
        }
        _ => Err(WechatError::Malformed),
    }
}

/// A user's phone number, as `getuserphonenumber` answers it. Personal
/// data: never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneInfo {
    /// With the area code for numbers outside China.
    pub phone_number: String,
    /// Without any area code.
    pub pure_phone_number: String,
    /// The country code, as text.
    pub country_code: String,
}

impl std::fmt::Debug for PhoneInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneInfo")
            .field("country_code", &self.country_code)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct PhoneReply {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    phone_info: Option<PhoneFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneFields {
    phone_number: String,
    pure_phone_number: String,
    country_code: serde_json::Value,
    #[serde(default)]
    watermark: Option<Watermark>,
}

#[derive(Deserialize)]
struct Watermark {
    #[serde(default)]
    appid: Option<String>,
}

/// Longest phone number text kept (E.164 allows 15 digits; room for `+`,
/// spaces and an area code).
const PHONE_MAX: usize = 32;

/// Reads a `getuserphonenumber` reply for the app `appid`: a watermark of
/// another app is refused as malformed.
pub fn interpret_phone(status: u16, body: &[u8], appid: &str) -> Result<PhoneInfo, WechatError> {
    let reply: PhoneReply =
        serde_json::from_slice(success_body(status, body)?).map_err(|_| WechatError::Malformed)?;
    check_errcode(reply.errcode)?;
    let info = reply.phone_info.ok_or(WechatError::Malformed)?;
    if info
        .watermark
        .and_then(|w| w.appid)
        .is_some_and(|a| a != appid)
    {
        return Err(WechatError::Malformed);
    }
    // WeChat has sent the country code as a string and as a number.
    let country_code = match info.country_code {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(WechatError::Malformed),
    };
    let ok = |v: &str| usable(v) && v.len() <= PHONE_MAX;
    if !ok(&info.phone_number) || !ok(&info.pure_phone_number) || !ok(&country_code) {
        return Err(WechatError::Malformed);
    }
    Ok(PhoneInfo {
        phone_number: info.phone_number,
        pure_phone_number: info.pure_phone_number,
        country_code,
    })
}

#[derive(Deserialize)]
struct CheckReply {
    #[serde(default)]
    errcode: Option<i64>,
}

/// Reads a `checksession` reply: whether the signed key is the user's
/// current one (87009, "invalid signature", says it is not).
pub fn interpret_check(status: u16, body: &[u8]) -> Result<bool, WechatError> {
    let reply: CheckReply =
        serde_json::from_slice(success_body(status, body)?).map_err(|_| WechatError::Malformed)?;
    match reply.errcode {
        Some(87009) => Ok(false),
        other => check_errcode(other).map(|()| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_without_errcode_keeps_unionid() {
        let s = interpret(200, br#"{"openid":"o1","session_key":"k","unionid":"u1"}"#).unwrap();
        assert_eq!(s.open_id, "o1");
        assert_eq!(s.union_id.as_deref(), Some("u1"));
    }

    #[test]
    fn errcode_zero_is_success_and_expires_in_is_optional() {
        let s = interpret(
            200,
            br#"{"errcode":0,"openid":"o","session_key":"k","expires_in":7200}"#,
        )
        .unwrap();
        assert_eq!(s.union_id, None);
    }

    #[test]
    fn errcodes_are_classified() {
        let e = |b: &str| interpret(200, b.as_bytes()).unwrap_err();
        assert_eq!(
            e(r#"{"errcode":40029,"errmsg":"invalid code"}"#),
            WechatError::CodeRejected(40029)
        );
        assert_eq!(
            e(r#"{"errcode":40163,"errmsg":"code been used"}"#),
            WechatError::CodeRejected(40163)
        );
        assert_eq!(e(r#"{"errcode":45011}"#), WechatError::RateLimited);
        assert_eq!(
            e(r#"{"errcode":40013}"#),
            WechatError::AppCredentials(40013)
        );
        assert_eq!(
            e(r#"{"errcode":40125}"#),
            WechatError::AppCredentials(40125)
        );
        assert_eq!(
            e(r#"{"errcode":-1,"errmsg":"system busy"}"#),
            WechatError::Errcode(-1)
        );
        assert_eq!(e(r#"{"errcode":40226}"#), WechatError::Errcode(40226));
    }

    #[test]
    fn malformed_replies() {
        assert_eq!(
            interpret(200, b"<html>").unwrap_err(),
            WechatError::Malformed
        );
        assert_eq!(
            interpret(200, br#"{"openid":"o"}"#).unwrap_err(),
            WechatError::Malformed
        );
        assert_eq!(
            interpret(200, br#"{"openid":"o","session_key":""}"#).unwrap_err(),
            WechatError::Malformed
        );
        assert_eq!(
            interpret(500, b"{}").unwrap_err(),
            WechatError::HttpStatus(500)
        );
    }

    #[test]
    fn token_replies() {
        let t =
            interpret_token(200, br#"{"access_token":"tok-s3cret","expires_in":7200}"#).unwrap();
        assert_eq!((t.value.as_str(), t.expires_in), ("tok-s3cret", 7200));
        assert!(!format!("{t:?}").contains("s3cret"), "never in Debug");
        assert_eq!(
            interpret_token(200, br#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
            Err(WechatError::AppCredentials(40125))
        );
        assert_eq!(
            interpret_token(200, br#"{"access_token":"","expires_in":7200}"#),
            Err(WechatError::Malformed)
        );
    }

    #[test]
    fn phone_replies() {
        let body = br#"{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123","countryCode":1,"watermark":{"timestamp":1,"appid":"wx1"}}}"#;
        let p = interpret_phone(200, body, "wx1").unwrap();
        assert_eq!(p.country_code, "1", "a number becomes text");
        assert_eq!(p.pure_phone_number, "2025550123");
        assert!(!format!("{p:?}").contains("2025550123"), "never in Debug");
        assert_eq!(
            interpret_phone(200, body, "wx2"),
            Err(WechatError::Malformed)
        );
        for (code, e) in [
            (40001, WechatError::TokenInvalid(40001)),
            (42001, WechatError::TokenInvalid(42001)),
            (40029, WechatError::CodeRejected(40029)),
            (45011, WechatError::RateLimited),
            (-1, WechatError::Errcode(-1)),
        ] {
            let body = format!(r#"{{"errcode":{code},"errmsg":"x"}}"#);
            assert_eq!(
                interpret_phone(200, body.as_bytes(), "wx1"),
                Err(e),
                "{code}"
            );
        }
    }

    #[test]
    fn check_replies() {
        assert_eq!(
            interpret_check(200, br#"{"errcode":0,"errmsg":"ok"}"#),
            Ok(true)
        );
        assert_eq!(interpret_check(200, br#"{"errcode":87009}"#), Ok(false));
        assert_eq!(
            interpret_check(200, br#"{"errcode":42001}"#),
            Err(WechatError::TokenInvalid(42001))
        );
    }

    #[test]
    fn credentials_message_says_what_to_fix() {
        assert!(
            WechatError::AppCredentials(40125)
                .to_string()
                .contains("credentials")
        );
    }
}
