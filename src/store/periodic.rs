//! Background work of a store: runs while the store lives, stops after it
//! is dropped (the task holds only a weak reference).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Runs `work` on `owner` every `period` (first after one period) until
/// `owner` is dropped. A slow run delays the next instead of bunching them.
pub fn spawn_every<T, F, Fut>(owner: &Arc<T>, period: Duration, work: F)
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak: Weak<T> = Arc::downgrade(owner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(owner) = weak.upgrade() else { return };
            work(owner).await;
        }
    });
}
