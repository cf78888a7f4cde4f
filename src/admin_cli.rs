//! `wafer migrate` and `wafer apps …`: work on the database directly,
//! without a running server (first setup, scripts, recovery).

use std::io::Write;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::{DatabaseSettings, Secret};
use crate::domain::app::{
    AppRef, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp,
};
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
            let wanted = AppRef::parse_text(app.as_str().into())
                .map_err(|e| CliError::Invalid(format!("{app}: {e}")))?;
            let found = apps.iter().find(|a| match &wanted {
                AppRef::Id(id) => a.id == *id,
                AppRef::Appid(appid) => a.appid == **appid,
            });
            let Some(found) = found else {
                return Err(CliError::NoSuchApp(app));
            };
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
