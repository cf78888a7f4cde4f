//! Assembling a running wafer from [`Settings`], and taking it down in
//! order: one [`Application`] owns the HTTP server and the store.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{DatabaseSettings, RedisSettings, Secret, Settings};
use crate::domain::Wafer;
use crate::domain::token_metrics::TokenMetrics;
use crate::http::server::{Server, ServerLimits};
use crate::http::{AdminToken, Handler};
use crate::metrics::Metrics;
use crate::store::metrics::StoreMetrics;
use crate::store::periodic::spawn_every;
use crate::store::tiered::TieredSettings;
use crate::store::{ConnectError, EmbeddedStore, Store, StoreError, TieredStore};
use crate::wechat::WechatClient;
use crate::wechat::WechatMetrics;
use crate::wechat::client::WechatClientError;

/// How often the embedded store sweeps expired sessions.
const REAP_EVERY: Duration = Duration::from_secs(30);
/// How long start waits for PostgreSQL to answer.
const DATABASE_WAIT: Duration = Duration::from_secs(30);
/// How often histogram buffers are drained.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why wafer could not start. Messages name settings, never their values.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Only one of the two production stores is configured.
    #[error(
        "{set} is set but {unset} is not: the production store needs both (PostgreSQL keeps \
         the records and the apps, Redis serves the auth hot path); set {unset}, or unset {set} \
         to run on the embedded store"
    )]
    HalfTiered {
        /// The variable that is set.
        set: &'static str,
        /// The one that is missing.
        unset: &'static str,
    },
    /// A store client could not be configured.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A TLS handshake with a store failed (wrong CA, host name, protocol).
    #[error("{0}")]
    Tls(String),
    /// The WeChat client could not be built.
    #[error(transparent)]
    Wechat(#[from] WechatClientError),
    /// A store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A running wafer: its HTTP server and its store. Stopping it stops
/// accepting, drains the connections, then flushes the store, in that order
/// (a request still in flight may write to the store).
pub struct Application {
    server: Server,
    close_store: Box<dyn FnOnce() -> Closing + Send>,
}

impl Application {
    /// Starts wafer with the system clock.
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Starts wafer telling time by `clock` (tests inject a manual one).
    pub async fn build_with_clock(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new());
        let wechat = settings
            .wechat
            .client()?
            .with_metrics(WechatMetrics::register(metrics.recorder()));
        match (&settings.redis.url, &settings.database.url) {
            (None, None) => {
                let store = Arc::new(
                    EmbeddedStore::new(settings.embedded.max_sessions)
                        .with_metrics(StoreMetrics::register(metrics.recorder())),
                );
                store.spawn_reaper(clock.clone(), REAP_EVERY);
                tracing::warn!(
                    "running on the embedded store: sessions and apps live in this process \
                     only and are lost on restart (set WAFER_REDIS_URL and WAFER_DATABASE_URL \
                     for durable sessions)"
                );
                Self::serve(settings, store, wechat, clock, metrics).await
            }
            (Some(redis), Some(database)) => {
                let store = open_tiered(
                    &settings.redis,
                    &settings.database,
                    redis,
                    database,
                    clock.clone(),
                    StoreMetrics::register(metrics.recorder()),
                )
                .await?;
                tracing::info!(
                    prefix = %settings.redis.prefix,
                    "running tiered: sessions in Redis, recorded in PostgreSQL"
                );
                Self::serve(settings, store, wechat, clock, metrics).await
            }
            (Some(_), None) => Err(StartError::HalfTiered {
                set: "WAFER_REDIS_URL",
                unset: "WAFER_DATABASE_URL",
            }),
            (None, Some(_)) => Err(StartError::HalfTiered {
                set: "WAFER_DATABASE_URL",
                unset: "WAFER_REDIS_URL",
            }),
        }
    }

    async fn serve<S: Store>(
        settings: &Settings,
        store: Arc<S>,
        wechat: WechatClient,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartError> {
        spawn_every(
            &metrics,
            METRICS_UPKEEP_EVERY,
            |m| async move { m.upkeep() },
        );
        let admin = AdminToken::new(settings.admin.token.as_ref().map(|t| t.expose()));
        if !admin.is_on() {
            tracing::info!("admin API is off: set WAFER_ADMIN_TOKEN to turn it on");
        }
        let limits = &settings.limits;
        let wafer = Wafer::new(store.clone(), wechat, clock)
            .with_token_metrics(TokenMetrics::register(&metrics))
            .with_login_limits(limits.login_per_ip, limits.login_per_app);
        let handler = Arc::new(
            Handler::new(wafer, &settings.http, admin, metrics)
                .with_trusted_proxies(limits.trusted_proxies.clone()),
        );
        let addr = settings.http.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let server = Server::start(listener, handler, ServerLimits::from(&settings.http))
            .map_err(|source| StartError::Bind { addr, source })?;
        tracing::info!(addr = %server.local_addr(), wechat = %settings.wechat.api_base, "wafer is serving");
        Ok(Application {
            server,
            close_store: Box::new(move || Box::pin(async move { store.close().await })),
        })
    }

    /// The address served on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops accepting, drains the connections (up to a bound), then lets
    /// the store write what it still holds.
    pub async fn stop(self) {
        self.server.shutdown().await;
        (self.close_store)().await;
    }

    /// Serves until `signal` resolves, then stops in order.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down: draining connections");
        self.stop().await;
    }
}

/// Connects to PostgreSQL (applying pending migrations) and Redis.
/// PostgreSQL must answer within [`DATABASE_WAIT`]; Redis may come later.
pub(crate) async fn open_tiered(
    redis_settings: &RedisSettings,
    db_settings: &DatabaseSettings,
    redis: &Secret,
    database: &Secret,
    clock: Arc<dyn Clock>,
    metrics: StoreMetrics,
) -> Result<Arc<TieredStore>, StartError> {
    let pg = db_settings.connect(database)?;
    pg.check_tls().await.map_err(StartError::Tls)?;
    if db_settings.data_keys.is_none() {
        tracing::warn!(
            "app secrets and session keys are stored in plain text in PostgreSQL: \
             set WAFER_DATA_KEYS to seal them (see `wafer rekey`)"
        );
    }
    let redis = redis_settings.connect(redis)?;
    let deadline = tokio::time::Instant::now() + DATABASE_WAIT;
    loop {
        match pg.migrate().await {
            Ok(applied) => {
                for name in applied {
                    tracing::info!(migration = name, "applied migration");
                }
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "PostgreSQL is not answering yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    redis.check_tls().await.map_err(StartError::Tls)?;
    if redis.wait_connected(Duration::from_secs(2)).await {
        redis.check_hash_encoding().await;
    } else {
        tracing::warn!("Redis is not answering; serving auth from PostgreSQL until it does");
    }
    let settings = TieredSettings {
        visit: db_settings.visit_granularity,
        read_through_per_second: db_settings.read_through_limit,
        near: redis_settings.near(),
        ..TieredSettings::default()
    };
    let connected = redis.is_connected();
    let store = TieredStore::start(redis, pg, clock, settings, metrics).await?;
    // Serve with the near cache from the first request when Redis is up
    // (without it, auths go to Redis until tracking is on).
    if connected && !store.wait_near_live(Duration::from_secs(2)).await {
        tracing::warn!("the near cache is not serving yet; auths go to Redis until it does");
    }
    Ok(store)
}
