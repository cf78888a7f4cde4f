//! The port for sessions: logins stored, checked, slid, ended and listed.

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use super::StoreResult;
use crate::domain::app::AppId;
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary, StoredLogin,
};

/// Sessions: logins stored, checked, slid, ended and listed.
pub trait SessionStore: Send + Sync + 'static {
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

    /// Checks credentials like [`SessionStore::authenticate`] (and slides the
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
}
