//! Settings of logging: the filter and the line format.

use clap::{Args, ValueEnum};

use super::defaults;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogFormat {
    /// [`defaults::LOG_FORMAT`] (a unit test checks it names a format).
    fn default() -> Self {
        LogFormat::from_str(defaults::LOG_FORMAT, false).unwrap_or(LogFormat::Text)
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
        default_value = defaults::LOG_FORMAT
    )]
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: defaults::LOG.to_owned(),
            format: LogFormat::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_format_names_a_format() {
        assert!(LogFormat::from_str(defaults::LOG_FORMAT, false).is_ok());
    }
}
