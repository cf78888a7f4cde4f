//! `wafer sessions …`: one user's session, by app and open_id.

use std::io::Write;

use clap::Subcommand;

use super::database::import_sessions;
use super::{CliError, Stores, find_app, open_wafer};
use crate::domain::audit::Caller;
use crate::domain::{Error as DomainError, Wafer};
use crate::import::UtcOffset;
use crate::store::{Store, StoreHealth};

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
    let (store, wafer) = open_wafer(stores).await?;
    let result = one_user(&wafer, what, app, open_id, out).await;
    store.close().await;
    result
}

/// `wafer sessions show|revoke|check-key`: the session of one user.
async fn one_user<S: Store>(
    wafer: &Wafer<S>,
    what: UserCommand,
    app: String,
    open_id: String,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let apps = wafer.list_apps().await?;
    let found = find_app(&apps, &app)?;
    let id = found.id;
    let no_session = |e| match e {
        DomainError::NotFound => CliError::NoSession {
            app: app.clone(),
            open_id: open_id.clone(),
        },
        e => e.into(),
    };
    match what {
        UserCommand::Revoke => {
            wafer
                .revoke_user(id, &open_id, Caller::CommandLine)
                .await
                .map_err(no_session)?;
            return Ok(writeln!(
                out,
                "revoked the session of {open_id} in app {id}"
            )?);
        }
        UserCommand::CheckKey => {
            let current = wafer
                .check_session_key(id, &open_id, Caller::CommandLine)
                .await
                .map_err(no_session)?;
            let line = if current {
                "the stored session key is the user's current one: data the user fetches now decrypts"
            } else {
                "the stored session key is NOT the user's current one (the user logged in through \
                 another server of the app since): data fetched now does not decrypt until the user \
                 logs in to wafer again"
            };
            return Ok(writeln!(out, "{line}")?);
        }
        UserCommand::Show => {}
    }
    let s = wafer.user_session(id, &open_id).await.map_err(no_session)?;
    writeln!(out, "uuid\t{}", s.uuid.hyphenated())?;
    writeln!(out, "app\t{} ({})", found.id, found.appid)?;
    writeln!(out, "open_id\t{}", s.open_id)?;
    writeln!(out, "union_id\t{}", s.union_id.as_deref().unwrap_or("-"))?;
    writeln!(out, "create_time\t{}", s.create_time.to_rfc3339())?;
    writeln!(out, "last_visit_time\t{}", s.last_visit_time.to_rfc3339())?;
    Ok(())
}
