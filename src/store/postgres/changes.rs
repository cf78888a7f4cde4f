//! The session changes' outbox (`sql/0006_session_changes.sql`): each
//! change statement records its change in the same statement; these read
//! what Redis has not been told yet, mark what it has, and drop old synced
//! changes.

use std::time::Duration;

use uuid::Uuid;

use super::Postgres;
use super::error::col;
use crate::store::StoreResult;
use crate::store::metrics::Op;

/// A change's place in the outbox (`session_changes.seq`).
pub type ChangeSeq = i64;

/// What changed a session (the `change` column; its CHECK lists the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// A login (a new session, or a new skey for the user's).
    Login,
    /// A phone number stored.
    Phone,
    /// Its owner logged out.
    Logout,
    /// An admin revoked it.
    Revoke,
    /// Its app was removed.
    AppRemoved,
}

impl SessionChange {
    /// The change as the column holds it.
    pub fn label(self) -> &'static str {
        match self {
            SessionChange::Login => "login",
            SessionChange::Phone => "phone",
            SessionChange::Logout => "logout",
            SessionChange::Revoke => "revoke",
            SessionChange::AppRemoved => "app_removed",
        }
    }
}

/// A change Redis has not been told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsynced {
    /// Its place in the outbox.
    pub seq: ChangeSeq,
    /// The session it changed.
    pub uuid: Uuid,
}

impl Postgres {
    /// Up to `limit` changes that Redis has not been told of, oldest
    /// first: removals (logout, revoke, app removed) at least `removal_age`
    /// old, other changes at least `other_age` (by PostgreSQL's clock, which
    /// stamped them).
    pub async fn unsynced_changes(
        &self,
        removal_age: Duration,
        other_age: Duration,
        limit: i64,
    ) -> StoreResult<Vec<Unsynced>> {
        let (removal_age, other_age) = (removal_age.as_secs_f64(), other_age.as_secs_f64());
        self.run(Op::Outbox, |c| async move {
            let rows = c
                .query(
                    "SELECT seq, uuid FROM session_changes \
                     WHERE NOT redis_synced AND at < now() - make_interval(secs => \
                       CASE WHEN change IN ('login', 'phone') THEN $2::float8 ELSE $1::float8 END) \
                     ORDER BY seq LIMIT $3",
                    &[&removal_age, &other_age, &limit],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Unsynced {
                        seq: col(r, 0)?,
                        uuid: col(r, 1)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Marks changes `seqs` as told to Redis; how many were not yet.
    pub async fn mark_synced(&self, seqs: &[ChangeSeq]) -> StoreResult<u64> {
        if seqs.is_empty() {
            return Ok(0);
        }
        self.run(Op::Outbox, |c| async move {
            let n = c
                .execute(
                    "UPDATE session_changes SET redis_synced = true \
                     WHERE seq = ANY($1) AND NOT redis_synced",
                    &[&seqs],
                )
                .await?;
            Ok(n)
        })
        .await
    }

    /// Deletes up to `batch` synced changes older than `age`.
    pub async fn purge_synced_changes(&self, age: Duration, batch: i64) -> StoreResult<u64> {
        let age = age.as_secs_f64();
        self.run(Op::Purge, |c| async move {
            let n = c
                .execute(
                    "DELETE FROM session_changes WHERE seq IN ( \
                       SELECT seq FROM session_changes \
                       WHERE redis_synced AND at < now() - make_interval(secs => $1) \
                       ORDER BY seq LIMIT $2)",
                    &[&age, &batch],
                )
                .await?;
            Ok(n)
        })
        .await
    }
}
