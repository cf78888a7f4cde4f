//! The default of every setting, each written once. The flags show these
//! (`wafer serve --help`), the settings groups' `Default` impls build from
//! them, and the store's own defaults (`NearSettings::DEFAULT`, the tiered
//! store's `Intervals`) name them; a unit test checks the flags, the `Default`
//! impls and the settings tables of docs/api.md and the README agree.
//!
//! A leaf: it imports std alone, so any module may read it without a cycle.
//! Plain types only: a duration is a [`Duration`], a size is bytes, a
//! visit granularity's share is a fraction (`0.01` is the flag's `1%`).
//!
//! Settings with no default, unset unless given: `WAFER_REDIS_URL`,
//! `WAFER_REDIS_TLS_CA`, `WAFER_DATABASE_URL`, `WAFER_DATABASE_TLS_CA`,
//! `WAFER_DATA_KEYS`, `WAFER_ADMIN_TOKEN`, `WAFER_TRUSTED_PROXIES`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

// The HTTP server (`HttpSettings`).

/// `WAFER_LISTEN`: the loopback address, so a new install answers no one
/// but its own host until told where to listen.
pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// `WAFER_MAX_BODY`, bytes: 64 KiB, ample for what wafer is sent (a code,
/// an encrypted user_info, an app's fields); the cap bounds what one
/// request can make it buffer.
pub const MAX_BODY: usize = 64 * 1024;

/// `WAFER_MAX_CONNECTIONS`: connections served at once; more wait in the
/// listen backlog, so a flood of idle connections cannot take the file
/// descriptors of the ones being served. Keep it under `ulimit -n` less
/// the store pools.
pub const MAX_CONNECTIONS: u32 = 4096;

/// `WAFER_HEADER_READ_TIMEOUT`: time to send a request head (and for a new
/// connection to start its first request), so a client that sends nothing
/// or half a head cannot hold a connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `WAFER_IDLE_TIMEOUT`: keep-alive idle time of a connection with no
/// request in flight.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

// Redis and the near cache (`RedisSettings`).

/// `WAFER_REDIS_PREFIX`: prefix of every Redis key.
pub const REDIS_PREFIX: &str = "wafer:";

/// `WAFER_REDIS_POOL`: multiplexed connections; each pipelines many
/// requests, so a few suffice.
pub const REDIS_POOL: u16 = 4;

/// `WAFER_REDIS_TIMEOUT`: one Redis call; past it auth is served from
/// PostgreSQL, so a Redis that hangs costs an auth at most this.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// `WAFER_NEAR_CACHE`: the near cache is on; its answers are the same as
/// Redis', it only saves round trips.
pub const NEAR_CACHE: bool = true;

/// `WAFER_NEAR_CACHE_ENTRIES`: most sessions the near cache holds.
pub const NEAR_CACHE_ENTRIES: u64 = 1_000_000;

/// `WAFER_NEAR_CACHE_BYTES`: 1.25 GiB (shown `1280MiB`), what a million
/// copies of sessions with a ~330-byte user_info take (a copy costs its
/// text plus `COPY_OVERHEAD`, measured by `examples/near_bytes`); sessions
/// with larger ones are bounded by the bytes first.
pub const NEAR_CACHE_BYTES: u64 = 1280 << 20;

/// `WAFER_NEAR_CACHE_SLIDE` (`1%`): a share of each app's
/// `session_duration`, kept between 1 s and 5 min by the near cache. A
/// 30-day session's copy in Redis then lags its last visit by at most
/// 5 minutes, a one-hour session's by 36 s.
pub const NEAR_CACHE_SLIDE_SHARE: f64 = 0.01;

// PostgreSQL (`DatabaseSettings`).

/// `WAFER_DATABASE_POOL`: most PostgreSQL connections.
pub const DATABASE_POOL: u16 = 16;

/// `WAFER_DATABASE_TIMEOUT`: one PostgreSQL call; past it the request
/// answers 503.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// `WAFER_VISIT_GRANULARITY` (`1%`): a share of each app's
/// `session_duration`, kept between 1 s and 6 h. Relative, because the
/// cost of a fine granularity follows the sessions active per interval:
/// a fixed 60 s meant one row update per auth for sessions that come back
/// less often than once a minute.
pub const VISIT_GRANULARITY_SHARE: f64 = 0.01;

/// `WAFER_READ_THROUGH_LIMIT`, reads per second per instance: far above
/// what repopulating Redis after a flush needs per instance (each session
/// is read once, then served from Redis), far below what a flood of unknown
/// session ids would ask.
pub const READ_THROUGH_LIMIT: u32 = 2_000;

// WeChat (`WechatSettings`).

/// `WAFER_WECHAT_API_BASE`: WeChat's API (tests point it at the mock).
pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

/// `WAFER_WECHAT_TIMEOUT`: total time for one WeChat call.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// `WAFER_WECHAT_CONNECT_TIMEOUT`: time to connect to WeChat (capped by
/// the total).
pub const WECHAT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

// Login limits (`LimitSettings`).

/// `WAFER_LOGIN_LIMIT_PER_IP`, logins per minute: 0, off. Only the
/// operator knows whether wafer sees its clients or a proxy.
pub const LOGIN_LIMIT_PER_IP: u32 = 0;

/// `WAFER_LOGIN_LIMIT_PER_APP`, logins per minute: 0, off.
pub const LOGIN_LIMIT_PER_APP: u32 = 0;

// The embedded store (`EmbeddedSettings`).

/// `WAFER_EMBEDDED_MAX_SESSIONS`: most sessions the embedded store holds;
/// logins past it answer 503 rather than grow the process without bound.
pub const EMBEDDED_MAX_SESSIONS: usize = 1_000_000;

// Logging (`LogSettings`).

/// `WAFER_LOG`: the log filter; also what a filter that does not parse is
/// replaced by.
pub const LOG: &str = "info";

/// `WAFER_LOG_FORMAT`: `text` or `json`.
pub const LOG_FORMAT: &str = "text";

// The tiered store's background work (`Intervals`): no flag; tests
// shorten them.

/// Period of the write-behind flush of last visits to PostgreSQL.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Period of the app cache refresh: how fast another instance's change to
/// an app arrives.
pub const APPS_REFRESH_EVERY: Duration = Duration::from_millis(500);

/// Period of the PostgreSQL purge of expired sessions.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Period of the retry of Redis evictions that failed.
pub const REPAIR_EVERY: Duration = Duration::from_secs(1);

/// Rows deleted per purge statement: small, so the purge never holds many
/// row locks or a long transaction.
pub const PURGE_BATCH: i64 = 500;

/// Most sessions the write-behind buffer tracks.
pub const WRITE_BEHIND_CAP: usize = 2_000_000;
