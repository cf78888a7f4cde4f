//! The ceiling server of the load tests: what `/mina/auth` could cost at
//! best. `--redis URL --prefix P` parses the auth body and runs wafer's own
//! auth script by SHA on the session's key (one Redis round trip, nothing
//! else); without `--redis` it answers a fixed body (the bare hyper cost).
//!
//! cargo run --release --example ceiling -- --listen 127.0.0.1:9300 --redis redis://127.0.0.1:6379 --prefix wafer:

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use clap::Parser;
use fred::prelude::{Builder, ClientLike, Config, Pool, Value};
use fred::types::scripts::Script;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use wafer::clock::Timestamp;
use wafer::domain::session::{Credentials, Limits};
use wafer::domain::skey::SkeyHash;
use wafer::store::redis::{AUTH_SCRIPT, auth_args, session_keys};
use wafer::store::visit_granularity::VisitGranularity;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9300")]
    listen: SocketAddr,
    /// Redis URL; without it the server answers a fixed body.
    #[arg(long)]
    redis: Option<String>,
    #[arg(long, default_value = wafer::config::defaults::REDIS_PREFIX)]
    prefix: String,
    /// App id and limits passed to the script (those of the seeded app).
    #[arg(long, default_value_t = 1)]
    app_id: i64,
    #[arg(long, default_value_t = wafer::domain::app::DEFAULT_LOGIN_DURATION_DAYS)]
    login_days: u32,
    #[arg(long, default_value_t = wafer::domain::app::DEFAULT_SESSION_DURATION_SECS)]
    session_secs: u32,
}

#[derive(serde::Deserialize)]
struct Auth<'a> {
    uuid: &'a str,
    skey: &'a str,
}

struct State {
    pool: Option<Pool>,
    script: Script,
    cli: Cli,
}

const OK: &[u8] =
    br#"{"ok":"success","msg":"auth ok","data":{"user_info":null,"open_id":"x","union_id":null}}"#;
const FAIL: &[u8] = br#"{"ok":"fail","msg":"session invalid","error":"session_invalid"}"#;

/// Refusals logged so far (only the first few are).
static REFUSALS_LOGGED: AtomicU64 = AtomicU64::new(0);

fn reply(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body)));
    *r.status_mut() = status;
    r
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST, FAIL);
    };
    let Some(pool) = &state.pool else {
        return reply(StatusCode::OK, OK);
    };
    let Ok(auth) = serde_json::from_slice::<Auth>(&body) else {
        return reply(StatusCode::BAD_REQUEST, FAIL);
    };
    let Ok(uuid) = uuid::Uuid::parse_str(auth.uuid) else {
        return reply(StatusCode::UNAUTHORIZED, FAIL);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Exactly wafer's call: its key, its script, its arguments (with the
    // default visit granularity for these sessions).
    let creds = Credentials {
        uuid,
        skey_hash: SkeyHash::of(auth.skey),
        app_id: state.cli.app_id,
        limits: Limits::new(state.cli.login_days, state.cli.session_secs),
        now: Timestamp(now),
    };
    let key = session_keys(&state.cli.prefix, uuid);
    let granularity = VisitGranularity::DEFAULT.for_session_ms(creds.limits.session_ms);
    let args = auth_args(&creds, granularity);
    match state
        .script
        .evalsha_with_reload::<Value, _, _>(pool.next(), key, args)
        .await
    {
        // An accepted session answers its profile: an array.
        Ok(Value::Array(_)) => reply(StatusCode::OK, OK),
        // Refused (1), not in Redis (0) or an error: the first few are
        // logged with the session, so that a refusal the load should not
        // see (the load's sessions are all valid) can be looked into.
        other => {
            if REFUSALS_LOGGED.fetch_add(1, Ordering::Relaxed) < 20 {
                eprintln!("ceiling: session {uuid} refused: {other:?}");
            }
            reply(StatusCode::UNAUTHORIZED, FAIL)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let pool = match &cli.redis {
        Some(url) => {
            let pool = Builder::from_config(Config::from_url(url)?).build_pool(4)?;
            pool.init().await?;
            Some(pool)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    let state = Arc::new(State {
        pool,
        script: Script::from_lua(AUTH_SCRIPT),
        cli,
    });
    eprintln!("ceiling: serving on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
