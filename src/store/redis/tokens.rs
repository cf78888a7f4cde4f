//! The apps' shared access tokens in Redis: the token itself (JSON, so it
//! reads with `GET`) and the leases that let one instance fetch it.

use fred::prelude::Value;

use super::{Redis, layout};
use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::metrics::Op;
use crate::store::{Backend, StoreError, StoreResult};

/// Deletes a lease (KEYS[1]) only if its holder (ARGV[1]) still has it: a
/// lease that timed out and was taken by another must not be removed.
pub(super) const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

impl Redis {
    /// The app's shared access token: a JSON string under
    /// `{prefix}t:{<app>}`, expiring with the token.
    pub async fn access_token(&self, app: AppId) -> StoreResult<Option<AccessToken>> {
        use fred::prelude::KeysInterface;
        let call = self
            .pool
            .next_connected()
            .get::<Option<String>, _>(layout::token_key(&self.prefix, app));
        let Some(text) = self.bounded(Op::Token, call).await? else {
            return Ok(None);
        };
        // Anything unreadable is as good as no token: the next fetch
        // replaces it.
        Ok(serde_json::from_str::<SharedToken>(&text)
            .ok()
            .map(AccessToken::from))
    }

    /// Shares the app's access token until it expires (`ttl_ms` from now).
    pub async fn put_access_token(
        &self,
        app: AppId,
        token: &AccessToken,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        use fred::prelude::{Expiration, KeysInterface};
        if ttl_ms <= 0 {
            return Ok(());
        }
        let text = serde_json::to_string(&SharedToken::from(token)).map_err(|_| {
            StoreError::Malformed {
                backend: Backend::Redis,
                what: "an access token to share",
            }
        })?;
        let call = self.pool.next_connected().set::<Value, _, _>(
            layout::token_key(&self.prefix, app),
            text,
            Some(Expiration::PX(ttl_ms)),
            None,
            false,
        );
        self.bounded(Op::Token, call).await.map(drop)
    }

    /// `SET NX PX`: takes `lease` for `ttl_ms` unless someone holds it.
    pub async fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        use fred::prelude::{Expiration, KeysInterface};
        use fred::types::SetOptions;
        let call = self.pool.next_connected().set::<Value, _, _>(
            layout::lease_key(&self.prefix, app, lease.label()),
            holder,
            Some(Expiration::PX(ttl_ms.max(1))),
            Some(SetOptions::NX),
            false,
        );
        Ok(!matches!(self.bounded(Op::Token, call).await?, Value::Null))
    }

    /// Deletes `lease` if `holder` still holds it.
    pub async fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> StoreResult<()> {
        let key = layout::lease_key(&self.prefix, app, lease.label());
        let args = || vec![Value::from(holder)];
        self.eval(Op::Token, &self.release, vec![key], args)
            .await
            .map(drop)
    }

    /// Forgets the app's access token.
    pub async fn drop_access_token(&self, app: AppId) -> StoreResult<()> {
        use fred::prelude::KeysInterface;
        let call = self
            .pool
            .next_connected()
            .del::<i64, _>(layout::token_key(&self.prefix, app));
        self.bounded(Op::Token, call).await.map(drop)
    }
}

/// An access token as Redis keeps it (JSON, readable with `GET`).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedToken {
    value: String,
    fetched_ms: i64,
    expires_ms: i64,
    renew_ms: i64,
    secret_tag: String,
}

impl From<&AccessToken> for SharedToken {
    fn from(t: &AccessToken) -> Self {
        SharedToken {
            value: t.value.clone(),
            fetched_ms: t.fetched_at.0,
            expires_ms: t.expires_at.0,
            renew_ms: t.renew_at.0,
            secret_tag: t.secret_tag.clone(),
        }
    }
}

impl From<SharedToken> for AccessToken {
    fn from(t: SharedToken) -> Self {
        AccessToken {
            value: t.value,
            fetched_at: Timestamp(t.fetched_ms),
            expires_at: Timestamp(t.expires_ms),
            renew_at: Timestamp(t.renew_ms),
            secret_tag: t.secret_tag,
        }
    }
}
