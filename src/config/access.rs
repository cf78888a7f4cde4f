//! Settings of who may do what: the admin API's token, login rate limits,
//! and the proxies trusted to name clients.

use clap::Args;

use super::defaults;
use super::secret::Secret;
use super::values::parse_net;

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

/// Login rate limits (token buckets, refilled over a minute), off by
/// default: only the operator knows whether wafer sees its clients or a
/// proxy.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Logins per minute per client address (bursts of that size); 0 = off.
    #[arg(
        id = "login_limit_per_ip",
        long = "login-limit-per-ip",
        env = "WAFER_LOGIN_LIMIT_PER_IP",
        default_value_t = defaults::LOGIN_LIMIT_PER_IP
    )]
    pub login_per_ip: u32,

    /// Logins per minute per app (bursts of that size); 0 = off.
    #[arg(
        id = "login_limit_per_app",
        long = "login-limit-per-app",
        env = "WAFER_LOGIN_LIMIT_PER_APP",
        default_value_t = defaults::LOGIN_LIMIT_PER_APP
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

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            login_per_ip: defaults::LOGIN_LIMIT_PER_IP,
            login_per_app: defaults::LOGIN_LIMIT_PER_APP,
            trusted_proxies: Vec::new(),
        }
    }
}
