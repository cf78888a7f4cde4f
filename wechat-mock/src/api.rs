//! The APIs that need an access token, and the token itself:
//! `/cgi-bin/stable_token`, `/wxa/business/getuserphonenumber` and
//! `/wxa/checksession`, with the rules WeChat documents; and the apps WeChat
//! knows, whose credentials `jscode2session` and `stable_token` check.
//!
//! - An app exists once registered with its secret
//!   ([`crate::Mock::register_app`]); registering it again resets the secret,
//!   as "reset AppSecret" in WeChat's console does: the old one stops
//!   working. Both credential checks answer as WeChat does: an appid it does
//!   not know 40013 `invalid appid, rid: …`, another secret 40125 `invalid
//!   appsecret, rid: …`, a missing one 41002 or 41004.
//! - `stable_token` in normal mode answers the current token until the last
//!   part of its life (5 minutes, or half its life when it is shorter), then
//!   a new one; the old one stays valid until it expires. `force_refresh`
//!   revokes the current token and issues a new one, at most once per 30 s
//!   per app (a second force within 30 s answers the current token).
//! - A test can revoke a token as WeChat does when it finds one leaked
//!   ([`crate::Mock::invalidate_token`]): APIs then answer 40001 for it, and
//!   normal mode keeps answering it: only a forced refresh replaces it.
//! - Token lifetime: 7200 s unless set ([`crate::Mock::set_token_lifetime`]).
//! - Phone codes are single-use. Codes `err-<n>` answer errcode n. A code
//!   belongs to its user's apps (those the user logged in to through
//!   `jscode2session`): traded with another app's token it is 40029 `invalid
//!   code`, as WeChat answers for "app A's code used by app B".
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
    /// Every token issued for the app, oldest first.
    issued: Vec<String>,
}

struct Inner {
    lifetime: Duration,
    serial: u64,
    /// The secret of each app WeChat knows.
    secrets: HashMap<String, String>,
    /// Request ids handed out so far (each error's `rid` differs).
    rids: u64,
    apps: HashMap<String, AppTokens>,
    issued: HashMap<String, Issued>,
    used_phone_codes: HashSet<String>,
    /// The access token each `getuserphonenumber` call carried, per code.
    phone_calls: HashMap<String, Vec<String>>,
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
            secrets: HashMap::new(),
            rids: 0,
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

impl Inner {
    /// An error as WeChat words its credential and code refusals: the
    /// message, then `, rid: <unix seconds>-<8 hex>-<8 hex>` (the request id
    /// WeChat's support asks for).
    fn error_with_rid(&mut self, code: i64, msg: &str) -> Json {
        self.rids += 1;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let d = digest(&["rid", &self.rids.to_string()]);
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        error(
            code,
            &format!("{msg}, rid: {secs:08x}-{}-{}", hex(&d[..4]), hex(&d[4..8])),
        )
    }
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

    /// Every token issued for `appid`, oldest first.
    pub(crate) fn tokens(&self, appid: &str) -> Vec<String> {
        self.with(|i| {
            i.apps
                .get(appid)
                .map(|a| a.issued.clone())
                .unwrap_or_default()
        })
    }

    pub(crate) fn phone_calls(&self, code: &str) -> u64 {
        self.with(|i| i.phone_calls.get(code).map_or(0, |t| t.len() as u64))
    }

    /// The access token each `getuserphonenumber` call with `code` carried.
    pub(crate) fn phone_tokens(&self, code: &str) -> Vec<String> {
        self.with(|i| i.phone_calls.get(code).cloned().unwrap_or_default())
    }

    /// Makes `appid` an app with `secret`, replacing any earlier secret.
    pub(crate) fn register(&self, appid: &str, secret: &str) {
        self.with(|i| i.secrets.insert(appid.to_owned(), secret.to_owned()));
    }

    /// The secret of `appid`, if registered.
    pub(crate) fn secret(&self, appid: &str) -> Option<String> {
        self.with(|i| i.secrets.get(appid).cloned())
    }

    /// Checks an app's credentials as `jscode2session` and `stable_token`
    /// do; the reply WeChat gives when they do not pass.
    pub(crate) fn check_credentials(&self, appid: &str, secret: &str) -> Result<(), Json> {
        self.with(|i| {
            if appid.is_empty() {
                return Err(error(41002, "appid missing"));
            }
            let known = i.secrets.get(appid).cloned();
            match known {
                None => Err(i.error_with_rid(40013, "invalid appid")),
                Some(_) if secret.is_empty() => Err(error(41004, "appsecret missing")),
                Some(s) if s != secret => Err(i.error_with_rid(40125, "invalid appsecret")),
                Some(_) => Ok(()),
            }
        })
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
        if let Err(e) = self.check_credentials(appid, secret) {
            return e;
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
                app.issued.push(token.clone());
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
        self.with(|i| {
            i.phone_calls
                .entry(code.clone())
                .or_default()
                .push(token.to_owned())
        });
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
        // A code of a user who never logged in to the token's app is another
        // app's; it stays unused, as it would at WeChat.
        let users_app = (appid.clone(), crate::open_id_for(&appid, &code));
        if !self.with(|i| i.session_keys.contains_key(&users_app)) {
            return self.with(|i| i.error_with_rid(40029, "invalid code"));
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

    fn token_with(api: &Api, appid: &str, secret: &str, force: bool) -> Json {
        let body = serde_json::json!({"grant_type": "client_credential", "appid": appid,
            "secret": secret, "force_refresh": force});
        api.stable_token(body.to_string().as_bytes())
    }

    fn token(api: &Api, appid: &str, force: bool) -> Json {
        token_with(api, appid, "s", force)
    }

    /// `code`'s user logged in to `appid`, so its phone codes are the app's.
    fn log_in(api: &Api, appid: &str, code: &str) {
        api.logged_in(appid, &crate::open_id_for(appid, code), "key");
    }

    fn rid_of(reply: &Json) -> &str {
        let msg = reply["errmsg"].as_str().unwrap_or("");
        msg.split_once(", rid: ").map_or("", |(_, rid)| rid)
    }

    #[test]
    fn credentials_are_checked_as_wechat_does() {
        let api = Api::default();
        api.register("wx1", "s");
        assert!(token(&api, "wx1", false)["access_token"].is_string());
        let wrong = token_with(&api, "wx1", "sealed:v1:k1:AAAA", false);
        assert_eq!(wrong["errcode"], 40125);
        assert!(
            wrong["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid appsecret, rid: "),
            "{wrong}"
        );
        let rid = rid_of(&wrong);
        assert_eq!(rid.len(), 26, "{rid}");
        assert_eq!(rid.split('-').count(), 3, "{rid}");
        let unknown = token(&api, "wx2", false);
        assert_eq!(unknown["errcode"], 40013);
        assert!(
            unknown["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid appid, rid: ")
        );
        assert_ne!(rid_of(&unknown), rid, "each answer has its own rid");
        assert_eq!(token(&api, "", false)["errcode"], 41002);
        assert_eq!(token_with(&api, "wx1", "", false)["errcode"], 41004);
        // A reset: the new secret works, the old one no longer does.
        api.register("wx1", "s2");
        assert_eq!(token(&api, "wx1", false)["errcode"], 40125);
        assert!(token_with(&api, "wx1", "s2", false)["access_token"].is_string());
        assert_eq!(api.check_credentials("wx1", "s2"), Ok(()));
        assert_eq!(api.secret("wx1").as_deref(), Some("s2"));
        assert_eq!(
            api.token_calls("wx1").normal,
            2,
            "refused calls issue nothing"
        );
    }

    #[test]
    fn a_phone_code_belongs_to_its_users_apps() {
        let api = Api::default();
        api.register("wxA", "s");
        api.register("wxB", "s");
        let a = token(&api, "wxA", false)["access_token"].clone();
        let b = token(&api, "wxB", false)["access_token"].clone();
        log_in(&api, "wxA", "ada.1");
        let phone = |t: &Json, code: &str| {
            api.phone_number(
                t.as_str().unwrap(),
                format!(r#"{{"code":"{code}"}}"#).as_bytes(),
            )
        };
        let refused = phone(&b, "ada.p");
        assert_eq!(refused["errcode"], 40029, "{refused}");
        assert!(!rid_of(&refused).is_empty(), "{refused}");
        assert_eq!(phone(&a, "ada.p")["errcode"], 0, "not used up by B");
        assert_eq!(api.phone_tokens("ada.p"), [b.clone(), a.clone()]);
        assert_eq!(api.tokens("wxA"), [a.as_str().unwrap()]);
    }

    #[test]
    fn normal_mode_is_stable_and_force_is_limited() {
        let api = Api::default();
        api.register("wx1", "s");
        log_in(&api, "wx1", "p1");
        log_in(&api, "wx1", "p2");
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
        assert_eq!(api.tokens("wx1"), [a, b]);
    }
}
