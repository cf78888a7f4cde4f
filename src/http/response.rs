//! Building responses: the JSON content type, the `/mina` envelope, the
//! admin error shape, and a small JSON string writer for hot-path bodies.

use std::borrow::Cow;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::domain::Error as DomainError;
use crate::error::ErrorCode;

/// The response type of every route.
pub type Reply = Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// A JSON response.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

/// A failed request, before it is given its wire shape.
#[derive(Debug)]
pub struct Failure {
    /// The API error code.
    pub code: ErrorCode,
    /// Human-readable message; never holds a secret.
    pub msg: Cow<'static, str>,
    /// `Allow` header for 405.
    pub allow: Option<HeaderValue>,
    /// Detail for the log only (e.g. which store failed).
    pub log_detail: Option<Box<str>>,
    /// The original wafer protocol's `returnCode` and `returnMessage`, when
    /// its codec chose them (else they follow from `code`).
    pub original: Option<(i64, &'static str)>,
    /// `Retry-After` seconds, for a 429 of wafer's own limits.
    pub retry_after: Option<u32>,
}

impl Failure {
    /// A failure with a code and message.
    pub fn new(code: ErrorCode, msg: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            code,
            msg: msg.into(),
            allow: None,
            log_detail: None,
            original: None,
            retry_after: None,
        }
    }

    /// 405 with the methods the route allows.
    pub fn method_not_allowed(allow: HeaderValue) -> Self {
        Failure {
            allow: Some(allow),
            ..Failure::new(ErrorCode::MethodNotAllowed, "method not allowed")
        }
    }

    /// As the `/mina` envelope: `{"ok":"fail","msg":…,"error":…}`.
    pub fn into_mina(self) -> Reply {
        let mut body = Vec::with_capacity(64 + self.msg.len());
        body.extend_from_slice(br#"{"ok":"fail","msg":"#);
        write_str(&mut body, &self.msg);
        body.extend_from_slice(br#","error":""#);
        body.extend_from_slice(self.code.as_str().as_bytes());
        body.extend_from_slice(b"\"}");
        self.finish(body)
    }

    /// As the admin shape: `{"error":…,"msg":…}`.
    pub fn into_admin(self) -> Reply {
        let mut body = Vec::with_capacity(48 + self.msg.len());
        body.extend_from_slice(br#"{"error":""#);
        body.extend_from_slice(self.code.as_str().as_bytes());
        body.extend_from_slice(br#"","msg":"#);
        write_str(&mut body, &self.msg);
        body.push(b'}');
        self.finish(body)
    }

    fn finish(self, body: Vec<u8>) -> Reply {
        let mut r = json(self.code.status(), body);
        if let Some(allow) = self.allow {
            r.headers_mut().insert(ALLOW, allow);
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        let log_detail = match &e {
            DomainError::Store(e) => Some(e.to_string().into()),
            DomainError::Internal(what) => Some((*what).into()),
            DomainError::Wechat(w) => Some(w.to_string().into()),
            _ => None,
        };
        Failure {
            code: e.code(),
            msg: e.public_message(),
            allow: None,
            log_detail,
            original: None,
            retry_after: match e {
                DomainError::LoginLimited(secs) => Some(u32::try_from(secs).unwrap_or(u32::MAX)),
                _ => None,
            },
        }
    }
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `s` as a JSON string, or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_json(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{1}\u{1f}\n\t",
            "微信 ✓",
            "",
        ] {
            let back: String = serde_json::from_str(&as_json(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn mina_failure_shape() {
        let r = Failure::new(ErrorCode::SessionInvalid, "session invalid").into_mina();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let r = Failure::method_not_allowed(HeaderValue::from_static("POST")).into_admin();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "POST");
    }
}
