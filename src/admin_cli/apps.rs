//! `wafer apps …`.

use std::io::Write;
use std::sync::Arc;

use clap::Subcommand;

use super::{CliError, Stores, find_app, open_wafer, read_input};
use crate::config::Secret;
use crate::domain::app::{App, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp};
use crate::domain::audit::Caller;
use crate::domain::{Error as DomainError, Wafer};
use crate::import::parse_cappinfo;
use crate::store::{Store, StoreHealth};

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
    /// Imports the apps of the original wafer session server: its
    /// `cAppinfo` table as tab-separated text with a header line, what
    /// `mysql -B -e 'SELECT appid, secret, login_duration, session_duration
    /// FROM cAppinfo' <database>` prints. Apps whose appid exists are left
    /// as they are, so the import can be run again.
    Import {
        /// The file (`-` for standard input).
        file: std::path::PathBuf,
    },
    /// Removes an app, by id or appid, with all its sessions.
    Remove {
        /// The app's numeric id or its WeChat appid.
        app: String,
    },
}

/// `wafer apps …`: through the same domain operations as the admin API,
/// on the production store (Redis and PostgreSQL), so that a change is
/// audited, a new secret or a removal drops the app's access token, and a
/// removal ends the app's sessions in Redis at once.
pub async fn apps(
    stores: &Stores,
    command: AppsCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (store, wafer) = open_wafer(stores).await?;
    let result = apps_on(&wafer, command, out).await;
    store.close().await;
    result
}

async fn apps_on<S: Store>(
    wafer: &Wafer<S>,
    command: AppsCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
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
            let app = add_app(wafer, new).await?;
            Ok(writeln!(out, "added app {} ({})", app.id, app.appid)?)
        }
        AppsCommand::Import { file } => {
            let apps = parse_cappinfo(&read_input(&file)?)?;
            let (mut added, mut kept) = (0, 0);
            for new in apps {
                match add_app(wafer, new).await {
                    Ok(app) => {
                        added += 1;
                        writeln!(out, "added app {} ({})", app.id, app.appid)?;
                    }
                    Err(CliError::Conflict(appid)) => {
                        kept += 1;
                        writeln!(out, "kept app {appid} (it exists)")?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(writeln!(out, "imported {added} apps, kept {kept}")?)
        }
        AppsCommand::List => {
            writeln!(out, "id\tappid\ttitle\tlogin_duration\tsession_duration")?;
            for app in wafer.list_apps().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    app.id, app.appid, app.title, app.login_duration, app.session_duration
                )?;
            }
            Ok(())
        }
        AppsCommand::Remove { app } => {
            let apps = wafer.list_apps().await?;
            let found = find_app(&apps, &app)?;
            wafer.delete_app(found.id, Caller::CommandLine).await?;
            Ok(writeln!(
                out,
                "removed app {} ({}) and its sessions",
                found.id, found.appid
            )?)
        }
    }
}

/// Adds an app as the admin API does, audited.
async fn add_app<S: Store>(wafer: &Wafer<S>, new: NewApp) -> Result<Arc<App>, CliError> {
    let appid = new.appid.clone();
    wafer
        .create_app(new, Caller::CommandLine)
        .await
        .map_err(|e| match e {
            DomainError::Conflict => CliError::Conflict(appid),
            DomainError::BadRequest(why) => CliError::Invalid(why.into_owned()),
            e => e.into(),
        })
}
