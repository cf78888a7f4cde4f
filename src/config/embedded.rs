//! Settings of the embedded store (no Redis, no PostgreSQL).

use clap::Args;

use super::defaults;

/// The embedded store.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedSettings {
    /// Most sessions the embedded store holds; logins beyond answer 503.
    #[arg(id = "embedded_max_sessions", long = "embedded-max-sessions", env = "WAFER_EMBEDDED_MAX_SESSIONS", default_value_t = defaults::EMBEDDED_MAX_SESSIONS)]
    pub max_sessions: usize,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        EmbeddedSettings {
            max_sessions: defaults::EMBEDDED_MAX_SESSIONS,
        }
    }
}
