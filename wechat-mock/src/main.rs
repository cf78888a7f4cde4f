//! The WeChat mock as a program: `wechat-mock --listen 127.0.0.1:9100 --app
//! wxdemo=demo-secret`. See the library (`wechat_mock`) for the codes it
//! understands.

use std::net::SocketAddr;

use clap::Parser;

/// A stand-in for WeChat's API (jscode2session, stable_token, getuserphonenumber, checksession).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to serve on.
    #[arg(long, env = "WECHAT_MOCK_LISTEN", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// An app WeChat knows, as APPID=SECRET (repeat the flag, or separate
    /// apps with commas). Any other appid is refused as WeChat refuses it
    /// (40013 invalid appid), a wrong secret too (40125 invalid appsecret).
    /// More can be added while it runs: POST /mock/apps?appid=…&secret=…
    #[arg(
        long = "app",
        env = "WECHAT_MOCK_APPS",
        value_name = "APPID=SECRET",
        value_delimiter = ',',
        value_parser = parse_app
    )]
    apps: Vec<(String, String)>,
}

/// `APPID=SECRET`, both non-empty. The error quotes neither part: the
/// secret may be a real one pasted by mistake.
fn parse_app(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((appid, secret)) if !appid.is_empty() && !secret.is_empty() => {
            Ok((appid.to_owned(), secret.to_owned()))
        }
        _ => Err("an app is APPID=SECRET, e.g. wxdemo=demo-secret".to_owned()),
    }
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
    let appids: Vec<&str> = cli.apps.iter().map(|(a, _)| a.as_str()).collect();
    if appids.is_empty() {
        eprintln!(
            "wechat-mock: no app registered: every login and token call answers 40013 \
             invalid appid until one is (--app APPID=SECRET, or POST /mock/apps?appid=…&secret=…)"
        );
    }
    eprintln!(
        "wechat-mock: serving WeChat's API on http://{} for apps [{}]",
        cli.listen,
        appids.join(", ")
    );
    tokio::select! {
        _ = wechat_mock::serve(listener, &cli.apps) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    std::process::ExitCode::SUCCESS
}
