//! Seeds sessions through real logins (with ~300 bytes of encrypted user
//! data each, as mini-programs send) and writes `uuid,skey` lines for the
//! load scripts. Used by loadtest/run.sh.
//!
//! cargo run --release --example seed -- --url http://127.0.0.1:8080 --appid wxload --n 100000 --out sessions.csv

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;

#[derive(Parser)]
struct Cli {
    /// wafer's base URL.
    #[arg(long)]
    url: String,
    /// The app's appid (the mock encrypts user data for it).
    #[arg(long)]
    appid: String,
    /// The app's numeric id.
    #[arg(long, default_value_t = 1)]
    app_id: i64,
    /// Sessions to create.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Logins in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinguishes the users of this run from earlier ones.
    #[arg(long, default_value = "seed")]
    tag: String,
    /// Where to write `uuid,skey` lines.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Arc::new(Cli::parse());
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..cli.concurrency)
        .map(|_| {
            let (cli, client, next) = (cli.clone(), client.clone(), next.clone());
            tokio::spawn(async move {
                let mut lines = Vec::new();
                let mut failures = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cli.n {
                        break;
                    }
                    let code = format!("{}-{i}.1", cli.tag);
                    let ud = wechat_mock::user_data_for(&cli.appid, &code);
                    let body = serde_json::json!({
                        "app_id": cli.app_id, "code": code,
                        "encrypt_data": ud.encrypted_data, "iv": ud.iv,
                    });
                    let reply = client
                        .post(format!("{}/mina/login", cli.url))
                        .json(&body)
                        .send()
                        .await;
                    let parsed: Option<serde_json::Value> = match reply {
                        Ok(r) if r.status().is_success() => r.json().await.ok(),
                        _ => None,
                    };
                    match parsed
                        .as_ref()
                        .map(|v| (&v["data"]["uuid"], &v["data"]["skey"]))
                    {
                        Some((serde_json::Value::String(u), serde_json::Value::String(s))) => {
                            lines.push(format!("{u},{s}"))
                        }
                        _ => failures += 1,
                    }
                }
                (lines, failures)
            })
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&cli.out)?);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (lines, failures) = w.await?;
        failed += failures;
        ok += lines.len();
        for l in lines {
            writeln!(out, "{l}")?;
        }
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {ok} sessions in {secs:.1} s ({:.0} logins/s), {failed} failures",
        ok as f64 / secs
    );
    if failed > 0 {
        return Err(format!("{failed} logins failed").into());
    }
    Ok(())
}
