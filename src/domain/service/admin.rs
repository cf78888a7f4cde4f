//! The admin operations, one door for the admin API and the command line:
//! an action that changes something or reads a secret is audited here, as
//! part of the operation, whoever called it.

use std::sync::Arc;

use uuid::Uuid;

use super::{MAX_PAGE, Wafer};
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::domain::audit::{AuditAction, AuditEntry, AuditPage, Caller};
use crate::domain::error::Error;
use crate::domain::input::no_nul;
use crate::domain::ports::Store;
use crate::domain::session::{SessionPage, SessionQuery, SessionSummary};
use crate::domain::token::AccessToken;
use crate::wechat::crypto;

impl<S: Store> Wafer<S> {
    /// Admin: app `id`'s shared WeChat access token (audited: a secret).
    pub async fn access_token(
        &self,
        id: AppId,
        caller: Caller,
    ) -> Result<(AccessToken, u64), Error> {
        let app = self.get_app(id).await?;
        let token = self.tokens.get(&*self.store, &app).await?;
        let left = token.expires_in(self.clock.now());
        self.audit(caller, AuditAction::TokenRead, format!("app {id}"))
            .await;
        Ok((token, left))
    }

    /// Admin and support: whether the session key stored for user `open_id`
    /// in app `id` is still the user's current one at WeChat (it is not
    /// once the user logged in elsewhere, e.g. another server of the app
    /// called `jscode2session`: data the user fetches then decrypts only
    /// with the newer key). Audited: it uses the key.
    pub async fn check_session_key(
        &self,
        id: AppId,
        open_id: &str,
        caller: Caller,
    ) -> Result<bool, Error> {
        let app = self.get_app(id).await?;
        no_nul("open_id", open_id)?;
        let key = self
            .store
            .user_session_key(id, open_id)
            .await?
            .ok_or(Error::NotFound)?;
        let signature = crypto::session_signature(&key);
        let signature = &signature;
        let current = self
            .with_token(&app, |token| async move {
                self.wechat.check_session(&token, open_id, signature).await
            })
            .await?;
        let target = format!("app {id} user {open_id}");
        self.audit(caller, AuditAction::KeyChecked, target).await;
        Ok(current)
    }

    /// Admin: creates an app.
    pub async fn create_app(&self, app: NewApp, caller: Caller) -> Result<Arc<App>, Error> {
        app.validate().map_err(|e| Error::bad_request(e.0))?;
        let app = self.store.create_app(app, self.clock.now()).await?;
        let target = format!("app {}", app.id);
        self.audit(caller, AuditAction::AppCreated, target).await;
        Ok(app)
    }

    /// Admin: every app.
    pub async fn list_apps(&self) -> Result<Vec<Arc<App>>, Error> {
        Ok(self.store.list_apps().await?)
    }

    /// Admin: one app.
    pub async fn get_app(&self, id: AppId) -> Result<Arc<App>, Error> {
        self.store
            .app(&AppRef::Id(id))
            .await?
            .ok_or(Error::NotFound)
    }

    /// Admin: changes an app. A new secret drops the app's access token
    /// (every instance also stops using a token of the old secret).
    pub async fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        caller: Caller,
    ) -> Result<Arc<App>, Error> {
        patch.validate().map_err(|e| Error::bad_request(e.0))?;
        let new_secret = patch.secret.is_some();
        let app = self.store.update_app(id, patch, self.clock.now()).await?;
        if new_secret {
            self.forget_token(id).await;
        }
        self.audit(caller, AuditAction::AppChanged, format!("app {id}"))
            .await;
        Ok(app)
    }

    /// Admin: deletes an app, its sessions and its access token.
    pub async fn delete_app(&self, id: AppId, caller: Caller) -> Result<(), Error> {
        self.store.delete_app(id).await?;
        self.forget_token(id).await;
        self.audit(caller, AuditAction::AppDeleted, format!("app {id}"))
            .await;
        Ok(())
    }

    /// Drops app `id`'s shared token. A failure is only logged: a token of
    /// an old secret is refused by its tag anyway, and one of a deleted app
    /// expires unused.
    async fn forget_token(&self, id: AppId) {
        if let Err(e) = self.store.drop_access_token(id).await {
            tracing::warn!(app = id, error = %e, "could not drop the app's access token");
        }
    }

    /// Admin: a page of an app's sessions.
    pub async fn list_sessions(
        &self,
        id: AppId,
        query: SessionQuery,
    ) -> Result<SessionPage, Error> {
        if query.limit == 0 || query.limit > MAX_PAGE {
            return Err(Error::bad_request("`limit` must be 1 to 1000"));
        }
        self.get_app(id).await?;
        Ok(self.store.list_sessions(id, &query).await?)
    }

    /// Admin: revokes a session at once.
    pub async fn revoke(&self, uuid: &str, caller: Caller) -> Result<(), Error> {
        let uuid = Uuid::try_parse(uuid).map_err(|_| Error::NotFound)?;
        if !self.store.revoke(uuid).await? {
            return Err(Error::NotFound);
        }
        let target = format!("session {uuid}");
        self.audit(caller, AuditAction::SessionRevoked, target)
            .await;
        Ok(())
    }

    /// Admin: the session of user `open_id` in app `id`.
    pub async fn user_session(&self, id: AppId, open_id: &str) -> Result<SessionSummary, Error> {
        self.get_app(id).await?;
        no_nul("open_id", open_id)?;
        self.store
            .user_session(id, open_id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Admin: revokes the session of user `open_id` in app `id`.
    pub async fn revoke_user(&self, id: AppId, open_id: &str, caller: Caller) -> Result<(), Error> {
        self.get_app(id).await?;
        no_nul("open_id", open_id)?;
        if !self.store.revoke_user(id, open_id).await? {
            return Err(Error::NotFound);
        }
        let target = format!("app {id} user {open_id}");
        self.audit(caller, AuditAction::UserRevoked, target).await;
        Ok(())
    }

    /// Records an admin action that happened in the audit trail and the log
    /// (one line with `audit=true`). A store that fails loses the entry,
    /// not the action (it already happened): that is logged as an error.
    async fn audit(&self, caller: Caller, action: AuditAction, target: String) {
        let address = caller.address();
        let address_text = address.map(|c| c.to_string()).unwrap_or_default();
        tracing::info!(
            audit = true,
            action = action.label(),
            audit_target = %target,
            caller = %address_text,
            via = caller.via(),
            "admin action"
        );
        let entry = AuditEntry {
            id: 0,
            at: self.clock.now(),
            action,
            target,
            caller: address,
        };
        if let Err(e) = self.store.record_audit(&entry).await {
            tracing::error!(
                audit = true,
                action = action.label(),
                error = %e,
                "the audit trail could not record an admin action"
            );
        }
    }

    /// Admin: a page of the audit trail, newest first.
    pub async fn audit_trail(&self, before: Option<i64>, limit: usize) -> Result<AuditPage, Error> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::bad_request("`limit` must be 1 to 1000"));
        }
        Ok(self.store.audit_trail(before, limit).await?)
    }
}
