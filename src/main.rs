//! The `wafer` command: `wafer serve` runs the server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wafer::admin_cli::{AppsCommand, CliError, SessionsCommand, Stores};
use wafer::config::{DatabaseSettings, Settings};
use wafer::startup::Application;

/// mimalloc, not glibc's malloc: with the near cache turning over copies of
/// about a kilobyte, glibc's bin consolidation took an eighth of the
/// server's CPU (BENCHMARKS.md, "Near cache under churn").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// wafer: the session server of WeChat mini-programs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the HTTP API.
    Serve(Box<Settings>),
    /// Applies pending database migrations, then exits.
    Migrate(DatabaseSettings),
    /// Seals every app secret and session key under the first data key of
    /// WAFER_DATA_KEYS (plain ones and those of older keys), online.
    Rekey(DatabaseSettings),
    /// Manages apps, as the admin API does (audited; on Redis and PostgreSQL).
    Apps {
        #[command(flatten)]
        stores: Stores,
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// One user's session (show, revoke, check its session key at WeChat),
    /// or the import of the original wafer's sessions.
    Sessions {
        #[command(flatten)]
        stores: Stores,
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops wafer");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(settings) => {
            wafer::telemetry::init(&settings.log.filter, settings.log.format);
            match Application::build(&settings).await {
                Ok(app) => {
                    app.run_until(shutdown_signal()).await;
                    tracing::info!("wafer stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("wafer: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate(db) => {
            finish(wafer::admin_cli::migrate(&db, &mut std::io::stdout()).await)
        }
        Command::Rekey(db) => finish(wafer::admin_cli::rekey(&db, &mut std::io::stdout()).await),
        Command::Apps { stores, command } => {
            finish(wafer::admin_cli::apps(&stores, command, &mut std::io::stdout()).await)
        }
        Command::Sessions { stores, command } => {
            finish(wafer::admin_cli::sessions(&stores, command, &mut std::io::stdout()).await)
        }
    }
}

fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wafer: {e}");
            ExitCode::FAILURE
        }
    }
}
