//! `wafer migrate` and `wafer apps …`: work on the database directly,
//! without a running server (first setup, scripts, recovery).

use std::io::Write;

use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use std::sync::Arc;

use crate::config::{DatabaseSettings, RedisSettings, Secret, WechatSettings};
use crate::domain::app::App;
use crate::domain::app::{
    AppRef, DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp,
};
use crate::domain::audit::AuditAction;
use crate::domain::{Error as DomainError, Wafer};
use crate::import::{ImportError, UtcOffset, parse_cappinfo, parse_csessioninfo};
use crate::store::postgres::Postgres;
use crate::store::{ConnectError, StoreError};
use crate::store::{Store, StoreHealth, TieredStore};

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
    /// Asks WeChat whether the session key wafer stores for the user is
    /// still the user's current one (it is not once the user logged in
    /// through another server of the app): when a user reports that
    /// decryption fails. Exits 0 either way and says which.
    CheckKey {
        /// The app's numeric id or its WeChat appid.
        #[arg(long)]
        app: String,
        /// The user's open_id.
        #[arg(long)]
        open_id: String,
    },
    /// Imports the live sessions of the original wafer session server, so
    /// that its users stay logged in: its `cSessionInfo` table as
    /// tab-separated text with a header line, what `mysql -B -e 'SELECT
    /// uuid, skey, UNIX_TIMESTAMP(create_time) AS create_time,
    /// UNIX_TIMESTAMP(last_visit_time) AS last_visit_time, open_id,
    /// session_key, user_info FROM cSessionInfo' <database>` prints. Skeys
    /// are stored hashed; sessions past the app's limits are skipped, and so
    /// is a user who already has a session in wafer, so the import can run
    /// again. Needs only PostgreSQL: Redis reads each session through on
    /// its first check.
    Import {
        /// The app the sessions belong to (the original served one), by
        /// numeric id or appid.
        #[arg(long)]
        app: String,
        /// The UTC offset of the original's clock, for `DATETIME` columns
        /// (MySQL stores them without a zone), e.g. `+08:00`. Not needed
        /// for Unix times.
        #[arg(long)]
        utc_offset: Option<UtcOffset>,
        /// The file (`-` for standard input).
        file: std::path::PathBuf,
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
    /// An export of the original cannot be read.
    #[error("cannot import the file: {0}")]
    Import(#[from] ImportError),
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
    /// WeChat could not be asked.
    #[error("{0}")]
    Domain(#[from] crate::domain::Error),
    /// The WeChat client could not be built.
    #[error(transparent)]
    Wechat(#[from] crate::wechat::WechatClientError),
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

/// `wafer rekey`: seals what is not sealed under the current data key.
pub async fn rekey(db: &DatabaseSettings, out: &mut impl Write) -> Result<(), CliError> {
    if db.data_keys.is_none() {
        return Err(CliError::Invalid(
            "set WAFER_DATA_KEYS: rekey seals secrets under its first key".into(),
        ));
    }
    let pg = open(db).await?;
    let (apps, sessions) = pg.rekey().await?;
    Ok(writeln!(
        out,
        "sealed {apps} app secrets and {sessions} session keys under the current data key"
    )?)
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
    let store = open_store(stores).await?;
    let wafer = Wafer::new(
        store.clone(),
        stores.wechat.client()?,
        Arc::new(SystemClock),
    );
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
            wafer.delete_app(found.id).await?;
            wafer
                .audit(AuditAction::AppDeleted, format!("app {}", found.id), None)
                .await;
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
    let app = wafer.create_app(new).await.map_err(|e| match e {
        DomainError::Conflict => CliError::Conflict(appid),
        DomainError::BadRequest(why) => CliError::Invalid(why.into_owned()),
        e => e.into(),
    })?;
    wafer
        .audit(AuditAction::AppCreated, format!("app {}", app.id), None)
        .await;
    Ok(app)
}

/// The production store the commands work on: both Redis and PostgreSQL.
async fn open_store(stores: &Stores) -> Result<Arc<TieredStore>, CliError> {
    let redis_url = stores.redis.url.as_ref().ok_or(CliError::NoRedis)?;
    let db_url = stores.db.url.as_ref().ok_or(CliError::NoDatabase)?;
    Ok(crate::startup::open_tiered(
        &stores.redis,
        &stores.db,
        redis_url,
        db_url,
        Arc::new(SystemClock),
        Default::default(),
    )
    .await?)
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

/// The text of `file`, or of standard input for `-`.
fn read_input(file: &std::path::Path) -> Result<String, CliError> {
    Ok(if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file)?
    })
}

/// Most unreadable rows named one by one; the rest are counted.
const PROBLEMS_SHOWN: usize = 10;

/// `wafer sessions import`: the original's sessions into PostgreSQL.
async fn import_sessions(
    db: &DatabaseSettings,
    app: &str,
    offset: Option<UtcOffset>,
    file: &std::path::Path,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let pg = open(db).await?;
    let apps = pg.list_apps().await?;
    let found = find_app(&apps, app)?;
    let rows = parse_csessioninfo(&read_input(file)?, offset)?;
    let (limits, now) = (found.limits(), SystemClock.now());
    let (mut imported, mut kept, mut expired) = (0, 0, 0);
    for s in &rows.sessions {
        if !limits.alive(s.create_time, s.last_visit, now) {
            expired += 1;
        } else if pg.import_session(found.id, s).await? {
            imported += 1;
        } else {
            kept += 1;
        }
    }
    for p in rows.problems.iter().take(PROBLEMS_SHOWN) {
        writeln!(out, "skipped {p}")?;
    }
    if rows.problems.len() > PROBLEMS_SHOWN {
        writeln!(
            out,
            "skipped {} more unreadable rows",
            rows.problems.len() - PROBLEMS_SHOWN
        )?;
    }
    writeln!(
        out,
        "imported {imported} sessions into app {} ({}); kept {kept} (the user or the uuid has one in wafer), \
         {expired} had expired, {} rows unreadable, {} without their user_info",
        found.id,
        found.appid,
        rows.problems.len(),
        rows.without_user_info
    )?;
    Ok(())
}

/// What `wafer apps` and `wafer sessions` work on: the production store
/// and WeChat, from the same settings as `wafer serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct Stores {
    /// Redis (sessions' hot copies, access tokens).
    #[command(flatten)]
    pub redis: RedisSettings,
    /// PostgreSQL (the records).
    #[command(flatten)]
    pub db: DatabaseSettings,
    /// WeChat (the session-key check).
    #[command(flatten)]
    pub wechat: WechatSettings,
}

/// What a `wafer sessions` command does to one user's session.
enum UserCommand {
    Show,
    Revoke,
    CheckKey,
}

/// `wafer sessions …`: on the production store (Redis and PostgreSQL), so
/// that a revoked session is gone from both at once. `import` needs only
/// PostgreSQL.
pub async fn sessions(
    stores: &Stores,
    command: SessionsCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (what, app, open_id) = match command {
        SessionsCommand::Import {
            app,
            utc_offset,
            file,
        } => return import_sessions(&stores.db, &app, utc_offset, &file, out).await,
        SessionsCommand::Show { app, open_id } => (UserCommand::Show, app, open_id),
        SessionsCommand::Revoke { app, open_id } => (UserCommand::Revoke, app, open_id),
        SessionsCommand::CheckKey { app, open_id } => (UserCommand::CheckKey, app, open_id),
    };
    let store = open_store(stores).await?;
    let result = match what {
        UserCommand::CheckKey => check_key(&store, &stores.wechat, &app, &open_id, out).await,
        UserCommand::Show | UserCommand::Revoke => {
            one_user(
                &*store,
                matches!(what, UserCommand::Revoke),
                app,
                open_id,
                out,
            )
            .await
        }
    };
    store.close().await;
    result
}

/// `wafer sessions check-key`.
async fn check_key<S: Store>(
    store: &Arc<S>,
    wechat: &WechatSettings,
    app: &str,
    open_id: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let apps = store.list_apps().await?;
    let found = find_app(&apps, app)?;
    let wafer = Wafer::new(store.clone(), wechat.client()?, Arc::new(SystemClock));
    let current = wafer
        .check_session_key(found.id, open_id)
        .await
        .map_err(|e| match e {
            crate::domain::Error::NotFound => CliError::NoSession {
                app: app.to_owned(),
                open_id: open_id.to_owned(),
            },
            e => e.into(),
        })?;
    let line = if current {
        "the stored session key is the user's current one: data the user fetches now decrypts"
    } else {
        "the stored session key is NOT the user's current one (the user logged in through \
         another server of the app since): data fetched now does not decrypt until the user \
         logs in to wafer again"
    };
    Ok(writeln!(out, "{line}")?)
}

/// `wafer sessions show|revoke`: the session of one user.
async fn one_user(
    store: &impl Store,
    revoke: bool,
    app: String,
    open_id: String,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let apps = store.list_apps().await?;
    let found = find_app(&apps, &app)?;
    if revoke {
        if !store.revoke_user(found.id, &open_id).await? {
            return Err(CliError::NoSession { app, open_id });
        }
        return Ok(writeln!(
            out,
            "revoked the session of {open_id} in app {}",
            found.id
        )?);
    }
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
