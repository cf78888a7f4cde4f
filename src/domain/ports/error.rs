//! The error of every store port: what failed, in terms the domain can
//! branch on, and never a value from a request or a row (server messages
//! can quote both, so they are not kept).

use std::fmt;

crate::labels::labelled! {
    /// A storage backend; its label is its name in `/readyz` and the metrics.
    pub enum Backend {
        /// The in-process store.
        Embedded => "embedded",
        /// Redis, the hot path of the tiered store.
        Redis => "redis",
        /// PostgreSQL, the record of the tiered store.
        Postgres => "postgres",
    }
}

/// A five-character SQLSTATE (`23505`); its first two characters are the
/// class (`23`: integrity constraint violation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// From a server's code; `None` if it is not five ASCII characters.
    pub fn parse(code: &str) -> Option<Self> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        bytes.is_ascii().then_some(SqlState(bytes))
    }

    /// The class, the first two characters.
    pub fn class(&self) -> &str {
        std::str::from_utf8(&self.0[..2]).unwrap_or("??")
    }

    /// Whether the class means the server, not the statement, is in trouble:
    /// connection exceptions (08), transaction rollbacks such as deadlocks
    /// (40), insufficient resources (53), operator intervention such as a
    /// shutdown (57), system errors (58). Everything else is a fault of the
    /// statement or its data.
    pub fn is_outage(&self) -> bool {
        matches!(self.class(), "08" | "40" | "53" | "57" | "58")
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.0).unwrap_or("?????"))
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a backend could not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Cause {
    /// No answer within the configured timeout.
    #[error("timed out")]
    Timeout,
    /// The connection was closed under the call.
    #[error("connection closed")]
    Closed,
    /// No connection could be made, or none is up now.
    #[error("not connected")]
    NotConnected,
    /// Every pooled connection is busy and none freed up in time.
    #[error("pool exhausted")]
    PoolFull,
    /// The store holds as much as it is allowed to.
    #[error("full")]
    Full,
    /// The server refused for a reason of its own (an outage class).
    #[error("server error {0}")]
    Server(SqlState),
    /// The server refused in a way the client library names (Redis).
    #[error("server error")]
    Refused,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is down, slow or full: retrying later may work (503).
    #[error("{} unavailable: {cause}", backend.label())]
    Unavailable {
        /// Which backend.
        backend: Backend,
        /// Why.
        cause: Cause,
    },
    /// The backend refused the statement or its data: a bug or input that
    /// should have been refused earlier; retrying will not help (500).
    #[error("{} refused the request: sqlstate {code}", backend.label())]
    Rejected {
        /// Which backend.
        backend: Backend,
        /// The SQLSTATE.
        code: SqlState,
    },
    /// The backend answered something wafer cannot read (500).
    #[error("{} returned malformed data ({what})", backend.label())]
    Malformed {
        /// Which backend.
        backend: Backend,
        /// What was malformed (a column or value name, never its content).
        what: &'static str,
    },
    /// A uniqueness rule was violated (an app with that appid exists).
    #[error("conflict")]
    Conflict,
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// A sealed secret cannot be opened (or sealed) with the data keys
    /// (500); the reason names a key id, never a key or a value.
    #[error("{0}")]
    Sealed(String),
}

impl StoreError {
    /// `backend` is unavailable for `cause`.
    pub fn unavailable(backend: Backend, cause: Cause) -> Self {
        StoreError::Unavailable { backend, cause }
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_states_split_outages_from_data_errors() {
        let s = |c| SqlState::parse(c).unwrap();
        assert!(s("57P01").is_outage(), "admin shutdown");
        assert!(s("08006").is_outage(), "connection failure");
        assert!(s("53300").is_outage(), "too many connections");
        assert!(!s("22021").is_outage(), "bad byte sequence (NUL)");
        assert!(!s("23505").is_outage(), "unique violation");
        assert!(!s("42P01").is_outage(), "undefined table");
        assert!(SqlState::parse("2202").is_none());
    }

    #[test]
    fn messages_name_the_backend_and_cause_only() {
        let e = StoreError::unavailable(Backend::Redis, Cause::Timeout);
        assert_eq!(e.to_string(), "redis unavailable: timed out");
        let e = StoreError::Rejected {
            backend: Backend::Postgres,
            code: SqlState::parse("22021").unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "postgres refused the request: sqlstate 22021"
        );
    }
}
