//! Ordered schema migrations from `sql/`, applied under an advisory lock so
//! that instances starting together apply each one exactly once.

use tokio_postgres::Client;

/// A migration: its version (the file's number) and SQL.
pub struct Migration {
    /// Version, strictly increasing.
    pub version: i32,
    /// File name, for the record and for logs.
    pub name: &'static str,
    /// The SQL, run in one transaction with the bookkeeping.
    pub sql: &'static str,
}

/// Every migration, in order. A test checks this list against `sql/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../../sql/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_hot_last_visit.sql",
        sql: include_str!("../../../sql/0002_hot_last_visit.sql"),
    },
    Migration {
        version: 3,
        name: "0003_phone_number.sql",
        sql: include_str!("../../../sql/0003_phone_number.sql"),
    },
    Migration {
        version: 4,
        name: "0004_sealed_secrets.sql",
        sql: include_str!("../../../sql/0004_sealed_secrets.sql"),
    },
    Migration {
        version: 5,
        name: "0005_audit_log.sql",
        sql: include_str!("../../../sql/0005_audit_log.sql"),
    },
    Migration {
        version: 6,
        name: "0006_session_changes.sql",
        sql: include_str!("../../../sql/0006_session_changes.sql"),
    },
];

// Any fixed number works; this one spells "wafer" in ASCII.
const LOCK_KEY: i64 = 0x77_61_66_65_72;

/// How long a migration waits for a table lock before it gives up and
/// tries again: a lock queued behind a long statement (a flush of visits,
/// the purge, a report) makes every later statement on the table queue
/// behind it, so it must give up well within a request's database timeout
/// (2 s by default): logins then wait at most this long.
const LOCK_TIMEOUT: &str = "1s";
/// Tries of one migration whose locks were not granted in time, a second
/// apart: within the migrations' bound of a minute.
const LOCK_TRIES: u32 = 25;

/// Applies the pending migrations; returns the names of those it applied.
///
/// A session-level advisory lock makes a second instance wait, then find
/// nothing left to do. Each migration is a transaction of its own (with
/// its bookkeeping row), so one that fails leaves those before it applied;
/// its locks are asked for with a timeout, and a migration refused a lock
/// is tried again after a pause. The lock lives as long as the connection:
/// the caller hands a connection that closes when it is dropped.
pub async fn migrate(client: &mut Client) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    migrate_to(client, MIGRATIONS).await
}

/// [`migrate`] with another list (the tests add a migration of their own).
pub async fn migrate_to(
    client: &mut Client,
    migrations: &'static [Migration],
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let applied = apply_pending(client, migrations).await;
    // Released on success or failure (and with the connection, if this
    // future is dropped).
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    applied
}

async fn apply_pending(
    client: &mut Client,
    migrations: &'static [Migration],
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    // "relation already exists, skipping" is expected on every start.
    client
        .batch_execute(
            "SET client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS wafer_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );
             RESET client_min_messages",
        )
        .await?;
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM wafer_migrations",
            &[],
        )
        .await?;
    let current: i32 = row.try_get(0)?;
    let mut applied = Vec::new();
    for m in migrations.iter().filter(|m| m.version > current) {
        let mut tries = 0;
        loop {
            tries += 1;
            match apply_one(client, m).await {
                Ok(()) => break,
                Err(e) if lock_refused(&e) && tries < LOCK_TRIES => {
                    tracing::warn!(
                        migration = m.name,
                        tries,
                        "a migration waited {LOCK_TIMEOUT} for a lock; trying again"
                    );
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
        applied.push(m.name);
    }
    Ok(applied)
}

/// One migration and its bookkeeping row, in a transaction of its own.
async fn apply_one(client: &mut Client, m: &Migration) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL client_min_messages = warning; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    ))
    .await?;
    tx.batch_execute(m.sql).await?;
    tx.execute(
        "INSERT INTO wafer_migrations (version, name) VALUES ($1, $2)",
        &[&m.version, &m.name],
    )
    .await?;
    tx.commit().await
}

/// Whether `e` is PostgreSQL refusing a lock within `lock_timeout`.
fn lock_refused(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_sql_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("sql/ exists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
