//! Interpretation of `jscode2session` replies: a pure function from the HTTP
//! status and body to a session or a classified error.

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

/// Reads a `jscode2session` reply.
pub fn interpret(status: u16, body: &[u8]) -> Result<CodeSession, WechatError> {
    if !(200..300).contains(&status) {
        return Err(WechatError::HttpStatus(status));
    }
    let reply: Reply = serde_json::from_slice(body).map_err(|_| WechatError::Malformed)?;
    match reply.errcode.unwrap_or(0) {
        0 => {}
        c @ (40029 | 40163) => return Err(WechatError::CodeRejected(c)),
        45011 => return Err(WechatError::RateLimited),
        c @ (40013 | 40125) => return Err(WechatError::AppCredentials(c)),
        c => return Err(WechatError::Errcode(c)),
    }
    match (reply.openid, reply.session_key) {
        // No NUL: these reach PostgreSQL, which refuses it.
        (Some(open_id), Some(session_key))
            if !open_id.is_empty()
                && !session_key.is_empty()
                && !open_id.contains('\0')
                && !session_key.contains('\0') =>
        {
            Ok(CodeSession {
                open_id,
                session_key,
                union_id: reply.unionid.filter(|u| !u.is_empty() && !u.contains('\0')),
            })
        }
        _ => Err(WechatError::Malformed),
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
    fn credentials_message_says_what_to_fix() {
        assert!(
            WechatError::AppCredentials(40125)
                .to_string()
                .contains("credentials")
        );
    }
}
