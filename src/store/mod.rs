//! Storage of apps and sessions: the implementations of the domain's ports
//! (`crate::domain::ports`). The embedded store keeps everything
//! in-process; the tiered store keeps sessions in Redis (with a near cache
//! in front) over PostgreSQL's durable records.

pub(crate) mod app_table;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod near;
pub(crate) mod periodic;
pub mod postgres;
pub(crate) mod record;
pub mod redis;
pub mod sealed;
pub mod tiered;
pub mod tls;
pub mod visit_granularity;
pub(crate) mod write_behind;

pub use embedded::EmbeddedStore;
pub use error::{Backend, Cause, ConnectError, SqlState, StoreError, StoreResult};
pub use tiered::TieredStore;
// The ports the stores implement, where the stores' users look for them.
pub use crate::domain::ports::{
    AppStore, AuditStore, BackendHealth, SessionStore, Store, StoreHealth, TokenStore,
};

/// One page out of `items`, fetched with one more than `limit`: the first
/// `limit`, and where the next page starts (the `key` of the page's last
/// item) when there was more.
pub(crate) fn split_page<T, K>(
    mut items: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(key);
    (items, next)
}
