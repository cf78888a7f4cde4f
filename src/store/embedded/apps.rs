//! The embedded store's apps: a table read without locks, replaced whole
//! by one writer at a time.

use std::sync::Arc;

use super::EmbeddedStore;
use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::store::app_table::AppTable;
use crate::store::{AppStore, StoreError, StoreResult};

impl EmbeddedStore {
    /// Runs `f` on the current table and the next free id, under the writer
    /// lock, and swaps in the table it returns.
    fn write_apps<T>(
        &self,
        f: impl FnOnce(&AppTable, &mut AppId) -> StoreResult<(AppTable, T)>,
    ) -> StoreResult<T> {
        let mut next_id = self
            .app_writer
            .lock()
            // Poisoned only if a writer panicked: the table it left is whole
            // (writers swap a new table in), so go on with it.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.apps.load();
        let (table, out) = f(&current, &mut next_id)?;
        self.apps.store(table);
        Ok(out)
    }
}

impl AppStore for EmbeddedStore {
    async fn app(&self, app: &AppRef<'_>) -> StoreResult<Option<Arc<App>>> {
        Ok(self.apps.load().get(app).cloned())
    }

    async fn list_apps(&self) -> StoreResult<Vec<Arc<App>>> {
        Ok(self.apps.load().sorted())
    }

    async fn create_app(&self, new: NewApp, now: Timestamp) -> StoreResult<Arc<App>> {
        self.write_apps(|table, next_id| {
            if table.appid_taken(&new.appid, None) {
                return Err(StoreError::Conflict);
            }
            let app = Arc::new(App {
                id: *next_id,
                title: new.title,
                appid: new.appid,
                secret: new.secret,
                login_duration: new.login_duration,
                session_duration: new.session_duration,
                created_at: now,
                updated_at: now,
            });
            *next_id += 1;
            Ok((table.with(app.clone()), app))
        })
    }

    async fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> StoreResult<Arc<App>> {
        self.write_apps(|table, _| {
            let current = table.get(&AppRef::Id(id)).ok_or(StoreError::NotFound)?;
            if let Some(appid) = &patch.appid {
                if table.appid_taken(appid, Some(id)) {
                    return Err(StoreError::Conflict);
                }
            }
            let app = Arc::new(patch.apply(current, now));
            Ok((table.with(app.clone()), app))
        })
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        self.write_apps(|table, _| {
            table.get(&AppRef::Id(id)).ok_or(StoreError::NotFound)?;
            Ok((table.without(id), ()))
        })?;
        self.index.retain(|(app, _), _| *app != id);
        self.sessions.retain(|_, s| s.app_id != id);
        Ok(())
    }
}
