//! The embedded store's audit trail: the newest admin actions, in memory.

use super::EmbeddedStore;
use crate::domain::audit::{AuditEntry, AuditPage};
use crate::store::{AuditStore, StoreResult};

/// Admin actions the embedded store keeps (it keeps nothing across restarts).
const AUDIT_KEPT: usize = 10_000;

impl AuditStore for EmbeddedStore {
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut trail = self
            .audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = trail.back().map_or(1, |e| e.id + 1);
        if trail.len() >= AUDIT_KEPT {
            trail.pop_front();
        }
        trail.push_back(AuditEntry {
            id,
            ..entry.clone()
        });
        Ok(())
    }

    async fn audit_trail(&self, before: Option<i64>, limit: usize) -> StoreResult<AuditPage> {
        let trail = self
            .audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entries: Vec<AuditEntry> = trail
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .take(limit + 1)
            .cloned()
            .collect();
        let (entries, next) = crate::store::split_page(entries, limit, |e| e.id);
        Ok(AuditPage { entries, next })
    }
}
