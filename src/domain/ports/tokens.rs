//! The port for each app's shared WeChat access token and the lease on fetching it.

use std::future::Future;

use super::StoreResult;
use crate::domain::app::AppId;
use crate::domain::token::{AccessToken, TokenLease};

/// Each app's shared WeChat access token and the lease on fetching it.
pub trait TokenStore: Send + Sync + 'static {
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
}
