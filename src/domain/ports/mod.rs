//! What the domain needs of storage, as narrow traits it owns: apps,
//! sessions, access tokens, the audit trail and the store's health. The
//! stores (`crate::store`) implement them; nothing here knows a backend.
//! Static dispatch throughout: the auth path stays free of allocations.

mod apps;
mod audit;
mod error;
mod health;
mod sessions;
mod tokens;

pub use apps::AppStore;
pub use audit::AuditStore;
pub use error::{Backend, Cause, SqlState, StoreError, StoreResult};
pub use health::{BackendHealth, StoreHealth};
pub use sessions::SessionStore;
pub use tokens::TokenStore;

/// Every port at once: what a whole store is (the embedded one, the tiered
/// one). Implemented for any type that implements them all.
pub trait Store: AppStore + SessionStore + TokenStore + AuditStore + StoreHealth {}

impl<T: AppStore + SessionStore + TokenStore + AuditStore + StoreHealth> Store for T {}
