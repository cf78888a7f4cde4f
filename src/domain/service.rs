//! The login, auth, logout and admin rules, written once against [`Store`].

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::domain::error::Error;
use crate::domain::input::{AuthInput, LoginInput, no_nul};
use crate::domain::login_limits::LoginLimits;
use crate::domain::ports::{BackendHealth, Store};
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary,
};
use crate::domain::skey::{Skey, SkeyHash};
use crate::domain::token::AccessToken;
use crate::domain::token_keeper::Tokens;
use crate::metrics::TokenMetrics;
use crate::wechat::{PhoneInfo, WechatClient, WechatError, crypto};

/// Largest page of a session listing.
pub const MAX_PAGE: usize = 1000;

/// What a successful login answers.
#[derive(Debug)]
pub struct LoginOutput {
    /// The session id.
    pub uuid: Uuid,
    /// The new session secret; shown to the client once.
    pub skey: Skey,
    /// The stored user data.
    pub user_info: Option<Arc<str>>,
    /// The app's `session_duration`, seconds.
    pub duration: u32,
    /// Whether the user had no session before.
    pub new: bool,
}

/// wafer's domain: the rules, a store, WeChat and a clock.
pub struct Wafer<S> {
    store: Arc<S>,
    wechat: WechatClient,
    clock: Arc<dyn Clock>,
    tokens: Tokens,
    limits: LoginLimits,
}

impl<S: Store> Wafer<S> {
    /// The domain over `store`, trading codes at `wechat`, telling time by `clock`.
    pub fn new(store: Arc<S>, wechat: WechatClient, clock: Arc<dyn Clock>) -> Self {
        let tokens = Tokens::new(wechat.clone(), clock.clone(), wechat.timeout());
        Wafer {
            store,
            wechat,
            clock,
            tokens,
            limits: LoginLimits::default(),
        }
    }

    /// Limits logins to `per_ip` per minute per client address and
    /// `per_app` per minute per app (0: no limit).
    pub fn with_login_limits(mut self, per_ip: u32, per_app: u32) -> Self {
        self.limits = LoginLimits::new(per_ip, per_app);
        self
    }

    /// Records the access-token logic in `metrics`.
    pub fn with_token_metrics(mut self, metrics: TokenMetrics) -> Self {
        self.tokens.set_metrics(metrics);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    async fn app(&self, app: &AppRef<'_>) -> Result<Arc<App>, Error> {
        self.store.app(app).await?.ok_or(Error::AppNotFound)
    }

    /// Trades a login code for a session (see the API's `/mina/login`).
    /// `client` is the caller's address, for the per-client login limit.
    pub async fn login(
        &self,
        input: LoginInput<'_>,
        client: Option<std::net::IpAddr>,
    ) -> Result<LoginOutput, Error> {
        let app = self.app(&input.app).await?;
        // Before WeChat: a refused login must not spend the app's quota.
        self.limits
            .check(client, app.id)
            .map_err(Error::LoginLimited)?;
        let wx = self
            .wechat
            .code_to_session(&app.appid, &app.secret, &input.code)
            .await?;
        let decrypted = match &input.encrypted {
            Some((data, iv)) => Some(crypto::decrypt_user_data(
                &wx.session_key,
                data,
                iv,
                &app.appid,
            )?),
            None => None,
        };
        if let Some((raw, signature)) = &input.signed {
            crypto::check_signature(raw, &wx.session_key, signature)?;
        }
        let skey = Skey::mint().map_err(|_| Error::Internal("the OS random generator failed"))?;
        let (user_info, decrypted_union) = match decrypted {
            Some(d) => (Some(d.user_info), d.union_id),
            None => (None, None),
        };
        let stored = self
            .store
            .upsert_session(NewSession {
                app_id: app.id,
                open_id: wx.open_id,
                union_id: wx.union_id.or(decrypted_union),
                session_key: wx.session_key,
                skey_hash: skey.hash(),
                user_info,
                now: self.clock.now(),
            })
            .await?;
        Ok(LoginOutput {
            new: stored.new,
            uuid: stored.uuid,
            skey,
            user_info: stored.user_info,
            duration: app.session_duration,
        })
    }

    /// The credentials of `input`, and the app they name.
    async fn credentials(&self, input: &AuthInput<'_>) -> Result<(Arc<App>, Credentials), Error> {
        let app = self.app(&input.app).await?;
        // A malformed uuid is just an unknown session: same answer, no probing.
        let uuid = Uuid::try_parse(&input.uuid).map_err(|_| Error::SessionInvalid)?;
        let creds = Credentials {
            uuid,
            skey_hash: SkeyHash::of(&input.skey),
            app_id: app.id,
            limits: app.limits(),
            now: self.clock.now(),
        };
        Ok((app, creds))
    }

    /// Checks a session and slides it (see `/mina/auth`).
    pub async fn auth(&self, input: &AuthInput<'_>) -> Result<Arc<Profile>, Error> {
        Ok(self.auth_in_app(input).await?.1)
    }

    /// [`Wafer::auth`], also answering the app's numeric id (the forward
    /// auth tells it to the gateway).
    pub async fn auth_in_app(&self, input: &AuthInput<'_>) -> Result<(AppId, Arc<Profile>), Error> {
        let (_, creds) = self.credentials(input).await?;
        let profile = self
            .store
            .authenticate(&creds)
            .await?
            .ok_or(Error::SessionInvalid)?;
        Ok((creds.app_id, profile))
    }

    /// Decrypts data the mini-program fetched after login with the stored
    /// session key of a valid session (which it slides): the object as
    /// compact JSON. The usual cause of a refusal is a `wx.login()` after
    /// the data was fetched, which gave the user a new session key.
    pub async fn decrypt(
        &self,
        input: &AuthInput<'_>,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<String, Error> {
        let (app, creds) = self.credentials(input).await?;
        let key = self
            .store
            .session_key(&creds)
            .await?
            .ok_or(Error::SessionInvalid)?;
        crypto::decrypt_data(&key, encrypted_data, iv, &app.appid).map_err(|e| match e {
            crypto::CryptoError::BadEncryptedData(_) => Error::StaleSessionKey,
            other => other.into(),
        })
    }

    /// The user's phone number, from the code of a `getPhoneNumber`
    /// button, for a valid session (which it slides); the number is stored
    /// with the session. A refused access token is replaced once and the
    /// call repeated once (WeChat did not use the code then); the code is
    /// never sent twice otherwise.
    pub async fn phone(&self, input: &AuthInput<'_>, code: &str) -> Result<PhoneInfo, Error> {
        if code.is_empty() {
            return Err(Error::bad_request("field `code` is required"));
        }
        no_nul("code", code)?;
        let (app, creds) = self.credentials(input).await?;
        self.store
            .authenticate(&creds)
            .await?
            .ok_or(Error::SessionInvalid)?;
        let appid = app.appid.as_str();
        let info = self
            .with_token(&app, |token| async move {
                self.wechat.phone_number(&token, code, appid).await
            })
            .await?;
        if !self.store.set_phone(&creds, &info.phone_number).await? {
            return Err(Error::SessionInvalid);
        }
        Ok(info)
    }

    /// Admin: app `id`'s shared WeChat access token.
    pub async fn access_token(&self, id: AppId) -> Result<(AccessToken, u64), Error> {
        let app = self.get_app(id).await?;
        let token = self.tokens.get(&*self.store, &app).await?;
        let left = token.expires_in(self.clock.now());
        Ok((token, left))
    }

    /// Admin and support: whether the session key stored for user `open_id`
    /// in app `id` is still the user's current one at WeChat (it is not
    /// once the user logged in elsewhere, e.g. another server of the app
    /// called `jscode2session`: data the user fetches then decrypts only
    /// with the newer key).
    pub async fn check_session_key(&self, id: AppId, open_id: &str) -> Result<bool, Error> {
        let app = self.get_app(id).await?;
        no_nul("open_id", open_id)?;
        let key = self
            .store
            .user_session_key(id, open_id)
            .await?
            .ok_or(Error::NotFound)?;
        let signature = crypto::session_signature(&key);
        let signature = &signature;
        self.with_token(&app, |token| async move {
            self.wechat.check_session(&token, open_id, signature).await
        })
        .await
    }

    /// Runs a WeChat call with `app`'s access token. When WeChat refuses
    /// the token, the call is made once more with its replacement (WeChat
    /// did not act on the refused call); never more than that.
    async fn with_token<T, F, Fut>(&self, app: &App, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, WechatError>>,
    {
        let token = self.tokens.get(&*self.store, app).await?;
        match call(token.value.clone()).await {
            Err(WechatError::TokenInvalid(_)) => {
                let fresh = self.tokens.replace(&*self.store, app, &token.value).await?;
                Ok(call(fresh.value).await?)
            }
            other => Ok(other?),
        }
    }

    /// Ends a session (see `/mina/logout`).
    pub async fn logout(&self, input: &AuthInput<'_>) -> Result<(), Error> {
        let (_, creds) = self.credentials(input).await?;
        if self.store.logout(&creds).await? {
            Ok(())
        } else {
            Err(Error::SessionInvalid)
        }
    }

    /// Admin: creates an app.
    pub async fn create_app(&self, app: NewApp) -> Result<Arc<App>, Error> {
        app.validate().map_err(|e| Error::bad_request(e.0))?;
        Ok(self.store.create_app(app, self.clock.now()).await?)
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
    pub async fn update_app(&self, id: AppId, patch: AppPatch) -> Result<Arc<App>, Error> {
        patch.validate().map_err(|e| Error::bad_request(e.0))?;
        let new_secret = patch.secret.is_some();
        let app = self.store.update_app(id, patch, self.clock.now()).await?;
        if new_secret {
            self.forget_token(id).await;
        }
        Ok(app)
    }

    /// Admin: deletes an app, its sessions and its access token.
    pub async fn delete_app(&self, id: AppId) -> Result<(), Error> {
        self.store.delete_app(id).await?;
        self.forget_token(id).await;
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
    pub async fn revoke(&self, uuid: &str) -> Result<(), Error> {
        let uuid = Uuid::try_parse(uuid).map_err(|_| Error::NotFound)?;
        if self.store.revoke(uuid).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
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
    pub async fn revoke_user(&self, id: AppId, open_id: &str) -> Result<(), Error> {
        self.get_app(id).await?;
        no_nul("open_id", open_id)?;
        if self.store.revoke_user(id, open_id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Admin: records an admin action in the audit trail and the log (one
    /// line with `audit=true`). A store that fails loses the entry, not
    /// the action (it already happened): that is logged as an error.
    pub async fn audit(
        &self,
        action: crate::domain::audit::AuditAction,
        target: String,
        caller: Option<std::net::IpAddr>,
    ) {
        let caller_text = caller.map(|c| c.to_string()).unwrap_or_default();
        tracing::info!(
            audit = true,
            action = action.label(),
            audit_target = %target,
            caller = %caller_text,
            "admin action"
        );
        let entry = crate::domain::audit::AuditEntry {
            id: 0,
            at: self.clock.now(),
            action,
            target,
            caller,
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
    pub async fn audit_trail(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<crate::domain::audit::AuditPage, Error> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::bad_request("`limit` must be 1 to 1000"));
        }
        Ok(self.store.audit_trail(before, limit).await?)
    }

    /// Health of the store's backends.
    pub async fn health(&self) -> Vec<BackendHealth> {
        self.store.health().await
    }
}
