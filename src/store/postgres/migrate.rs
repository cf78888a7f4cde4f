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

/// Applies the pending migrations; returns the names of those it applied.
///
/// Everything runs in one transaction holding a transaction-level advisory
/// lock: a second instance waits, then finds nothing left to do.
pub async fn migrate(client: &mut Client) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    // "relation already exists, skipping" is expected on every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS wafer_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM wafer_migrations",
            &[],
        )
        .await?;
    let current: i32 = row.try_get(0)?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO wafer_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        applied.push(m.name);
    }
    tx.commit().await?;
    Ok(applied)
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
