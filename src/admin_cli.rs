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
        AppsCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)?
            };
            let apps = parse_cappinfo(&text)?;
            let (mut added, mut kept) = (0, 0);
            for new in apps {
                match pg.create_app(&new, SystemClock.now()).await {
                    Ok(app) => {
                        added += 1;
                        writeln!(out, "added app {} ({})", app.id, app.appid)?;
                    }
                    Err(StoreError::Conflict) => {
                        kept += 1;
                        writeln!(out, "kept app {} (it exists)", new.appid)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(writeln!(out, "imported {added} apps, kept {kept}")?)
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

/// Reads the original's `cAppinfo` rows (tab-separated, with a header line
/// naming at least `appid` and `secret`; `login_duration` in days and
/// `session_duration` in seconds when present, as the original stored them).
/// Every row is checked as `wafer apps add` checks its arguments.
pub fn parse_cappinfo(text: &str) -> Result<Vec<NewApp>, CliError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| CliError::Invalid("the file is empty: expected a header line".into()))?
        .split('\t')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(appid), Some(secret)) = (column("appid"), column("secret")) else {
        return Err(CliError::Invalid(
            "the header line must name the columns appid and secret".into(),
        ));
    };
    let (login, session) = (column("login_duration"), column("session_duration"));
    let mut apps = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        let number = |i: Option<usize>, default: u32| -> Result<u32, CliError> {
            match i.map(cell).filter(|c| !c.is_empty() && *c != "NULL") {
                None => Ok(default),
                Some(c) => c.parse().map_err(|_| {
                    CliError::Invalid(format!("row {}: `{c}` is not a whole number", n + 1))
                }),
            }
        };
        let appid = cell(appid).to_owned();
        let new = NewApp {
            // The original had no title: the appid, cut to a title's length.
            title: appid.chars().take(30).collect(),
            secret: cell(secret).to_owned(),
            login_duration: number(login, DEFAULT_LOGIN_DURATION_DAYS)?,
            session_duration: number(session, DEFAULT_SESSION_DURATION_SECS)?,
            appid,
        };
        new.validate()
            .map_err(|e| CliError::Invalid(format!("row {} ({}): {}", n + 1, new.appid, e.0)))?;
        apps.push(new);
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cappinfo_rows_become_apps() {
        let text = "appid\tsecret\tlogin_duration\tsession_duration\tqcloud_appid\n\
                    wx0123456789abcdef\ts3cret\t7\t3600\t125\n\
                    wxsecond\tother\tNULL\t\t\n";
        let apps = parse_cappinfo(text).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].appid, "wx0123456789abcdef");
        assert_eq!(apps[0].title, "wx0123456789abcdef");
        assert_eq!(
            (apps[0].login_duration, apps[0].session_duration),
            (7, 3600)
        );
        assert_eq!(
            (apps[1].login_duration, apps[1].session_duration),
            (DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS),
            "NULL and empty take the defaults"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_row() {
        assert!(parse_cappinfo("").is_err());
        assert!(
            parse_cappinfo("id\tname\n1\tx\n").is_err(),
            "no appid/secret columns"
        );
        let Err(e) = parse_cappinfo("appid\tsecret\tlogin_duration\nwx1\ts\tmany\n") else {
            panic!("a bad number is refused")
        };
        assert!(e.to_string().contains("row 1"), "{e}");
        let Err(e) = parse_cappinfo("appid\tsecret\nwx1\t\n") else {
            panic!("an empty secret is refused")
        };
        assert!(e.to_string().contains("secret"), "an empty secret: {e}");
    }
}
