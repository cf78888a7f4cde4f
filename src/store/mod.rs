//! Storage of apps and sessions behind one trait. The domain talks only to
//! [`Store`]; the embedded store implements it in-process, the tiered store
//! over Redis and PostgreSQL.

mod app_table;
pub mod embedded;
pub mod error;
pub mod near;
pub(crate) mod periodic;
pub mod postgres;
pub(crate) mod record;
pub mod redis;
pub mod sealed;
pub mod tiered;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::domain::audit::{AuditEntry, AuditPage};
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary, StoredLogin,
};
use crate::domain::token::{AccessToken, TokenLease};

pub use embedded::EmbeddedStore;
pub use error::{Backend, Cause, ConnectError, SqlState, StoreError, StoreResult};
pub use tiered::TieredStore;

/// One page out of `items`, fetched with one more than `limit`: the first
/// `limit`, and where the next page starts (the `key` of the page's last
/// item) when there was more.
pub(crate) fn split_page<T, K>(
    mut items: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(key);
    (items, next)
}

/// Readiness of one backend, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    /// Backend name (`embedded`, `redis`, `postgres`).
    pub name: &'static str,
    /// `None` when healthy, else what is wrong.
    pub problem: Option<String>,
}

/// Apps and sessions, as the domain needs them.
///
/// Implementations decide how data is laid out; the rules (validity, expiry
/// arithmetic, one session per user) come from `crate::domain` and are
/// applied through [`Credentials`] and [`crate::domain::session::Limits`].
pub trait Store: Send + Sync + 'static {
    /// Looks an app up by id or appid. Called on every request: must be cheap.
    fn app(&self, app: &AppRef<'_>) -> impl Future<Output = StoreResult<Option<Arc<App>>>> + Send;

    /// Every app, ordered by id.
    fn list_apps(&self) -> impl Future<Output = StoreResult<Vec<Arc<App>>>> + Send;

    /// Creates an app; [`StoreError::Conflict`] when its appid is taken.
    fn create_app(
        &self,
        app: NewApp,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Arc<App>>> + Send;

    /// Changes an app; [`StoreError::NotFound`] or [`StoreError::Conflict`].
    fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Arc<App>>> + Send;

    /// Deletes an app and all its sessions; [`StoreError::NotFound`] if absent.
    fn delete_app(&self, id: AppId) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores a login. One session exists per (app, open_id): an existing one
    /// keeps its uuid, takes the new skey, times and session_key, and keeps
    /// its user_info (and union_id) unless the login brings new ones.
    /// Concurrent logins of one user converge on one uuid.
    fn upsert_session(
        &self,
        session: NewSession,
    ) -> impl Future<Output = StoreResult<StoredLogin>> + Send;

    /// Checks credentials and, when they are accepted, slides the session's
    /// last visit to `creds.now`, atomically. `None` when not accepted.
    fn authenticate(
        &self,
        creds: &Credentials,
    ) -> impl Future<Output = StoreResult<Option<Arc<Profile>>>> + Send;

    /// Checks credentials like [`Store::authenticate`] (and slides the
    /// session); when they are accepted, the session's `session_key`, for
    /// decrypting data the mini-program fetched after login. It never
    /// leaves the server.
    fn session_key(
        &self,
        creds: &Credentials,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// Stores the user's phone number with the session `creds` names
    /// (already checked by the caller); it stays with the session, across
    /// logins. `false` when the session is gone.
    fn set_phone(
        &self,
        creds: &Credentials,
        phone_number: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The session_key stored for user `open_id` in `app` (for the support
    /// check of whether it is still the user's current one). Never shown.
    fn user_session_key(
        &self,
        app: AppId,
        open_id: &str,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// The app's shared access token, if one is cached.
    fn access_token(
        &self,
        app: AppId,
    ) -> impl Future<Output = StoreResult<Option<AccessToken>>> + Send;

    /// Shares the app's access token (replacing any) until it expires.
    fn put_access_token(
        &self,
        app: AppId,
        token: &AccessToken,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Takes `lease` on the app's token for `ttl`, as `holder`, unless
    /// another holder has it. The lease ends by itself after `ttl`, so a
    /// holder that dies does not keep it.
    fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Gives `lease` back, if `holder` still has it.
    fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Forgets the app's token (its secret changed, or it is deleted).
    fn drop_access_token(&self, app: AppId) -> impl Future<Output = StoreResult<()>> + Send;

    /// Appends an admin action to the audit trail.
    fn record_audit(&self, entry: &AuditEntry) -> impl Future<Output = StoreResult<()>> + Send;

    /// Up to `limit` entries of the audit trail older than `before` (all
    /// when `None`), newest first.
    fn audit_trail(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<AuditPage>> + Send;

    /// Checks credentials and deletes the session if they are accepted.
    fn logout(&self, creds: &Credentials) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes a session unconditionally (admin revoke). `false` if absent.
    fn revoke(&self, uuid: Uuid) -> impl Future<Output = StoreResult<bool>> + Send;

    /// One page of an app's sessions, ordered by uuid.
    fn list_sessions(
        &self,
        app: AppId,
        query: &SessionQuery,
    ) -> impl Future<Output = StoreResult<SessionPage>> + Send;

    /// The session of user `open_id` in `app`, if one is stored. The default
    /// reads the listing; a store with an index of its own overrides it.
    fn user_session(
        &self,
        app: AppId,
        open_id: &str,
    ) -> impl Future<Output = StoreResult<Option<SessionSummary>>> + Send {
        let query = SessionQuery::user(open_id);
        async move {
            let page = self.list_sessions(app, &query).await?;
            Ok(page.sessions.into_iter().next())
        }
    }

    /// Revokes the session of user `open_id` in `app`; `false` if none.
    fn revoke_user(
        &self,
        app: AppId,
        open_id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        async move {
            match self.user_session(app, open_id).await? {
                Some(s) => self.revoke(s.uuid).await,
                None => Ok(false),
            }
        }
    }

    /// Health of each backend.
    fn health(&self) -> impl Future<Output = Vec<BackendHealth>> + Send;

    /// Sessions stored (when the store can tell cheaply) and apps configured.
    fn sizes(&self) -> impl Future<Output = (Option<u64>, usize)> + Send;

    /// Finishes background work (pending writes) before the process exits.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
