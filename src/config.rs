//! Settings of `wafer serve`: every one a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http::body::DEFAULT_MAX_BODY;
use crate::store::ConnectError;
use crate::store::embedded::DEFAULT_MAX_SESSIONS;
use crate::store::postgres::Postgres;
use crate::store::redis::{DEFAULT_PREFIX as DEFAULT_REDIS_PREFIX, Redis};
use crate::store::visit_granularity::VisitGranularity;
use crate::wechat::WechatClient;
use crate::wechat::client::{DEFAULT_API_BASE, WechatClientError};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A setting that must not reach a log: `{:?}` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The defaults, each written once: the flags show them, `Default` parses
/// them (a unit test checks both agree).
mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const MAX_CONNECTIONS: u32 = 4096;
    pub const HEADER_READ_TIMEOUT: &str = "30s";
    pub const IDLE_TIMEOUT: &str = "60s";
    pub const REDIS_POOL: u16 = 4;
    pub const REDIS_TIMEOUT: &str = "250ms";
    pub const DATABASE_POOL: u16 = 16;
    pub const DATABASE_TIMEOUT: &str = "2s";
    pub const VISIT_GRANULARITY: &str = "1%";
    pub const NEAR_CACHE_SLIDE: &str = "1%";
    pub const NEAR_CACHE_BYTES: &str = "1280MiB";
    pub const WECHAT_TIMEOUT: &str = "5s";
    pub const WECHAT_CONNECT_TIMEOUT: &str = "2s";
    pub const LOG: &str = "info";
}

/// A default duration; the constants above are checked by a unit test.
fn default_duration(text: &str) -> Duration {
    parse_duration(text).unwrap_or(Duration::from_secs(1))
}

/// Everything `wafer serve` can be told, in groups; each group builds the
/// client it configures, and every caller (serve, migrate, apps, the tests)
/// uses that constructor.
#[derive(Debug, Clone, Args, Default)]
pub struct Settings {
    /// The HTTP server.
    #[command(flatten)]
    pub http: HttpSettings,
    /// The Redis hot path.
    #[command(flatten)]
    pub redis: RedisSettings,
    /// The PostgreSQL record.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// WeChat's API.
    #[command(flatten)]
    pub wechat: WechatSettings,
    /// The admin API.
    #[command(flatten)]
    pub admin: AdminSettings,
    /// Login rate limits and the proxies trusted to name clients.
    #[command(flatten)]
    pub limits: LimitSettings,
    /// The embedded store.
    #[command(flatten)]
    pub embedded: EmbeddedSettings,
    /// Logging.
    #[command(flatten)]
    pub log: LogSettings,
}

/// The HTTP server: where it listens and what it lets a client hold.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to serve on.
    #[arg(long, env = "WAFER_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "WAFER_MAX_BODY", default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,

    /// Most connections served at once; further ones wait in the listen
    /// backlog until one closes. Keep it under the open-file limit
    /// (`ulimit -n`) less what the store pools use.
    #[arg(long, env = "WAFER_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Time a connection gets to send a whole request head: the first
    /// request of a new connection (whatever it sent, even nothing) and each
    /// later HTTP/1 request once its first byte arrived.
    #[arg(long, env = "WAFER_HEADER_READ_TIMEOUT", default_value = defaults::HEADER_READ_TIMEOUT, value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// An open connection with no request in flight is closed after this
    /// long without a new one (keep-alive idle time).
    #[arg(long, env = "WAFER_IDLE_TIMEOUT", default_value = defaults::IDLE_TIMEOUT, value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: defaults::LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            max_body: DEFAULT_MAX_BODY,
            max_connections: defaults::MAX_CONNECTIONS,
            header_read_timeout: default_duration(defaults::HEADER_READ_TIMEOUT),
            idle_timeout: default_duration(defaults::IDLE_TIMEOUT),
        }
    }
}

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
    #[arg(id = "redis_prefix", long = "redis-prefix", env = "WAFER_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX)]
    pub prefix: String,

    /// Multiplexed Redis connections (each pipelines many requests).
    #[arg(id = "redis_pool", long = "redis-pool", env = "WAFER_REDIS_POOL", default_value_t = defaults::REDIS_POOL, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub pool: u16,

    /// Time allowed for one Redis call before falling back to PostgreSQL.
    #[arg(id = "redis_timeout", long = "redis-timeout", env = "WAFER_REDIS_TIMEOUT", default_value = defaults::REDIS_TIMEOUT, value_parser = parse_duration)]
    pub timeout: Duration,

    /// PEM file of the CA that signed the Redis server's certificate (TLS
    /// is asked for by a `rediss://` URL); unset: the system's CAs.
    #[arg(id = "redis_tls_ca", long = "redis-tls-ca", env = "WAFER_REDIS_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// The near cache: hot sessions in process, kept true by Redis'
    /// invalidations (`CLIENT TRACKING`), so a repeated auth costs no
    /// round trip. `false` sends every auth to Redis.
    #[arg(long, env = "WAFER_NEAR_CACHE", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub near_cache: bool,

    /// Most sessions the near cache holds.
    #[arg(long, env = "WAFER_NEAR_CACHE_ENTRIES", default_value_t = crate::store::near::NearSettings::DEFAULT.max_entries, value_parser = clap::value_parser!(u64).range(1..))]
    pub near_cache_entries: u64,

    /// Most memory the near cache's sessions take (estimated): bytes, or
    /// with a unit (`256MiB`, `1GiB`).
    #[arg(long, env = "WAFER_NEAR_CACHE_BYTES", default_value = defaults::NEAR_CACHE_BYTES, value_parser = parse_bytes)]
    pub near_cache_bytes: u64,

    /// How often a session's last visit, slid in process by near-cache
    /// hits, reaches Redis: a share of its app's `session_duration`
    /// (`1%`, between 1 s and 5 min) or a fixed duration (`30s`). Apps whose
    /// `session_duration` is under ten times it are never served from the
    /// near cache.
    #[arg(long, env = "WAFER_NEAR_CACHE_SLIDE", default_value = defaults::NEAR_CACHE_SLIDE)]
    pub near_cache_slide: VisitGranularity,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            pool: defaults::REDIS_POOL,
            timeout: default_duration(defaults::REDIS_TIMEOUT),
            tls_ca: None,
            near_cache: true,
            near_cache_entries: crate::store::near::NearSettings::DEFAULT.max_entries,
            near_cache_bytes: parse_bytes(defaults::NEAR_CACHE_BYTES).unwrap_or(1280 << 20),
            near_cache_slide: defaults::NEAR_CACHE_SLIDE
                .parse()
                .unwrap_or(crate::store::near::NearSettings::DEFAULT.slide),
        }
    }
}

impl RedisSettings {
    /// The near cache these settings ask for, if any.
    pub fn near(&self) -> Option<crate::store::near::NearSettings> {
        self.near_cache.then_some(crate::store::near::NearSettings {
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
    #[arg(id = "database_timeout", long = "database-timeout", env = "WAFER_DATABASE_TIMEOUT", default_value = defaults::DATABASE_TIMEOUT, value_parser = parse_duration)]
    pub timeout: Duration,

    /// How often at most a session's last visit is written to PostgreSQL:
    /// a share of each app's session duration (`1%`, between 1 s and 6 h)
    /// or a fixed duration (`60s`). Sessions slide in Redis (on every auth,
    /// or on every near-cache slide);
    /// PostgreSQL's copy (what a Redis loss falls back on) lags by at most
    /// this plus one second.
    #[arg(long, env = "WAFER_VISIT_GRANULARITY", default_value = defaults::VISIT_GRANULARITY)]
    pub visit_granularity: VisitGranularity,

    /// PostgreSQL reads per second that Redis misses may cause, per
    /// instance (a session Redis lost is read once, then served from Redis
    /// again); past it a miss answers 503. Bounds what a flood of unknown
    /// session ids costs PostgreSQL; 0 = unbounded.
    #[arg(long, env = "WAFER_READ_THROUGH_LIMIT", default_value_t = crate::store::tiered::DEFAULT_READ_THROUGH_PER_SECOND)]
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
            timeout: default_duration(defaults::DATABASE_TIMEOUT),
            visit_granularity: defaults::VISIT_GRANULARITY
                .parse()
                .unwrap_or(VisitGranularity::DEFAULT),
            read_through_limit: crate::store::tiered::DEFAULT_READ_THROUGH_PER_SECOND,
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
            .map(|k| crate::store::sealed::DataKeys::parse(k.expose()))
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

/// WeChat's API.
#[derive(Debug, Clone, Args)]
pub struct WechatSettings {
    /// Where WeChat's API is (tests and load tests point it at the mock).
    #[arg(id = "wechat_api_base", long = "wechat-api-base", env = "WAFER_WECHAT_API_BASE", default_value = DEFAULT_API_BASE)]
    pub api_base: String,

    /// Total time allowed for one WeChat call (e.g. `5s`, `1500ms`).
    #[arg(id = "wechat_timeout", long = "wechat-timeout", env = "WAFER_WECHAT_TIMEOUT", default_value = defaults::WECHAT_TIMEOUT, value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time allowed to connect to WeChat (capped by the total timeout).
    #[arg(id = "wechat_connect_timeout", long = "wechat-connect-timeout", env = "WAFER_WECHAT_CONNECT_TIMEOUT", default_value = defaults::WECHAT_CONNECT_TIMEOUT, value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl Default for WechatSettings {
    fn default() -> Self {
        WechatSettings {
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: default_duration(defaults::WECHAT_TIMEOUT),
            connect_timeout: default_duration(defaults::WECHAT_CONNECT_TIMEOUT),
        }
    }
}

impl WechatSettings {
    /// The WeChat client these settings describe.
    pub fn client(&self) -> Result<WechatClient, WechatClientError> {
        WechatClient::new(&self.api_base, self.timeout, self.connect_timeout)
    }
}

/// Login rate limits (token buckets, refilled over a minute), off by
/// default: only the operator knows whether wafer sees its clients or a
/// proxy.
#[derive(Debug, Clone, Args, Default)]
pub struct LimitSettings {
    /// Logins per minute per client address (bursts of that size); 0 = off.
    #[arg(
        id = "login_limit_per_ip",
        long = "login-limit-per-ip",
        env = "WAFER_LOGIN_LIMIT_PER_IP",
        default_value_t = 0
    )]
    pub login_per_ip: u32,

    /// Logins per minute per app (bursts of that size); 0 = off.
    #[arg(
        id = "login_limit_per_app",
        long = "login-limit-per-app",
        env = "WAFER_LOGIN_LIMIT_PER_APP",
        default_value_t = 0
    )]
    pub login_per_app: u32,

    /// Comma-separated CIDRs of proxies whose `X-Forwarded-For` names the
    /// client (e.g. `10.0.0.0/8,127.0.0.1/32`); any other peer is the client.
    #[arg(
        id = "trusted_proxies",
        long = "trusted-proxies",
        env = "WAFER_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_net
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A CIDR, or a single address (as its /32 or /128).
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or a CIDR like 10.0.0.0/8"))
}

/// The admin API.
#[derive(Debug, Clone, Args, Default)]
pub struct AdminSettings {
    /// Bearer token of the admin API; unset turns the admin API off.
    #[arg(
        id = "admin_token",
        long = "admin-token",
        env = "WAFER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
}

/// The embedded store.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedSettings {
    /// Most sessions the embedded store holds; logins beyond answer 503.
    #[arg(id = "embedded_max_sessions", long = "embedded-max-sessions", env = "WAFER_EMBEDDED_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        EmbeddedSettings {
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log filter (`info`, `debug`, `wafer=debug,hyper=info`, …).
    #[arg(id = "log", long = "log", env = "WAFER_LOG", default_value = defaults::LOG)]
    pub filter: String,

    /// Log format.
    #[arg(
        id = "log_format",
        long = "log-format",
        env = "WAFER_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: defaults::LOG.to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// A size: bytes, or a number with `KiB`, `MiB` or `GiB`.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size like 268435456, 256MiB or 1GiB"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 268435456, 256MiB or 1GiB"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err("the size must be above zero".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{s}` is too large")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 5s or 1500ms: {e}"))?;
    if d.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        s: Settings,
    }

    /// Parses `args` as flags alone: every `env` is taken off the command
    /// first, so a `WAFER_*` variable in the environment (scripts/test sets
    /// `WAFER_GIT_COMMIT`, a developer may set any) cannot change the result.
    /// Tests run in parallel threads, so clearing the environment is no option.
    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|a| a.env(None::<&str>));
        let matches =
            command.try_get_matches_from(std::iter::once("wafer").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches).map(|c| c.s)
    }

    /// `(variable, default cell)` of each row of a settings table in `doc`.
    fn documented_defaults(doc: &str) -> Vec<(&str, &str)> {
        doc.lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let var = cells.next()?.strip_prefix("`WAFER_")?.strip_suffix('`')?;
                Some((var, cells.next()?))
            })
            .collect()
    }

    #[test]
    fn flags_parse_and_defaults_match() {
        // A flag sets its setting and no other: every other one keeps its
        // default (compared through Debug, which shows every setting).
        let parsed = parse(&["--wechat-timeout", "1500ms", "--max-body", "1024"]).unwrap();
        assert_eq!(parsed.wechat.timeout, Duration::from_millis(1500));
        assert_eq!(parsed.http.max_body, 1024);
        let mut want = Settings::default();
        want.wechat.timeout = Duration::from_millis(1500);
        want.http.max_body = 1024;
        assert_eq!(format!("{parsed:?}"), format!("{want:?}"));

        // Each flag's default is the one the settings tables document:
        // docs/api.md lists every setting, the README the common ones.
        let command = {
            use clap::CommandFactory;
            Cli::command()
        };
        let flag_default = |var: &str| {
            let env = format!("WAFER_{var}");
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == env.as_str()))
                .unwrap_or_else(|| panic!("no flag reads {env}"));
            let values: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            values.join(",")
        };
        let api = documented_defaults(include_str!("../docs/api.md"));
        let readme = documented_defaults(include_str!("../README.md"));
        for (doc, rows) in [("docs/api.md", &api), ("README.md", &readme)] {
            assert!(rows.len() >= 20, "{doc}: the settings table was not found");
            for (var, cell) in rows.iter().copied() {
                // "unset", "unset (system CAs)", "empty": no default value.
                let want = cell.split('`').nth(1).unwrap_or("");
                assert_eq!(flag_default(var), want, "{doc}: default of WAFER_{var}");
            }
        }
        // And docs/api.md leaves no setting out.
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                let var = env.trim_start_matches("WAFER_");
                assert!(
                    api.iter().any(|(v, _)| *v == var),
                    "{env} is missing from docs/api.md"
                );
            }
        }
    }

    #[test]
    fn default_impls_match_the_flag_defaults() {
        // Flags and Default read the same constants; this catches a constant
        // that does not parse (Default would fall back) and a field whose
        // Default forgot its constant. Compared through Debug, which shows
        // every setting; parsed without the environment, so it runs
        // whatever WAFER_* variables are set.
        let parsed = parse(&[]).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Settings::default()));
    }

    #[test]
    fn debug_hides_secrets() {
        let settings = parse(&[
            "--admin-token",
            "tok-123",
            "--database-url",
            "postgres://u:pw@h/db",
        ])
        .unwrap();
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("pw@"),
            "{shown}"
        );
        assert_eq!(settings.admin.token.unwrap().expose(), "tok-123");
    }

    #[test]
    fn the_near_cache_is_on_by_default_and_off_with_one_setting() {
        let on = parse(&[]).unwrap().redis;
        let near = on.near().expect("on by default");
        assert_eq!(near, crate::store::near::NearSettings::DEFAULT);
        let off = parse(&["--near-cache", "off"]).unwrap().redis;
        assert!(off.near().is_none());
        let sized = parse(&["--near-cache-bytes", "64MiB"]).unwrap().redis;
        assert_eq!(sized.near_cache_bytes, 64 << 20);
        for bad in ["0", "12XB", "MiB", "99999999999GiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes("1024"), Ok(1024));
    }

    #[test]
    fn bad_durations_are_refused() {
        assert!(parse(&["--wechat-timeout", "soon"]).is_err());
        assert!(parse(&["--wechat-timeout", "0s"]).is_err());
    }
}
