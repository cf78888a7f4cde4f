//! PostgreSQL: the durable record of apps and sessions. Every call is
//! bounded by a timeout, so a hung database turns into
//! [`StoreError::Unavailable`](crate::store::StoreError::Unavailable)
//! instead of piling requests up.
//!
//! This file holds the pool and `run`, which every statement goes through;
//! the statements live beside it by concern: apps, sessions, the audit
//! trail, and maintenance (import, rekey, purge).

mod apps;
mod audit;
mod changes;
mod error;
mod maintenance;
pub mod migrate;
mod sessions;
mod tls_check;

pub use changes::{ChangeSeq, SessionChange};

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::store::metrics::{Op, StoreMetrics};
use crate::store::sealed::{self, Column, DataKeys};
use crate::store::{Backend, ConnectError, StoreResult};

use error::timed_out;
use tls_check::PgTlsCheck;

/// A pool of connections to wafer's database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    timeout: Duration,
    metrics: StoreMetrics,
    /// Seals app secrets and session keys at rest, when configured.
    keys: Option<Arc<DataKeys>>,
    /// For the start-up check of TLS: the configuration, the first
    /// server, and whether TLS is required.
    tls: Option<PgTlsCheck>,
}

impl Postgres {
    /// A pool for `url` (`postgres://…`), `size` connections at most, every
    /// call bounded by `timeout`; connects lazily. With the TLS the URL's
    /// `sslmode` asks for (`prefer`, `require`, `verify-ca`, `verify-full`;
    /// none without it), verified against the CA certificates of the PEM
    /// file `ca` or the system's.
    pub fn connect_tls(
        url: &str,
        size: usize,
        timeout: Duration,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, ConnectError> {
        use crate::store::tls::{PgSslMode, pg_client_config, split_sslmode};
        let (mode, url) = split_sslmode(url)?;
        let mut config =
            tokio_postgres::Config::from_str(&url).map_err(|_| ConnectError::InvalidUrl {
                setting: "WAFER_DATABASE_URL",
            })?;
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("wafer");
        }
        let recycling = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let (manager, tls) = if mode == PgSslMode::Disable {
            if ca.is_some() {
                return Err(ConnectError::Tls {
                    setting: "WAFER_DATABASE_TLS_CA",
                    why: "is set, but WAFER_DATABASE_URL has sslmode=disable".into(),
                });
            }
            (Manager::from_config(config, NoTls, recycling()), None)
        } else {
            let client = Arc::new(pg_client_config(mode, ca)?);
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => Some(h.clone()),
                _ => None,
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let check = host.map(|host| PgTlsCheck {
                config: client.clone(),
                host,
                port,
                required: mode != PgSslMode::Prefer,
            });
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*client).clone());
            (Manager::from_config(config, connector, recycling()), check)
        };
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|_| ConnectError::Pool {
                backend: Backend::Postgres,
            })?;
        Ok(Postgres {
            pool,
            timeout,
            metrics: StoreMetrics::default(),
            keys: None,
            tls,
        })
    }

    /// Seals app secrets and session keys with `keys` (none: plain text).
    pub fn with_data_keys(mut self, keys: Option<DataKeys>) -> Self {
        self.keys = keys.map(Arc::new);
        self
    }

    fn seal(&self, column: Column, plain: &str) -> StoreResult<String> {
        Ok(sealed::seal(self.keys.as_deref(), column, plain)?)
    }

    fn open(&self, column: Column, stored: &str) -> StoreResult<String> {
        Ok(sealed::open(self.keys.as_deref(), column, stored)?)
    }

    /// Records every operation in `metrics`.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    async fn client(&self) -> StoreResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// Runs `work` on a pooled connection within the timeout, recorded as
    /// operation `op`.
    async fn run<T, F, Fut>(&self, op: Op, work: F) -> StoreResult<T>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let work = async {
            let client = self.client().await?;
            work(client).await
        };
        let bounded = async {
            tokio::time::timeout(self.timeout, work)
                .await
                .map_err(|_| timed_out())?
        };
        self.metrics.observe(Backend::Postgres, op, bounded).await
    }

    /// Applies pending migrations (see [`migrate::migrate`]).
    pub async fn migrate(&self) -> StoreResult<Vec<&'static str>> {
        // Migrations may take longer than one query; they get their own bound.
        let work = async {
            // Out of the pool: the migrations' advisory lock lives as long
            // as the connection, which closes when this is dropped (even
            // cut off by the bound), never back in the pool holding it.
            let mut client = Object::take(self.client().await?);
            Ok(migrate::migrate(&mut client).await?)
        };
        tokio::time::timeout(Duration::from_secs(60), work)
            .await
            .map_err(|_| timed_out())?
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> StoreResult<()> {
        self.run(Op::Ping, |c| async move {
            c.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }
}
