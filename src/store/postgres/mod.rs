//! PostgreSQL: the durable record of apps and sessions. Every call is
//! bounded by a timeout, so a hung database turns into
//! [`StoreError::Unavailable`] instead of piling requests up.

pub mod migrate;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState as PgState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, NewApp};
use crate::domain::audit::{AuditAction, AuditEntry, AuditPage};
use crate::domain::session::{NewSession, SessionPage, SessionQuery, SessionSummary};
use crate::domain::skey::SkeyHash;
use crate::import::ImportedSession;
use crate::store::metrics::Op;
use crate::store::metrics::StoreMetrics;
use crate::store::record::SessionRecord;
use crate::store::sealed::{self, Column, DataKeys};
use crate::store::{Backend, Cause, ConnectError, SqlState, StoreError, StoreResult};

/// How long an expired row is kept before the purge removes it. Covers the
/// write-behind lag, so a session slid in the last second is never purged.
const PURGE_GRACE_MS: i64 = 60_000;

/// A pool of connections to wafer's database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    timeout: Duration,
    metrics: StoreMetrics,
    /// Seals app secrets and session keys at rest, when configured.
    keys: Option<Arc<DataKeys>>,
    /// For the start-up check of TLS: the configuration, the first
    /// server, and whether TLS is required.
    tls: Option<PgTlsCheck>,
}

/// See [`Postgres::check_tls`].
#[derive(Clone)]
struct PgTlsCheck {
    config: Arc<rustls::ClientConfig>,
    host: String,
    port: u16,
    required: bool,
}

impl From<tokio_postgres::Error> for StoreError {
    /// By the SQLSTATE's class: an outage is 503-worthy, anything else is a
    /// statement or data the server refused. The server's message is not
    /// kept: it can quote row values, which may be secrets.
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code().and_then(|c| SqlState::parse(c.code())) {
            Some(code) if code.is_outage() => {
                StoreError::unavailable(Backend::Postgres, Cause::Server(code))
            }
            Some(code) => StoreError::Rejected {
                backend: Backend::Postgres,
                code,
            },
            None if e.is_closed() => StoreError::unavailable(Backend::Postgres, Cause::Closed),
            // An I/O error under it: the connection, not the statement.
            None if std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
                StoreError::unavailable(Backend::Postgres, Cause::NotConnected)
            }
            // Encoding, decoding, row counts: wafer and the server disagree
            // on the data, which retrying will not fix.
            None => StoreError::Malformed {
                backend: Backend::Postgres,
                what: "the exchange with the server",
            },
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{PoolError, TimeoutType};
        let cause = match e {
            PoolError::Backend(e) => return e.into(),
            PoolError::Timeout(TimeoutType::Wait) => Cause::PoolFull,
            PoolError::Timeout(_) => Cause::Timeout,
            _ => Cause::NotConnected,
        };
        StoreError::unavailable(Backend::Postgres, cause)
    }
}

/// Turns one SQLSTATE into a domain answer, as `ON CONFLICT` would: a
/// unique violation into [`StoreError::Conflict`], say.
trait OnSqlState<T> {
    fn on(self, state: &tokio_postgres::error::SqlState, then: StoreError) -> StoreResult<T>;
}

impl<T> OnSqlState<T> for Result<T, tokio_postgres::Error> {
    fn on(self, state: &tokio_postgres::error::SqlState, then: StoreError) -> StoreResult<T> {
        self.map_err(|e| {
            if e.code() == Some(state) {
                then
            } else {
                e.into()
            }
        })
    }
}

/// Column `idx` of `row`; a type or name mismatch (a schema wafer did not
/// migrate) is a malformed reply, not a panic.
fn col<'a, T, I>(row: &'a Row, idx: I) -> StoreResult<T>
where
    T: tokio_postgres::types::FromSql<'a>,
    I: tokio_postgres::row::RowIndex + std::fmt::Display,
{
    row.try_get(idx).map_err(|_| StoreError::Malformed {
        backend: Backend::Postgres,
        what: "a column of its reply",
    })
}

fn timed_out() -> StoreError {
    StoreError::unavailable(Backend::Postgres, Cause::Timeout)
}

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
    })
}

const APP_COLUMNS: &str =
    "id, title, appid, secret, login_duration, session_duration, created_at, updated_at";
const SESSION_COLUMNS: &str = "uuid, app_id, open_id, union_id, skey_hash, user_info, \
     phone_number, create_time, last_visit_time, generation";

impl Postgres {
    /// A pool for `url` (`postgres://…`), `size` connections at most, every
    /// call bounded by `timeout`. Connects lazily.
    pub fn connect(url: &str, size: usize, timeout: Duration) -> Result<Self, ConnectError> {
        Self::connect_tls(url, size, timeout, None)
    }

    /// [`Postgres::connect`] with the TLS the URL's `sslmode` asks for
    /// (`prefer`, `require`, `verify-ca`, `verify-full`; none without it),
    /// verified against the CA certificates of the PEM file `ca` or the
    /// system's.
    pub fn connect_tls(
        url: &str,
        size: usize,
        timeout: Duration,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, ConnectError> {
        use crate::store::tls::{PgSslMode, pg_client_config, split_sslmode};
        let (mode, url) = split_sslmode(url)?;
        let mut config =
            tokio_postgres::Config::from_str(&url).map_err(|_| ConnectError::InvalidUrl {
                setting: "WAFER_DATABASE_URL",
            })?;
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("wafer");
        }
        let recycling = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let (manager, tls) = if mode == PgSslMode::Disable {
            if ca.is_some() {
                return Err(ConnectError::Tls {
                    setting: "WAFER_DATABASE_TLS_CA",
                    why: "is set, but WAFER_DATABASE_URL has sslmode=disable".into(),
                });
            }
            (Manager::from_config(config, NoTls, recycling()), None)
        } else {
            let client = Arc::new(pg_client_config(mode, ca)?);
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => Some(h.clone()),
                _ => None,
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let check = host.map(|host| PgTlsCheck {
                config: client.clone(),
                host,
                port,
                required: mode != PgSslMode::Prefer,
            });
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*client).clone());
            (Manager::from_config(config, connector, recycling()), check)
        };
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|_| ConnectError::Pool {
                backend: Backend::Postgres,
            })?;
        Ok(Postgres {
            pool,
            timeout,
            metrics: StoreMetrics::default(),
            keys: None,
            tls,
        })
    }

    /// Seals app secrets and session keys with `keys` (none: plain text).
    pub fn with_data_keys(mut self, keys: Option<DataKeys>) -> Self {
        self.keys = keys.map(Arc::new);
        self
    }

    fn seal(&self, column: Column, plain: &str) -> StoreResult<String> {
        Ok(sealed::seal(self.keys.as_deref(), column, plain)?)
    }

    fn open(&self, column: Column, stored: &str) -> StoreResult<String> {
        Ok(sealed::open(self.keys.as_deref(), column, stored)?)
    }

    /// Records every operation in `metrics`.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    async fn client(&self) -> StoreResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// Runs `work` on a pooled connection within the timeout, recorded as
    /// operation `op`.
    async fn run<T, F, Fut>(&self, op: Op, work: F) -> StoreResult<T>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let work = async {
            let client = self.client().await?;
            work(client).await
        };
        let bounded = async {
            tokio::time::timeout(self.timeout, work)
                .await
                .map_err(|_| timed_out())?
        };
        self.metrics.observe(Backend::Postgres, op, bounded).await
    }

    /// With TLS: asks the first server for TLS and makes one handshake, so
    /// that a wrong CA or host name stops wafer at start with the reason
    /// (the pool would only say that PostgreSQL does not answer). A server
    /// that cannot be reached is not an error here.
    pub async fn check_tls(&self) -> Result<(), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(check) = &self.tls else {
            return Ok(());
        };
        let (host, port) = (check.host.as_str(), check.port);
        let probe = async {
            let mut tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
            // SSLRequest: length 8, code 80877103.
            tcp.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await.ok()?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer).await.ok()?;
            if answer[0] != b'S' {
                return Some(if check.required {
                    Err(format!(
                        "PostgreSQL at {host}:{port} does not offer TLS (sslmode requires it)"
                    ))
                } else {
                    Ok(())
                });
            }
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).ok()?;
            let connector = tokio_rustls::TlsConnector::from(check.config.clone());
            Some(
                connector
                    .connect(name, tcp)
                    .await
                    .map(drop)
                    .map_err(|e| format!("TLS with PostgreSQL at {host}:{port} failed: {e}")),
            )
        };
        match tokio::time::timeout(self.timeout, probe).await {
            Ok(Some(result)) => result,
            _ => Ok(()),
        }
    }

    /// Applies pending migrations (see [`migrate::migrate`]).
    pub async fn migrate(&self) -> StoreResult<Vec<&'static str>> {
        // Migrations may take longer than one query; they get their own bound.
        let work = async {
            let mut client = self.client().await?;
            Ok(migrate::migrate(&mut client).await?)
        };
        tokio::time::timeout(Duration::from_secs(60), work)
            .await
            .map_err(|_| timed_out())?
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> StoreResult<()> {
        self.run(Op::Ping, |c| async move {
            c.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

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

    /// Deletes an app and its sessions; returns the uuids of those sessions.
    pub async fn delete_app(&self, id: AppId) -> StoreResult<Vec<Uuid>> {
        self.run(Op::AppWrite, |mut c| async move {
            let tx = c.transaction().await?;
            let rows = tx
                .query(
                    "DELETE FROM sessions WHERE app_id = $1 RETURNING uuid",
                    &[&id],
                )
                .await?;
            let deleted = tx.execute("DELETE FROM apps WHERE id = $1", &[&id]).await?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            rows.iter().map(|r| col(r, 0)).collect()
        })
        .await
    }

    /// Records a login: one row per (app, open_id), keeping the uuid,
    /// union_id and user_info of an existing row unless the login brings new
    /// ones. Returns the row as committed.
    pub async fn upsert_session(&self, new: &NewSession) -> StoreResult<SessionRecord> {
        let session_key = self.seal(Column::SessionKey, &new.session_key)?;
        self.run(Op::Login, |c| async move {
            let sql = format!(
                "INSERT INTO sessions AS s (uuid, app_id, open_id, union_id, session_key, \
                 skey_hash, user_info, create_time, last_visit_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (app_id, open_id) DO UPDATE SET \
                 union_id = COALESCE(EXCLUDED.union_id, s.union_id), \
                 session_key = EXCLUDED.session_key, skey_hash = EXCLUDED.skey_hash, \
                 user_info = COALESCE(EXCLUDED.user_info, s.user_info), \
                 create_time = EXCLUDED.create_time, last_visit_time = EXCLUDED.create_time, \
                 generation = s.generation + 1 \
                 RETURNING {SESSION_COLUMNS}"
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
            record_from_row(&row)
        })
        .await
    }

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
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
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
                "UPDATE sessions SET phone_number = $3, generation = generation + 1 \
                 WHERE uuid = $1 AND skey_hash = $2 RETURNING {SESSION_COLUMNS}"
            );
            let stmt = c.prepare_cached(&sql).await?;
            let row = c
                .query_opt(&stmt, &[&uuid, &&skey_hash.0[..], &phone_number])
                .await?;
            row.as_ref().map(record_from_row).transpose()
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
    /// skey (a logout must not remove a newer login's session).
    pub async fn delete_session(
        &self,
        uuid: Uuid,
        skey_hash: Option<&SkeyHash>,
    ) -> StoreResult<bool> {
        self.run(Op::Delete, |c| async move {
            let n = match skey_hash {
                Some(h) => {
                    c.execute(
                        "DELETE FROM sessions WHERE uuid = $1 AND skey_hash = $2",
                        &[&uuid, &&h.0[..]],
                    )
                    .await
                }
                None => {
                    c.execute("DELETE FROM sessions WHERE uuid = $1", &[&uuid])
                        .await
                }
            }?;
            Ok(n > 0)
        })
        .await
    }

    /// One page of an app's sessions, ordered by uuid.
    pub async fn list_sessions(
        &self,
        app: AppId,
        query: &SessionQuery,
    ) -> StoreResult<SessionPage> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX - 1);
        self.run(Op::ListSessions, |c| async move {
            let rows = c
                .query(
                    "SELECT uuid, open_id, union_id, create_time, last_visit_time, phone_number \
                     FROM sessions WHERE app_id = $1 \
                     AND ($2::text IS NULL OR open_id = $2) \
                     AND ($3::uuid IS NULL OR uuid > $3) \
                     ORDER BY uuid LIMIT $4",
                    &[&app, &query.open_id, &query.after, &(limit + 1)],
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

    /// Deletes up to `batch` sessions expired (by more than a grace period)
    /// at `now`; returns how many it deleted.
    pub async fn purge_expired(&self, now: Timestamp, batch: i64) -> StoreResult<u64> {
        let cutoff = now.plus_millis(-PURGE_GRACE_MS).to_system_time();
        self.run(Op::Purge, |c| async move {
            let n = c.execute(
                "DELETE FROM sessions WHERE uuid IN ( \
                   SELECT s.uuid FROM sessions s JOIN apps a ON a.id = s.app_id \
                   WHERE s.create_time < $1::timestamptz - make_interval(days => a.login_duration) \
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
