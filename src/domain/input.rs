//! Requests as the domain accepts them: built from parsed fields, validated
//! on construction, so the rules live here and not in each wire format.

use std::borrow::Cow;

use crate::domain::app::AppRef;
use crate::domain::error::Error;

/// Longest login code accepted (WeChat's are 32 characters).
const MAX_CODE_LEN: usize = 512;

/// Empty strings count as absent for optional fields.
fn present<'a>(v: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    v.filter(|s| !s.is_empty())
}

/// Refuses a field with a NUL character: no valid value has one, and a
/// store (PostgreSQL) would refuse it later as a fault of its own.
pub(crate) fn no_nul(field: &'static str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::bad_request(match field {
            "code" => "field `code` must not contain NUL",
            "uuid" => "field `uuid` must not contain NUL",
            "skey" => "field `skey` must not contain NUL",
            "app_id" => "field `app_id` must not contain NUL",
            "encrypt_data" => "field `encrypt_data` must not contain NUL",
            "iv" => "field `iv` must not contain NUL",
            "raw_data" => "field `raw_data` must not contain NUL",
            "signature" => "field `signature` must not contain NUL",
            "open_id" => "`open_id` must not contain NUL",
            _ => "a field must not contain NUL",
        }));
    }
    Ok(())
}

fn app_has_no_nul(app: &AppRef<'_>) -> Result<(), Error> {
    match app {
        AppRef::Appid(appid) => no_nul("app_id", appid),
        AppRef::Id(_) => Ok(()),
    }
}

/// A validated `/mina/login` request.
#[derive(Debug)]
pub struct LoginInput<'a> {
    /// The `wx.login()` code.
    pub code: Cow<'a, str>,
    /// The app.
    pub app: AppRef<'a>,
    /// `encrypt_data` and its `iv`, when user data was sent.
    pub encrypted: Option<(Cow<'a, str>, Cow<'a, str>)>,
    /// `raw_data` and `signature`, when both were sent.
    pub signed: Option<(Cow<'a, str>, Cow<'a, str>)>,
}

/// The raw fields of a login request, as any wire format yields them.
#[derive(Debug, Default)]
pub struct LoginFields<'a> {
    /// `code`.
    pub code: Option<Cow<'a, str>>,
    /// `app_id`, already read.
    pub app: AppRef<'a>,
    /// `encrypt_data`.
    pub encrypt_data: Option<Cow<'a, str>>,
    /// `iv`.
    pub iv: Option<Cow<'a, str>>,
    /// `raw_data`.
    pub raw_data: Option<Cow<'a, str>>,
    /// `signature`.
    pub signature: Option<Cow<'a, str>>,
}

impl<'a> LoginInput<'a> {
    /// Validates the fields of a login request.
    pub fn new(f: LoginFields<'a>) -> Result<Self, Error> {
        let code = present(f.code).ok_or_else(|| Error::bad_request("field `code` is required"))?;
        no_nul("code", &code)?;
        app_has_no_nul(&f.app)?;
        for (field, value) in [
            ("encrypt_data", &f.encrypt_data),
            ("iv", &f.iv),
            ("raw_data", &f.raw_data),
            ("signature", &f.signature),
        ] {
            if let Some(v) = value {
                no_nul(field, v)?;
            }
        }
        if code.len() > MAX_CODE_LEN {
            return Err(Error::bad_request("field `code` is too long"));
        }
        let encrypted = match (present(f.encrypt_data), present(f.iv)) {
            (Some(data), Some(iv)) => Some((data, iv)),
            (Some(_), None) => {
                return Err(Error::bad_request(
                    "field `iv` is required with `encrypt_data`",
                ));
            }
            (None, _) => None,
        };
        let signed = match (present(f.raw_data), present(f.signature)) {
            (Some(raw), Some(sig)) => Some((raw, sig)),
            _ => None,
        };
        Ok(LoginInput {
            code,
            app: f.app,
            encrypted,
            signed,
        })
    }
}

/// A validated `/mina/auth` or `/mina/logout` request.
#[derive(Debug)]
pub struct AuthInput<'a> {
    /// The session id, as sent.
    pub uuid: Cow<'a, str>,
    /// The session secret, as sent.
    pub skey: Cow<'a, str>,
    /// The app.
    pub app: AppRef<'a>,
}

impl<'a> AuthInput<'a> {
    /// Validates the fields of an auth or logout request.
    pub fn new(
        uuid: Option<Cow<'a, str>>,
        skey: Option<Cow<'a, str>>,
        app: AppRef<'a>,
    ) -> Result<Self, Error> {
        let uuid = present(uuid).ok_or_else(|| Error::bad_request("field `uuid` is required"))?;
        let skey = present(skey).ok_or_else(|| Error::bad_request("field `skey` is required"))?;
        no_nul("uuid", &uuid)?;
        no_nul("skey", &skey)?;
        app_has_no_nul(&app)?;
        Ok(AuthInput { uuid, skey, app })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> LoginFields<'static> {
        LoginFields {
            code: Some("abc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn code_is_required_and_bounded() {
        assert!(LoginInput::new(LoginFields::default()).is_err());
        let mut f = fields();
        f.code = Some("".into());
        assert!(LoginInput::new(f).is_err(), "empty counts as absent");
        let mut f = fields();
        f.code = Some("x".repeat(513).into());
        assert!(LoginInput::new(f).is_err());
        assert!(LoginInput::new(fields()).is_ok());
    }

    #[test]
    fn empty_optionals_are_absent() {
        let mut f = fields();
        f.encrypt_data = Some("".into());
        f.iv = Some("".into());
        f.raw_data = Some("raw".into());
        f.signature = Some("".into());
        let input = LoginInput::new(f).unwrap();
        assert!(input.encrypted.is_none());
        assert!(
            input.signed.is_none(),
            "signature checked only when both are given"
        );
    }

    #[test]
    fn iv_goes_with_encrypt_data() {
        let mut f = fields();
        f.encrypt_data = Some("data".into());
        assert!(LoginInput::new(f).is_err());
    }

    #[test]
    fn nul_is_refused_in_every_field() {
        let mut f = fields();
        f.code = Some("a\0b".into());
        assert!(LoginInput::new(f).is_err());
        let mut f = fields();
        f.raw_data = Some("{}\0".into());
        assert!(LoginInput::new(f).is_err());
        let mut f = fields();
        f.app = AppRef::Appid("wx\0".into());
        assert!(LoginInput::new(f).is_err());
        assert!(AuthInput::new(Some("u\0".into()), Some("s".into()), AppRef::default()).is_err());
        assert!(AuthInput::new(Some("u".into()), Some("\0".into()), AppRef::default()).is_err());
    }

    #[test]
    fn auth_needs_uuid_and_skey() {
        assert!(AuthInput::new(Some("u".into()), None, AppRef::default()).is_err());
        assert!(AuthInput::new(None, Some("s".into()), AppRef::default()).is_err());
        assert!(AuthInput::new(Some("u".into()), Some("s".into()), AppRef::default()).is_ok());
    }
}
