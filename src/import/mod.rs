//! Reading the original wafer session server's MySQL tables, as
//! `mysql -B` prints them, for `wafer apps import` and
//! `wafer sessions import`.

mod batch;
mod cappinfo;
mod csessioninfo;

pub use batch::{Table, UtcOffset};
pub use cappinfo::parse_cappinfo;
pub use csessioninfo::{ImportedSession, parse_csessioninfo};

/// Why an export cannot be read at all. Row-level problems of a session
/// export are [`RowProblem`]s instead: one bad row does not stop the rest.
/// Messages name rows and columns, never a cell's content (cells hold
/// secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);
