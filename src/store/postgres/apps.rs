//! Apps: listing, creating, changing and deleting them (with their sessions).

use std::sync::Arc;

use tokio_postgres::Row;
use tokio_postgres::error::SqlState as PgState;
use uuid::Uuid;

use super::{ChangeSeq, Postgres, SessionChange};
use super::error::{OnSqlState, col};
use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, NewApp};
use crate::store::metrics::Op;
use crate::store::sealed::{self, Column, DataKeys};
use crate::store::{Backend, StoreError, StoreResult};

const APP_COLUMNS: &str =
    "id, title, appid, secret, login_duration, session_duration, created_at, updated_at";

fn app_from_row(row: &Row, keys: Option<&DataKeys>) -> StoreResult<Arc<App>> {
    let duration = |name| -> StoreResult<u32> {
        u32::try_from(col::<i32, _>(row, name)?).map_err(|_| StoreError::Malformed {
            backend: Backend::Postgres,
            what: "an app's duration",
        })
    };
    Ok(Arc::new(App {
        id: col(row, "id")?,
        title: col(row, "title")?,
        appid: col(row, "appid")?,
        secret: sealed::open(keys, Column::AppSecret, col(row, "secret")?)?,
        login_duration: duration("login_duration")?,
        session_duration: duration("session_duration")?,
        created_at: Timestamp::from_system_time(col(row, "created_at")?),
        updated_at: Timestamp::from_system_time(col(row, "updated_at")?),
    }))
}

impl Postgres {
    /// Every app, ordered by id.
    pub async fn list_apps(&self) -> StoreResult<Vec<Arc<App>>> {
        self.run(Op::Apps, |c| async move {
            let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY id");
            let stmt = c.prepare_cached(&sql).await?;
            let rows = c.query(&stmt, &[]).await?;
            rows.iter()
                .map(|r| app_from_row(r, self.keys.as_deref()))
                .collect()
        })
        .await
    }

    /// Inserts an app; [`StoreError::Conflict`] when its appid is taken.
    pub async fn create_app(&self, new: &NewApp, now: Timestamp) -> StoreResult<Arc<App>> {
        let secret = self.seal(Column::AppSecret, &new.secret)?;
        self.run(Op::AppWrite, |c| async move {
            let sql = format!(
                "INSERT INTO apps (title, appid, secret, login_duration, session_duration, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 RETURNING {APP_COLUMNS}"
            );
            let now = now.to_system_time();
            let row = c
                .query_one(
                    &sql,
                    &[
                        &new.title,
                        &new.appid,
                        &secret,
                        &(new.login_duration as i32),
                        &(new.session_duration as i32),
                        &now,
                    ],
                )
                .await
                .on(&PgState::UNIQUE_VIOLATION, StoreError::Conflict)?;
            app_from_row(&row, self.keys.as_deref())
        })
        .await
    }

    /// Changes an app; [`StoreError::NotFound`] or [`StoreError::Conflict`].
    pub async fn update_app(
        &self,
        id: AppId,
        patch: &AppPatch,
        now: Timestamp,
    ) -> StoreResult<Arc<App>> {
        let secret = match &patch.secret {
            Some(s) => Some(self.seal(Column::AppSecret, s)?),
            None => None,
        };
        self.run(Op::AppWrite, |c| async move {
            let sql = format!(
                "UPDATE apps SET title = COALESCE($2, title), appid = COALESCE($3, appid), \
                 secret = COALESCE($4, secret), \
                 login_duration = COALESCE($5, login_duration), \
                 session_duration = COALESCE($6, session_duration), updated_at = $7 \
                 WHERE id = $1 RETURNING {APP_COLUMNS}"
            );
            let row = c
                .query_opt(
                    &sql,
                    &[
                        &id,
                        &patch.title,
                        &patch.appid,
                        &secret,
                        &patch.login_duration.map(|d| d as i32),
                        &patch.session_duration.map(|d| d as i32),
                        &now.to_system_time(),
                    ],
                )
                .await
                .on(&PgState::UNIQUE_VIOLATION, StoreError::Conflict)?;
            row.as_ref()
                .map(|r| app_from_row(r, self.keys.as_deref()))
                .ok_or(StoreError::NotFound)?
        })
        .await
    }

    /// Deletes an app and its sessions, recording each session's removal;
    /// returns those sessions and their changes.
    pub async fn delete_app(&self, id: AppId) -> StoreResult<Vec<(Uuid, ChangeSeq)>> {
        self.run(Op::AppWrite, |mut c| async move {
            let tx = c.transaction().await?;
            let rows = tx
                .query(
                    "WITH d AS (DELETE FROM sessions WHERE app_id = $1 RETURNING uuid, app_id) \
                     INSERT INTO session_changes (uuid, app_id, change) \
                     SELECT uuid, app_id, $2 FROM d RETURNING uuid, seq",
                    &[&id, &SessionChange::AppRemoved.label()],
                )
                .await?;
            let deleted = tx.execute("DELETE FROM apps WHERE id = $1", &[&id]).await?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
        })
        .await
    }
}
