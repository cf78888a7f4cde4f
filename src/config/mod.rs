//! Settings of `wafer serve`: every one a flag and an environment variable,
//! in groups (one file each); every default is in [`defaults`].
//!
//! Each group builds the client it configures, and every caller (serve,
//! migrate, apps, the tests) uses that constructor.

mod access;
mod database;
pub mod defaults;
mod embedded;
mod http;
mod log;
mod redis;
mod secret;
mod values;
mod wechat;

use clap::Args;

pub use access::{AdminSettings, LimitSettings};
pub use database::DatabaseSettings;
pub use embedded::EmbeddedSettings;
pub use http::HttpSettings;
pub use log::{LogFormat, LogSettings};
pub use redis::RedisSettings;
pub use secret::Secret;
pub use wechat::WechatSettings;

/// Everything `wafer serve` can be told, in groups.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let api = documented_defaults(include_str!("../../docs/api.md"));
        let readme = documented_defaults(include_str!("../../README.md"));
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
        // Flags and Default read the same constants; this catches a default
        // whose shown text does not read back to its constant, and a field
        // whose Default forgot its constant. Compared through Debug, which
        // shows every setting; parsed without the environment, so it runs
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
    fn the_store_defaults_are_the_flags() {
        use crate::store::tiered::TieredSettings;
        use crate::store::visit_granularity::VisitGranularity;
        // The store's defaults (built from the table) are what the flags
        // give when none is set.
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.database.visit_granularity, VisitGranularity::DEFAULT);
        assert_eq!(flags.redis.prefix, defaults::REDIS_PREFIX);
        let store = TieredSettings::default();
        assert_eq!(store.near, flags.redis.near());
        assert_eq!(store.visit, flags.database.visit_granularity);
        assert_eq!(
            store.read_through_per_second,
            flags.database.read_through_limit
        );
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
    }

    #[test]
    fn bad_durations_are_refused() {
        assert!(parse(&["--wechat-timeout", "soon"]).is_err());
        assert!(parse(&["--wechat-timeout", "0s"]).is_err());
    }
}
