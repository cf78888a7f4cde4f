//! The tiered store's audit trail, in PostgreSQL.

use super::TieredStore;
use crate::domain::audit::{AuditEntry, AuditPage};
use crate::store::{AuditStore, StoreResult};

impl AuditStore for TieredStore {
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.record.pg.record_audit(entry).await
    }

    async fn audit_trail(&self, before: Option<i64>, limit: usize) -> StoreResult<AuditPage> {
        self.record.pg.audit_trail(before, limit).await
    }
}
