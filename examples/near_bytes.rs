//! What one near-cache copy costs in memory: fills a near cache with `--n`
//! sessions shaped like the load test's (a 28-character open_id and
//! union_id, a ~300-byte user_info), each accepted once (a slide pending,
//! as under load), and prints the process' RSS growth per copy next to the
//! weight the cache charges for it.
//!
//! cargo run --release --example near_bytes -- --n 1000000

use std::sync::Arc;

use clap::Parser;
use uuid::Uuid;
use wafer::clock::Timestamp;
use wafer::domain::session::{Credentials, Limits, Profile};
use wafer::domain::skey::SkeyHash;
use wafer::store::near::NearMetrics;
use wafer::store::near::{Entry, Lookup, NearCache, NearSettings};

/// The allocator of the `wafer` binary: RSS per copy is the allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    /// Copies to hold.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn main() {
    let cli = Cli::parse();
    let near = NearCache::new(
        NearSettings {
            max_entries: cli.n,
            max_bytes: cli.n * 4096,
            ..NearSettings::DEFAULT
        },
        NearMetrics::default(),
    );
    near.start_serving();
    let info = format!(
        r#"{{"nickName":"load","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132","watermark":{{"timestamp":1700000000,"appid":"wxload"}}}}"#,
        "Q".repeat(110)
    );
    let before = rss_bytes();
    let now = 1_800_000_000_000;
    for i in 0..cli.n {
        let uuid = Uuid::new_v4();
        let creds = Credentials {
            uuid,
            skey_hash: SkeyHash([7; 32]),
            app_id: 1,
            limits: Limits::new(30, 7_200),
            now: Timestamp(now),
        };
        let Some(ticket) = near.ticket(&creds) else {
            eprintln!("near_bytes: no ticket at {i}");
            return;
        };
        let profile = Arc::new(Profile {
            open_id: format!("oGZUI0egBJY1zhBYw2K{i:09}").into(),
            union_id: Some(format!("uGZUI0egBJY1zhBYw2K{i:09}").into()),
            user_info: Some(info.as_str().into()),
            phone_number: None,
        });
        let entry = Entry::new(uuid, 1, creds.skey_hash, 1, now, now, None, profile);
        near.fill(ticket, entry);
        let later = Credentials {
            now: Timestamp(now + 1_000),
            ..creds
        };
        if !matches!(near.lookup(&later), Lookup::Accept(_)) {
            eprintln!("near_bytes: copy {i} not served");
            return;
        }
    }
    let s = near.sizes();
    let after = rss_bytes();
    println!(
        "copies={} user_info_bytes={} rss_per_copy={} weight_per_copy={} slides_pending={}",
        s.entries,
        info.len(),
        after.saturating_sub(before) / s.entries.max(1),
        s.bytes / i64::try_from(s.entries.max(1)).unwrap_or(1),
        s.pending
    );
}
