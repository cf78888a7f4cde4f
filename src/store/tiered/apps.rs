//! The tiered store's apps: PostgreSQL holds them, every instance keeps
//! them all in memory (reloaded periodically, and at once after a change
//! it made).

use std::sync::Arc;

use super::TieredStore;
use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::store::app_table::{AppTable, SharedAppTable};
use crate::store::postgres::Postgres;
use crate::store::{AppStore, StoreResult};

/// Every app, in memory, over their rows in PostgreSQL.
pub struct AppsCache {
    pg: Postgres,
    table: Arc<SharedAppTable>,
}

impl AppsCache {
    /// Loads the apps (PostgreSQL must answer).
    pub async fn load(pg: Postgres) -> StoreResult<Self> {
        let table = Arc::new(SharedAppTable::default());
        table.store(AppTable::new(pg.list_apps().await?));
        Ok(AppsCache { pg, table })
    }

    /// The table, shared with the near cache (the limits it slides under).
    pub fn table(&self) -> Arc<SharedAppTable> {
        self.table.clone()
    }

    /// How many apps there are.
    pub fn len(&self) -> usize {
        self.table.load().len()
    }

    /// The app `app` refers to, from memory.
    pub fn get(&self, app: &AppRef<'_>) -> Option<Arc<App>> {
        self.table.load().get(app).cloned()
    }

    /// Reloads the table from PostgreSQL (keeping it when that fails).
    pub async fn refresh(&self) {
        match self.pg.list_apps().await {
            Ok(apps) => self.table.store(AppTable::new(apps)),
            Err(e) => tracing::debug!(error = %e, "app refresh failed; keeping the cached apps"),
        }
    }
}

impl AppStore for TieredStore {
    async fn app(&self, app: &AppRef<'_>) -> StoreResult<Option<Arc<App>>> {
        Ok(self.apps.get(app))
    }

    async fn list_apps(&self) -> StoreResult<Vec<Arc<App>>> {
        let apps = self.apps.pg.list_apps().await?;
        self.apps.table.store(AppTable::new(apps.iter().cloned()));
        Ok(apps)
    }

    async fn create_app(&self, app: NewApp, now: Timestamp) -> StoreResult<Arc<App>> {
        let app = self.apps.pg.create_app(&app, now).await?;
        let table = &self.apps.table;
        table.store(table.load().with(app.clone()));
        Ok(app)
    }

    async fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> StoreResult<Arc<App>> {
        let app = self.apps.pg.update_app(id, &patch, now).await?;
        let table = &self.apps.table;
        table.store(table.load().with(app.clone()));
        Ok(app)
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        let uuids = self.apps.pg.delete_app(id).await?;
        let table = &self.apps.table;
        table.store(table.load().without(id));
        // App ids are never reused, so the cached sessions can no longer
        // authenticate; evicting them only frees memory early.
        self.tombstone(uuids.into_iter().map(|(uuid, change)| (uuid, Some(change))))
            .await;
        Ok(())
    }
}
