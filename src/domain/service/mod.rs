//! The login, auth and logout rules, written once against [`Store`]; the
//! admin operations in [`admin`].

mod admin;

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::app::{App, AppId, AppRef};
use crate::domain::error::Error;
use crate::domain::input::{AuthInput, LoginInput, no_nul};
use crate::domain::login_limits::LoginLimits;
use crate::domain::ports::{BackendHealth, Store};
use crate::domain::session::{Credentials, NewSession, Profile};
use crate::domain::skey::{Skey, SkeyHash};
use crate::domain::token_keeper::Tokens;
use crate::domain::token_metrics::TokenMetrics;
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

    /// Health of the store's backends.
    pub async fn health(&self) -> Vec<BackendHealth> {
        self.store.health().await
    }
}
