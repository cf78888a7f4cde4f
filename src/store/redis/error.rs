//! What a Redis failure is to the store: always Redis unavailable for the
//! call, with the kind of failure and none of its details.

use fred::prelude::Error as RedisError;

use crate::store::{Backend, Cause, StoreError};

impl From<RedisError> for StoreError {
    /// Any Redis failure makes Redis unavailable for this call (auth then
    /// falls back to PostgreSQL); the kind says why, the details (which can
    /// quote arguments) are not kept.
    fn from(e: RedisError) -> Self {
        use fred::error::ErrorKind;
        let cause = match e.kind() {
            ErrorKind::Timeout => Cause::Timeout,
            ErrorKind::IO | ErrorKind::Canceled => Cause::Closed,
            ErrorKind::Backpressure => Cause::PoolFull,
            ErrorKind::Config | ErrorKind::Url => Cause::NotConnected,
            _ => Cause::Refused,
        };
        StoreError::unavailable(Backend::Redis, cause)
    }
}

/// Redis has no connection up.
pub fn not_connected() -> StoreError {
    StoreError::unavailable(Backend::Redis, Cause::NotConnected)
}
