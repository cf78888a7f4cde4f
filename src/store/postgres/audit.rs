//! The audit trail of admin actions: appending to it and reading it back.

use super::Postgres;
use super::error::col;
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditEntry, AuditPage};
use crate::store::metrics::Op;
use crate::store::{Backend, StoreError, StoreResult};

impl Postgres {
    /// Appends `entry` (its id is assigned here).
    pub async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.run(Op::Audit, |c| async move {
            let caller = entry.caller.map(|ip| ip.to_string());
            c.execute(
                "INSERT INTO audit_log (at, action, target, caller) VALUES ($1, $2, $3, $4)",
                &[
                    &entry.at.to_system_time(),
                    &entry.action.label(),
                    &entry.target,
                    &caller,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// A page of the audit trail, newest first.
    pub async fn audit_trail(&self, before: Option<i64>, limit: usize) -> StoreResult<AuditPage> {
        // One more than the page, to learn whether there is a next; the
        // largest limits must not overflow the addition.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        self.run(Op::Audit, |c| async move {
            let rows = c
                .query(
                    "SELECT id, at, action, target, caller FROM audit_log \
                     WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                    &[&before, &fetch],
                )
                .await?;
            let entries = rows
                .iter()
                .map(|r| {
                    let action: String = col(r, 2)?;
                    let caller: Option<String> = col(r, 4)?;
                    Ok(AuditEntry {
                        id: col(r, 0)?,
                        at: Timestamp::from_system_time(col(r, 1)?),
                        action: AuditAction::ALL
                            .iter()
                            .copied()
                            .find(|a| a.label() == action)
                            .ok_or(StoreError::Malformed {
                                backend: Backend::Postgres,
                                what: "an audit action",
                            })?,
                        target: col(r, 3)?,
                        caller: caller.and_then(|c| c.parse().ok()),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let (entries, next) = crate::store::split_page(entries, limit, |e| e.id);
            Ok(AuditPage { entries, next })
        })
        .await
    }
}
