//! Checks every session of a `uuid,skey` file once (`POST /mina/auth`) and
//! says how many were valid, refused (401: a session lost, if the file
//! holds only acknowledged logins) and failed otherwise (5xx, no answer).
//! Used by loadtest/faults.sh. Exits 1 when any session was refused, or,
//! with `--expect refused` (sessions revoked or logged out), when any was
//! accepted.
//!
//! cargo run --release --example check_sessions -- --url http://127.0.0.1:8080 --file sessions.csv

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;

#[derive(Parser)]
struct Cli {
    /// wafer's base URL.
    #[arg(long)]
    url: String,
    /// The app's numeric id.
    #[arg(long, default_value_t = 1)]
    app_id: i64,
    /// `uuid,skey` lines.
    #[arg(long)]
    file: std::path::PathBuf,
    /// Checks in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// What every session must be: `valid`, or `refused` (ended).
    #[arg(long, default_value = "valid", value_parser = ["valid", "refused"])]
    expect: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Arc::new(Cli::parse());
    let text = std::fs::read_to_string(&cli.file)?;
    let sessions: Arc<Vec<(String, String)>> = Arc::new(
        text.lines()
            .filter_map(|l| l.split_once(','))
            .map(|(u, s)| (u.to_owned(), s.to_owned()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let workers: Vec<_> = (0..cli.concurrency)
        .map(|_| {
            let (cli, sessions, next, client) =
                (cli.clone(), sessions.clone(), next.clone(), client.clone());
            tokio::spawn(async move {
                let (mut ok, mut refused, mut failed) = (0usize, 0usize, 0usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((uuid, skey)) = sessions.get(i) else {
                        break;
                    };
                    let body =
                        serde_json::json!({"app_id": cli.app_id, "uuid": uuid, "skey": skey});
                    match client
                        .post(format!("{}/mina/auth", cli.url))
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => ok += 1,
                        Ok(r) if r.status() == 401 => refused += 1,
                        _ => failed += 1,
                    }
                }
                (ok, refused, failed)
            })
        })
        .collect();
    let (mut ok, mut refused, mut failed) = (0, 0, 0);
    for w in workers {
        let (o, r, f) = w.await?;
        ok += o;
        refused += r;
        failed += f;
    }
    if cli.expect == "refused" {
        println!(
            "checked {} ended sessions: {refused} refused, {ok} accepted (stale), {failed} failed otherwise",
            sessions.len()
        );
        if ok > 0 {
            return Err(format!("{ok} ended sessions were accepted").into());
        }
        return Ok(());
    }
    println!(
        "checked {} sessions: {ok} valid, {refused} refused (lost), {failed} failed otherwise",
        sessions.len()
    );
    if refused > 0 {
        return Err(format!("{refused} acknowledged sessions were refused").into());
    }
    Ok(())
}
