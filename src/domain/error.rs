//! The domain's error: what went wrong with a request, in the terms of the
//! API's status table. The http layer turns it into a response.

use std::borrow::Cow;

use crate::domain::ports::StoreError;
use crate::error::ErrorCode;
use crate::wechat::WechatError;
use crate::wechat::crypto::CryptoError;

/// A failed domain operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field is missing, of the wrong type or out of bounds.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// Encrypted user data was refused.
    #[error("encrypted data refused: {0}")]
    BadEncryptedData(&'static str),
    /// Data fetched after login does not decrypt with the session's key.
    #[error(
        "the data does not decrypt with this session's key: usually a wx.login() ran after \
         the data was fetched, which gives the user a new session key; log in again, then \
         fetch the data again"
    )]
    StaleSessionKey,
    /// The raw_data signature does not match.
    #[error("signature does not match raw_data")]
    BadSignature,
    /// Too many logins from this client or for this app; retry after the
    /// seconds given.
    #[error("too many logins: retry in {0} s")]
    LoginLimited(u64),
    /// The session is unknown, of another app, expired, or the skey is wrong.
    #[error("session invalid")]
    SessionInvalid,
    /// No app with the given app_id.
    #[error("app not found")]
    AppNotFound,
    /// An admin resource does not exist.
    #[error("not found")]
    NotFound,
    /// An app with that appid exists.
    #[error("an app with that appid exists")]
    Conflict,
    /// The WeChat code exchange failed.
    #[error(transparent)]
    Wechat(#[from] WechatError),
    /// A store could not serve: down (503) or refusing what it was sent
    /// (500). The text names the backend and the cause, never data.
    #[error(transparent)]
    Store(StoreError),
    /// A fault of wafer's own; the text names what failed, for the log.
    #[error("{0}")]
    Internal(&'static str),
}

impl Error {
    /// The API error code this failure answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::BadEncryptedData(_) | Error::StaleSessionKey => ErrorCode::BadEncryptedData,
            Error::BadSignature => ErrorCode::BadSignature,
            Error::SessionInvalid => ErrorCode::SessionInvalid,
            Error::LoginLimited(_) => ErrorCode::RateLimited,
            Error::AppNotFound => ErrorCode::AppNotFound,
            Error::NotFound => ErrorCode::NotFound,
            Error::Conflict => ErrorCode::Conflict,
            Error::Store(StoreError::Unavailable { .. }) => ErrorCode::Unavailable,
            Error::Store(_) | Error::Internal(_) => ErrorCode::Internal,
            Error::Wechat(e) => match e {
                WechatError::CodeRejected(_) => ErrorCode::CodeRejected,
                WechatError::RateLimited => ErrorCode::RateLimited,
                WechatError::Timeout => ErrorCode::UpstreamTimeout,
                WechatError::AppCredentials(_)
                | WechatError::TokenInvalid(_)
                | WechatError::Errcode(_)
                | WechatError::HttpStatus(_)
                | WechatError::Malformed
                | WechatError::Unreachable => ErrorCode::UpstreamError,
            },
        }
    }

    /// The human-readable message a client sees. Store details stay in logs.
    pub fn public_message(&self) -> Cow<'static, str> {
        match self {
            Error::Store(StoreError::Unavailable { .. }) => {
                "a store wafer needs for this request is unavailable".into()
            }
            Error::Store(_) | Error::Internal(_) => "wafer could not complete this request".into(),
            Error::SessionInvalid => "session invalid".into(),
            other => other.to_string().into(),
        }
    }

    /// A bad-request error with this message.
    pub fn bad_request(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::BadRequest(msg.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Error::Conflict,
            StoreError::NotFound => Error::NotFound,
            other => Error::Store(other),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BadEncryptedData(why) => Error::BadEncryptedData(why),
            CryptoError::BadSignature => Error::BadSignature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ports::{Backend, Cause, SqlState};

    #[test]
    fn wechat_errors_map_to_the_status_table() {
        let code = |e: WechatError| Error::from(e).code();
        assert_eq!(
            code(WechatError::CodeRejected(40029)),
            ErrorCode::CodeRejected
        );
        assert_eq!(code(WechatError::RateLimited), ErrorCode::RateLimited);
        assert_eq!(
            code(WechatError::AppCredentials(40125)),
            ErrorCode::UpstreamError
        );
        assert_eq!(code(WechatError::Errcode(-1)), ErrorCode::UpstreamError);
        assert_eq!(code(WechatError::HttpStatus(500)), ErrorCode::UpstreamError);
        assert_eq!(code(WechatError::Malformed), ErrorCode::UpstreamError);
        assert_eq!(code(WechatError::Timeout), ErrorCode::UpstreamTimeout);
    }

    #[test]
    fn store_details_do_not_reach_clients() {
        let e = Error::from(StoreError::unavailable(Backend::Redis, Cause::Closed));
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(!e.public_message().contains("redis"));
        let e = Error::from(StoreError::Rejected {
            backend: Backend::Postgres,
            code: SqlState::parse("22021").unwrap(),
        });
        assert_eq!(e.code(), ErrorCode::Internal, "a data error is never a 503");
    }
}
