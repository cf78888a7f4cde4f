//! How PostgreSQL's failures become [`StoreError`]s, and the small helpers
//! every statement uses to read its reply.

use tokio_postgres::Row;

use crate::store::{Backend, Cause, SqlState, StoreError, StoreResult};

impl From<tokio_postgres::Error> for StoreError {
    /// By the SQLSTATE's class: an outage is 503-worthy, anything else is a
    /// statement or data the server refused. The server's message is not
    /// kept: it can quote row values, which may be secrets.
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code().and_then(|c| SqlState::parse(c.code())) {
            Some(code) if code.is_outage() => {
                StoreError::unavailable(Backend::Postgres, Cause::Server(code))
            }
            Some(code) => StoreError::Rejected {
                backend: Backend::Postgres,
                code,
            },
            None if e.is_closed() => StoreError::unavailable(Backend::Postgres, Cause::Closed),
            // An I/O error under it: the connection, not the statement.
            None if std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
                StoreError::unavailable(Backend::Postgres, Cause::NotConnected)
            }
            // Encoding, decoding, row counts: wafer and the server disagree
            // on the data, which retrying will not fix.
            None => StoreError::Malformed {
                backend: Backend::Postgres,
                what: "the exchange with the server",
            },
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{PoolError, TimeoutType};
        let cause = match e {
            PoolError::Backend(e) => return e.into(),
            PoolError::Timeout(TimeoutType::Wait) => Cause::PoolFull,
            PoolError::Timeout(_) => Cause::Timeout,
            _ => Cause::NotConnected,
        };
        StoreError::unavailable(Backend::Postgres, cause)
    }
}

/// Turns one SQLSTATE into a domain answer, as `ON CONFLICT` would: a
/// unique violation into [`StoreError::Conflict`], say.
pub(super) trait OnSqlState<T> {
    fn on(self, state: &tokio_postgres::error::SqlState, then: StoreError) -> StoreResult<T>;
}

impl<T> OnSqlState<T> for Result<T, tokio_postgres::Error> {
    fn on(self, state: &tokio_postgres::error::SqlState, then: StoreError) -> StoreResult<T> {
        self.map_err(|e| {
            if e.code() == Some(state) {
                then
            } else {
                e.into()
            }
        })
    }
}

/// Column `idx` of `row`; a type or name mismatch (a schema wafer did not
/// migrate) is a malformed reply, not a panic.
pub(super) fn col<'a, T, I>(row: &'a Row, idx: I) -> StoreResult<T>
where
    T: tokio_postgres::types::FromSql<'a>,
    I: tokio_postgres::row::RowIndex + std::fmt::Display,
{
    row.try_get(idx).map_err(|_| StoreError::Malformed {
        backend: Backend::Postgres,
        what: "a column of its reply",
    })
}

/// What a call that outlived its bound answers.
pub(super) fn timed_out() -> StoreError {
    StoreError::unavailable(Backend::Postgres, Cause::Timeout)
}
