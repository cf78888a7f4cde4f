//! Sessions: the login upsert, the reads and changes of one session, the
//! admin listing, and the write-behind of last visits.

use tokio_postgres::Row;
use tokio_postgres::error::SqlState as PgState;
use uuid::Uuid;

use super::{ChangeSeq, Postgres, SessionChange};
use super::error::{OnSqlState, col};
use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::domain::session::{NewSession, SessionPage, SessionQuery, SessionSummary};
use crate::domain::skey::SkeyHash;
use crate::store::metrics::Op;
use crate::store::record::SessionRecord;
use crate::store::sealed::Column;
use crate::store::{Backend, StoreError, StoreResult};

const SESSION_COLUMNS: &str = "uuid, app_id, open_id, union_id, skey_hash, user_info, \
     phone_number, create_time, last_visit_time, generation";

fn record_from_row(row: &Row) -> StoreResult<SessionRecord> {
    let hash: &[u8] = col(row, "skey_hash")?;
    let skey_hash = SkeyHash(hash.try_into().map_err(|_| StoreError::Malformed {
        backend: Backend::Postgres,
        what: "skey_hash",
    })?);
    Ok(SessionRecord {
        uuid: col(row, "uuid")?,
        app_id: col(row, "app_id")?,
        open_id: col(row, "open_id")?,
        union_id: col(row, "union_id")?,
        skey_hash,
        user_info: col(row, "user_info")?,
        phone_number: col(row, "phone_number")?,
        create_time: Timestamp::from_system_time(col(row, "create_time")?),
        last_visit: Timestamp::from_system_time(col(row, "last_visit_time")?),
        generation: col(row, "generation")?,
        change: None,
    })
}

/// The row a change statement answers: the record and its change.
fn changed_record(row: &Row) -> StoreResult<SessionRecord> {
    let mut record = record_from_row(row)?;
    record.change = Some(col(row, "change_seq")?);
    Ok(record)
}

impl Postgres {
    /// Records a login: one row per (app, open_id), keeping the uuid,
    /// union_id and user_info of an existing row unless the login brings new
    /// ones. Returns the row as committed.
    pub async fn upsert_session(&self, new: &NewSession) -> StoreResult<SessionRecord> {
        let session_key = self.seal(Column::SessionKey, &new.session_key)?;
        self.run(Op::Login, |c| async move {
            // The change is recorded by the same statement: it commits with
            // the login or not at all. A first login (generation 1) has no
            // older copy in Redis to replace: nothing to tell, so it is
            // recorded as told (no mark to write, no entry in the untold
            // index).
            let sql = format!(
                "WITH s AS (INSERT INTO sessions AS s (uuid, app_id, open_id, union_id, \
                 session_key, skey_hash, user_info, create_time, last_visit_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (app_id, open_id) DO UPDATE SET \
                 union_id = COALESCE(EXCLUDED.union_id, s.union_id), \
                 session_key = EXCLUDED.session_key, skey_hash = EXCLUDED.skey_hash, \
                 user_info = COALESCE(EXCLUDED.user_info, s.user_info), \
                 create_time = EXCLUDED.create_time, last_visit_time = EXCLUDED.create_time, \
                 generation = s.generation + 1 \
                 RETURNING {SESSION_COLUMNS}), \
                 c AS (INSERT INTO session_changes (uuid, app_id, change, redis_synced) \
                 SELECT uuid, app_id, '{}', generation = 1 FROM s RETURNING seq) \
                 SELECT s.*, c.seq AS change_seq FROM s, c",
                SessionChange::Login.label()
            );
            let stmt = c.prepare_cached(&sql).await?;
            let row = c
                .query_one(
                    &stmt,
                    &[
                        &Uuid::new_v4(),
                        &new.app_id,
                        &new.open_id,
                        &new.union_id,
                        &session_key,
                        &&new.skey_hash.0[..],
                        &new.user_info,
                        &new.now.to_system_time(),
                    ],
                )
                .await
                // The app was deleted between the lookup and the insert.
                .on(&PgState::FOREIGN_KEY_VIOLATION, StoreError::NotFound)?;
            changed_record(&row)
        })
        .await
    }

    /// The session `uuid`, if recorded.
    pub async fn session(&self, uuid: Uuid) -> StoreResult<Option<SessionRecord>> {
        self.run(Op::Load, |c| async move {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE uuid = $1");
            let stmt = c.prepare_cached(&sql).await?;
            let row = c.query_opt(&stmt, &[&uuid]).await?;
            row.as_ref().map(record_from_row).transpose()
        })
        .await
    }

    /// The `session_key` of session `uuid`, if it still has `skey_hash`.
    pub async fn session_key(
        &self,
        uuid: Uuid,
        skey_hash: &SkeyHash,
    ) -> StoreResult<Option<String>> {
        self.run(Op::Load, |c| async move {
            let row = c
                .query_opt(
                    "SELECT session_key FROM sessions WHERE uuid = $1 AND skey_hash = $2",
                    &[&uuid, &&skey_hash.0[..]],
                )
                .await?;
            row.as_ref()
                .map(|r| self.open(Column::SessionKey, col(r, 0)?))
                .transpose()
        })
        .await
    }

    /// Stores the phone number of session `uuid` if it still has
    /// `skey_hash`, bumping its generation so that the Redis copy written
    /// next replaces any older one. The row as committed, if any.
    pub async fn set_phone(
        &self,
        uuid: Uuid,
        skey_hash: &SkeyHash,
        phone_number: &str,
    ) -> StoreResult<Option<SessionRecord>> {
        self.run(Op::Phone, |c| async move {
            let sql = format!(
                "WITH s AS (UPDATE sessions SET phone_number = $3, generation = generation + 1 \
                 WHERE uuid = $1 AND skey_hash = $2 RETURNING {SESSION_COLUMNS}), \
                 c AS (INSERT INTO session_changes (uuid, app_id, change) \
                 SELECT uuid, app_id, '{}' FROM s RETURNING seq) \
                 SELECT s.*, c.seq AS change_seq FROM s, c",
                SessionChange::Phone.label()
            );
            let stmt = c.prepare_cached(&sql).await?;
            let row = c
                .query_opt(&stmt, &[&uuid, &&skey_hash.0[..], &phone_number])
                .await?;
            row.as_ref().map(changed_record).transpose()
        })
        .await
    }

    /// The `session_key` stored for user `open_id` in `app`.
    pub async fn user_session_key(&self, app: AppId, open_id: &str) -> StoreResult<Option<String>> {
        self.run(Op::Load, |c| async move {
            let row = c
                .query_opt(
                    "SELECT session_key FROM sessions WHERE app_id = $1 AND open_id = $2",
                    &[&app, &open_id],
                )
                .await?;
            row.as_ref()
                .map(|r| self.open(Column::SessionKey, col(r, 0)?))
                .transpose()
        })
        .await
    }

    /// Deletes session `uuid`; with `skey_hash`, only if it still has that
    /// skey (a logout must not remove a newer login's session). The
    /// deletion's change (a logout with the skey, else a revoke), if a row
    /// was deleted.
    pub async fn delete_session(
        &self,
        uuid: Uuid,
        skey_hash: Option<&SkeyHash>,
    ) -> StoreResult<Option<ChangeSeq>> {
        self.run(Op::Delete, |c| async move {
            let row = match skey_hash {
                Some(h) => {
                    c.query_opt(
                        "WITH d AS (DELETE FROM sessions WHERE uuid = $1 AND skey_hash = $2 \
                         RETURNING uuid, app_id) \
                         INSERT INTO session_changes (uuid, app_id, change) \
                         SELECT uuid, app_id, $3 FROM d RETURNING seq",
                        &[&uuid, &&h.0[..], &SessionChange::Logout.label()],
                    )
                    .await
                }
                None => {
                    c.query_opt(
                        "WITH d AS (DELETE FROM sessions WHERE uuid = $1 RETURNING uuid, app_id) \
                         INSERT INTO session_changes (uuid, app_id, change) \
                         SELECT uuid, app_id, $2 FROM d RETURNING seq",
                        &[&uuid, &SessionChange::Revoke.label()],
                    )
                    .await
                }
            }?;
            row.as_ref().map(|r| col(r, 0)).transpose()
        })
        .await
    }

    /// One page of an app's sessions, ordered by uuid.
    pub async fn list_sessions(
        &self,
        app: AppId,
        query: &SessionQuery,
    ) -> StoreResult<SessionPage> {
        // One more than the page, to learn whether there is a next; the
        // largest limits must not overflow the addition.
        let fetch = i64::try_from(query.limit)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        self.run(Op::ListSessions, |c| async move {
            let rows = c
                .query(
                    "SELECT uuid, open_id, union_id, create_time, last_visit_time, phone_number \
                     FROM sessions WHERE app_id = $1 \
                     AND ($2::text IS NULL OR open_id = $2) \
                     AND ($3::uuid IS NULL OR uuid > $3) \
                     ORDER BY uuid LIMIT $4",
                    &[&app, &query.open_id, &query.after, &fetch],
                )
                .await?;
            let sessions: Vec<SessionSummary> = rows
                .iter()
                .map(|r| {
                    Ok(SessionSummary {
                        uuid: col(r, 0)?,
                        open_id: col(r, 1)?,
                        union_id: col(r, 2)?,
                        create_time: Timestamp::from_system_time(col(r, 3)?),
                        last_visit_time: Timestamp::from_system_time(col(r, 4)?),
                        phone_number: col(r, 5)?,
                    })
                })
                .collect::<StoreResult<_>>()?;
            let (sessions, next) = crate::store::split_page(sessions, query.limit, |s| s.uuid);
            Ok(SessionPage { sessions, next })
        })
        .await
    }

    /// Writes a batch of slid last visits; a visit never moves backwards.
    pub async fn record_visits(&self, uuids: &[Uuid], visits: &[Timestamp]) -> StoreResult<u64> {
        let times: Vec<std::time::SystemTime> = visits.iter().map(|t| t.to_system_time()).collect();
        self.run(Op::RecordVisits, |c| async move {
            let stmt = c
                .prepare_cached(
                    "UPDATE sessions AS s SET last_visit_time = v.t \
                     FROM unnest($1::uuid[], $2::timestamptz[]) AS v(uuid, t) \
                     WHERE s.uuid = v.uuid AND s.last_visit_time < v.t",
                )
                .await?;
            Ok(c.execute(&stmt, &[&uuids, &times]).await?)
        })
        .await
    }
}
