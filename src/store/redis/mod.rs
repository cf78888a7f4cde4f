//! Redis: the session hot path. A session is a hash under
//! `{prefix}s:{<uuid>}` (the braces are a Redis Cluster hash tag, so every
//! script touches one slot), with the fields [`layout`] names, whose TTL is
//! the time the session has left; an open_id index points at it. Checks and
//! writes are Lua scripts run by SHA, reloaded on `NOSCRIPT`.

pub(crate) mod layout;

mod error;
mod server;
mod sessions;
mod tokens;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{
    Builder, Client, ClientLike, Config, Error as RedisError, LuaInterface, Pool, ReconnectPolicy,
    Value,
};
use fred::types::scripts::Script;
use uuid::Uuid;

use crate::store::metrics::{Op, StoreMetrics};
use crate::store::{Backend, ConnectError, StoreResult};

pub use error::not_connected;
#[cfg(feature = "testing")]
pub use layout::session_keys;
pub use sessions::{AUTH_SCRIPT, AuthOutcome};
#[cfg(feature = "testing")]
pub use sessions::auth_args;
use tokens::RELEASE_SCRIPT;

/// What the start-up TLS check needs: the client configuration and the
/// servers (host, port) of the URL.
type TlsCheck = (Arc<rustls::ClientConfig>, Vec<(String, u16)>);

/// A pool of multiplexed connections to Redis (or a Redis Cluster).
#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    /// What the pool was built from: the near cache's tracked connection
    /// is built from it too.
    pub(in crate::store) config: Config,
    /// The TLS configuration wafer chose (a CA file), for the start-up
    /// check of the handshake; `None` without TLS or with fred's default.
    tls: Option<TlsCheck>,
    pub(in crate::store) prefix: Arc<str>,
    pub(in crate::store) timeout: Duration,
    auth: Script,
    put: Script,
    tombstone: Script,
    unindex: Script,
    release: Script,
    metrics: StoreMetrics,
}

impl Redis {
    /// A pool of `size` connections to `url` (`redis://…`, or
    /// `redis-cluster://host:port?node=host:port` for a cluster), keys under
    /// `prefix`, every command bounded by `timeout`. Connects in the
    /// background and keeps reconnecting; see [`Redis::is_connected`].
    pub fn connect(
        url: &str,
        prefix: &str,
        size: usize,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        Self::connect_tls(url, prefix, size, timeout, None)
    }

    /// [`Redis::connect`], over TLS for `rediss://` URLs: verified against
    /// the CA certificates of the PEM file `ca` (a managed Redis's CA), or
    /// the system's without one.
    pub fn connect_tls(
        url: &str,
        prefix: &str,
        size: usize,
        timeout: Duration,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, ConnectError> {
        let mut config = Config::from_url(url).map_err(|_| ConnectError::InvalidUrl {
            setting: "WAFER_REDIS_URL",
        })?;
        const CA_SETTING: &str = "WAFER_REDIS_TLS_CA";
        let tls = match (config.uses_tls(), ca) {
            (false, Some(_)) => {
                return Err(ConnectError::Tls {
                    setting: CA_SETTING,
                    why: "is set, but WAFER_REDIS_URL does not ask for TLS (rediss://)".into(),
                });
            }
            (false, None) => None,
            (true, ca) => {
                let client = Arc::new(crate::store::tls::client_config(
                    CA_SETTING,
                    crate::store::tls::roots(CA_SETTING, ca)?,
                )?);
                config.tls =
                    Some(fred::types::config::TlsConnector::from((*client).clone()).into());
                let hosts = config
                    .server
                    .hosts()
                    .into_iter()
                    .map(|h| (h.host.to_string(), h.port))
                    .collect();
                Some((client, hosts))
            }
        };
        let pool = builder(config.clone(), timeout)
            .build_pool(size)
            .map_err(|_| ConnectError::Pool {
                backend: Backend::Redis,
            })?;
        pool.connect();
        Ok(Redis {
            pool,
            config,
            tls,
            prefix: prefix.into(),
            timeout,
            auth: Script::from_lua(AUTH_SCRIPT),
            put: Script::from_lua(include_str!("put.lua")),
            tombstone: Script::from_lua(include_str!("tombstone.lua")),
            unindex: Script::from_lua(include_str!("unindex.lua")),
            release: Script::from_lua(RELEASE_SCRIPT),
            metrics: StoreMetrics::default(),
        })
    }

    /// Records every operation in `metrics`.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs one command, recorded as operation `op`. The timeout is fred's
    /// own (`default_command_timeout`): a second timer here would cost a
    /// timer-wheel entry per auth for nothing.
    ///
    /// The command's future is boxed here, before anything awaits it:
    /// fred's futures are large, and held inline every layer above (metrics,
    /// error mapping, the store, the request) would carry and memcpy them
    /// whole. Measured with callgrind at ~40k instructions per auth, more
    /// than the rest of the request; and in debug builds those layers'
    /// stack frames overflowed 2 MiB stacks.
    pub(in crate::store) fn bounded<'a, T: 'a>(
        &'a self,
        op: Op,
        call: impl Future<Output = Result<T, RedisError>> + Send + 'a,
    ) -> impl Future<Output = StoreResult<T>> + Send + 'a {
        let call = Box::pin(call);
        async move {
            let call = async { Ok(call.await?) };
            self.metrics.observe(Backend::Redis, op, call).await
        }
    }

    /// The time one command may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits up to `limit` for the first connection.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.pool.wait_for_connect())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether a connection is up now; when it is not, callers go straight
    /// to PostgreSQL instead of waiting for a timeout.
    pub fn is_connected(&self) -> bool {
        self.pool.next_connected().is_connected()
    }

    /// Session `uuid`'s hash key.
    pub(in crate::store) fn key(&self, uuid: Uuid) -> String {
        layout::session_key(&self.prefix, uuid)
    }

    /// Session `uuid`'s hash and visit key, as its scripts take them.
    pub(in crate::store) fn keys(&self, uuid: Uuid) -> Vec<String> {
        layout::session_keys(&self.prefix, uuid)
    }

    /// Runs `script` by SHA on `keys` (of one slot); on `NOSCRIPT` (Redis
    /// restarted or flushed its scripts) loads it and runs it again. `args`
    /// is a builder, not a value, so the common path does not clone the
    /// arguments.
    pub(in crate::store) async fn eval(
        &self,
        op: Op,
        script: &Script,
        keys: Vec<String>,
        args: impl Fn() -> Vec<Value> + Sync,
    ) -> StoreResult<Value> {
        self.eval_on(self.pool.next_connected(), op, script, keys, args)
            .await
    }

    /// [`Redis::eval`] on `client`'s connection.
    async fn eval_on(
        &self,
        client: &Client,
        op: Op,
        script: &Script,
        keys: Vec<String>,
        args: impl Fn() -> Vec<Value> + Sync,
    ) -> StoreResult<Value> {
        let send = || client.evalsha::<Value, _, _, _>(script.sha1().clone(), keys.clone(), args());
        // Every node of a cluster: the next key may live on any.
        let load = || script.load(client);
        self.eval_by(op, load, send).await
    }

    /// Runs a script by `send`ing its SHA; on `NOSCRIPT` `load`s it and
    /// sends it again.
    async fn eval_by<L, F>(
        &self,
        op: Op,
        load: impl Fn() -> L + Send + Sync,
        send: impl Fn() -> F + Send + Sync,
    ) -> StoreResult<Value>
    where
        L: Future<Output = Result<(), RedisError>> + Send,
        F: Future<Output = Result<Value, RedisError>> + Send,
    {
        // Boxed by `bounded`, as every command.
        let call = async {
            match send().await {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    load().await?;
                    send().await
                }
                other => other,
            }
        };
        self.bounded(op, call).await
    }

    /// `PING`.
    pub async fn ping(&self) -> StoreResult<()> {
        if !self.is_connected() {
            return Err(not_connected());
        }
        let call = self.pool.next_connected().ping::<Value>(None);
        self.bounded(Op::Ping, call).await.map(drop)
    }

    /// Closes the connections.
    pub async fn quit(&self) {
        let _ = tokio::time::timeout(self.timeout, self.pool.quit()).await;
    }
}

/// Commands one client holds for its connection: far above what a
/// healthy Redis leaves queued within a timeout at any auth rate.
const COMMAND_BUFFER: usize = 16_384;

/// The builder of every client of `config`: commands bounded by `timeout`,
/// never retried (a failed one falls back to PostgreSQL), reconnecting
/// forever (Redis coming back must not need a restart).
fn builder(config: Config, timeout: Duration) -> Builder {
    builder_with(config, timeout, |_| {})
}

/// [`builder`], with `more` connection settings.
pub(in crate::store) fn builder_with(
    config: Config,
    timeout: Duration,
    more: impl FnOnce(&mut fred::types::config::ConnectionConfig),
) -> Builder {
    let mut b = Builder::from_config(config);
    b.with_performance_config(|p| p.default_command_timeout = timeout)
        .with_connection_config(|c| {
            c.connection_timeout = timeout.max(Duration::from_millis(500));
            c.internal_command_timeout = timeout.max(Duration::from_millis(500));
            c.max_command_attempts = 1;
            // Commands wait in the client while it reconnects, past their
            // caller's timeout: bounded, a stalled Redis answers the excess
            // at once (and they fall back like any failure) instead of
            // holding memory for as long as it is away.
            c.max_command_buffer_len = COMMAND_BUFFER;
            // Small commands and pushed invalidations go out at once, not
            // held by Nagle's algorithm.
            c.tcp = fred::types::config::TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            };
            more(c);
        })
        // Backing off to 2 s.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
    b
}
