//! An immutable snapshot of every app, swapped whole on change, so that the
//! per-request app lookup takes no lock.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::domain::app::{App, AppId, AppRef};

/// Apps indexed by id and by appid.
#[derive(Default, Debug)]
pub struct AppTable {
    by_id: HashMap<AppId, Arc<App>>,
    by_appid: HashMap<String, Arc<App>>,
}

impl AppTable {
    /// A table of these apps.
    pub fn new(apps: impl IntoIterator<Item = Arc<App>>) -> Self {
        let mut t = AppTable::default();
        for app in apps {
            t.by_appid.insert(app.appid.clone(), app.clone());
            t.by_id.insert(app.id, app);
        }
        t
    }

    /// The app a request names.
    pub fn get(&self, app: &AppRef<'_>) -> Option<&Arc<App>> {
        match app {
            AppRef::Id(id) => self.by_id.get(id),
            AppRef::Appid(appid) => self.by_appid.get(appid.as_ref()),
        }
    }

    /// Whether an app other than `except` uses this appid.
    pub fn appid_taken(&self, appid: &str, except: Option<AppId>) -> bool {
        self.by_appid
            .get(appid)
            .is_some_and(|a| Some(a.id) != except)
    }

    /// Every app, ordered by id.
    pub fn sorted(&self) -> Vec<Arc<App>> {
        let mut v: Vec<_> = self.by_id.values().cloned().collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Number of apps.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// A copy with `app` inserted or replaced.
    pub fn with(&self, app: Arc<App>) -> Self {
        let mut apps: Vec<_> = self
            .by_id
            .values()
            .filter(|a| a.id != app.id)
            .cloned()
            .collect();
        apps.push(app);
        AppTable::new(apps)
    }

    /// A copy without app `id`.
    pub fn without(&self, id: AppId) -> Self {
        AppTable::new(self.by_id.values().filter(|a| a.id != id).cloned())
    }
}

/// A swappable [`AppTable`]: readers load the current snapshot without
/// locking, writers publish a new one.
#[derive(Debug, Default)]
pub struct SharedAppTable(ArcSwap<AppTable>);

impl SharedAppTable {
    /// The current snapshot.
    pub fn load(&self) -> arc_swap::Guard<Arc<AppTable>> {
        self.0.load()
    }

    /// Publishes a new snapshot.
    pub fn store(&self, table: AppTable) {
        self.0.store(Arc::new(table));
    }
}
