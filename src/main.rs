//! The `wafer` command: `wafer serve` runs the server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wafer::config::Settings;

/// wafer: the session server of WeChat mini-programs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(Box<Settings>),
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
            wafer::telemetry::init(&settings.log, settings.log_format);
            match wafer::startup::start(&settings).await {
                Ok(server) => {
                    server.run_until(shutdown_signal()).await;
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
    }
}
