//! `wafer migrate` and `wafer apps …`: work on the database directly,
//! without a running server (first setup, scripts, recovery).

use std::io::Write;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use std::sync::Arc;

use crate::config::{DatabaseSettings, RedisSettings, Secret};
use crate::domain::app::App;
use crate::domain::app::{
    AppRef, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp,
};
use crate::store::Store;
use crate::store::postgres::Postgres;
use crate::store::{ConnectError, StoreError};

/// `wafer apps` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Adds an app and prints its id.
    Add {
        /// Human name (1–30 characters).
        #[arg(long)]
        title: String,
        /// WeChat appid (`wx…`).
        #[arg(long)]
        appid: String,
        /// WeChat app secret. Prefer the environment variable: a flag shows
        /// in the process list and the shell history.
        #[arg(long, env = "WAFER_APP_SECRET", hide_env_values = true)]
        secret: Secret,
        /// Absolute session limit, days.
        #[arg(long, default_value_t = DEFAULT_LOGIN_DURATION_DAYS)]
        login_duration: u32,
        /// Sliding session limit, seconds.
        #[arg(long, default_value_t = DEFAULT_SESSION_DURATION_SECS)]
        session_duration: u32,
    },
    /// Lists apps (never their secrets).
    List,
    /// Removes an app, by id or appid, with all its sessions.
    Remove {
        /// The app's numeric id or its WeChat appid.
        app: String,
    },
}

/// `wafer sessions` subcommands: one user's session, by app and open_id.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Shows the user's session (never its skey or session_key).
    Show {
        /// The app's numeric id or its WeChat appid.
        #[arg(long)]
        app: String,
        /// The user's open_id.
        #[arg(long)]
        open_id: String,
    },
    /// Revokes the user's session at once, in PostgreSQL and Redis.
    Revoke {
        /// The app's numeric id or its WeChat appid.
        #[arg(long)]
        app: String,
        /// The user's open_id.
        #[arg(long)]
        open_id: String,
    },
}

/// Why a command failed. The database URL is never quoted (it may carry a
/// password); names and ids the operator typed may be.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No database is configured.
    #[error("set WAFER_DATABASE_URL (or --database-url): this command works on the database")]
    NoDatabase,
    /// The database client could not be configured.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Migrations could not be applied.
    #[error("cannot migrate the database: {0}")]
    Migrate(StoreError),
    /// The database failed a call.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument is out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// The appid is taken.
    #[error("an app with appid {0} exists")]
    Conflict(String),
    /// No such app.
    #[error("no app {0}")]
    NoSuchApp(String),
    /// The user has no session.
    #[error("no session of {open_id} in app {app}")]
    NoSession {
        /// The app, as given.
        app: String,
        /// The open_id, as given.
        open_id: String,
    },
    /// Redis is not configured: a revoked session must leave it too.
    #[error("set WAFER_REDIS_URL (or --redis-url) too: sessions live in Redis and PostgreSQL")]
    NoRedis,
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Start(#[from] crate::startup::StartError),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

async fn open(db: &DatabaseSettings) -> Result<Postgres, CliError> {
    let url = db.url.as_ref().ok_or(CliError::NoDatabase)?;
    let pg = db.connect(url)?;
    pg.migrate().await.map_err(CliError::Migrate)?;
    Ok(pg)
}

/// `wafer migrate`: applies pending migrations and names them.
pub async fn migrate(db: &DatabaseSettings, out: &mut impl Write) -> Result<(), CliError> {
    let url = db.url.as_ref().ok_or(CliError::NoDatabase)?;
    let applied = db
        .connect(url)?
        .migrate()
        .await
        .map_err(CliError::Migrate)?;
    let line = if applied.is_empty() {
        "the database is up to date".to_owned()
    } else {
        format!("applied {}", applied.join(", "))
    };
    Ok(writeln!(out, "{line}")?)
}

/// `wafer apps …`.
pub async fn apps(
    db: &DatabaseSettings,
    command: AppsCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let pg = open(db).await?;
    match command {
        AppsCommand::Add {
            title,
            appid,
            secret,
            login_duration,
            session_duration,
        } => {
            let new = NewApp {
                title,
                appid,
                secret: secret.expose().to_owned(),
                login_duration,
                session_duration,
            };
            new.validate().map_err(|e| CliError::Invalid(e.0))?;
            let app = pg
                .create_app(&new, SystemClock.now())
                .await
                .map_err(|e| match e {
                    StoreError::Conflict => CliError::Conflict(new.appid.clone()),
                    e => e.into(),
                })?;
            Ok(writeln!(out, "added app {} ({})", app.id, app.appid)?)
        }
        AppsCommand::List => {
            writeln!(out, "id\tappid\ttitle\tlogin_duration\tsession_duration")?;
            for app in pg.list_apps().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    app.id, app.appid, app.title, app.login_duration, app.session_duration
                )?;
            }
            Ok(())
        }
        AppsCommand::Remove { app } => {
            let apps = pg.list_apps().await?;
            let found = find_app(&apps, &app)?;
            let sessions = pg.delete_app(found.id).await?;
            // Redis copies of these sessions can no longer authenticate (the
            // app is gone and ids are never reused); they expire on their own.
            Ok(writeln!(
                out,
                "removed app {} ({}) and {} sessions",
                found.id,
                found.appid,
                sessions.len()
            )?)
        }
    }
}

/// Finds app `app` (numeric id or appid) among `apps`.
fn find_app<'a>(apps: &'a [Arc<App>], app: &str) -> Result<&'a Arc<App>, CliError> {
    let wanted =
        AppRef::parse_text(app.into()).map_err(|e| CliError::Invalid(format!("{app}: {e}")))?;
    apps.iter()
        .find(|a| match &wanted {
            AppRef::Id(id) => a.id == *id,
            AppRef::Appid(appid) => a.appid == **appid,
        })
        .ok_or_else(|| CliError::NoSuchApp(app.to_owned()))
}

/// `wafer sessions …`: on the production store (Redis and PostgreSQL), so
/// that a revoked session is gone from both at once.
pub async fn sessions(
    redis: &RedisSettings,
    db: &DatabaseSettings,
    command: SessionsCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let redis_url = redis.url.as_ref().ok_or(CliError::NoRedis)?;
    let db_url = db.url.as_ref().ok_or(CliError::NoDatabase)?;
    let store = crate::startup::open_tiered(
        redis,
        db,
        redis_url,
        db_url,
        Arc::new(SystemClock),
        Default::default(),
    )
    .await?;
    let apps = store.list_apps().await?;
    let result = match command {
        SessionsCommand::Show { app, open_id } => {
            let found = find_app(&apps, &app)?;
            let s = store
                .user_session(found.id, &open_id)
                .await?
                .ok_or(CliError::NoSession { app, open_id })?;
            writeln!(out, "uuid\t{}", s.uuid.hyphenated())?;
            writeln!(out, "app\t{} ({})", found.id, found.appid)?;
            writeln!(out, "open_id\t{}", s.open_id)?;
            writeln!(out, "union_id\t{}", s.union_id.as_deref().unwrap_or("-"))?;
            writeln!(out, "create_time\t{}", s.create_time.to_rfc3339())?;
            writeln!(out, "last_visit_time\t{}", s.last_visit_time.to_rfc3339())?;
            Ok(())
        }
        SessionsCommand::Revoke { app, open_id } => {
            let found = find_app(&apps, &app)?;
            if store.revoke_user(found.id, &open_id).await? {
                writeln!(out, "revoked the session of {open_id} in app {}", found.id)?;
                Ok(())
            } else {
                Err(CliError::NoSession { app, open_id })
            }
        }
    };
    store.close().await;
    result
}
