//! What the tests drive by hand that wafer does on its own schedule:
//! writing held-back slides and queued visits, reloading apps, purging.

use super::TieredStore;
use crate::clock::Timestamp;

impl TieredStore {
    /// Sessions whose held-back slide is being written to Redis now.
    pub fn slides_being_written(&self) -> usize {
        self.near.as_ref().map_or(0, |n| n.being_written())
    }

    /// Writes the near cache's held-back slides to Redis now.
    pub async fn write_slides(&self) {
        if let Some(near) = &self.near {
            near.write_slides().await;
        }
    }

    /// Sessions whose last visit is waiting to be written.
    pub fn pending_visits(&self) -> usize {
        self.record.pending_visits()
    }

    /// Writes pending last visits to PostgreSQL now.
    pub async fn flush_visits(&self) {
        self.record.flush_visits().await;
    }

    /// Reloads the app cache from PostgreSQL.
    pub async fn refresh_apps(&self) {
        self.apps.refresh().await;
    }

    /// Purges sessions expired at `now` from PostgreSQL.
    pub async fn purge(&self, now: Timestamp) {
        self.record.purge(now).await;
    }
}
