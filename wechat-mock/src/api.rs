//! The APIs that need an access token, and the token itself:
//! `/cgi-bin/stable_token`, `/wxa/business/getuserphonenumber` and
//! `/wxa/checksession`, with the rules WeChat documents.
//!
//! - `stable_token` in normal mode answers the current token until the last
//!   part of its life (5 minutes, or half its life when it is shorter), then
//!   a new one; the old one stays valid until it expires. `force_refresh`
//!   revokes the current token and issues a new one, at most once per 30 s
//!   per app (a second force within 30 s answers the current token).
//! - A test can revoke a token as WeChat does when it finds one leaked
//!   ([`crate::Mock::invalidate_token`]): APIs then answer 40001 for it, and
//!   normal mode keeps answering it: only a forced refresh replaces it.
//! - Token lifetime: 7200 s unless set ([`crate::Mock::set_token_lifetime`]).
//! - Phone codes are single-use. Codes `err-<n>` answer errcode n.
//! - `checksession` checks `hmac_sha256(key = session_key, message = "")`
//!   against the session key the user's latest `jscode2session` answered.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{digest, user_of};

/// How often an app's tokens were asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCalls {
    /// Normal-mode calls.
    pub normal: u64,
    /// `force_refresh` calls.
    pub forced: u64,
}

struct Issued {
    appid: String,
    expires: Instant,
    revoked: bool,
}

#[derive(Default)]
struct AppTokens {
    current: Option<String>,
    last_forced: Option<Instant>,
    calls: TokenCalls,
}

struct Inner {
    lifetime: Duration,
    serial: u64,
    apps: HashMap<String, AppTokens>,
    issued: HashMap<String, Issued>,
    used_phone_codes: HashSet<String>,
    phone_calls: HashMap<String, u64>,
    /// The session key of each (appid, openid)'s latest login.
    session_keys: HashMap<(String, String), String>,
}

/// The mock's state for these APIs.
pub(crate) struct Api(Mutex<Inner>);

impl Default for Api {
    fn default() -> Self {
        Api(Mutex::new(Inner {
            lifetime: Duration::from_secs(7200),
            serial: 0,
            apps: HashMap::new(),
            issued: HashMap::new(),
            used_phone_codes: HashSet::new(),
            phone_calls: HashMap::new(),
            session_keys: HashMap::new(),
        }))
    }
}

/// A reply: the JSON body (WeChat answers 200 for its errors).
pub(crate) type Json = serde_json::Value;

fn error(code: i64, msg: &str) -> Json {
    serde_json::json!({"errcode": code, "errmsg": msg})
}

const FORCE_INTERVAL: Duration = Duration::from_secs(30);

impl Api {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut inner)
    }

    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        self.with(|i| i.lifetime = lifetime.max(Duration::from_secs(1)));
    }

    pub(crate) fn token_calls(&self, appid: &str) -> TokenCalls {
        self.with(|i| i.apps.get(appid).map(|a| a.calls).unwrap_or_default())
    }

    pub(crate) fn phone_calls(&self, code: &str) -> u64 {
        self.with(|i| i.phone_calls.get(code).copied().unwrap_or(0))
    }

    /// Revokes the app's current token (normal mode keeps answering it).
    pub(crate) fn invalidate(&self, appid: &str) -> bool {
        self.with(|i| {
            let Some(current) = i.apps.get(appid).and_then(|a| a.current.clone()) else {
                return false;
            };
            if let Some(t) = i.issued.get_mut(&current) {
                t.revoked = true;
            }
            true
        })
    }

    /// Remembers the session key a login answered.
    pub(crate) fn logged_in(&self, appid: &str, open_id: &str, session_key: &str) {
        self.with(|i| {
            i.session_keys.insert(
                (appid.to_owned(), open_id.to_owned()),
                session_key.to_owned(),
            )
        });
    }

    /// `POST /cgi-bin/stable_token`.
    pub(crate) fn stable_token(&self, body: &[u8]) -> Json {
        let Ok(req) = serde_json::from_slice::<Json>(body) else {
            return error(47001, "data format error");
        };
        let text = |k: &str| req.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let (appid, secret) = (text("appid"), text("secret"));
        if text("grant_type") != "client_credential" {
            return error(40002, "invalid grant_type");
        }
        if appid.is_empty() {
            return error(40013, "invalid appid");
        }
        if secret.is_empty() || secret.starts_with("wrong") {
            return error(40125, "invalid appsecret");
        }
        let force = req.get("force_refresh").and_then(|v| v.as_bool()) == Some(true);
        let now = Instant::now();
        self.with(|i| {
            let lifetime = i.lifetime;
            let overlap = Duration::from_secs(300).min(lifetime / 2);
            let app = i.apps.entry(appid.to_owned()).or_default();
            let current = app.current.clone().and_then(|c| {
                let t = i.issued.get(&c)?;
                (t.expires > now).then_some((c, t.expires, t.revoked))
            });
            let reuse = if force {
                app.calls.forced += 1;
                let recent = app
                    .last_forced
                    .is_some_and(|at| now.duration_since(at) < FORCE_INTERVAL);
                if !recent {
                    app.last_forced = Some(now);
                }
                current.filter(|_| recent)
            } else {
                app.calls.normal += 1;
                current.filter(|(_, expires, _)| *expires - now > overlap)
            };
            if let Some((token, expires, _)) = reuse {
                return serde_json::json!({
                    "access_token": token,
                    "expires_in": (expires - now).as_secs().max(1),
                });
            }
            if force {
                if let Some(t) = app.current.as_ref().and_then(|c| i.issued.get_mut(c)) {
                    t.revoked = true;
                }
            }
            i.serial += 1;
            let d = digest(&["token", appid, &i.serial.to_string()]);
            let token = format!(
                "MOCKTOKEN{}{}",
                i.serial,
                d.iter()
                    .take(12)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            i.issued.insert(
                token.clone(),
                Issued {
                    appid: appid.to_owned(),
                    expires: now + lifetime,
                    revoked: false,
                },
            );
            if let Some(app) = i.apps.get_mut(appid) {
                app.current = Some(token.clone());
            }
            serde_json::json!({"access_token": token, "expires_in": lifetime.as_secs().max(1)})
        })
    }

    /// The app of a valid token, or the errcode WeChat answers for it.
    fn check_token(&self, token: &str) -> Result<String, Json> {
        self.with(|i| match i.issued.get(token) {
            None => Err(error(40001, "invalid credential, access_token is invalid")),
            Some(t) if t.revoked => {
                Err(error(40001, "invalid credential, access_token is invalid"))
            }
            Some(t) if t.expires <= Instant::now() => Err(error(42001, "access_token expired")),
            Some(t) => Ok(t.appid.clone()),
        })
    }

    /// `POST /wxa/business/getuserphonenumber?access_token=…`.
    pub(crate) fn phone_number(&self, token: &str, body: &[u8]) -> Json {
        let code = serde_json::from_slice::<Json>(body)
            .ok()
            .and_then(|b| b.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default();
        // Every call that carried the code counts, refused or not.
        self.with(|i| *i.phone_calls.entry(code.clone()).or_default() += 1);
        let appid = match self.check_token(token) {
            Ok(a) => a,
            Err(e) => return e,
        };
        if code.is_empty() {
            return error(47001, "data format error");
        }
        if let Some(n) = code.strip_prefix("err-") {
            return error(n.parse().unwrap_or(-1), "mock error");
        }
        if !self.with(|i| i.used_phone_codes.insert(code.clone())) {
            return error(40029, "invalid code");
        }
        let (phone, pure, country) = phone_for(&code);
        // China's country code as a string, others as a number: WeChat has
        // sent both.
        let country: Json = if country == "86" {
            country.into()
        } else {
            country.parse::<i64>().unwrap_or(0).into()
        };
        serde_json::json!({
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": pure,
                "countryCode": country,
                "watermark": {"timestamp": 1_700_000_000, "appid": appid},
            }
        })
    }

    /// `GET /wxa/checksession?access_token=…&openid=…&signature=…&sig_method=hmac_sha256`.
    pub(crate) fn check_session(
        &self,
        token: &str,
        open_id: &str,
        signature: &str,
        method: &str,
    ) -> Json {
        let appid = match self.check_token(token) {
            Ok(a) => a,
            Err(e) => return e,
        };
        if method != "hmac_sha256" {
            return error(87009, "invalid signature");
        }
        let key = self.with(|i| i.session_keys.get(&(appid, open_id.to_owned())).cloned());
        match key {
            Some(k) if session_signature(&k) == signature.to_ascii_lowercase() => error(0, "ok"),
            _ => error(87009, "invalid signature"),
        }
    }
}

/// `hmac_sha256(key = session_key's base64 text, message = "")` as lowercase
/// hex: what `checksession` expects for a current session key.
pub fn session_signature(session_key: &str) -> String {
    sign_hmac(session_key, b"")
}

fn sign_hmac(key: &str, message: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The phone number of a code's user: (`phoneNumber`, `purePhoneNumber`,
/// `countryCode`). Users named `intl-…` have a number outside China.
pub fn phone_for(code: &str) -> (String, String, String) {
    let user = user_of(code);
    let d = digest(&["phone", user]);
    let digits: String = d
        .iter()
        .take(8)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    if user.starts_with("intl-") {
        let pure = format!("20{digits}");
        (format!("+1 {pure}"), pure, "1".to_owned())
    } else {
        let pure = format!("139{digits}");
        (pure.clone(), pure, "86".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_hmac_vector() {
        // WeChat's documentation: key o0q0otL8aEzpcZL/FT9WsQ==, message {"foo":"bar"}.
        assert_eq!(
            sign_hmac("o0q0otL8aEzpcZL/FT9WsQ==", br#"{"foo":"bar"}"#),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
        assert_eq!(
            session_signature("o0q0otL8aEzpcZL/FT9WsQ=="),
            "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
        );
    }

    fn token(api: &Api, appid: &str, force: bool) -> Json {
        let body = serde_json::json!({"grant_type": "client_credential", "appid": appid,
            "secret": "s", "force_refresh": force});
        api.stable_token(body.to_string().as_bytes())
    }

    #[test]
    fn normal_mode_is_stable_and_force_is_limited() {
        let api = Api::default();
        let a = token(&api, "wx1", false)["access_token"].clone();
        assert_eq!(token(&api, "wx1", false)["access_token"], a, "stable");
        let b = token(&api, "wx1", true)["access_token"].clone();
        assert_ne!(a, b);
        assert_eq!(token(&api, "wx1", true)["access_token"], b, "30 s rule");
        assert_eq!(
            api.token_calls("wx1"),
            TokenCalls {
                normal: 2,
                forced: 2
            }
        );
        let phone = |t: &Json, code: &str| {
            api.phone_number(
                t.as_str().unwrap(),
                format!(r#"{{"code":"{code}"}}"#).as_bytes(),
            )
        };
        assert_eq!(phone(&a, "p1")["errcode"], 40001, "forced out");
        assert_eq!(phone(&b, "p1")["errcode"], 0);
        assert_eq!(phone(&b, "p1")["errcode"], 40029, "single use");
        assert!(api.invalidate("wx1"));
        assert_eq!(phone(&b, "p2")["errcode"], 40001);
        assert_eq!(
            token(&api, "wx1", false)["access_token"],
            b,
            "normal mode keeps it"
        );
    }
}
