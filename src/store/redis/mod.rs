//! Redis: the session hot path. A session is a hash under
//! `{prefix}s:{<uuid>}` (the braces are a Redis Cluster hash tag, so every
//! script touches one slot), with the fields [`layout`] names, whose TTL is
//! the time the session has left; an open_id index points at it. Checks and
//! writes are Lua scripts run by SHA, reloaded on `NOSCRIPT`.

pub(crate) mod layout;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::WithOptions;
use fred::prelude::{
    Builder, Client, ClientLike, Config, Error as RedisError, LuaInterface, Pool, ReconnectPolicy,
    Value,
};
use fred::types::scripts::Script;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::domain::session::{Credentials, Profile};
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::metrics::Op;
use crate::store::metrics::StoreMetrics;
use crate::store::record::SessionRecord;
use crate::store::{Backend, Cause, ConnectError, StoreError, StoreResult};

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = crate::config::defaults::REDIS_PREFIX;

/// How long a tombstone keeps a removed session from coming back. Far longer
/// than any read-through or login can take (each is bounded by timeouts).
const TOMBSTONE_MS: i64 = 60_000;

/// The `hash-max-listpack-value` that keeps a session with a ~300-byte
/// user_info (up to 512 bytes) compact.
const RECOMMENDED_LISTPACK_VALUE: u64 = 512;

/// What Redis says of a session on auth.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Accepted and slid, with the times Redis holds (and whether this
    /// visit is due to be written to PostgreSQL: none was for the visit
    /// granularity).
    Accepted(Arc<Profile>, Visit),
    /// Known and refused (wrong app/skey, expired, removed).
    Refused,
    /// Not in Redis: read through to the record.
    Miss,
}

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
    bury: Script,
    unindex: Script,
    release: Script,
    metrics: StoreMetrics,
}

impl From<RedisError> for StoreError {
    /// Any Redis failure makes Redis unavailable for this call (auth then
    /// falls back to PostgreSQL); the kind says why, the details (which can
    /// quote arguments) are not kept.
    fn from(e: RedisError) -> Self {
        use fred::error::ErrorKind;
        let cause = match e.kind() {
            ErrorKind::Timeout => Cause::Timeout,
            ErrorKind::IO | ErrorKind::Canceled => Cause::Closed,
            ErrorKind::Backpressure => Cause::PoolFull,
            ErrorKind::Config | ErrorKind::Url => Cause::NotConnected,
            _ => Cause::Refused,
        };
        StoreError::unavailable(Backend::Redis, cause)
    }
}

/// Redis has no connection up.
pub fn not_connected() -> StoreError {
    StoreError::unavailable(Backend::Redis, Cause::NotConnected)
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
            bury: Script::from_lua(include_str!("bury.lua")),
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

    /// Over TLS: a TLS handshake with the first server, so that a wrong CA
    /// or host name stops wafer at start with the reason, instead of a
    /// Redis that never answers. A server that cannot be reached is not an
    /// error here (Redis may come later).
    pub async fn check_tls(&self) -> Result<(), String> {
        let Some((config, hosts)) = &self.tls else {
            return Ok(());
        };
        let Some((host, port)) = hosts.first() else {
            return Ok(());
        };
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .ok()?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            Some(connector.connect(name, tcp).await)
        };
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(2)), connect).await {
            Ok(Some(Err(e))) => Err(format!("TLS with Redis at {host}:{port} failed: {e}")),
            _ => Ok(()),
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

    pub(in crate::store) fn key(&self, uuid: Uuid) -> String {
        session_key(&self.prefix, uuid)
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

    /// Checks `creds` and slides the session, in one round trip. A visit is
    /// reported due for PostgreSQL at most once per `granularity_ms`.
    pub async fn authenticate(
        &self,
        creds: &Credentials,
        granularity_ms: i64,
    ) -> StoreResult<AuthOutcome> {
        let args = || auth_args(creds, granularity_ms);
        let reply = self
            .eval(Op::Auth, &self.auth, self.keys(creds.uuid), args)
            .await?;
        Ok(auth_outcome(reply))
    }

    /// [`Redis::authenticate`] sent on `node` (a client bound to one node,
    /// following no redirection), recorded as `op`: an [`Op::Auth`] checks
    /// and slides the session as any auth does, an [`Op::Peek`] only checks
    /// it (writes nothing). A node that lacks the script gets it on the
    /// same connection (a node that just joined a cluster has none).
    pub(in crate::store) async fn auth_on(
        &self,
        node: &WithOptions<Client>,
        op: Op,
        creds: &Credentials,
        granularity_ms: i64,
    ) -> StoreResult<AuthOutcome> {
        use fred::types::ClusterHash;
        let sha = Value::from(self.auth.sha1().clone());
        let key = self.key(creds.uuid);
        // Routed by the session key's slot (a custom command's first
        // argument here is the script's SHA, not a key).
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let key = Value::from(key);
        let visit = Value::from(layout::visit_key(&self.prefix, creds.uuid));
        let send = || {
            let mut args = vec![sha.clone(), Value::Integer(2), key.clone(), visit.clone()];
            args.extend(auth_args(creds, granularity_ms));
            if matches!(op, Op::Peek) {
                args.push(Value::from_static_str("1"));
            }
            let evalsha = fred::cmd!("EVALSHA", hash: ClusterHash::Custom(slot));
            node.custom::<Value, Value>(evalsha, args)
        };
        let load = || async {
            let args = vec![
                Value::from_static_str("LOAD"),
                Value::from_static_str(AUTH_SCRIPT),
            ];
            let load = fred::cmd!("SCRIPT", hash: ClusterHash::Custom(slot));
            node.custom::<Value, Value>(load, args).await.map(drop)
        };
        let reply = self.eval_by(op, load, send).await?;
        Ok(auth_outcome(reply))
    }

    /// Caches `record` with a TTL of `ttl_ms` (its hash a quarter longer,
    /// within its absolute limit, `index_ttl_ms`: see `layout.rs`; and
    /// points the open_id index at it until that limit), unless Redis holds
    /// a newer generation of it or a tombstone. Returns whether it was
    /// written. Both commands are sent at once (one round trip's wait).
    pub async fn put(
        &self,
        record: &SessionRecord,
        ttl_ms: i64,
        index_ttl_ms: i64,
    ) -> StoreResult<bool> {
        use fred::prelude::{Expiration, KeysInterface};
        if ttl_ms <= 0 {
            return Ok(false);
        }
        let fields = layout::fields(record);
        let hash_ttl_ms =
            (ttl_ms + ttl_ms / layout::HASH_SLACK_DIVISOR).min(index_ttl_ms.max(ttl_ms));
        let args = || {
            let mut a = Vec::with_capacity(4 + fields.len());
            a.push(Value::Integer(record.generation));
            a.push(Value::Integer(ttl_ms));
            a.push(Value::Integer(hash_ttl_ms));
            a.push(Value::Integer(record.last_visit.0));
            a.extend(fields.iter().cloned());
            a
        };
        let session = self.eval(Op::Put, &self.put, self.keys(record.uuid), args);
        let index = async {
            let call = self.pool.next_connected().set::<Value, _, _>(
                layout::index_key(&self.prefix, record.app_id, &record.open_id),
                record.uuid.hyphenated().to_string(),
                Some(Expiration::PX(index_ttl_ms.max(ttl_ms))),
                None,
                false,
            );
            self.bounded(Op::Index, call).await
        };
        let (written, indexed) = tokio::join!(session, index);
        indexed?;
        Ok(written? == Value::Integer(1))
    }

    /// Replaces session `uuid` by a tombstone and removes its open_id index
    /// entry (if it still names this session).
    pub async fn tombstone(&self, uuid: Uuid) -> StoreResult<()> {
        let args = || vec![Value::Integer(TOMBSTONE_MS)];
        let was = self
            .eval(Op::Bury, &self.bury, self.keys(uuid), args)
            .await?;
        let Value::Array(parts) = was else {
            return Ok(());
        };
        let mut parts = parts.into_iter().filter_map(|v| v.into_string());
        let (Some(app), Some(open_id)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        let Ok(app) = app.parse::<AppId>() else {
            return Ok(());
        };
        let key = layout::index_key(&self.prefix, app, &open_id);
        let args = || vec![Value::from(uuid.hyphenated().to_string())];
        self.eval(Op::Index, &self.unindex, vec![key], args)
            .await
            .map(drop)
    }

    /// The session the open_id index names for (`app`, `open_id`), if Redis
    /// has both and they agree (the index is advisory).
    pub async fn user_session(
        &self,
        app: AppId,
        open_id: &str,
    ) -> StoreResult<Option<(Uuid, layout::Stored)>> {
        use fred::prelude::KeysInterface;
        let key = layout::index_key(&self.prefix, app, open_id);
        let call = self.pool.next_connected().get::<Option<String>, _>(key);
        let Some(uuid) = self.bounded(Op::Index, call).await? else {
            return Ok(None);
        };
        let Ok(uuid) = Uuid::try_parse(&uuid) else {
            return Ok(None);
        };
        Ok(self
            .session(uuid)
            .await?
            .filter(|s| s.app == app && s.open_id == open_id)
            .map(|s| (uuid, s)))
    }

    /// Session `uuid` as Redis holds it, if it does (not a tombstone): its
    /// hash, with the last visit of its visit key if that is later.
    pub async fn session(&self, uuid: Uuid) -> StoreResult<Option<layout::Stored>> {
        use fred::prelude::HashesInterface;
        let client = self.pool.next_connected();
        let hash = client.hgetall::<Vec<(String, Value)>, _>(self.key(uuid));
        let visit = client.hget::<Option<i64>, _, _>(
            layout::visit_key(&self.prefix, uuid),
            layout::field::VISITED,
        );
        let both = async { Ok::<_, RedisError>(tokio::join!(hash, visit)) };
        let (hash, visit) = self.bounded(Op::Load, both).await?;
        match hash {
            Ok(pairs) => Ok(layout::decode_stored(pairs).map(|mut s| {
                s.visited = s.visited.max(visit.ok().flatten().unwrap_or(0));
                s
            })),
            // An earlier version's string: not readable here, and a miss is
            // always safe (PostgreSQL has the record).
            Err(_) if self.is_connected() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops whatever Redis holds for `uuid` (the record is read again on
    /// the next auth).
    pub async fn evict(&self, uuid: Uuid) -> StoreResult<()> {
        use fred::prelude::KeysInterface;
        let call = self.pool.next_connected().del::<i64, _>(self.keys(uuid));
        self.bounded(Op::Evict, call).await.map(drop)
    }

    /// The app's shared access token: a JSON string under
    /// `{prefix}t:{<app>}`, expiring with the token.
    pub async fn access_token(&self, app: AppId) -> StoreResult<Option<AccessToken>> {
        use fred::prelude::KeysInterface;
        let call = self
            .pool
            .next_connected()
            .get::<Option<String>, _>(layout::token_key(&self.prefix, app));
        let Some(text) = self.bounded(Op::Token, call).await? else {
            return Ok(None);
        };
        // Anything unreadable is as good as no token: the next fetch
        // replaces it.
        Ok(serde_json::from_str::<SharedToken>(&text)
            .ok()
            .map(AccessToken::from))
    }

    /// Shares the app's access token until it expires (`ttl_ms` from now).
    pub async fn put_access_token(
        &self,
        app: AppId,
        token: &AccessToken,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        use fred::prelude::{Expiration, KeysInterface};
        if ttl_ms <= 0 {
            return Ok(());
        }
        let text = serde_json::to_string(&SharedToken::from(token)).map_err(|_| {
            StoreError::Malformed {
                backend: Backend::Redis,
                what: "an access token to share",
            }
        })?;
        let call = self.pool.next_connected().set::<Value, _, _>(
            layout::token_key(&self.prefix, app),
            text,
            Some(Expiration::PX(ttl_ms)),
            None,
            false,
        );
        self.bounded(Op::Token, call).await.map(drop)
    }

    /// `SET NX PX`: takes `lease` for `ttl_ms` unless someone holds it.
    pub async fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        use fred::prelude::{Expiration, KeysInterface};
        use fred::types::SetOptions;
        let call = self.pool.next_connected().set::<Value, _, _>(
            layout::lease_key(&self.prefix, app, lease.label()),
            holder,
            Some(Expiration::PX(ttl_ms.max(1))),
            Some(SetOptions::NX),
            false,
        );
        Ok(!matches!(self.bounded(Op::Token, call).await?, Value::Null))
    }

    /// Deletes `lease` if `holder` still holds it.
    pub async fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> StoreResult<()> {
        let key = layout::lease_key(&self.prefix, app, lease.label());
        let args = || vec![Value::from(holder)];
        self.eval(Op::Token, &self.release, vec![key], args)
            .await
            .map(drop)
    }

    /// Forgets the app's access token.
    pub async fn drop_access_token(&self, app: AppId) -> StoreResult<()> {
        use fred::prelude::KeysInterface;
        let call = self
            .pool
            .next_connected()
            .del::<i64, _>(layout::token_key(&self.prefix, app));
        self.bounded(Op::Token, call).await.map(drop)
    }

    /// Warns when Redis keeps session hashes in its large encoding: with
    /// `hash-max-listpack-value` under the size of a typical user_info, a
    /// session costs about 1.3 KiB instead of 0.9 KiB. Managed Redis often
    /// refuses `CONFIG`: then nothing is said.
    pub async fn check_hash_encoding(&self) {
        if let Some(v) = self
            .hash_listpack_value()
            .await
            .filter(|v| *v < RECOMMENDED_LISTPACK_VALUE)
        {
            tracing::warn!(
                hash_max_listpack_value = v,
                recommended = RECOMMENDED_LISTPACK_VALUE,
                "Redis keeps session hashes with a user_info in its large encoding (about 1.3 KiB \
                 per session instead of 0.9 KiB); set hash-max-listpack-value to 512"
            );
        }
    }

    /// Redis' `hash-max-listpack-value`, if it tells.
    pub async fn hash_listpack_value(&self) -> Option<u64> {
        use fred::prelude::ConfigInterface;
        let client = self.pool.next_connected();
        let got = client
            .config_get::<Vec<String>, _>("hash-max-listpack-value")
            .await
            .ok()?;
        got.get(1)?.parse().ok()
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

/// The arguments of [`AUTH_SCRIPT`] for `creds`. Public so that the load
/// test's ceiling server makes exactly wafer's call.
pub fn auth_args(creds: &Credentials, granularity_ms: i64) -> Vec<Value> {
    vec![
        Value::Integer(creds.app_id),
        Value::from(layout::hex(&creds.skey_hash.0)),
        Value::Integer(creds.now.0),
        Value::Integer(creds.limits.login_ms),
        Value::Integer(creds.limits.session_ms),
        Value::Integer(granularity_ms),
    ]
}

/// Deletes a lease (KEYS[1]) only if its holder (ARGV[1]) still has it: a
/// lease that timed out and was taken by another must not be removed.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

/// An access token as Redis keeps it (JSON, readable with `GET`).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedToken {
    value: String,
    fetched_ms: i64,
    expires_ms: i64,
    renew_ms: i64,
    secret_tag: String,
}

impl From<&AccessToken> for SharedToken {
    fn from(t: &AccessToken) -> Self {
        SharedToken {
            value: t.value.clone(),
            fetched_ms: t.fetched_at.0,
            expires_ms: t.expires_at.0,
            renew_ms: t.renew_at.0,
            secret_tag: t.secret_tag.clone(),
        }
    }
}

impl From<SharedToken> for AccessToken {
    fn from(t: SharedToken) -> Self {
        AccessToken {
            value: t.value,
            fetched_at: Timestamp(t.fetched_ms),
            expires_at: Timestamp(t.expires_ms),
            renew_at: Timestamp(t.renew_ms),
            secret_tag: t.secret_tag,
        }
    }
}

/// The auth script: a reply of bytes or a string is an accepted session.
pub const AUTH_SCRIPT: &str = concat!(include_str!("extend.lua"), include_str!("auth.lua"));

/// What the auth script's reply says.
fn auth_outcome(reply: Value) -> AuthOutcome {
    match reply {
        Value::Integer(0) => AuthOutcome::Miss,
        Value::Array(reply) => accepted(reply),
        _ => AuthOutcome::Refused,
    }
}

/// An accepted auth's reply; a reply this version did not write is refused
/// (and logged) rather than trusted.
fn accepted(reply: Vec<Value>) -> AuthOutcome {
    match layout::decode_accepted(reply) {
        Some((visit, p)) => AuthOutcome::Accepted(Arc::new(p), visit),
        None => {
            tracing::error!("redis holds a session wafer cannot read; refusing it");
            AuthOutcome::Refused
        }
    }
}

pub use layout::{Visit, session_key, session_keys, visit_key};

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
