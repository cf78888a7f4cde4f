//! The port for the audit trail of admin actions.

use std::future::Future;

use super::StoreResult;
use crate::domain::audit::{AuditEntry, AuditPage};

/// The audit trail of admin actions.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an admin action to the audit trail.
    fn record_audit(&self, entry: &AuditEntry) -> impl Future<Output = StoreResult<()>> + Send;

    /// Up to `limit` entries of the audit trail older than `before` (all
    /// when `None`), newest first.
    fn audit_trail(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<AuditPage>> + Send;
}
