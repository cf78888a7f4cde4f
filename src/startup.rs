//! Assembling a running wafer from [`Settings`]: store, WeChat client,
//! domain, HTTP handler, listener and background tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Secret, Settings};
use crate::domain::Wafer;
use crate::http::admin::AdminToken;
use crate::http::server::Server;
use crate::http::{Handler, HttpSettings};
use crate::metrics::{Metrics, StoreMetrics};
use crate::store::periodic::spawn_every;
use crate::store::postgres::Postgres;
use crate::store::redis::Redis;
use crate::store::tiered::Intervals;
use crate::store::{EmbeddedStore, Store, TieredStore};
use crate::wechat::WechatClient;

/// How often the embedded store sweeps expired sessions.
const REAP_EVERY: Duration = Duration::from_secs(30);
/// How long start waits for PostgreSQL to answer.
const DATABASE_WAIT: Duration = Duration::from_secs(30);
/// How often the sessions and apps gauges are sampled.
const SAMPLE_SIZES_EVERY: Duration = Duration::from_secs(15);
/// How often histogram buffers are drained.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why wafer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings are inconsistent.
    #[error("{0}")]
    Settings(String),
    /// A store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Starts wafer with the system clock.
pub async fn start(settings: &Settings) -> Result<Server, StartError> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// Starts wafer telling time by `clock` (tests inject a manual one).
pub async fn start_with_clock(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<Server, StartError> {
    let metrics = Arc::new(Metrics::new());
    let wechat = WechatClient::new(
        &settings.wechat_api_base,
        settings.wechat_timeout,
        settings.wechat_connect_timeout,
    )
    .map_err(StartError::Settings)?
    .with_metrics(metrics.wechat());
    match (&settings.redis_url, &settings.database_url) {
        (None, None) => {
            let store = Arc::new(
                EmbeddedStore::new(settings.embedded_max_sessions).with_metrics(metrics.store()),
            );
            store.spawn_reaper(clock.clone(), REAP_EVERY);
            tracing::warn!(
                "running on the embedded store: sessions and apps live in this process only and \
                 are lost on restart (set WAFER_REDIS_URL and WAFER_DATABASE_URL for durable \
                 sessions)"
            );
            serve(settings, store, wechat, clock, metrics).await
        }
        (Some(redis), Some(database)) => {
            let store =
                open_tiered(settings, redis, database, clock.clone(), metrics.store()).await?;
            tracing::info!(
                prefix = %settings.redis_prefix,
                "running tiered: sessions in Redis, recorded in PostgreSQL"
            );
            serve(settings, store, wechat, clock, metrics).await
        }
        (Some(_), None) => Err(StartError::Settings(
            "WAFER_REDIS_URL is set but WAFER_DATABASE_URL is not: the production store needs \
             both (PostgreSQL keeps the records and the apps); set WAFER_DATABASE_URL, or unset \
             WAFER_REDIS_URL to run on the embedded store"
                .into(),
        )),
        (None, Some(_)) => Err(StartError::Settings(
            "WAFER_DATABASE_URL is set but WAFER_REDIS_URL is not: the production store needs \
             both (Redis serves the auth hot path); set WAFER_REDIS_URL, or unset \
             WAFER_DATABASE_URL to run on the embedded store"
                .into(),
        )),
    }
}

/// Connects to PostgreSQL (applying pending migrations) and Redis.
/// PostgreSQL must answer within [`DATABASE_WAIT`]; Redis may come later.
async fn open_tiered(
    settings: &Settings,
    redis: &Secret,
    database: &Secret,
    clock: Arc<dyn Clock>,
    metrics: StoreMetrics,
) -> Result<Arc<TieredStore>, StartError> {
    let pg = Postgres::connect(
        database.expose(),
        usize::from(settings.database_pool),
        settings.database_timeout,
    )
    .map_err(StartError::Settings)?;
    let redis = Redis::connect(
        redis.expose(),
        &settings.redis_prefix,
        usize::from(settings.redis_pool),
        settings.redis_timeout,
    )
    .map_err(StartError::Settings)?;
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
            Err(e) => return Err(StartError::Store(e.to_string())),
        }
    }
    if !redis.wait_connected(Duration::from_secs(2)).await {
        tracing::warn!("Redis is not answering; serving auth from PostgreSQL until it does");
    }
    let every = Intervals {
        visit: settings.visit_granularity,
        ..Intervals::default()
    };
    TieredStore::start(redis, pg, clock, every, metrics)
        .await
        .map_err(|e| StartError::Store(e.to_string()))
}

async fn serve<S: Store>(
    settings: &Settings,
    store: Arc<S>,
    wechat: WechatClient,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) -> Result<Server, StartError> {
    spawn_size_sampler(&metrics, &store);
    let wafer = Wafer::new(store, wechat, clock);
    let handler = Arc::new(Handler::new(
        wafer,
        HttpSettings {
            max_body: settings.max_body,
            admin_token: AdminToken::new(settings.admin_token.as_ref().map(Secret::expose)),
        },
        metrics.clone(),
    ));
    if settings
        .admin_token
        .as_ref()
        .is_none_or(|t| t.expose().is_empty())
    {
        tracing::info!("admin API is off: set WAFER_ADMIN_TOKEN to turn it on");
    }
    spawn_metrics_upkeep(&metrics);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let server = Server::start(listener, handler).map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    tracing::info!(addr = %server.local_addr(), wechat = %settings.wechat_api_base, "wafer is serving");
    Ok(server)
}

/// Samples the store's sizes into the metrics every [`SAMPLE_SIZES_EVERY`].
fn spawn_size_sampler<S: Store>(metrics: &Arc<Metrics>, store: &Arc<S>) {
    let store = store.clone();
    spawn_every(metrics, SAMPLE_SIZES_EVERY, move |metrics| {
        let store = store.clone();
        async move {
            let (sessions, apps) = store.sizes().await;
            metrics.set_store_sizes(sessions, apps);
        }
    });
}

fn spawn_metrics_upkeep(metrics: &Arc<Metrics>) {
    spawn_every(metrics, METRICS_UPKEEP_EVERY, |m| async move { m.upkeep() });
}
