//! Settings of `wafer serve`: every one a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http::body::DEFAULT_MAX_BODY;
use crate::store::embedded::DEFAULT_MAX_SESSIONS;
use crate::store::redis::DEFAULT_PREFIX as DEFAULT_REDIS_PREFIX;
use crate::wechat::client::DEFAULT_API_BASE;

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

/// Everything `wafer serve` can be told.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to serve on.
    #[arg(long, env = "WAFER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Redis (or Redis Cluster) URL for the session hot path.
    #[arg(long, env = "WAFER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// PostgreSQL URL for durable sessions and apps.
    #[arg(long, env = "WAFER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Prefix of every Redis key, so deployments can share a Redis.
    #[arg(long, env = "WAFER_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,

    /// Multiplexed Redis connections (each pipelines many requests).
    #[arg(long, env = "WAFER_REDIS_POOL", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub redis_pool: u16,

    /// Time allowed for one Redis call before falling back to PostgreSQL.
    #[arg(long, env = "WAFER_REDIS_TIMEOUT", default_value = "250ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// Most PostgreSQL connections.
    #[arg(long, env = "WAFER_DATABASE_POOL", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub database_pool: u16,

    /// Time allowed for one PostgreSQL call before answering 503.
    #[arg(long, env = "WAFER_DATABASE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub database_timeout: Duration,

    /// How often at most a session's last visit is written to PostgreSQL.
    /// Sessions slide in Redis on every auth; PostgreSQL's copy (what a
    /// Redis loss falls back on) lags by at most this plus one second.
    /// Coarser means far fewer PostgreSQL writes under load.
    #[arg(long, env = "WAFER_VISIT_GRANULARITY", default_value = "1s", value_parser = parse_duration)]
    pub visit_granularity: Duration,

    /// Where WeChat's API is (tests and load tests point it at the mock).
    #[arg(long, env = "WAFER_WECHAT_API_BASE", default_value = DEFAULT_API_BASE)]
    pub wechat_api_base: String,

    /// Total time allowed for one WeChat call (e.g. `5s`, `1500ms`).
    #[arg(long, env = "WAFER_WECHAT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub wechat_timeout: Duration,

    /// Time allowed to connect to WeChat (capped by the total timeout).
    #[arg(long, env = "WAFER_WECHAT_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub wechat_connect_timeout: Duration,

    /// Bearer token of the admin API; unset turns the admin API off.
    #[arg(long, env = "WAFER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Log filter (`info`, `debug`, `wafer=debug,hyper=info`, …).
    #[arg(long, env = "WAFER_LOG", default_value = "info")]
    pub log: String,

    /// Log format.
    #[arg(long, env = "WAFER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "WAFER_MAX_BODY", default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,

    /// Most sessions the embedded store holds; logins beyond answer 503.
    #[arg(long, env = "WAFER_EMBEDDED_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS)]
    pub embedded_max_sessions: usize,
}

impl Default for Settings {
    /// The documented defaults, without reading the environment.
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_url: None,
            database_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            redis_pool: 4,
            redis_timeout: Duration::from_millis(250),
            database_pool: 16,
            database_timeout: Duration::from_secs(2),
            visit_granularity: Duration::from_secs(1),
            wechat_api_base: DEFAULT_API_BASE.to_owned(),
            wechat_timeout: Duration::from_secs(5),
            wechat_connect_timeout: Duration::from_secs(2),
            admin_token: None,
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            max_body: DEFAULT_MAX_BODY,
            embedded_max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Settings of the commands that work on the database alone
/// (`wafer migrate`, `wafer apps …`).
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL.
    #[arg(long, env = "WAFER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    /// Time allowed for one PostgreSQL call.
    #[arg(long, env = "WAFER_DATABASE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub database_timeout: Duration,
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

    #[test]
    fn flags_parse_and_defaults_match() {
        let cli =
            Cli::try_parse_from(["wafer", "--wechat-timeout", "1500ms", "--max-body", "1024"])
                .unwrap();
        assert_eq!(cli.s.wechat_timeout, Duration::from_millis(1500));
        assert_eq!(cli.s.max_body, 1024);
        let d = Settings::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(d.max_body, 65536);
    }

    #[test]
    fn debug_hides_secrets() {
        let cli = Cli::try_parse_from([
            "wafer",
            "--admin-token",
            "tok-123",
            "--database-url",
            "postgres://u:pw@h/db",
        ])
        .unwrap();
        let shown = format!("{:?}", cli.s);
        assert!(
            !shown.contains("tok-123") && !shown.contains("pw@"),
            "{shown}"
        );
        assert_eq!(cli.s.admin_token.unwrap().expose(), "tok-123");
    }

    #[test]
    fn bad_durations_are_refused() {
        assert!(Cli::try_parse_from(["wafer", "--wechat-timeout", "soon"]).is_err());
        assert!(Cli::try_parse_from(["wafer", "--wechat-timeout", "0s"]).is_err());
    }
}
