//! The command line's admin commands, without a running server (first
//! setup, scripts, recovery). `wafer apps …` and `wafer sessions …` go
//! through the same domain operations as the admin API ([`Wafer`]), so an
//! action is audited and its effects (an access token dropped, sessions
//! ended in Redis) are the same; `wafer migrate`, `wafer rekey` and
//! `wafer sessions import` are database maintenance, with no API twin.

mod apps;
mod database;
mod sessions;

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::{DatabaseSettings, RedisSettings, WechatSettings};
use crate::domain::Wafer;
use crate::domain::app::{App, AppRef};
use crate::import::ImportError;
use crate::store::{ConnectError, StoreError, TieredStore};

pub use apps::{AppsCommand, apps};
pub use database::{migrate, rekey};
pub use sessions::{SessionsCommand, sessions};

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

/// The production store the commands work on (both Redis and
/// PostgreSQL), and the domain over it; close the store when done.
async fn open_wafer(stores: &Stores) -> Result<(Arc<TieredStore>, Wafer<TieredStore>), CliError> {
    let redis_url = stores.redis.url.as_ref().ok_or(CliError::NoRedis)?;
    let db_url = stores.db.url.as_ref().ok_or(CliError::NoDatabase)?;
    let store = crate::startup::open_tiered(
        &stores.redis,
        &stores.db,
        redis_url,
        db_url,
        Arc::new(SystemClock),
        Default::default(),
    )
    .await?;
    let wafer = Wafer::new(
        store.clone(),
        stores.wechat.client()?,
        Arc::new(SystemClock),
    );
    Ok((store, wafer))
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
