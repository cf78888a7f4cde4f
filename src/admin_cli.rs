//! `wafer migrate` and `wafer apps …`: work on the database directly,
//! without a running server (first setup, scripts, recovery).

use std::io::Write;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::DatabaseSettings;
use crate::domain::app::{
    AppRef, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp,
};
use crate::store::StoreError;
use crate::store::postgres::Postgres;

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
        secret: String,
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

async fn open(db: &DatabaseSettings) -> Result<Postgres, String> {
    let pg = Postgres::connect(db.database_url.expose(), 1, db.database_timeout)?;
    pg.migrate()
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    Ok(pg)
}

/// `wafer migrate`: applies pending migrations and names them.
pub async fn migrate(db: &DatabaseSettings, out: &mut impl Write) -> Result<(), String> {
    let pg = Postgres::connect(db.database_url.expose(), 1, db.database_timeout)?;
    let applied = pg
        .migrate()
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    let line = if applied.is_empty() {
        "the database is up to date".to_owned()
    } else {
        format!("applied {}", applied.join(", "))
    };
    writeln!(out, "{line}").map_err(|e| e.to_string())
}

/// `wafer apps …`.
pub async fn apps(
    db: &DatabaseSettings,
    command: AppsCommand,
    out: &mut impl Write,
) -> Result<(), String> {
    let pg = open(db).await?;
    let io = |e: std::io::Error| e.to_string();
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
                secret,
                login_duration,
                session_duration,
            };
            new.validate().map_err(|e| e.0)?;
            let app = pg
                .create_app(&new, SystemClock.now())
                .await
                .map_err(|e| match e {
                    StoreError::Conflict => format!("an app with appid {} exists", new.appid),
                    e => e.to_string(),
                })?;
            writeln!(out, "added app {} ({})", app.id, app.appid).map_err(io)
        }
        AppsCommand::List => {
            writeln!(out, "id\tappid\ttitle\tlogin_duration\tsession_duration").map_err(io)?;
            for app in pg.list_apps().await.map_err(|e| e.to_string())? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    app.id, app.appid, app.title, app.login_duration, app.session_duration
                )
                .map_err(io)?;
            }
            Ok(())
        }
        AppsCommand::Remove { app } => {
            let apps = pg.list_apps().await.map_err(|e| e.to_string())?;
            let wanted =
                AppRef::parse_text(app.as_str().into()).map_err(|e| format!("{app}: {e}"))?;
            let found = apps.iter().find(|a| match &wanted {
                AppRef::Id(id) => a.id == *id,
                AppRef::Appid(appid) => a.appid == **appid,
            });
            let Some(found) = found else {
                return Err(format!("no app {app}"));
            };
            let sessions = pg.delete_app(found.id).await.map_err(|e| e.to_string())?;
            // Redis copies of these sessions can no longer authenticate (the
            // app is gone and ids are never reused); they expire on their own.
            writeln!(
                out,
                "removed app {} ({}) and {} sessions",
                found.id,
                found.appid,
                sessions.len()
            )
            .map_err(io)
        }
    }
}
