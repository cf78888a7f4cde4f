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

    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::TestCaseError;

    /// A `mysql -B` export: its column names and rows (`None`: `NULL`),
    /// each row perhaps after a blank line.
    #[derive(Debug, Clone)]
    struct Export {
        header: Vec<String>,
        rows: Vec<(bool, Vec<Option<String>>)>,
    }

    /// A cell as `mysql -B` writes it.
    fn escape(cell: &Option<String>) -> String {
        match cell {
            None => "NULL".into(),
            Some(c) => c
                .replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\0', "\\0"),
        }
    }

    impl Export {
        /// The text, and the byte offset where each row's line ends (its
        /// newline).
        fn text(&self) -> (String, Vec<usize>) {
            let mut text = self.header.join("\t");
            text.push('\n');
            let mut ends = Vec::new();
            for (blank, cells) in &self.rows {
                if *blank {
                    text.push_str("  \n");
                }
                let line: Vec<String> = cells.iter().map(escape).collect();
                text.push_str(&line.join("\t"));
                ends.push(text.len());
                text.push('\n');
            }
            (text, ends)
        }

        /// Each row that is not blank (the parser skips lines of only
        /// whitespace): its line number and what `get` must give for each
        /// cell.
        fn expected_rows(&self) -> Vec<(usize, usize, Vec<Option<String>>)> {
            let mut line = 1;
            let mut out = Vec::new();
            for (i, (blank, cells)) in self.rows.iter().enumerate() {
                line += 1 + usize::from(*blank);
                let escaped: Vec<String> = cells.iter().map(escape).collect();
                if escaped.join("\t").trim().is_empty() {
                    continue;
                }
                let want = cells
                    .iter()
                    .map(|c| {
                        c.as_deref()
                            .filter(|c| *c != "NULL")
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned)
                    })
                    .collect();
                out.push((i, line, want));
            }
            out
        }
    }

    fn export() -> impl Strategy<Value = Export> {
        // Cells hold the characters `mysql -B` escapes, spaces to trim,
        // text that reads as NULL, and more than ASCII.
        let cell = proptest::prop_oneof![
            8 => proptest::option::of("[ -~\t\n\r\\x00é中]{0,12}"),
            1 => Just(Some("NULL".to_owned())),
        ];
        (1usize..6)
            .prop_flat_map(move |width| {
                (
                    proptest::collection::btree_set("[a-z][a-z0-9_]{0,8}", width),
                    proptest::collection::vec(proptest::arbitrary::any::<bool>(), width),
                    proptest::collection::vec(
                        (
                            proptest::arbitrary::any::<bool>(),
                            proptest::collection::vec(cell.clone(), width),
                        ),
                        0..8,
                    ),
                )
            })
            .prop_map(|(names, upper, rows)| Export {
                // Header names are read case-insensitively.
                header: names
                    .into_iter()
                    .zip(upper)
                    .map(|(n, up)| if up { n.to_ascii_uppercase() } else { n })
                    .collect(),
                rows,
            })
    }

    /// What is done to an export's text.
    #[derive(Debug, Clone)]
    enum Mutation {
        Nothing,
        /// A tab between two cells removed (row, tab; modulo): the cells
        /// join.
        DropTab(usize, usize),
        /// Text cut at a char boundary (modulo the length).
        Truncate(usize),
        /// Bytes replaced at a char boundary by characters that matter to
        /// the format: the rows before are read the same.
        Splice(usize, usize, String),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        use proptest::arbitrary::any;
        proptest::prop_oneof![
            2 => Just(Mutation::Nothing),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(r, t)| Mutation::DropTab(r, t)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => (any::<usize>(), 0usize..4, "[\t\n\\\\ a]{0,3}")
                .prop_map(|(at, n, s)| Mutation::Splice(at, n, s)),
        ]
    }

    /// The cells of `row` through `get`, one past the last.
    fn read_row(row: Row<'_>, width: usize) -> Vec<Option<String>> {
        (0..=width)
            .map(|i| row.get(Some(i)).map(str::to_owned))
            .collect()
    }

    /// Parses a mutated export and checks it against what the mutation must
    /// cause. Returns (rows read, cells holding a tab or a newline), so a
    /// test can see the tables are not all one cell.
    fn parse_mutated(e: &Export, m: &Mutation) -> Result<(usize, usize), TestCaseError> {
        use proptest::{prop_assert, prop_assert_eq};
        let width = e.header.len();
        let (mut text, ends) = e.text();
        let mut rows = e.expected_rows();
        // Rows whose line ends before this byte are read as written.
        let mut intact_before = usize::MAX;
        match m.clone() {
            Mutation::Nothing => {}
            Mutation::DropTab(r, t) if width > 1 && !e.rows.is_empty() => {
                let r = r % e.rows.len();
                let t = t % (width - 1);
                let line_start = ends[r]
                    - e.rows[r]
                        .1
                        .iter()
                        .map(|c| escape(c).len() + 1)
                        .sum::<usize>()
                    + 1;
                let tab = line_start
                    + e.rows[r].1[..=t]
                        .iter()
                        .map(|c| escape(c).len())
                        .sum::<usize>()
                    + t;
                prop_assert_eq!(text.as_bytes()[tab], b'\t');
                text.remove(tab);
                // The two cells join as written (`NULL` is then text).
                let cells = &e.rows[r].1;
                let joined = format!("{}{}", escape(&cells[t]), escape(&cells[t + 1]));
                let joined = (joined != "NULL").then(|| {
                    let raw = |c: &Option<String>| c.clone().unwrap_or_else(|| "NULL".into());
                    raw(&cells[t]) + &raw(&cells[t + 1])
                });
                let joined = joined
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned);
                if let Some(row) = rows.iter_mut().find(|(i, _, _)| *i == r) {
                    row.2.splice(t..=t + 1, [joined]);
                }
            }
            Mutation::DropTab(..) => {}
            Mutation::Truncate(at) | Mutation::Splice(at, ..) => {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                if let Mutation::Splice(_, n, with) = m {
                    let mut end = (at + n).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, with);
                } else {
                    text.truncate(at);
                }
                intact_before = at;
            }
        }
        let got = Table::parse(&text);
        if intact_before == usize::MAX {
            let t = got.map_err(|e| TestCaseError::fail(e.0))?;
            for (i, name) in e.header.iter().enumerate() {
                prop_assert_eq!(t.column(&name.to_ascii_lowercase()), Some(i));
            }
            prop_assert!(t.required(["no such column"]).is_err());
            let read: Vec<_> = t
                .rows()
                .map(|row| (row.line, read_row(row, width)))
                .collect();
            let want: Vec<_> = rows
                .into_iter()
                .map(|(_, line, mut cells)| {
                    cells.resize(width + 1, None);
                    (line, cells)
                })
                .collect();
            prop_assert_eq!(&read, &want);
            let multiline = read
                .iter()
                .flat_map(|(_, c)| c)
                .flatten()
                .filter(|c| c.contains(['\t', '\n']))
                .count();
            return Ok((read.len(), multiline));
        }
        // A mutated export: read or refused, and the rows whose lines come
        // before the change are read as written.
        let header_end = e.header.join("\t").len();
        match got {
            Err(_) => prop_assert!(
                text.trim().is_empty() || intact_before <= header_end,
                "refused: {text:?}"
            ),
            Ok(t) => {
                let intact: Vec<_> = rows
                    .into_iter()
                    .filter(|(i, _, _)| ends[*i] < intact_before)
                    .map(|(_, line, mut cells)| {
                        cells.resize(width + 1, None);
                        (line, cells)
                    })
                    .collect();
                let read: Vec<_> = t
                    .rows()
                    .take(intact.len())
                    .map(|row| (row.line, read_row(row, width)))
                    .collect();
                prop_assert_eq!(&read, &intact);
            }
        }
        Ok((0, 0))
    }

    #[test]
    fn generated_exports_have_many_cells() {
        // The property below means something only if its tables are not
        // all one cell: count rows and cells with a tab or a newline.
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut rows, mut wide, mut multiline) = (0, 0, 0);
        for _ in 0..500 {
            let e = export().new_tree(&mut runner).unwrap().current();
            let (r, m) = parse_mutated(&e, &Mutation::Nothing).unwrap();
            rows += r;
            multiline += m;
            wide += usize::from(e.header.len() > 1 && r > 1);
        }
        assert!(rows >= 1000, "{rows} rows");
        assert!(wide >= 200, "{wide} tables of several rows and columns");
        assert!(multiline >= 200, "{multiline} cells with a tab or newline");
    }

    proptest::proptest! {
        #[test]
        fn mutated_exports_are_read_as_written(e in export(), m in mutation()) {
            parse_mutated(&e, &m)?;
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
