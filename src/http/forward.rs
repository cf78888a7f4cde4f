//! Forward auth for gateways, `GET /mina/auth`: nginx `auth_request`,
//! Traefik ForwardAuth and Envoy `ext_authz` ask with the credentials in
//! headers (`X-WX-Id`, `X-WX-Skey`, the names the original wafer client SDK
//! sends on every request, and `X-WX-App`) and read the answer's status and
//! headers. A codec over the same domain check as `POST /mina/auth`.
//!
//! A gateway only tells 2xx from 401/403, so every refusal that is about
//! the credentials (a header missing or malformed, an unknown app, an
//! unknown, wrong or expired session) is 401 `session_invalid`; only
//! wafer's own trouble (a store down: 503) keeps its status.

use std::borrow::Cow;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

use crate::domain::app::{AppId, AppRef};
use crate::domain::input::AuthInput;
use crate::domain::session::Profile;
use crate::error::ErrorCode;
use crate::http::mina;
use crate::http::response::{Failure, Reply, json};

/// The session id, as the original client SDK sends it.
pub const ID: HeaderName = HeaderName::from_static("x-wx-id");
/// The session secret, as the original client SDK sends it.
pub const SKEY: HeaderName = HeaderName::from_static("x-wx-skey");
/// The app (numeric id or appid); app 1 when absent.
pub const APP: HeaderName = HeaderName::from_static("x-wx-app");
/// Answered: the user's open_id.
pub const OPEN_ID: HeaderName = HeaderName::from_static("x-wafer-open-id");
/// Answered, when known: the user's union_id.
pub const UNION_ID: HeaderName = HeaderName::from_static("x-wafer-union-id");
/// Answered: the app's numeric id.
pub const APP_ID: HeaderName = HeaderName::from_static("x-wafer-app-id");

fn refused() -> Failure {
    Failure::new(ErrorCode::SessionInvalid, "session invalid")
}

fn header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The credentials in a gateway's request; 401 when they are not there.
pub fn parse(headers: &HeaderMap) -> Result<AuthInput<'_>, Failure> {
    let app = match header(headers, &APP) {
        Some(app) => AppRef::parse_text(Cow::Borrowed(app)).map_err(|_| refused())?,
        None => AppRef::default(),
    };
    let uuid = header(headers, &ID).map(Cow::Borrowed);
    let skey = header(headers, &SKEY).map(Cow::Borrowed);
    AuthInput::new(uuid, skey, app).map_err(|_| refused())
}

/// A refusal as a gateway needs it: about the credentials, 401.
pub fn failure(f: Failure) -> Failure {
    match f.code {
        ErrorCode::BadRequest | ErrorCode::AppNotFound => refused(),
        _ => f,
    }
}

/// The answer to a valid session: the `POST /mina/auth` body, and the
/// user's ids in headers for the gateway to pass upstream.
pub fn ok(app: AppId, p: &Profile) -> Reply {
    let mut r = json(hyper::StatusCode::OK, mina::auth_ok(p));
    let h = r.headers_mut();
    // WeChat's ids are URL-safe base64; anything that is not a valid header
    // value is left out rather than answered mangled.
    if let Ok(v) = HeaderValue::from_str(&p.open_id) {
        h.insert(OPEN_ID, v);
    }
    if let Some(Ok(v)) = p.union_id.as_deref().map(HeaderValue::from_str) {
        h.insert(UNION_ID, v);
    }
    h.insert(APP_ID, HeaderValue::from(app));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn credentials_come_from_the_original_sdks_headers() {
        let h = headers(&[(&ID, "u-1"), (&SKEY, "s-1"), (&APP, "wxA")]);
        let input = parse(&h).unwrap();
        assert_eq!((&*input.uuid, &*input.skey), ("u-1", "s-1"));
        assert_eq!(input.app, AppRef::Appid("wxA".into()));
        let h = headers(&[(&ID, "u-1"), (&SKEY, "s-1")]);
        assert_eq!(parse(&h).unwrap().app, AppRef::Id(1), "app 1 by default");
    }

    #[test]
    fn anything_missing_or_malformed_is_401_never_400() {
        for h in [
            headers(&[]),
            headers(&[(&ID, "u")]),
            headers(&[(&SKEY, "s")]),
            headers(&[(&ID, " "), (&SKEY, "s")]),
            headers(&[(&ID, "u"), (&SKEY, "s"), (&APP, "0")]),
        ] {
            assert_eq!(parse(&h).unwrap_err().code, ErrorCode::SessionInvalid);
        }
        let unknown_app = Failure::new(ErrorCode::AppNotFound, "app not found");
        assert_eq!(failure(unknown_app).code, ErrorCode::SessionInvalid);
        let down = Failure::new(ErrorCode::Unavailable, "down");
        assert_eq!(
            failure(down).code,
            ErrorCode::Unavailable,
            "wafer's trouble keeps its status"
        );
    }

    #[test]
    fn a_valid_session_is_told_in_headers() {
        let p = Profile {
            open_id: "oAbc".into(),
            union_id: Some("uXyz".into()),
            user_info: None,
            phone_number: None,
        };
        let r = ok(7, &p);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[&OPEN_ID], "oAbc");
        assert_eq!(r.headers()[&UNION_ID], "uXyz");
        assert_eq!(r.headers()[&APP_ID], "7");
        let r = ok(
            7,
            &Profile {
                union_id: None,
                ..p
            },
        );
        assert!(r.headers().get(&UNION_ID).is_none());
    }
}
