//! `mysql -B` output: a header line, then one row per line, cells separated
//! by tabs, with `\t`, `\n`, `\\` and `\0` escaped and `NULL` for null.

use std::time::{Duration, UNIX_EPOCH};

use super::ImportError;
use crate::clock::Timestamp;

/// A table read from `mysql -B` output.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    /// (line number, cells); `None` cells were `NULL`.
    rows: Vec<(usize, Vec<Option<String>>)>,
}

impl Table {
    /// Reads `text`. The header names are compared case-insensitively.
    pub fn parse(text: &str) -> Result<Table, ImportError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let header = lines
            .next()
            .ok_or_else(|| ImportError("the file is empty: expected a header line".into()))?
            .1
            .split('\t')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let rows = lines
            .map(|(i, line)| (i + 1, line.split('\t').map(cell).collect()))
            .collect();
        Ok(Table { header, rows })
    }

    /// The position of column `name`, if the header names it.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The positions of the columns every row needs, or an error naming
    /// them all.
    pub fn required<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], ImportError> {
        let found = names.map(|n| self.column(n));
        if found.iter().all(Option::is_some) {
            Ok(found.map(|c| c.unwrap_or_default()))
        } else {
            Err(ImportError(format!(
                "the header line must name the columns {}",
                names.join(", ")
            )))
        }
    }

    /// The rows: their line number in the file and their cells.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows
            .iter()
            .map(|(line, cells)| Row { line: *line, cells })
    }
}

/// One row of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Line number in the file (1-based; the header is line 1).
    pub line: usize,
    cells: &'a [Option<String>],
}

impl<'a> Row<'a> {
    /// Cell `i`, trimmed; `None` when `NULL`, empty or missing.
    pub fn get(&self, i: Option<usize>) -> Option<&'a str> {
        i.and_then(|i| self.cells.get(i))
            .and_then(|c| c.as_deref())
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

/// One cell: `NULL` is null; escapes undone.
fn cell(raw: &str) -> Option<String> {
    if raw == "NULL" {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// The offset from UTC of the clock that wrote a `DATETIME` column (MySQL
/// keeps no zone with it), as `+08:00`, `-05:30` or `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset {
    /// Seconds east of UTC.
    pub seconds: i32,
}

impl std::str::FromStr for UtcOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not an offset from UTC like +08:00, -05:30 or Z");
        if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
            return Ok(UtcOffset { seconds: 0 });
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if !(0..=14).contains(&h) || !(0..60).contains(&m) {
            return Err(bad());
        }
        Ok(UtcOffset {
            seconds: sign * (h * 3600 + m * 60),
        })
    }
}

/// A time cell: Unix seconds (what `UNIX_TIMESTAMP(col)` prints, possibly
/// with a fraction) or `YYYY-MM-DD HH:MM:SS[.fraction]` written at
/// `offset`. Without an offset a `DATETIME` is refused: guessing the zone
/// would shift every session's expiry by hours.
pub fn time(cell: &str, offset: Option<UtcOffset>) -> Result<Timestamp, &'static str> {
    if let Ok(secs) = cell.parse::<f64>() {
        if !(0.0..1e11).contains(&secs) {
            return Err("is out of range");
        }
        return Ok(Timestamp((secs * 1000.0) as i64));
    }
    let at = humantime::parse_rfc3339_weak(cell).map_err(|_| "is not a time")?;
    let offset = offset.ok_or("is a DATETIME: give --utc-offset (or export UNIX_TIMESTAMP)")?;
    let local = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let ms = i64::try_from(local.as_millis()).map_err(|_| "is out of range")?;
    Ok(Timestamp(ms - i64::from(offset.seconds) * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_unescaped_and_null_is_none() {
        let t = Table::parse("A\tb\n1\tNULL\na\\tb\\\\c\\nd\t\n").unwrap();
        assert_eq!(t.column("a"), Some(0));
        let rows: Vec<_> = t.rows().collect();
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].get(Some(1)), None, "NULL");
        assert_eq!(rows[1].get(Some(0)), Some("a\tb\\c\nd"));
        assert_eq!(rows[1].get(Some(1)), None, "empty");
        assert_eq!(rows[1].get(Some(7)), None, "missing");
        assert!(t.required(["a", "b"]).is_ok());
        let e = t.required(["a", "uuid"]).unwrap_err();
        assert!(e.0.contains("a, uuid"), "{e}");
    }

    #[test]
    fn offsets_parse_and_bound() {
        assert_eq!("+08:00".parse::<UtcOffset>().unwrap().seconds, 28_800);
        assert_eq!("-05:30".parse::<UtcOffset>().unwrap().seconds, -19_800);
        assert_eq!("Z".parse::<UtcOffset>().unwrap().seconds, 0);
        assert!("08:00".parse::<UtcOffset>().is_err());
        assert!("+25:00".parse::<UtcOffset>().is_err());
    }

    #[test]
    fn times_in_unix_seconds_or_local_datetimes() {
        let beijing = Some(UtcOffset { seconds: 28_800 });
        assert_eq!(time("1500000000", None), Ok(Timestamp(1_500_000_000_000)));
        assert_eq!(
            time("1500000000.250", None),
            Ok(Timestamp(1_500_000_000_250))
        );
        // 2017-07-14 10:40:00 in Beijing is 02:40:00 UTC.
        assert_eq!(
            time("2017-07-14 10:40:00", beijing),
            Ok(Timestamp(1_500_000_000_000))
        );
        assert!(
            time("2017-07-14 10:40:00", None).is_err(),
            "no zone, no guess"
        );
        assert!(time("yesterday", beijing).is_err());
        assert!(time("-5", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_export_is_read_or_refused(text in "\\PC{0,200}") {
            if let Ok(t) = Table::parse(&text) {
                for row in t.rows() {
                    let _ = row.get(Some(0));
                }
            }
        }

        #[test]
        fn escaped_cells_read_back(cell in "[^\\x00]{1,40}") {
            // What `mysql -B` writes for a cell.
            let escaped = cell
                .replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            let t = Table::parse(&format!("c\n{escaped}\n"));
            proptest::prop_assert!(t.is_ok());
            if let Ok(t) = t {
                let got = t.rows().next().and_then(|r| r.get(Some(0))).map(str::to_owned);
                let want = Some(cell.trim().to_owned()).filter(|c| !c.is_empty() && c != "NULL");
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
