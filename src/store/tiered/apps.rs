//! The tiered store's apps: PostgreSQL holds them, every instance keeps
//! them all in memory (reloaded periodically, and at once after a change
//! it made).

use std::sync::Arc;

use super::TieredStore;
use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::store::app_table::AppTable;
use crate::store::{AppStore, StoreResult};

impl AppStore for TieredStore {
    async fn app(&self, app: &AppRef<'_>) -> StoreResult<Option<Arc<App>>> {
        Ok(self.apps.load().get(app).cloned())
    }

    async fn list_apps(&self) -> StoreResult<Vec<Arc<App>>> {
        let apps = self.pg.list_apps().await?;
        self.apps.store(AppTable::new(apps.iter().cloned()));
        Ok(apps)
    }

    async fn create_app(&self, app: NewApp, now: Timestamp) -> StoreResult<Arc<App>> {
        let app = self.pg.create_app(&app, now).await?;
        self.apps.store(self.apps.load().with(app.clone()));
        Ok(app)
    }

    async fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> StoreResult<Arc<App>> {
        let app = self.pg.update_app(id, &patch, now).await?;
        self.apps.store(self.apps.load().with(app.clone()));
        Ok(app)
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        let uuids = self.pg.delete_app(id).await?;
        self.apps.store(self.apps.load().without(id));
        // App ids are never reused, so the cached sessions can no longer
        // authenticate; evicting them only frees memory early.
        for uuid in uuids {
            self.tombstone(uuid).await;
        }
        Ok(())
    }
}
