//! The work that keeps the near cache true: Redis' invalidations applied,
//! copies in use fetched again after a change, tracking proven on by a
//! heartbeat, held-back slides written when due.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::Receiver;

use super::{Entry, FlushReason, Near, Tracking, TrackingEvent};
use crate::domain::app::AppRef;
use crate::domain::session::Credentials;

/// How often tracking is proven on every node. A connection lost without a
/// word (a partition) empties the cache at most this plus the Redis
/// timeout after it happened.
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// Dropped copies waiting to be fetched again; past it, they are not.
const REFILL_QUEUE: usize = 16_384;
/// Most copies fetched again at once.
const REFILL_BATCH: usize = 256;

impl Near {
    /// Starts the work that keeps the cache true: the events (changes,
    /// losses), the heartbeat and the slide writer. Each stops once the
    /// store is dropped.
    pub fn spawn(near: &Arc<Near>) {
        let mut events = near.tracked.events();
        let cache = near.cache.clone();
        let wake = near.wake.clone();
        let losses = near.losses.clone();
        let (refill, refills) = tokio::sync::mpsc::channel(REFILL_QUEUE);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    TrackingEvent::Invalidated(uuids) => {
                        for uuid in uuids {
                            if let Some(dropped) = cache.invalidate(uuid) {
                                // Full: the next auth fills it instead.
                                let _ = refill.try_send(dropped);
                            }
                        }
                    }
                    TrackingEvent::Lost(reason) => {
                        losses.fetch_add(1, Ordering::SeqCst);
                        // Dark already: nothing served to flush.
                        if cache.is_live() {
                            cache.stop_serving(reason);
                        }
                        wake.notify_one();
                    }
                }
            }
        });
        let weak = Arc::downgrade(near);
        tokio::spawn(refill_dropped(weak.clone(), refills));
        tokio::spawn(heartbeat(weak, near.wake.clone()));
        // Each slide is due within its interval after it became pending;
        // rounds often enough to write it then.
        let period = near.cache.settings().writer_period();
        crate::store::periodic::spawn_every(near, period, |near| async move {
            near.write_due_slides().await;
        });
    }
}

/// Fetches again (without writing) the copies in use that a change
/// dropped, a batch at a time: the answer says what the change was (a
/// slide changes nothing an auth answers; a removal or a new skey fills
/// nothing).
async fn refill_dropped(near: Weak<Near>, mut dropped: Receiver<Arc<Entry>>) {
    let mut batch = Vec::with_capacity(REFILL_BATCH);
    while dropped.recv_many(&mut batch, REFILL_BATCH).await > 0 {
        let Some(near) = near.upgrade() else { return };
        let near = &near;
        let apps = near.links.apps.load();
        let now = near.links.clock.now();
        let fetches = batch.drain(..).filter_map(|e| {
            let app = apps.get(&AppRef::Id(e.app))?;
            let creds = Credentials {
                uuid: e.uuid,
                skey_hash: e.skey_hash,
                app_id: e.app,
                limits: app.limits(),
                now,
            };
            let granularity = near.links.visit.for_session_ms(creds.limits.session_ms);
            let ticket = near.cache.ticket(&creds)?;
            Some(async move {
                // Fetched again, not for an auth: nothing to slide.
                let _ = near.fetch(ticket, &creds, granularity, false).await;
            })
        });
        futures::future::join_all(fetches).await;
    }
}

/// Turns tracking on when the cache is dark, proves it on every
/// [`HEARTBEAT`] while it serves, and samples the cache's size.
async fn heartbeat(near: Weak<Near>, wake: Arc<Notify>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        let Some(near) = near.upgrade() else { return };
        if near.closed.load(Ordering::SeqCst) {
            return;
        }
        let cache = &near.cache;
        // This instance's changes must reach Redis before its copies may be
        // trusted: none while the pool cannot write, or a failed write's
        // repair is pending.
        let writable = near.links.redis.is_connected() && (near.links.writes_settled)();
        if cache.is_live() {
            let found = if writable {
                near.tracked.check().await
            } else {
                Ok(Tracking::Off)
            };
            let reason = match found {
                Ok(Tracking::On) => None,
                _ if !writable => Some(FlushReason::WriteFailed),
                Ok(Tracking::Moved) => Some(FlushReason::Layout),
                Ok(Tracking::Off) | Err(_) => Some(FlushReason::Heartbeat),
            };
            if let Some(reason) = reason {
                cache.stop_serving(reason);
                // Turned on again on the new layout at once.
                near.wake.notify_one();
            }
        } else if writable {
            let losses = near.losses.load(Ordering::SeqCst);
            // Live only if no loss came while tracking was turned on (the
            // next heartbeat would catch it, but not at once).
            // And proven as the heartbeat proves it: tracking on on every
            // primary of the layout it was turned on for, each a primary (a
            // connection that came back to a demoted node turns tracking on
            // there just as well).
            let proven = near.tracked.enable().await.is_ok()
                && matches!(near.tracked.check().await, Ok(Tracking::On));
            if proven && near.losses.load(Ordering::SeqCst) == losses {
                // Everything from before tracking was (re)enabled is dropped.
                cache.start_serving();
                tracing::info!("near cache serving: Redis tracks the sessions' keys");
            }
        }
        cache.sizes();
    }
}
