//! The admin API: bearer-token check, JSON bodies, and plain resources in
//! and out. Secrets (app secret, skey, session_key) are never written.

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::app::{
    App, AppId, AppPatch, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp,
};
use crate::domain::audit::Caller;
use crate::domain::session::{SessionPage, SessionQuery, SessionSummary, mask_phone};
use crate::domain::{Error as DomainError, Wafer};
use crate::error::ErrorCode;
use crate::http::response::{Failure, Reply, json};
use crate::store::Store;

/// Default page size of a session listing.
const DEFAULT_PAGE: usize = 50;

/// The configured admin token, kept only as its hash.
#[derive(Clone)]
pub struct AdminToken(Option<[u8; 32]>);

impl AdminToken {
    /// From the configured token; `None` or empty turns the admin API off.
    pub fn new(token: Option<&str>) -> Self {
        AdminToken(
            token
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into()),
        )
    }

    /// Whether the admin API is on (a token is configured).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Checks the request's `Authorization: Bearer …` header. Hashing both
    /// sides makes the comparison constant-time in the token's length too.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let Some(expected) = &self.0 else {
            return Err(Failure::new(
                ErrorCode::Forbidden,
                "the admin API is off: no admin token is configured",
            ));
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or("");
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(hash.ct_eq(expected)) && !presented.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorCode::Forbidden,
                "missing or wrong bearer token",
            ))
        }
    }
}

#[derive(Serialize)]
struct AppView<'a> {
    id: AppId,
    title: &'a str,
    appid: &'a str,
    login_duration: u32,
    session_duration: u32,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a App> for AppView<'a> {
    fn from(a: &'a App) -> Self {
        AppView {
            id: a.id,
            title: &a.title,
            appid: &a.appid,
            login_duration: a.login_duration,
            session_duration: a.session_duration,
            created_at: a.created_at.to_rfc3339(),
            updated_at: a.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
struct AppList<'a> {
    apps: Vec<AppView<'a>>,
}

#[derive(Serialize)]
struct SessionView {
    uuid: String,
    open_id: String,
    union_id: Option<String>,
    create_time: String,
    last_visit_time: String,
    phone_number: Option<String>,
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
    next_cursor: Option<String>,
}

impl SessionView {
    /// The per-user route's view: the phone number in full.
    fn full(s: SessionSummary) -> Self {
        SessionView {
            uuid: s.uuid.hyphenated().to_string(),
            open_id: s.open_id,
            union_id: s.union_id,
            create_time: s.create_time.to_rfc3339(),
            last_visit_time: s.last_visit_time.to_rfc3339(),
            phone_number: s.phone_number,
        }
    }

    /// A listing's view: the phone number masked (personal data; a
    /// listing shows many users at once).
    fn masked(s: SessionSummary) -> Self {
        let phone = s.phone_number.as_deref().map(mask_phone);
        SessionView {
            phone_number: phone,
            ..SessionView::full(s)
        }
    }
}

impl From<SessionPage> for SessionList {
    fn from(p: SessionPage) -> Self {
        SessionList {
            sessions: p.sessions.into_iter().map(SessionView::masked).collect(),
            next_cursor: p.next.map(|u| u.simple().to_string()),
        }
    }
}

#[derive(Deserialize)]
struct CreateApp {
    title: String,
    appid: String,
    secret: String,
    #[serde(default)]
    login_duration: Option<u32>,
    #[serde(default)]
    session_duration: Option<u32>,
}

#[derive(Deserialize)]
struct PatchApp {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    login_duration: Option<u32>,
    #[serde(default)]
    session_duration: Option<u32>,
}

fn to_json<T: Serialize>(status: StatusCode, v: &T) -> Result<Reply, Failure> {
    // Our own values failed to encode: wafer's fault, not the caller's.
    let body = serde_json::to_vec(v)
        .map_err(|_| Failure::from(DomainError::Internal("cannot encode the response")))?;
    Ok(json(status, body))
}

fn parse_body<'a, T: Deserialize<'a>>(body: &'a Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}")))
}

fn app_id(raw: &str) -> Result<AppId, Failure> {
    raw.parse::<AppId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Failure::new(ErrorCode::NotFound, "no such app"))
}

fn no_content() -> Reply {
    let mut r = json(StatusCode::NO_CONTENT, Bytes::new());
    r.headers_mut().remove(hyper::header::CONTENT_TYPE);
    r
}

/// `POST /admin/apps`; also the new app's id (for the audit trail).
pub async fn create_app<S: Store>(
    w: &Wafer<S>,
    body: &Bytes,
    caller: Caller,
) -> Result<Reply, Failure> {
    let c: CreateApp = parse_body(body)?;
    let app = w
        .create_app(
            NewApp {
                title: c.title,
                appid: c.appid,
                secret: c.secret,
                login_duration: c.login_duration.unwrap_or(DEFAULT_LOGIN_DURATION_DAYS),
                session_duration: c.session_duration.unwrap_or(DEFAULT_SESSION_DURATION_SECS),
            },
            caller,
        )
        .await?;
    to_json(StatusCode::CREATED, &AppView::from(&*app))
}

/// `GET /admin/apps`.
pub async fn list_apps<S: Store>(w: &Wafer<S>) -> Result<Reply, Failure> {
    let apps = w.list_apps().await?;
    to_json(
        StatusCode::OK,
        &AppList {
            apps: apps.iter().map(|a| AppView::from(&**a)).collect(),
        },
    )
}

/// `GET /admin/apps/{id}`.
pub async fn get_app<S: Store>(w: &Wafer<S>, id: &str) -> Result<Reply, Failure> {
    let app = w.get_app(app_id(id)?).await?;
    to_json(StatusCode::OK, &AppView::from(&*app))
}

/// `PATCH /admin/apps/{id}`.
pub async fn update_app<S: Store>(
    w: &Wafer<S>,
    id: &str,
    body: &Bytes,
    caller: Caller,
) -> Result<Reply, Failure> {
    let id = app_id(id)?;
    let p: PatchApp = parse_body(body)?;
    let app = w
        .update_app(
            id,
            AppPatch {
                title: p.title,
                appid: p.appid,
                secret: p.secret,
                login_duration: p.login_duration,
                session_duration: p.session_duration,
            },
            caller,
        )
        .await?;
    to_json(StatusCode::OK, &AppView::from(&*app))
}

/// `DELETE /admin/apps/{id}`.
pub async fn delete_app<S: Store>(
    w: &Wafer<S>,
    id: &str,
    caller: Caller,
) -> Result<Reply, Failure> {
    w.delete_app(app_id(id)?, caller).await?;
    Ok(no_content())
}

/// Reads `open_id`, `limit` and `cursor` from a query string.
fn session_query(query: Option<&str>) -> Result<SessionQuery, Failure> {
    let mut q = SessionQuery {
        limit: DEFAULT_PAGE,
        ..Default::default()
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "open_id" if v.contains('\0') => {
                return Err(Failure::new(
                    ErrorCode::BadRequest,
                    "`open_id` must not contain NUL",
                ));
            }
            "open_id" if !v.is_empty() => q.open_id = Some(v.into_owned()),
            "limit" if !v.is_empty() => {
                q.limit = v
                    .parse()
                    .map_err(|_| Failure::new(ErrorCode::BadRequest, "`limit` must be 1 to 1000"))?
            }
            "cursor" if !v.is_empty() => {
                q.after = Some(
                    uuid::Uuid::try_parse(&v)
                        .map_err(|_| Failure::new(ErrorCode::BadRequest, "invalid `cursor`"))?,
                )
            }
            _ => {}
        }
    }
    Ok(q)
}

/// `GET /admin/apps/{id}/sessions`.
pub async fn app_sessions<S: Store>(
    w: &Wafer<S>,
    id: &str,
    query: Option<&str>,
) -> Result<Reply, Failure> {
    let id = app_id(id)?;
    let q = session_query(query)?;
    let page = w.list_sessions(id, q).await?;
    to_json(StatusCode::OK, &SessionList::from(page))
}

/// `DELETE /admin/sessions/{uuid}`.
pub async fn revoke<S: Store>(w: &Wafer<S>, uuid: &str, caller: Caller) -> Result<Reply, Failure> {
    w.revoke(uuid, caller).await?;
    Ok(no_content())
}

/// `GET /admin/apps/{id}/users/{open_id}`.
pub async fn user_session<S: Store>(
    w: &Wafer<S>,
    id: &str,
    open_id: &str,
) -> Result<Reply, Failure> {
    let session = w.user_session(app_id(id)?, open_id).await?;
    to_json(StatusCode::OK, &SessionView::full(session))
}

#[derive(Serialize)]
struct TokenView<'a> {
    access_token: &'a str,
    expires_in: u64,
}

/// `GET /admin/apps/{id}/access_token`: the app's shared WeChat token, for
/// business services that call other WeChat APIs.
pub async fn access_token<S: Store>(
    w: &Wafer<S>,
    id: &str,
    caller: Caller,
) -> Result<Reply, Failure> {
    let (token, expires_in) = w.access_token(app_id(id)?, caller).await?;
    let mut reply = to_json(
        StatusCode::OK,
        &TokenView {
            access_token: &token.value,
            expires_in,
        },
    )?;
    // A secret: no cache on the way may keep it.
    reply.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    Ok(reply)
}

#[derive(Serialize)]
struct KeyCheckView<'a> {
    open_id: &'a str,
    current: bool,
}

/// `GET /admin/apps/{id}/users/{open_id}/session_key`: whether the stored
/// session key is still the user's current one at WeChat (never the key).
pub async fn check_session_key<S: Store>(
    w: &Wafer<S>,
    id: &str,
    open_id: &str,
    caller: Caller,
) -> Result<Reply, Failure> {
    let current = w.check_session_key(app_id(id)?, open_id, caller).await?;
    to_json(StatusCode::OK, &KeyCheckView { open_id, current })
}

/// `DELETE /admin/apps/{id}/users/{open_id}`.
pub async fn revoke_user<S: Store>(
    w: &Wafer<S>,
    id: &str,
    open_id: &str,
    caller: Caller,
) -> Result<Reply, Failure> {
    w.revoke_user(app_id(id)?, open_id, caller).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    #[test]
    fn token_check() {
        let t = AdminToken::new(Some("sesame"));
        assert!(t.check(&bearer("sesame")).is_ok());
        assert!(t.check(&bearer("sesame2")).is_err());
        assert!(t.check(&HeaderMap::new()).is_err());
        let off = AdminToken::new(None);
        assert_eq!(
            off.check(&bearer("")).unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert!(
            AdminToken::new(Some("")).check(&bearer("")).is_err(),
            "empty token means off"
        );
    }

    #[test]
    fn a_reply_that_cannot_be_encoded_is_a_500() {
        struct Unencodable;
        impl Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let f = to_json(StatusCode::OK, &Unencodable).unwrap_err();
        assert_eq!(f.code, ErrorCode::Internal);
        assert_eq!(f.into_admin().status(), 500);
    }

    #[test]
    fn session_query_bounds() {
        assert_eq!(session_query(None).unwrap().limit, 50);
        assert_eq!(session_query(Some("limit=7")).unwrap().limit, 7);
        assert!(session_query(Some("limit=x")).is_err());
        assert!(session_query(Some("cursor=zzz")).is_err());
        assert!(session_query(Some("open_id=o%00")).is_err(), "NUL");
        let q = session_query(Some("open_id=o%2B1")).unwrap();
        assert_eq!(q.open_id.as_deref(), Some("o+1"));
    }
}

#[derive(Serialize)]
struct AuditView {
    id: i64,
    at: String,
    action: &'static str,
    target: String,
    caller: Option<String>,
}

#[derive(Serialize)]
struct AuditList {
    entries: Vec<AuditView>,
    next_cursor: Option<String>,
}

/// `GET /admin/audit?limit=&cursor=`: the audit trail, newest first.
pub async fn audit_trail<S: Store>(w: &Wafer<S>, query: Option<&str>) -> Result<Reply, Failure> {
    let (mut limit, mut before) = (DEFAULT_PAGE, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" if !v.is_empty() => {
                limit = v
                    .parse()
                    .map_err(|_| Failure::new(ErrorCode::BadRequest, "`limit` must be 1 to 1000"))?
            }
            "cursor" if !v.is_empty() => {
                before = Some(
                    v.parse::<i64>()
                        .map_err(|_| Failure::new(ErrorCode::BadRequest, "invalid `cursor`"))?,
                )
            }
            _ => {}
        }
    }
    let page = w.audit_trail(before, limit).await?;
    to_json(
        StatusCode::OK,
        &AuditList {
            entries: page
                .entries
                .into_iter()
                .map(|e| AuditView {
                    id: e.id,
                    at: e.at.to_rfc3339(),
                    action: e.action.label(),
                    target: e.target,
                    caller: e.caller.map(|c| c.to_string()),
                })
                .collect(),
            next_cursor: page.next.map(|n| n.to_string()),
        },
    )
}
