//! Work on many rows at once, outside the request path: importing the
//! original wafer's sessions, sealing under a new data key, purging expired
//! sessions, and estimating how many there are.

use tokio_postgres::error::SqlState as PgState;
use uuid::Uuid;

use super::Postgres;
use super::error::{OnSqlState, col};
use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::import::ImportedSession;
use crate::store::metrics::Op;
use crate::store::sealed::Column;
use crate::store::{StoreError, StoreResult};

/// How long an expired row is kept before the purge removes it. Covers the
/// write-behind lag, so a session slid in the last second is never purged.
const PURGE_GRACE_MS: i64 = 60_000;

impl Postgres {
    /// Records a session of the original wafer as it was (`wafer sessions
    /// import`), unless its uuid or its user already has one: `false` then,
    /// and nothing changes. Redis learns of it on its first auth (a miss
    /// reads through).
    pub async fn import_session(&self, app_id: AppId, s: &ImportedSession) -> StoreResult<bool> {
        let session_key = self.seal(Column::SessionKey, &s.session_key)?;
        // Counted as a login: it is one, made elsewhere.
        self.run(Op::Login, |c| async move {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO sessions (uuid, app_id, open_id, union_id, session_key, \
                     skey_hash, user_info, create_time, last_visit_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .await?;
            let inserted = c
                .execute(
                    &stmt,
                    &[
                        &s.uuid,
                        &app_id,
                        &s.open_id,
                        &s.union_id,
                        &session_key,
                        &&s.skey_hash.0[..],
                        &s.user_info,
                        &s.create_time.to_system_time(),
                        &s.last_visit.to_system_time(),
                    ],
                )
                .await
                .on(&PgState::FOREIGN_KEY_VIOLATION, StoreError::NotFound)?;
            Ok(inserted == 1)
        })
        .await
    }

    /// Seals every app secret and session key that is not sealed under the
    /// current data key (plain ones included), online: each row is updated
    /// only if it still holds the value read, so a concurrent login or app
    /// change wins. Returns how many apps and sessions it sealed.
    pub async fn rekey(&self) -> StoreResult<(u64, u64)> {
        let Some(keys) = self.keys.clone() else {
            return Ok((0, 0));
        };
        let apps: Vec<(AppId, String)> = self
            .run(Op::Apps, |c| async move {
                let rows = c
                    .query("SELECT id, secret FROM apps ORDER BY id", &[])
                    .await?;
                rows.iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect::<StoreResult<_>>()
            })
            .await?;
        let mut sealed_apps = 0;
        for (id, stored) in apps.iter().filter(|(_, v)| !keys.is_current(v)) {
            let new = keys.seal(Column::AppSecret, &keys.open(Column::AppSecret, stored)?)?;
            sealed_apps += self
                .run(Op::AppWrite, |c| async move {
                    Ok(c.execute(
                        "UPDATE apps SET secret = $3 WHERE id = $1 AND secret = $2",
                        &[id, stored, &new],
                    )
                    .await?)
                })
                .await?;
        }
        let mut sealed_sessions = 0;
        let mut after = Uuid::nil();
        loop {
            let page: Vec<(Uuid, String)> = self
                .run(Op::Load, |c| async move {
                    let rows = c
                        .query(
                            "SELECT uuid, session_key FROM sessions WHERE uuid > $1 \
                             ORDER BY uuid LIMIT 500",
                            &[&after],
                        )
                        .await?;
                    rows.iter()
                        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                        .collect::<StoreResult<_>>()
                })
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (uuid, stored) in page.iter().filter(|(_, v)| !keys.is_current(v)) {
                let new = keys.seal(Column::SessionKey, &keys.open(Column::SessionKey, stored)?)?;
                sealed_sessions += self
                    .run(Op::Login, |c| async move {
                        Ok(c.execute(
                            "UPDATE sessions SET session_key = $3 \
                             WHERE uuid = $1 AND session_key = $2",
                            &[uuid, stored, &new],
                        )
                        .await?)
                    })
                    .await?;
            }
        }
        Ok((sealed_apps, sealed_sessions))
    }

    /// Deletes up to `batch` sessions expired (by more than a grace period)
    /// at `now`; returns how many it deleted.
    pub async fn purge_expired(&self, now: Timestamp, batch: i64) -> StoreResult<u64> {
        let cutoff = now.plus_millis(-PURGE_GRACE_MS).to_system_time();
        // A login day is 24 hours, as wafer counts it: `days =>` would be a
        // calendar day of the server's time zone, 23 hours on a day that
        // springs forward, purging sessions wafer still accepts.
        self.run(Op::Purge, |c| async move {
            let n = c.execute(
                "DELETE FROM sessions WHERE uuid IN ( \
                   SELECT s.uuid FROM sessions s JOIN apps a ON a.id = s.app_id \
                   WHERE s.create_time < $1::timestamptz - make_interval(hours => a.login_duration * 24) \
                      OR s.last_visit_time < $1::timestamptz - make_interval(secs => a.session_duration) \
                   LIMIT $2 FOR UPDATE OF s SKIP LOCKED)",
                &[&cutoff, &batch],
            )
            .await?;
            Ok(n)
        })
        .await
    }

    /// Session rows, as PostgreSQL's statistics estimate them: cheap to
    /// read at any size (a `count(*)` would scan the table).
    pub async fn session_estimate(&self) -> StoreResult<u64> {
        self.run(Op::Count, |c| async move {
            let row = c
                .query_one(
                    "SELECT COALESCE(n_live_tup, 0) FROM pg_stat_user_tables \
                     WHERE relname = 'sessions' AND schemaname = current_schema()",
                    &[],
                )
                .await?;
            Ok(u64::try_from(col::<i64, _>(&row, 0)?).unwrap_or(0))
        })
        .await
    }
}
