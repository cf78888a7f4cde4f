//! Why a store could not be built from its settings; the errors of its
//! operations are the domain's ([`StoreError`], beside its ports).

pub use crate::domain::ports::{Backend, Cause, SqlState, StoreError, StoreResult};

/// Why a store client could not be built from its settings. Never quotes the
/// URL: it may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("{setting} is not a valid URL for its store")]
    InvalidUrl {
        /// The setting that holds it.
        setting: &'static str,
    },
    /// The client library refused the configuration.
    #[error("cannot configure the {} client", backend.label())]
    Pool {
        /// Which backend.
        backend: Backend,
    },
    /// The TLS settings of a store cannot be used.
    #[error("{setting}: {why}")]
    Tls {
        /// The setting at fault.
        setting: &'static str,
        /// What is wrong (never a secret: paths and reasons only).
        why: String,
    },
    /// `WAFER_DATA_KEYS` cannot be used.
    #[error(transparent)]
    DataKeys(#[from] crate::store::sealed::SealError),
}
