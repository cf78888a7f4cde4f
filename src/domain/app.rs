//! Mini-program apps: their settings, how requests name them, and the bounds
//! their fields must respect.

use std::borrow::Cow;

use crate::clock::Timestamp;

/// Numeric id of an app (the primary key of its record).
pub type AppId = i64;

/// Default `login_duration`, in days.
pub const DEFAULT_LOGIN_DURATION_DAYS: u32 = 30;
/// Default `session_duration`, in seconds.
pub const DEFAULT_SESSION_DURATION_SECS: u32 = 2_592_000;

const TITLE_CHARS: (usize, usize) = (1, 30);
const APPID_CHARS: (usize, usize) = (1, 200);
const SECRET_CHARS: (usize, usize) = (1, 300);
const LOGIN_DAYS: (u32, u32) = (1, 3650);
const SESSION_SECS: (u32, u32) = (1, 315_360_000);

/// One mini-program wafer serves.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// Numeric id.
    pub id: AppId,
    /// Human name.
    pub title: String,
    /// WeChat appid (`wx…`).
    pub appid: String,
    /// WeChat app secret; never leaves the server.
    pub secret: String,
    /// Absolute session limit, in days.
    pub login_duration: u32,
    /// Sliding session limit, in seconds.
    pub session_duration: u32,
    /// When the app was created.
    pub created_at: Timestamp,
    /// When the app was last changed.
    pub updated_at: Timestamp,
}

impl App {
    /// The session limits of this app.
    pub fn limits(&self) -> crate::domain::lifetime::Limits {
        crate::domain::lifetime::Limits::new(self.login_duration, self.session_duration)
    }
}

// Hand-written so that the secret can never reach a log through `{:?}`.
impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("title", &self.title)
            .field("appid", &self.appid)
            .field("secret", &"<redacted>")
            .field("login_duration", &self.login_duration)
            .field("session_duration", &self.session_duration)
            .finish()
    }
}

/// How a request names an app: by numeric id or by WeChat appid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRef<'a> {
    /// The numeric id.
    Id(AppId),
    /// The WeChat appid string.
    Appid(Cow<'a, str>),
}

impl Default for AppRef<'_> {
    /// Omitted means app 1, as in the original service.
    fn default() -> Self {
        AppRef::Id(1)
    }
}

impl<'a> AppRef<'a> {
    /// Reads an `app_id` given as text (a JSON string or a form field).
    ///
    /// Empty means the default app; digits are an id; anything that parses as
    /// another number (zero, negative, fractional) is invalid; everything else
    /// is taken as a WeChat appid.
    pub fn parse_text(text: Cow<'a, str>) -> Result<Self, &'static str> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(AppRef::default());
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<i64>() {
                Ok(0) => Err("app_id must be positive"),
                Ok(id) => Ok(AppRef::Id(id)),
                Err(_) => Err("app_id is out of range"),
            };
        }
        if t.parse::<f64>().is_ok() {
            return Err("app_id must be a positive integer");
        }
        Ok(AppRef::Appid(text))
    }

    /// Reads an `app_id` given as a JSON number.
    pub fn from_f64(n: f64) -> Result<Self, &'static str> {
        if n.fract() != 0.0 || n < 1.0 || n > i64::MAX as f64 {
            return Err("app_id must be a positive integer");
        }
        Ok(AppRef::Id(n as i64))
    }

    /// Reads an `app_id` given as a JSON integer.
    pub fn from_i128(n: i128) -> Result<Self, &'static str> {
        if n < 1 || n > i64::MAX as i128 {
            return Err("app_id must be a positive integer");
        }
        Ok(AppRef::Id(n as i64))
    }
}

/// A validation failure of an app's field, with a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

fn check_chars(field: &str, value: &str, (min, max): (usize, usize)) -> Result<(), FieldError> {
    // Control characters are never part of a title, an appid or a secret,
    // and PostgreSQL refuses NUL outright: refuse them here, as the
    // caller's mistake, before they reach a store.
    if value.chars().any(char::is_control) {
        return Err(FieldError(format!(
            "`{field}` must not contain control characters"
        )));
    }
    let n = value.chars().count();
    if n < min || n > max {
        return Err(FieldError(format!(
            "`{field}` must be {min} to {max} characters"
        )));
    }
    Ok(())
}

fn check_range(field: &str, value: u32, (min, max): (u32, u32)) -> Result<(), FieldError> {
    if value < min || value > max {
        return Err(FieldError(format!("`{field}` must be {min} to {max}")));
    }
    Ok(())
}

/// The fields of an app to create; defaults already applied.
#[derive(Clone)]
pub struct NewApp {
    /// Human name.
    pub title: String,
    /// WeChat appid.
    pub appid: String,
    /// WeChat app secret.
    pub secret: String,
    /// Absolute limit, days.
    pub login_duration: u32,
    /// Sliding limit, seconds.
    pub session_duration: u32,
}

impl NewApp {
    /// Checks every field against the bounds of the app table.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_chars("title", &self.title, TITLE_CHARS)?;
        check_chars("appid", &self.appid, APPID_CHARS)?;
        check_chars("secret", &self.secret, SECRET_CHARS)?;
        check_range("login_duration", self.login_duration, LOGIN_DAYS)?;
        check_range("session_duration", self.session_duration, SESSION_SECS)
    }
}

/// A change to some fields of an app.
#[derive(Clone, Default)]
pub struct AppPatch {
    /// New title.
    pub title: Option<String>,
    /// New appid.
    pub appid: Option<String>,
    /// New secret.
    pub secret: Option<String>,
    /// New absolute limit, days.
    pub login_duration: Option<u32>,
    /// New sliding limit, seconds.
    pub session_duration: Option<u32>,
}

impl AppPatch {
    /// Checks the fields that are present.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(v) = &self.title {
            check_chars("title", v, TITLE_CHARS)?;
        }
        if let Some(v) = &self.appid {
            check_chars("appid", v, APPID_CHARS)?;
        }
        if let Some(v) = &self.secret {
            check_chars("secret", v, SECRET_CHARS)?;
        }
        if let Some(v) = self.login_duration {
            check_range("login_duration", v, LOGIN_DAYS)?;
        }
        if let Some(v) = self.session_duration {
            check_range("session_duration", v, SESSION_SECS)?;
        }
        Ok(())
    }

    /// The app with this patch applied, stamped `now`.
    pub fn apply(&self, app: &App, now: Timestamp) -> App {
        App {
            id: app.id,
            title: self.title.clone().unwrap_or_else(|| app.title.clone()),
            appid: self.appid.clone().unwrap_or_else(|| app.appid.clone()),
            secret: self.secret.clone().unwrap_or_else(|| app.secret.clone()),
            login_duration: self.login_duration.unwrap_or(app.login_duration),
            session_duration: self.session_duration.unwrap_or(app.session_duration),
            created_at: app.created_at,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_app() -> NewApp {
        NewApp {
            title: "demo".into(),
            appid: "wx123".into(),
            secret: "s".into(),
            login_duration: DEFAULT_LOGIN_DURATION_DAYS,
            session_duration: DEFAULT_SESSION_DURATION_SECS,
        }
    }

    #[test]
    fn app_ref_from_text() {
        assert_eq!(AppRef::parse_text("".into()), Ok(AppRef::Id(1)));
        assert_eq!(AppRef::parse_text("42".into()), Ok(AppRef::Id(42)));
        assert_eq!(
            AppRef::parse_text("wx4f4bc4dec97d474b".into()),
            Ok(AppRef::Appid("wx4f4bc4dec97d474b".into()))
        );
        assert!(AppRef::parse_text("0".into()).is_err());
        assert!(AppRef::parse_text("-3".into()).is_err());
        assert!(AppRef::parse_text("1.5".into()).is_err());
        assert!(AppRef::parse_text("99999999999999999999".into()).is_err());
    }

    #[test]
    fn app_ref_from_numbers() {
        assert_eq!(AppRef::from_f64(3.0), Ok(AppRef::Id(3)));
        assert!(AppRef::from_f64(1.5).is_err());
        assert!(AppRef::from_f64(0.0).is_err());
        assert!(AppRef::from_i128(-1).is_err());
        assert_eq!(AppRef::from_i128(7), Ok(AppRef::Id(7)));
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(new_app().validate().is_ok());
        let mut a = new_app();
        a.title = "x".repeat(31);
        assert!(a.validate().is_err());
        a.title = "微".repeat(30); // counted in characters, not bytes
        assert!(a.validate().is_ok());
        a.login_duration = 3651;
        assert!(a.validate().is_err());
        a.login_duration = 1;
        a.session_duration = 0;
        assert!(a.validate().is_err());
        let p = AppPatch {
            secret: Some(String::new()),
            ..Default::default()
        };
        assert!(p.validate().is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let app = App {
            id: 1,
            title: "t".into(),
            appid: "wx".into(),
            secret: "topsecretvalue".into(),
            login_duration: 1,
            session_duration: 1,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        assert!(!format!("{app:?}").contains("topsecretvalue"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_app_id_is_read_or_refused(text in "\\PC{0,40}") {
            let _ = AppRef::parse_text(Cow::Owned(text));
        }

        #[test]
        fn positive_ids_round_trip_and_others_are_refused(n: i128) {
            let as_number = AppRef::from_i128(n);
            let as_text = AppRef::parse_text(Cow::Owned(n.to_string()));
            if n >= 1 && n <= i128::from(i64::MAX) {
                proptest::prop_assert_eq!(as_number, Ok(AppRef::Id(n as i64)));
                proptest::prop_assert_eq!(as_text, Ok(AppRef::Id(n as i64)));
            } else {
                proptest::prop_assert!(as_number.is_err());
                proptest::prop_assert!(as_text.is_err());
            }
        }
    }
}
