//! The accept loop: TCP connections served by hyper (HTTP/1.1 keep-alive and
//! HTTP/2), at most `max_connections` at a time, each closed once it has
//! been idle too long, all drained gracefully on shutdown.
//!
//! hyper-util's header-read timeout covers only HTTP/1 requests; before it,
//! the auto builder waits without limit to tell HTTP/1 from HTTP/2, and an
//! idle keep-alive connection is never closed. So each connection gets a
//! watchdog of its own here: a connection with no request in flight is
//! closed when its first request has not started within the header-read
//! timeout, or when no new request started within the idle timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::HttpSettings;
use crate::http::Handler;
use crate::store::Store;

/// How long in-flight requests get to finish on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection gets to close politely (an HTTP/2 GOAWAY)
/// before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the server lets connections hold.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Most connections served at once.
    pub max_connections: u32,
    /// Time for a request head (and for a new connection's first request).
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
}

impl From<&HttpSettings> for ServerLimits {
    fn from(s: &HttpSettings) -> Self {
        ServerLimits {
            max_connections: s.max_connections,
            header_read_timeout: s.header_read_timeout,
            idle_timeout: s.idle_timeout,
        }
    }
}

/// A running HTTP server.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `handler` on an already bound listener.
    pub fn start<S: Store>(
        listener: TcpListener,
        handler: Arc<Handler<S>>,
        limits: ServerLimits,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, handler, limits, stopped));
        Ok(Server { addr, stop, task })
    }

    /// The address served on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to a bound), and
    /// returns when every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// When a connection last had nothing to do, and whether it has work now.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    // Milliseconds after `born` when the last request finished.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection is due to be closed for idleness, if it stays
    /// idle; `None` while a request is in flight.
    fn closes_at(&self, limits: &ServerLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let limit = if self.requests.load(Ordering::Relaxed) == 0 {
            limits.header_read_timeout
        } else {
            limits.idle_timeout
        };
        let idle_since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.born + idle_since + limit)
    }
}

/// A request being served; dropping it marks the connection idle again.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.idle_since_ms.store(ms, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop<S: Store>(
    listener: TcpListener,
    handler: Arc<Handler<S>>,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    // A permit per connection, taken before accepting: past the cap, new
    // connections wait in the listen backlog instead of taking file
    // descriptors from the ones being served.
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max as usize));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = {
            let (handler, activity) = (handler.clone(), activity.clone());
            service_fn(move |req| {
                let (handler, request) = (handler.clone(), activity.begin());
                async move {
                    // The peer is passed, not put in the request's
                    // extensions: that map is allocated on first insert.
                    let reply = handler.handle(req, Some(peer)).await;
                    drop(request);
                    Ok::<_, Infallible>(reply)
                }
            })
        };
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn = std::pin::pin!(conn);
            // Set once the connection was asked to close: past it, dropped.
            let mut hard_stop: Option<Instant> = None;
            loop {
                let wake = hard_stop
                    .or_else(|| activity.closes_at(&limits))
                    .unwrap_or_else(|| Instant::now() + limits.idle_timeout);
                tokio::select! {
                    done = conn.as_mut() => {
                        if let Err(e) = done {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    _ = stop.changed(), if hard_stop.is_none() => {
                        conn.as_mut().graceful_shutdown();
                        hard_stop = Some(Instant::now() + DRAIN_TIMEOUT);
                    }
                    _ = tokio::time::sleep_until(wake) => {
                        if hard_stop.is_some() {
                            return;
                        }
                        if activity.closes_at(&limits).is_some_and(|at| at <= Instant::now()) {
                            conn.as_mut().graceful_shutdown();
                            hard_stop = Some(Instant::now() + CLOSE_GRACE);
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a permit until it is closed: all permits back
    // means all connections drained.
    let drained =
        tokio::time::timeout(DRAIN_TIMEOUT + CLOSE_GRACE, permits.acquire_many(max)).await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}
