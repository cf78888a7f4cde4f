//! The status table of the API: every failure wafer answers carries one of
//! these codes, and this is the one place that maps a code to its HTTP status.

use hyper::StatusCode;

/// A machine-readable failure code, as listed in the API's status table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Body not JSON/form, a field missing, of the wrong type or out of bounds.
    BadRequest,
    /// `encrypt_data`/`iv` do not decrypt, or the watermark is another app's.
    BadEncryptedData,
    /// `raw_data` + `signature` do not match.
    BadSignature,
    /// Unknown uuid, wrong skey, other app's session, or expired.
    SessionInvalid,
    /// WeChat rejected the login code.
    CodeRejected,
    /// Admin API: missing or wrong bearer token, or the admin API is off.
    Forbidden,
    /// No app with that `app_id`.
    AppNotFound,
    /// No such route or admin resource.
    NotFound,
    /// Wrong method for a known route.
    MethodNotAllowed,
    /// Admin API: an app with that `appid` exists.
    Conflict,
    /// Body over the configured limit.
    BodyTooLarge,
    /// A body that is neither JSON nor form.
    UnsupportedMediaType,
    /// WeChat answered 45011.
    RateLimited,
    /// WeChat answered something wafer cannot attribute to the client.
    UpstreamError,
    /// A store this request needs is down.
    Unavailable,
    /// WeChat did not answer in time.
    UpstreamTimeout,
}

impl ErrorCode {
    /// Every code, in the order of the status table (used to pre-register metrics).
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadRequest,
        ErrorCode::BadEncryptedData,
        ErrorCode::BadSignature,
        ErrorCode::SessionInvalid,
        ErrorCode::CodeRejected,
        ErrorCode::Forbidden,
        ErrorCode::AppNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::UpstreamError,
        ErrorCode::Unavailable,
        ErrorCode::UpstreamTimeout,
    ];

    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::BadEncryptedData | ErrorCode::BadSignature => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::SessionInvalid | ErrorCode::CodeRejected => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::AppNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `error` string of the response body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadEncryptedData => "bad_encrypted_data",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::SessionInvalid => "session_invalid",
            ErrorCode::CodeRejected => "code_rejected",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AppNotFound => "app_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// Position in [`ErrorCode::ALL`], for table lookups.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.index(), i, "{code:?}");
        }
    }

    #[test]
    fn statuses_follow_the_table() {
        assert_eq!(ErrorCode::SessionInvalid.status().as_u16(), 401);
        assert_eq!(ErrorCode::BodyTooLarge.status().as_u16(), 413);
        assert_eq!(ErrorCode::UpstreamTimeout.status().as_u16(), 504);
        assert_eq!(ErrorCode::RateLimited.as_str(), "rate_limited");
    }
}
