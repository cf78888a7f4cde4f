//! The status table of the API: every failure wafer answers carries one of
//! these codes, and this is the one place that maps a code to its HTTP status.

use hyper::StatusCode;

crate::labels::labelled! {
    /// A machine-readable failure code, as listed in the API's status table;
    /// its label is the `error` string of the response body.
    pub enum ErrorCode {
        /// Body not JSON/form, a field missing, of the wrong type or out of bounds.
        BadRequest => "bad_request",
        /// `encrypt_data`/`iv` do not decrypt, or the watermark is another app's.
        BadEncryptedData => "bad_encrypted_data",
        /// `raw_data` + `signature` do not match.
        BadSignature => "bad_signature",
        /// Unknown uuid, wrong skey, other app's session, or expired.
        SessionInvalid => "session_invalid",
        /// WeChat rejected the login code.
        CodeRejected => "code_rejected",
        /// Admin API: missing or wrong bearer token, or the admin API is off.
        Forbidden => "forbidden",
        /// No app with that `app_id`.
        AppNotFound => "app_not_found",
        /// No such route or admin resource.
        NotFound => "not_found",
        /// Wrong method for a known route.
        MethodNotAllowed => "method_not_allowed",
        /// Admin API: an app with that `appid` exists.
        Conflict => "conflict",
        /// Body over the configured limit.
        BodyTooLarge => "body_too_large",
        /// A body that is neither JSON nor form.
        UnsupportedMediaType => "unsupported_media_type",
        /// The body did not arrive within the header-read timeout.
        RequestTimeout => "request_timeout",
        /// WeChat answered 45011.
        RateLimited => "rate_limited",
        /// A fault of wafer's own (a store refused a statement, a reply could
        /// not be encoded): not the caller's, and retrying will not help.
        Internal => "internal_error",
        /// WeChat answered something wafer cannot attribute to the client.
        UpstreamError => "upstream_error",
        /// A store this request needs is down.
        Unavailable => "unavailable",
        /// WeChat did not answer in time.
        UpstreamTimeout => "upstream_timeout",
    }
}

impl ErrorCode {
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
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `error` string of the response body.
    pub fn as_str(self) -> &'static str {
        self.label()
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
