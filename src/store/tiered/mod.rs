//! The production store: sessions served from Redis, recorded in PostgreSQL,
//! apps configured in PostgreSQL and cached in-process.
//!
//! Sessions go down a chain of one-way links, each holding only the next
//! one and its own write queue:
//!
//! ```text
//! near cache (store/near)  ──►  Redis (hot.rs)   ──►  PostgreSQL (record.rs)
//!   held-back slides              failed writes        last visits
//!                                 to repair            (write-behind)
//! ```
//!
//! - A login is answered after PostgreSQL committed it, then cached in Redis.
//! - An auth is one Redis script; a miss reads through to PostgreSQL and
//!   repopulates Redis; Redis down means auth is served from PostgreSQL.
//! - Removals leave a tombstone in Redis so no late writer resurrects them.
//! - A Redis write that fails after PostgreSQL committed queues the key for
//!   eviction, so Redis never keeps serving a stale copy once it is back.
//!
//! Beside the chain, parts of their own: the apps (`apps.rs`), access
//! tokens (`tokens.rs`, in Redis), the audit trail (`audit.rs`, in
//! PostgreSQL). [`TieredStore::start`] assembles them all.

mod apps;
mod audit;
mod health;
mod hot;
mod record;
mod sessions;
mod settings;
#[cfg(feature = "testing")]
mod testing;
mod tokens;
mod unknown;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::StoreResult;
use crate::store::metrics::StoreMetrics;
use crate::store::near::{Links, Near, NearCache, Tracked};
use crate::store::periodic::spawn_every;
use crate::store::postgres::Postgres;
use crate::store::redis::{self, Redis};

use apps::AppsCache;
use hot::HotLink;
use record::RecordLink;
pub use settings::TieredSettings;

/// How often each instance looks for changes no instance told Redis of:
/// with the removals' grace, a revoke made where Redis cannot be reached is
/// enforced everywhere within half a second. The look is one indexed read
/// of an empty set when all is well.
const OUTBOX_EVERY: Duration = Duration::from_millis(250);

/// Redis + PostgreSQL (and the near cache) behind the store ports.
pub struct TieredStore {
    near: Option<Arc<Near>>,
    hot: Arc<HotLink>,
    record: Arc<RecordLink>,
    apps: Arc<AppsCache>,
    settings: TieredSettings,
}

impl TieredStore {
    /// A store over these backends. Loads the apps (PostgreSQL must answer)
    /// and starts the background work, which stops when the store is dropped.
    pub async fn start(
        redis: Redis,
        pg: Postgres,
        clock: Arc<dyn Clock>,
        settings: TieredSettings,
        metrics: StoreMetrics,
    ) -> StoreResult<Arc<Self>> {
        let record = Arc::new(RecordLink::new(
            pg,
            metrics.clone(),
            settings.write_behind_cap,
        ));
        let apps = Arc::new(AppsCache::load(record.pg.clone()).await?);
        let hot = Arc::new(HotLink::new(
            redis,
            record.clone(),
            metrics.clone(),
            settings.read_through_per_second,
        ));
        let near = match settings.near {
            Some(near_settings) => {
                let tracked = Tracked::connect(&hot.redis).map_err(|_| redis::not_connected())?;
                let links = Links {
                    redis: hot.redis.clone(),
                    visits: record.visit_queue(),
                    apps: apps.table(),
                    clock: clock.clone(),
                    visit: settings.visit,
                    writes_settled: Box::new(hot.writes_settled()),
                };
                let near = Arc::new(Near::new(tracked, links, near_settings, metrics.near()));
                Near::spawn(&near);
                // Redis may hold what a failed write replaced: no copies
                // are trusted until the repair is through.
                let listener = Arc::downgrade(&near);
                hot.on_failed_write(Box::new(move || {
                    if let Some(near) = listener.upgrade() {
                        near.write_failed();
                    }
                }));
                Some(near)
            }
            None => None,
        };
        spawn_every(&record, settings.flush_every, |r| async move {
            r.flush_visits().await;
            r.mark_told(&[]).await;
        });
        spawn_every(&record, settings.purge_every, move |r| {
            let now = clock.now();
            async move { r.purge(now).await }
        });
        spawn_every(&hot, settings.repair_every, |h| async move {
            h.repair().await
        });
        spawn_every(&hot, OUTBOX_EVERY, |h| async move {
            h.tell_redis_what_it_missed().await
        });
        spawn_every(&apps, settings.apps_refresh_every, |a| async move {
            a.refresh().await
        });
        Ok(Arc::new(TieredStore {
            near,
            hot,
            record,
            apps,
            settings,
        }))
    }

    /// The near cache, when it is on.
    pub fn near_cache(&self) -> Option<&NearCache> {
        self.near.as_ref().map(|n| n.cache())
    }

    /// Waits up to `limit` until the near cache serves (tracking is on);
    /// `true` at once without a near cache.
    pub async fn wait_near_live(&self, limit: Duration) -> bool {
        let Some(near) = self.near_cache() else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + limit;
        while !near.is_live() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}
