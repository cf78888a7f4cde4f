//! The original's `cAppinfo` table: one row per mini-program.

use super::{ImportError, Table};
use crate::domain::app::{DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS, NewApp};

/// Reads `cAppinfo` rows (a header line naming at least `appid` and
/// `secret`; `login_duration` in days and `session_duration` in seconds
/// when present, as the original stored them). Every row is checked as
/// `wafer apps add` checks its arguments; one bad row refuses the file.
pub fn parse_cappinfo(text: &str) -> Result<Vec<NewApp>, ImportError> {
    let table = Table::parse(text)?;
    let [appid, secret] = table.required(["appid", "secret"])?;
    let (login, session) = (
        table.column("login_duration"),
        table.column("session_duration"),
    );
    let mut apps = Vec::new();
    for row in table.rows() {
        let number = |i: Option<usize>, name: &str, default: u32| -> Result<u32, ImportError> {
            match row.get(i) {
                None => Ok(default),
                Some(c) => c.parse().map_err(|_| {
                    ImportError(format!("line {}: {name} is not a whole number", row.line))
                }),
            }
        };
        let appid = row.get(Some(appid)).unwrap_or_default().to_owned();
        let new = NewApp {
            // The original had no title: the appid, cut to a title's length.
            title: appid.chars().take(30).collect(),
            secret: row.get(Some(secret)).unwrap_or_default().to_owned(),
            login_duration: number(login, "login_duration", DEFAULT_LOGIN_DURATION_DAYS)?,
            session_duration: number(session, "session_duration", DEFAULT_SESSION_DURATION_SECS)?,
            appid,
        };
        new.validate()
            .map_err(|e| ImportError(format!("line {} ({}): {}", row.line, new.appid, e.0)))?;
        apps.push(new);
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cappinfo_rows_become_apps() {
        let text = "appid\tsecret\tlogin_duration\tsession_duration\tqcloud_appid\n\
                    wx0123456789abcdef\ts3cret\t7\t3600\t125\n\
                    wxsecond\tother\tNULL\t\t\n";
        let apps = parse_cappinfo(text).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].appid, "wx0123456789abcdef");
        assert_eq!(apps[0].title, "wx0123456789abcdef");
        assert_eq!(
            (apps[0].login_duration, apps[0].session_duration),
            (7, 3600)
        );
        assert_eq!(
            (apps[1].login_duration, apps[1].session_duration),
            (DEFAULT_LOGIN_DURATION_DAYS, DEFAULT_SESSION_DURATION_SECS),
            "NULL and empty take the defaults"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        assert!(parse_cappinfo("").is_err());
        assert!(
            parse_cappinfo("id\tname\n1\tx\n").is_err(),
            "no appid/secret columns"
        );
        let Err(e) = parse_cappinfo("appid\tsecret\tlogin_duration\nwx1\ts3cr3t\tmany\n") else {
            panic!("a bad number is refused")
        };
        assert!(e.0.contains("line 2"), "{e}");
        assert!(!e.0.contains("s3cr3t"), "no cell content: {e}");
        let Err(e) = parse_cappinfo("appid\tsecret\nwx1\t\n") else {
            panic!("an empty secret is refused")
        };
        assert!(e.0.contains("secret"), "an empty secret: {e}");
    }
}
