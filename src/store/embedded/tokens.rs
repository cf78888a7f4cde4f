//! The embedded store's access tokens and the leases that let one task
//! fetch a token at a time.

use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry as MapEntry;

use super::EmbeddedStore;
use crate::domain::app::AppId;
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::{StoreResult, TokenStore};

impl TokenStore for EmbeddedStore {
    async fn access_token(&self, app: AppId) -> StoreResult<Option<AccessToken>> {
        Ok(self.tokens.get(&app).map(|t| t.clone()))
    }

    async fn put_access_token(&self, app: AppId, token: &AccessToken) -> StoreResult<()> {
        self.tokens.insert(app, token.clone());
        Ok(())
    }

    async fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        Ok(match self.leases.entry((app, lease)) {
            MapEntry::Occupied(mut held) if held.get().1 <= now => {
                held.insert((holder.to_owned(), now + ttl));
                true
            }
            MapEntry::Occupied(_) => false,
            MapEntry::Vacant(slot) => {
                slot.insert((holder.to_owned(), now + ttl));
                true
            }
        })
    }

    async fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> StoreResult<()> {
        self.leases
            .remove_if(&(app, lease), |_, (h, _)| h == holder);
        Ok(())
    }

    async fn drop_access_token(&self, app: AppId) -> StoreResult<()> {
        self.tokens.remove(&app);
        Ok(())
    }
}
