//! Settings of Redis, the session hot path of the production shape, and of
//! the near cache in front of it.

use std::time::Duration;

use clap::Args;

use super::defaults;
use super::secret::Secret;
use super::values::{bytes_text, duration_text, parse_bytes, parse_duration};
use crate::store::ConnectError;
use crate::store::near::NearSettings;
use crate::store::redis::Redis;
use crate::store::visit_granularity::VisitGranularity;

/// Redis, the session hot path of the production shape.
#[derive(Debug, Clone, Args)]
pub struct RedisSettings {
    /// Redis (or Redis Cluster) URL for the session hot path.
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "WAFER_REDIS_URL",
        hide_env_values = true
    )]
    pub url: Option<Secret>,

    /// Prefix of every Redis key, so deployments can share a Redis.
    #[arg(id = "redis_prefix", long = "redis-prefix", env = "WAFER_REDIS_PREFIX", default_value = defaults::REDIS_PREFIX)]
    pub prefix: String,

    /// Multiplexed Redis connections (each pipelines many requests).
    #[arg(id = "redis_pool", long = "redis-pool", env = "WAFER_REDIS_POOL", default_value_t = defaults::REDIS_POOL, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub pool: u16,

    /// Time allowed for one Redis call before falling back to PostgreSQL.
    #[arg(id = "redis_timeout", long = "redis-timeout", env = "WAFER_REDIS_TIMEOUT", default_value = duration_text(defaults::REDIS_TIMEOUT), value_parser = parse_duration)]
    pub timeout: Duration,

    /// PEM file of the CA that signed the Redis server's certificate (TLS
    /// is asked for by a `rediss://` URL); unset: the system's CAs.
    #[arg(id = "redis_tls_ca", long = "redis-tls-ca", env = "WAFER_REDIS_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// The near cache: hot sessions in process, kept true by Redis'
    /// invalidations (`CLIENT TRACKING`), so a repeated auth costs no
    /// round trip. `false` sends every auth to Redis.
    #[arg(long, env = "WAFER_NEAR_CACHE", default_value_t = defaults::NEAR_CACHE, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub near_cache: bool,

    /// Most sessions the near cache holds.
    #[arg(long, env = "WAFER_NEAR_CACHE_ENTRIES", default_value_t = defaults::NEAR_CACHE_ENTRIES, value_parser = clap::value_parser!(u64).range(1..))]
    pub near_cache_entries: u64,

    /// Most memory the near cache's sessions take (estimated): bytes, or
    /// with a unit (`256MiB`, `1GiB`).
    #[arg(long, env = "WAFER_NEAR_CACHE_BYTES", default_value = bytes_text(defaults::NEAR_CACHE_BYTES), value_parser = parse_bytes)]
    pub near_cache_bytes: u64,

    /// How often a session's last visit, slid in process by near-cache
    /// hits, reaches Redis: a share of its app's `session_duration`
    /// (`1%`, between 1 s and 5 min) or a fixed duration (`30s`). Apps whose
    /// `session_duration` is under ten times it are never served from the
    /// near cache.
    #[arg(long, env = "WAFER_NEAR_CACHE_SLIDE", default_value_t = VisitGranularity::ShareOfSession(defaults::NEAR_CACHE_SLIDE_SHARE))]
    pub near_cache_slide: VisitGranularity,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            prefix: defaults::REDIS_PREFIX.to_owned(),
            pool: defaults::REDIS_POOL,
            timeout: defaults::REDIS_TIMEOUT,
            tls_ca: None,
            near_cache: defaults::NEAR_CACHE,
            near_cache_entries: defaults::NEAR_CACHE_ENTRIES,
            near_cache_bytes: defaults::NEAR_CACHE_BYTES,
            near_cache_slide: VisitGranularity::ShareOfSession(defaults::NEAR_CACHE_SLIDE_SHARE),
        }
    }
}

impl RedisSettings {
    /// The near cache these settings ask for, if any.
    pub fn near(&self) -> Option<NearSettings> {
        self.near_cache.then_some(NearSettings {
            max_entries: self.near_cache_entries,
            max_bytes: self.near_cache_bytes,
            slide: self.near_cache_slide,
        })
    }

    /// A client of the Redis at `url` (connecting in the background).
    pub fn connect(&self, url: &Secret) -> Result<Redis, ConnectError> {
        Redis::connect_tls(
            url.expose(),
            &self.prefix,
            usize::from(self.pool),
            self.timeout,
            self.tls_ca.as_deref(),
        )
    }
}
