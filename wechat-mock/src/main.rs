//! The WeChat mock as a program: `wechat-mock --listen 127.0.0.1:9100`.
//! See the library (`wechat_mock`) for the codes it understands.

use std::net::SocketAddr;

use clap::Parser;

/// A stand-in for WeChat's API (jscode2session, stable_token, getuserphonenumber, checksession).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to serve on.
    #[arg(long, env = "WECHAT_MOCK_LISTEN", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wechat-mock: cannot listen on {}: {e}", cli.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!("wechat-mock: serving WeChat's API on http://{}", cli.listen);
    tokio::select! {
        _ = wechat_mock::serve(listener) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    std::process::ExitCode::SUCCESS
}
