//! Revocation latency between two wafer instances on one Redis: logs a user
//! in through A, makes B hold the session (two auths), then changes it
//! through A (an admin revoke, a re-login or a logout, in turn) and asks B
//! with the old skey until B refuses it. The time from A's answer to B's
//! first refusal is one sample; B must then keep refusing. Prints the
//! distribution and the number of stale accepts (an auth B accepted more
//! than `--stale-after` after the change, or after it had refused once).
//! Used by loadtest/run.sh; exits 1 on any stale accept.
//!
//! cargo run --release --example revocations -- --a http://127.0.0.1:18080 \
//!     --b http://127.0.0.1:18082 --token ADMIN --appid wxload --n 10000

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    /// The instance changes are made through.
    #[arg(long)]
    a: String,
    /// The instance that must refuse them.
    #[arg(long)]
    b: String,
    /// Admin token (for the revokes).
    #[arg(long)]
    token: String,
    /// The app's appid (codes are the mock's) and numeric id.
    #[arg(long)]
    appid: String,
    #[arg(long, default_value_t = 1)]
    app_id: i64,
    /// Changes measured.
    #[arg(long, default_value_t = 1_000)]
    n: usize,
    /// A tag making this run's users its own.
    #[arg(long, default_value = "rev")]
    tag: String,
    /// Past this, an accept of a changed session counts as stale.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    stale_after: Duration,
}

/// POSTs `body` to `url`; the status and the JSON answer.
async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    match client.post(url).json(&body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn pct(d: &[Duration], p: f64) -> Duration {
    d[((d.len() as f64 * p).ceil() as usize).clamp(1, d.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()?;
    let auth = |url: &str, uuid: &str, skey: &str| {
        post(
            &client,
            format!("{url}/mina/auth"),
            json!({"app_id": cli.app_id, "uuid": uuid, "skey": skey}),
        )
    };
    let login = |user: String, n: u32| {
        post(
            &client,
            format!("{}/mina/login", cli.a),
            json!({"app_id": cli.app_id, "code": format!("{user}.{n}")}),
        )
    };
    let kinds = ["revoke", "re-login", "logout"];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let (mut stale, mut failed) = (0usize, 0usize);
    let started = Instant::now();
    for i in 0..cli.n {
        let user = format!("{}-{i}", cli.tag);
        let (status, body) = login(user.clone(), 1).await;
        let (Some(uuid), Some(skey)) = (
            body["data"]["uuid"].as_str().map(str::to_owned),
            body["data"]["skey"].as_str().map(str::to_owned),
        ) else {
            eprintln!("login {i} failed: {status}");
            failed += 1;
            continue;
        };
        // B holds it: the first auth fills its near cache, the second is
        // answered from it.
        for _ in 0..2 {
            if auth(&cli.b, &uuid, &skey).await.0 != 200 {
                failed += 1;
            }
        }
        let kind = i % kinds.len();
        let done = match kind {
            0 => client
                .delete(format!("{}/admin/sessions/{uuid}", cli.a))
                .bearer_auth(&cli.token)
                .send()
                .await
                .map(|r| r.status().as_u16() == 204)
                .unwrap_or(false),
            1 => login(user, 2).await.0 == 200,
            _ => {
                post(
                    &client,
                    format!("{}/mina/logout", cli.a),
                    json!({"app_id": cli.app_id, "uuid": uuid, "skey": skey}),
                )
                .await
                .0 == 200
            }
        };
        if !done {
            eprintln!("change {i} ({}) failed", kinds[kind]);
            failed += 1;
            continue;
        }
        let changed = Instant::now();
        loop {
            match auth(&cli.b, &uuid, &skey).await.0 {
                401 => break,
                200 if changed.elapsed() > cli.stale_after => {
                    stale += 1;
                    break;
                }
                200 => {}
                _ => {
                    failed += 1;
                    break;
                }
            }
        }
        samples[kind].push(changed.elapsed());
        for _ in 0..3 {
            if auth(&cli.b, &uuid, &skey).await.0 == 200 {
                stale += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = samples.iter().flatten().copied().collect();
    all.sort();
    for s in &mut samples {
        s.sort();
    }
    let line = |name: &str, d: &[Duration]| {
        if d.is_empty() {
            return format!("{name}: none");
        }
        format!(
            "{name}: n={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
            d.len(),
            pct(d, 0.5).as_micros(),
            pct(d, 0.9).as_micros(),
            pct(d, 0.99).as_micros(),
            pct(d, 0.999).as_micros(),
            d[d.len() - 1].as_micros()
        )
    };
    println!("{}", line("revocation_latency", &all));
    for (k, s) in kinds.iter().zip(&samples) {
        println!("{}", line(&format!("  {k}"), s));
    }
    println!(
        "revocations: {} changes in {:.1}s, stale_accepts={stale} failed={failed}",
        all.len(),
        elapsed.as_secs_f64()
    );
    if stale > 0 {
        return Err(format!("{stale} stale accepts").into());
    }
    Ok(())
}
