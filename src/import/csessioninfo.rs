//! The original's `cSessionInfo` table: its live sessions.
//!
//! The original kept each skey in plain text; wafer keeps only its SHA-256.
//! Hashing on import is sound: an imported session checks exactly as it did
//! before, the stored hash is never weaker than the plain text it replaces,
//! and the session still ends at its original absolute limit (its
//! `create_time` is kept), so whatever the original's skeys were worth is
//! gone from the store within one `login_duration`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

use super::ImportError;
use super::batch::{self, Row, Table, UtcOffset};
use crate::clock::Timestamp;
use crate::domain::skey::SkeyHash;

/// Longest user_info wafer stores (the column's bound), in characters.
const USER_INFO_MAX: usize = 2048;
/// Longest skey and open_id accepted: far beyond what any version of the
/// original minted; a longer cell is not one of its rows.
const TEXT_MAX: usize = 256;

/// One session of the original, ready to be stored.
#[derive(Clone)]
pub struct ImportedSession {
    /// The original's id; its text form changes (32 hex digits become a
    /// hyphenated UUID), the value does not, so clients keep sending theirs.
    pub uuid: Uuid,
    /// WeChat open_id.
    pub open_id: String,
    /// The `unionId` of the user_info, when it has one.
    pub union_id: Option<String>,
    /// SHA-256 of the original's skey.
    pub skey_hash: SkeyHash,
    /// The WeChat session_key, for later decryption.
    pub session_key: String,
    /// The user_info as compact JSON of an object, when it was readable.
    pub user_info: Option<String>,
    /// Login time, as the original recorded it.
    pub create_time: Timestamp,
    /// Last valid check, as the original recorded it.
    pub last_visit: Timestamp,
}

impl std::fmt::Debug for ImportedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedSession")
            .field("uuid", &self.uuid)
            .field("open_id", &self.open_id)
            .field("create_time", &self.create_time)
            .field("last_visit", &self.last_visit)
            .finish_non_exhaustive()
    }
}

/// A row that cannot become a session (its user logs in again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Line in the file.
    pub line: usize,
    /// The column at fault.
    pub column: &'static str,
    /// What is wrong with it (never its content).
    pub why: &'static str,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {} {}", self.line, self.column, self.why)
    }
}

/// What a `cSessionInfo` export holds.
#[derive(Debug, Default)]
pub struct SessionRows {
    /// Rows that became sessions.
    pub sessions: Vec<ImportedSession>,
    /// Rows that did not.
    pub problems: Vec<RowProblem>,
    /// Sessions whose user_info was unreadable or too long, imported
    /// without it (the next login or decrypt brings it back).
    pub without_user_info: usize,
}

/// Reads a `cSessionInfo` export: a header line naming `uuid`, `skey`,
/// `open_id`, `session_key`, `create_time` and `last_visit_time`
/// (`user_info` when present). Times are Unix seconds or `DATETIME`s
/// written at `offset`.
pub fn parse_csessioninfo(
    text: &str,
    offset: Option<UtcOffset>,
) -> Result<SessionRows, ImportError> {
    let table = Table::parse(text)?;
    let columns = Columns::of(&table)?;
    let mut out = SessionRows::default();
    for row in table.rows() {
        match columns.session(row, offset) {
            Ok((session, user_info_kept)) => {
                out.without_user_info += usize::from(!user_info_kept);
                out.sessions.push(session);
            }
            Err((column, why)) => out.problems.push(RowProblem {
                line: row.line,
                column,
                why,
            }),
        }
    }
    Ok(out)
}

struct Columns {
    uuid: usize,
    skey: usize,
    open_id: usize,
    session_key: usize,
    create_time: usize,
    last_visit_time: usize,
    user_info: Option<usize>,
}

type Problem = (&'static str, &'static str);

impl Columns {
    fn of(table: &Table) -> Result<Self, ImportError> {
        let [
            uuid,
            skey,
            open_id,
            session_key,
            create_time,
            last_visit_time,
        ] = table.required([
            "uuid",
            "skey",
            "open_id",
            "session_key",
            "create_time",
            "last_visit_time",
        ])?;
        Ok(Columns {
            uuid,
            skey,
            open_id,
            session_key,
            create_time,
            last_visit_time,
            user_info: table.column("user_info"),
        })
    }

    /// The session of `row`, and whether a user_info it had was kept.
    fn session(
        &self,
        row: Row<'_>,
        offset: Option<UtcOffset>,
    ) -> Result<(ImportedSession, bool), Problem> {
        let text = |i: usize, name: &'static str| -> Result<&str, Problem> {
            let v = row.get(Some(i)).ok_or((name, "is empty"))?;
            if v.chars().count() > TEXT_MAX || v.chars().any(char::is_control) {
                return Err((name, "is not one the original wrote"));
            }
            Ok(v)
        };
        let uuid = Uuid::try_parse(text(self.uuid, "uuid")?)
            .map_err(|_| ("uuid", "is not a UUID (32 hex digits)"))?;
        let skey_hash = SkeyHash::of(text(self.skey, "skey")?);
        let open_id = text(self.open_id, "open_id")?.to_owned();
        let session_key = text(self.session_key, "session_key")?;
        if STANDARD.decode(session_key).map(|k| k.len()) != Ok(16) {
            return Err(("session_key", "is not 16 bytes of base64"));
        }
        let time = |i: usize, name: &'static str| {
            let cell = row.get(Some(i)).ok_or((name, "is empty"))?;
            batch::time(cell, offset).map_err(|why| (name, why))
        };
        let create_time = time(self.create_time, "create_time")?;
        // A visit is never before the login it belongs to.
        let last_visit = time(self.last_visit_time, "last_visit_time")?.max(create_time);
        let raw_info = row.get(self.user_info);
        let user_info = raw_info.and_then(user_info_object);
        let union_id = user_info.as_ref().and_then(|(_, union)| union.clone());
        let kept = raw_info.is_none() || user_info.is_some();
        Ok((
            ImportedSession {
                uuid,
                open_id,
                union_id,
                skey_hash,
                session_key: session_key.to_owned(),
                user_info: user_info.map(|(json, _)| json),
                create_time,
                last_visit,
            },
            kept,
        ))
    }
}

/// The user_info cell as compact JSON of an object, and its `unionId`. The
/// original stored JSON, some ports its base64; anything else, or too long
/// for wafer's column, is `None`.
fn user_info_object(cell: &str) -> Option<(String, Option<String>)> {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    let value = parse(cell).or_else(|| {
        let bytes = STANDARD.decode(cell.replace(['\n', '\r'], "")).ok()?;
        parse(std::str::from_utf8(&bytes).ok()?)
    })?;
    let object = value.as_object()?;
    let union_id = object
        .get("unionId")
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let json = value.to_string();
    (json.chars().count() <= USER_INFO_MAX).then_some((json, union_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const HEADER: &str =
        "id\tuuid\tskey\tcreate_time\tlast_visit_time\topen_id\tsession_key\tuser_info\n";

    fn one(row: &str, offset: Option<UtcOffset>) -> SessionRows {
        parse_csessioninfo(&format!("{HEADER}{row}\n"), offset).unwrap()
    }

    #[test]
    fn a_row_of_the_original_becomes_a_session() {
        let info = r#"{"openId":"o1","nickName":"Ann \"A\"","unionId":"u1"}"#;
        let rows = one(
            &format!(
                "7\t0f1e2d3c4b5a69788796a5b4c3d2e1f0\tplain-skey\t2017-07-14 10:40:00\t\
                 2017-07-14 11:40:00\to1\t{KEY}\t{}",
                info.replace('\\', "\\\\")
            ),
            Some("+08:00".parse().unwrap()),
        );
        assert!(rows.problems.is_empty(), "{:?}", rows.problems);
        let s = &rows.sessions[0];
        assert_eq!(
            s.uuid.hyphenated().to_string(),
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
        );
        assert!(s.skey_hash.matches(&SkeyHash::of("plain-skey")));
        assert_eq!(s.open_id, "o1");
        assert_eq!(s.union_id.as_deref(), Some("u1"));
        assert_eq!(s.create_time, Timestamp(1_500_000_000_000));
        assert_eq!(s.last_visit, Timestamp(1_500_003_600_000));
        let info: serde_json::Value =
            serde_json::from_str(s.user_info.as_deref().unwrap()).unwrap();
        assert_eq!(info["nickName"], "Ann \"A\"");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains("plain-skey"),
            "{shown}"
        );
    }

    #[test]
    fn base64_user_info_and_unix_times_are_read() {
        let info = STANDARD.encode(r#"{"nickName":"B"}"#);
        let rows = one(
            &format!(
                "1\t{}\tk\t1500000000\t1500000001\to2\t{KEY}\t{info}",
                Uuid::nil().simple()
            ),
            None,
        );
        let s = &rows.sessions[0];
        assert_eq!(s.user_info.as_deref(), Some(r#"{"nickName":"B"}"#));
        assert_eq!(s.union_id, None);
        assert_eq!(rows.without_user_info, 0);
    }

    #[test]
    fn unreadable_user_info_is_dropped_not_the_session() {
        let long = format!(r#"{{"x":"{}"}}"#, "y".repeat(USER_INFO_MAX));
        for info in ["not json", "[1,2]", long.as_str()] {
            let rows = one(
                &format!(
                    "1\t{}\tk\t1500000000\t1500000000\to\t{KEY}\t{info}",
                    Uuid::nil()
                ),
                None,
            );
            assert_eq!(rows.sessions.len(), 1, "{info}");
            assert_eq!(rows.sessions[0].user_info, None, "{info}");
            assert_eq!(rows.without_user_info, 1, "{info}");
        }
    }

    #[test]
    fn bad_rows_are_named_by_line_and_column_never_by_content() {
        let nil = Uuid::nil().simple();
        let cases = [
            (format!("1\tnot-a-uuid\tk\t1\t1\to\t{KEY}\tNULL"), "uuid"),
            (format!("1\t{nil}\tNULL\t1\t1\to\t{KEY}\tNULL"), "skey"),
            (format!("1\t{nil}\tk\t1\t1\t\t{KEY}\tNULL"), "open_id"),
            (
                format!("1\t{nil}\tk\t1\t1\to\tc2VjcmV0\tNULL"),
                "session_key",
            ),
            (
                format!("1\t{nil}\tk\t2017-07-14 10:40:00\t1\to\t{KEY}\tNULL"),
                "create_time",
            ),
            (
                format!("1\t{nil}\tk\t1\tsoon\to\t{KEY}\tNULL"),
                "last_visit_time",
            ),
        ];
        for (row, column) in cases {
            let rows = one(&row, None);
            assert!(rows.sessions.is_empty(), "{row}");
            let p = &rows.problems[0];
            assert_eq!((p.line, p.column), (2, column), "{row}");
            assert!(!p.to_string().contains("c2VjcmV0"), "{p}");
        }
        assert!(
            parse_csessioninfo("uuid\tskey\n", None).is_err(),
            "columns missing"
        );
    }

    #[test]
    fn a_visit_before_the_login_is_the_login() {
        let rows = one(
            &format!(
                "1\t{}\tk\t1500000000\t1400000000\to\t{KEY}\tNULL",
                Uuid::nil()
            ),
            None,
        );
        assert_eq!(rows.sessions[0].last_visit, rows.sessions[0].create_time);
    }
}
