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
use crate::metrics::Metrics;
use crate::store::EmbeddedStore;
use crate::wechat::WechatClient;

/// How often the embedded store sweeps expired sessions.
const REAP_EVERY: Duration = Duration::from_secs(30);
/// How often histogram buffers are drained.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why wafer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The settings are inconsistent.
    #[error("{0}")]
    Settings(String),
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
    match (&settings.redis_url, &settings.database_url) {
        (None, None) => {}
        _ => {
            return Err(StartError::Settings(
                "WAFER_REDIS_URL / WAFER_DATABASE_URL are set, but this build of wafer has only the \
                 embedded store; unset both to run on it"
                    .into(),
            ));
        }
    }
    let wechat = WechatClient::new(
        &settings.wechat_api_base,
        settings.wechat_timeout,
        settings.wechat_connect_timeout,
    )
    .map_err(StartError::Settings)?;
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(EmbeddedStore::new(settings.embedded_max_sessions));
    store.spawn_reaper(clock.clone(), REAP_EVERY);
    tracing::warn!(
        "running on the embedded store: sessions and apps live in this process only and are lost \
         on restart (set WAFER_REDIS_URL and WAFER_DATABASE_URL for durable sessions)"
    );
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

fn spawn_metrics_upkeep(metrics: &Arc<Metrics>) {
    let metrics = Arc::downgrade(metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP_EVERY);
        loop {
            tick.tick().await;
            match metrics.upgrade() {
                Some(m) => m.upkeep(),
                None => return,
            }
        }
    });
}
