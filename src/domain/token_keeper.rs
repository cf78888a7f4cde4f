//! Each app's WeChat access token: one per app, shared by every wafer
//! instance through the store, fetched by one instance at a time (a lease
//! with a timeout, so a dead instance does not block the rest), renewed
//! before it expires, and force-refreshed at most once per 30 s when WeChat
//! calls it invalid (WeChat's own limit on `force_refresh`).
//!
//! Business services that fetch their own tokens invalidate each other's;
//! wafer holds the app secrets, so it is the one place that should fetch.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::clock::Clock;
use crate::domain::app::{App, AppId};
use crate::domain::error::Error;
use crate::domain::ports::TokenStore;
use crate::domain::token::{AccessToken, FORCE_INTERVAL, TokenLease, secret_tag};
use crate::domain::token_metrics::TokenMetrics;
use crate::wechat::{WechatClient, WechatError};

/// How often a caller waiting for another instance's fetch looks again.
const POLL: Duration = Duration::from_millis(50);
/// Renew this long before expiry at most: WeChat's normal mode answers a new
/// token during the last 5 minutes of the old one's life, and both work
/// meanwhile.
const RENEW_MARGIN_MS: i64 = 300_000;

/// The token logic of one instance.
pub(crate) struct Tokens {
    wechat: WechatClient,
    clock: Arc<dyn Clock>,
    /// Who holds a lease: this instance, random per process.
    holder: String,
    /// How long a fetch lease lasts: longer than a WeChat call can take.
    lease_ttl: Duration,
    /// One caller per app at a time in this instance: concurrent callers
    /// wait for the first one's result instead of racing it.
    locks: DashMap<AppId, Arc<tokio::sync::Mutex<()>>>,
    metrics: TokenMetrics,
}

impl Tokens {
    pub(crate) fn new(wechat: WechatClient, clock: Arc<dyn Clock>, call_timeout: Duration) -> Self {
        Tokens {
            wechat,
            clock,
            holder: uuid::Uuid::new_v4().simple().to_string(),
            lease_ttl: call_timeout * 2 + Duration::from_secs(1),
            locks: DashMap::new(),
            metrics: TokenMetrics::default(),
        }
    }

    pub(crate) fn set_metrics(&mut self, metrics: TokenMetrics) {
        self.metrics = metrics;
    }

    fn lock(&self, app: AppId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.entry(app).or_default().clone()
    }

    /// How long a caller waits for another instance before giving up.
    fn wait_limit(&self) -> Duration {
        self.lease_ttl + POLL
    }

    /// The shared token, if usable. A store that fails counts as having
    /// none: the caller then fetches one itself, without sharing it
    /// (normal mode answers every instance the same token, so nobody's is
    /// invalidated).
    async fn cached<S: TokenStore>(&self, store: &S, app: &App, tag: &str) -> Option<AccessToken> {
        let now = self.clock.now();
        match store.access_token(app.id).await {
            Ok(t) => t.filter(|t| t.usable(tag, now)),
            Err(e) => {
                tracing::debug!(app = app.id, error = %e, "shared access token unreadable");
                None
            }
        }
    }

    /// Takes a lease; a store that fails grants it (see [`Tokens::cached`]).
    async fn lease<S: TokenStore>(
        &self,
        store: &S,
        app: &App,
        lease: TokenLease,
        ttl: Duration,
    ) -> bool {
        store
            .lease_access_token(app.id, lease, &self.holder, ttl)
            .await
            .unwrap_or(true)
    }

    /// The app's token: the shared one while it is fresh, else a new one
    /// (fetched here, or by whichever instance holds the fetch lease).
    pub(crate) async fn get<S: TokenStore>(
        &self,
        store: &S,
        app: &App,
    ) -> Result<AccessToken, Error> {
        let tag = secret_tag(&app.secret);
        if let Some(t) = self.cached(store, app, &tag).await {
            if self.clock.now() < t.renew_at {
                return Ok(self.served(app, t));
            }
        }
        let lock = self.lock(app.id);
        let _one_at_a_time = lock.lock().await;
        let give_up = tokio::time::Instant::now() + self.wait_limit();
        let fresh = |t: &AccessToken| self.clock.now() < t.renew_at;
        loop {
            let cached = self.cached(store, app, &tag).await;
            if let Some(t) = cached.as_ref().filter(|t| fresh(t)) {
                return Ok(self.served(app, t.clone()));
            }
            if self
                .lease(store, app, TokenLease::Fetch, self.lease_ttl)
                .await
            {
                // Another instance may have fetched and given the lease back
                // since the look above: its token is as good.
                let shared = self.cached(store, app, &tag).await;
                let fetched = match shared.filter(|t| fresh(t)) {
                    Some(t) => Ok(t),
                    None => self.fetch(store, app, &tag, false).await,
                };
                // Given back either way: after a failure the next caller
                // should try at once, not wait for the lease to time out.
                let _ = store
                    .release_access_token(app.id, TokenLease::Fetch, &self.holder)
                    .await;
                return match (fetched, cached) {
                    (Ok(t), _) => Ok(self.served(app, t)),
                    // Renewal failed while the old token still works.
                    (Err(_), Some(old)) => Ok(self.served(app, old)),
                    (Err(e), None) => Err(e),
                };
            }
            // Another instance is fetching: the old token, while it works,
            // is as good meanwhile.
            if let Some(old) = cached {
                return Ok(self.served(app, old));
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(Error::Wechat(WechatError::Timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A token to use instead of `bad`, which WeChat refused: one another
    /// caller already put in its place, else a forced refresh (at most one
    /// per app per [`FORCE_INTERVAL`], across instances).
    pub(crate) async fn replace<S: TokenStore>(
        &self,
        store: &S,
        app: &App,
        bad: &str,
    ) -> Result<AccessToken, Error> {
        let tag = secret_tag(&app.secret);
        let lock = self.lock(app.id);
        let _one_at_a_time = lock.lock().await;
        let give_up = tokio::time::Instant::now() + self.wait_limit();
        loop {
            let cached = self.cached(store, app, &tag).await;
            if let Some(t) = cached.filter(|t| t.value != bad) {
                return Ok(self.served(app, t));
            }
            if self
                .lease(store, app, TokenLease::Force, FORCE_INTERVAL)
                .await
            {
                self.metrics.refreshed();
                let t = self.fetch(store, app, &tag, true).await?;
                return Ok(self.served(app, t));
            }
            if tokio::time::Instant::now() >= give_up {
                // Forced within the last 30 s and still refused: WeChat
                // would only answer the same token again.
                return Err(Error::Wechat(WechatError::TokenInvalid(40001)));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn fetch<S: TokenStore>(
        &self,
        store: &S,
        app: &App,
        tag: &str,
        force: bool,
    ) -> Result<AccessToken, Error> {
        let issued = self
            .wechat
            .stable_token(&app.appid, &app.secret, force)
            .await?;
        let now = self.clock.now();
        let life = i64::try_from(issued.expires_in.saturating_mul(1000)).unwrap_or(i64::MAX);
        let token = AccessToken {
            value: issued.value,
            fetched_at: now,
            expires_at: now.plus_millis(life),
            renew_at: now.plus_millis(life - RENEW_MARGIN_MS.min(life / 2)),
            secret_tag: tag.to_owned(),
        };
        // Not shared when the store fails: this caller still has a token,
        // and the next one fetches again.
        if let Err(e) = store.put_access_token(app.id, &token).await {
            tracing::warn!(app = app.id, error = %e, "could not share a fresh access token");
        }
        Ok(token)
    }

    fn served(&self, app: &App, t: AccessToken) -> AccessToken {
        let age_ms = (self.clock.now().0 - t.fetched_at.0).max(0);
        self.metrics.age(app.id, age_ms as f64 / 1000.0);
        t
    }
}
