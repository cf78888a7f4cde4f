//! Settings of the HTTP server: where it listens and what it lets a client
//! hold.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::defaults;
use super::values::{duration_text, parse_duration};

/// The HTTP server: where it listens and what it lets a client hold.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to serve on.
    #[arg(long, env = "WAFER_LISTEN", default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "WAFER_MAX_BODY", default_value_t = defaults::MAX_BODY)]
    pub max_body: usize,

    /// Most connections served at once; further ones wait in the listen
    /// backlog until one closes. Keep it under the open-file limit
    /// (`ulimit -n`) less what the store pools use.
    #[arg(long, env = "WAFER_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Time a connection gets to send a whole request head: the first
    /// request of a new connection (whatever it sent, even nothing) and each
    /// later HTTP/1 request once its first byte arrived.
    #[arg(long, env = "WAFER_HEADER_READ_TIMEOUT", default_value = duration_text(defaults::HEADER_READ_TIMEOUT), value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// An open connection with no request in flight is closed after this
    /// long without a new one (keep-alive idle time).
    #[arg(long, env = "WAFER_IDLE_TIMEOUT", default_value = duration_text(defaults::IDLE_TIMEOUT), value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: defaults::LISTEN,
            max_body: defaults::MAX_BODY,
            max_connections: defaults::MAX_CONNECTIONS,
            header_read_timeout: defaults::HEADER_READ_TIMEOUT,
            idle_timeout: defaults::IDLE_TIMEOUT,
        }
    }
}
