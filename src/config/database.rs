//! Settings of PostgreSQL, the record of the production shape; also what
//! `wafer migrate` and `wafer apps` work on.

use std::time::Duration;

use clap::Args;

use super::defaults;
use super::secret::Secret;
use super::values::{duration_text, parse_duration};
use crate::store::ConnectError;
use crate::store::postgres::Postgres;
use crate::store::sealed::DataKeys;
use crate::store::visit_granularity::VisitGranularity;

/// PostgreSQL, the record of the production shape; also what `wafer
/// migrate` and `wafer apps` work on.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL for durable sessions and apps.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "WAFER_DATABASE_URL",
        hide_env_values = true
    )]
    pub url: Option<Secret>,

    /// Most PostgreSQL connections.
    #[arg(id = "database_pool", long = "database-pool", env = "WAFER_DATABASE_POOL", default_value_t = defaults::DATABASE_POOL, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool: u16,

    /// Time allowed for one PostgreSQL call before answering 503. The
    /// commands that work on the database alone use it too; migrations get
    /// a bound of their own (a migration is not one call).
    #[arg(id = "database_timeout", long = "database-timeout", env = "WAFER_DATABASE_TIMEOUT", default_value = duration_text(defaults::DATABASE_TIMEOUT), value_parser = parse_duration)]
    pub timeout: Duration,

    /// How often at most a session's last visit is written to PostgreSQL:
    /// a share of each app's session duration (`1%`, between 1 s and 6 h)
    /// or a fixed duration (`60s`). Sessions slide in Redis (on every auth,
    /// or on every near-cache slide);
    /// PostgreSQL's copy (what a Redis loss falls back on) lags by at most
    /// this plus one second.
    #[arg(long, env = "WAFER_VISIT_GRANULARITY", default_value_t = VisitGranularity::ShareOfSession(defaults::VISIT_GRANULARITY_SHARE))]
    pub visit_granularity: VisitGranularity,

    /// PostgreSQL reads per second that Redis misses may cause, per
    /// instance (a session Redis lost is read once, then served from Redis
    /// again); past it a miss answers 503. Bounds what a flood of unknown
    /// session ids costs PostgreSQL; 0 = unbounded.
    #[arg(long, env = "WAFER_READ_THROUGH_LIMIT", default_value_t = defaults::READ_THROUGH_LIMIT)]
    pub read_through_limit: u32,

    /// Data keys sealing app secrets and session keys in PostgreSQL
    /// (AES-256-GCM): `id:base64(32 bytes)`, comma-separated; the first
    /// seals, any opens (list the old key after a new one to rotate, then
    /// run `wafer rekey`). Unset: stored in plain text, with a warning.
    #[arg(long, env = "WAFER_DATA_KEYS", hide_env_values = true)]
    pub data_keys: Option<Secret>,

    /// PEM file of the CA that signed the PostgreSQL server's certificate;
    /// TLS itself is asked for by `sslmode=` in the URL. Unset: the
    /// system's CAs (`verify-ca`, `verify-full`) or no check (`require`).
    #[arg(
        id = "database_tls_ca",
        long = "database-tls-ca",
        env = "WAFER_DATABASE_TLS_CA"
    )]
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            pool: defaults::DATABASE_POOL,
            timeout: defaults::DATABASE_TIMEOUT,
            visit_granularity: VisitGranularity::ShareOfSession(defaults::VISIT_GRANULARITY_SHARE),
            read_through_limit: defaults::READ_THROUGH_LIMIT,
            data_keys: None,
            tls_ca: None,
        }
    }
}

impl DatabaseSettings {
    /// A pool of connections to the database at `url` (connecting lazily).
    pub fn connect(&self, url: &Secret) -> Result<Postgres, ConnectError> {
        let keys = self
            .data_keys
            .as_ref()
            .map(|k| DataKeys::parse(k.expose()))
            .transpose()?;
        Ok(Postgres::connect_tls(
            url.expose(),
            usize::from(self.pool),
            self.timeout,
            self.tls_ca.as_deref(),
        )?
        .with_data_keys(keys))
    }
}
