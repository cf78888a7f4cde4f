//! The tiered store's access tokens and their leases, shared through Redis.

use std::time::Duration;

use super::TieredStore;
use crate::domain::app::AppId;
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::{StoreResult, TokenStore};

impl TokenStore for TieredStore {
    async fn access_token(&self, app: AppId) -> StoreResult<Option<AccessToken>> {
        self.hot.redis.access_token(app).await
    }

    async fn put_access_token(&self, app: AppId, token: &AccessToken) -> StoreResult<()> {
        // Shared as it is fetched: its whole life is left.
        let life = token.expires_at.0 - token.fetched_at.0;
        self.hot.redis.put_access_token(app, token, life).await
    }

    async fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.hot
            .redis
            .lease_access_token(app, lease, holder, ttl_ms)
            .await
    }

    async fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> StoreResult<()> {
        self.hot
            .redis
            .release_access_token(app, lease, holder)
            .await
    }

    async fn drop_access_token(&self, app: AppId) -> StoreResult<()> {
        self.hot.redis.drop_access_token(app).await
    }
}
