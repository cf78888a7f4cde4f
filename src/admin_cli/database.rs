//! Database maintenance: `wafer migrate`, `wafer rekey`, `wafer sessions
//! import` (PostgreSQL only; no API twin).

use std::io::Write;

use super::{CliError, find_app, read_input};
use crate::clock::{Clock, SystemClock};
use crate::config::DatabaseSettings;
use crate::import::{UtcOffset, parse_csessioninfo};
use crate::store::postgres::Postgres;

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

/// Most unreadable rows named one by one; the rest are counted.
const PROBLEMS_SHOWN: usize = 10;

/// `wafer sessions import`: the original's sessions into PostgreSQL.
pub(super) async fn import_sessions(
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
