//! Sessions: what is stored, when one is valid, and how much time it has left.
//! Pure functions; every store asks these instead of doing its own arithmetic.

use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::domain::skey::SkeyHash;

pub use crate::domain::lifetime::Limits;

/// What a valid auth check answers about its user; immutable between logins,
/// so stores can share it instead of copying it per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// WeChat open_id of the user in this app.
    pub open_id: Box<str>,
    /// WeChat union_id, when known.
    pub union_id: Option<Box<str>>,
    /// The decrypted user data, as compact JSON text of an object.
    pub user_info: Option<Arc<str>>,
    /// The user's phone number, once `/mina/phone` fetched it.
    pub phone_number: Option<Box<str>>,
}

/// A credential check: the uuid and skey hash a caller presented, for an app,
/// at an instant, against that app's limits.
#[derive(Debug, Clone, Copy)]
pub struct Credentials {
    /// The session id presented.
    pub uuid: Uuid,
    /// Hash of the skey presented.
    pub skey_hash: SkeyHash,
    /// The app the caller named.
    pub app_id: AppId,
    /// The app's limits.
    pub limits: Limits,
    /// When the check happens.
    pub now: Timestamp,
}

impl Credentials {
    /// Whether a stored session satisfies this check: same app, same skey
    /// (constant-time), and alive at `now`.
    pub fn accepts(
        &self,
        app_id: AppId,
        skey_hash: &SkeyHash,
        create: Timestamp,
        last_visit: Timestamp,
    ) -> bool {
        // Evaluate every part so the time taken does not say which one failed.
        let same_app = app_id == self.app_id;
        let same_key = self.skey_hash.matches(skey_hash);
        let alive = self.limits.alive(create, last_visit, self.now);
        same_app & same_key & alive
    }
}

/// Everything a login stores for a session.
#[derive(Clone)]
pub struct NewSession {
    /// The app.
    pub app_id: AppId,
    /// WeChat open_id.
    pub open_id: String,
    /// WeChat union_id, when known from this login.
    pub union_id: Option<String>,
    /// WeChat session_key; kept on the server only.
    pub session_key: String,
    /// Hash of the freshly minted skey.
    pub skey_hash: SkeyHash,
    /// Decrypted user data from this login, if any was sent.
    pub user_info: Option<String>,
    /// Login time: both create and last-visit time.
    pub now: Timestamp,
}

/// What a login answers: the session's (possibly kept) uuid and its user data.
#[derive(Debug, Clone)]
pub struct StoredLogin {
    /// The session id; the same as before for a re-login.
    pub uuid: Uuid,
    /// The user data now stored (new, or kept from an earlier login).
    pub user_info: Option<Arc<str>>,
    /// Whether the user had no session before this login.
    pub new: bool,
}

/// A session as the admin API lists it: no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Session id.
    pub uuid: Uuid,
    /// WeChat open_id.
    pub open_id: String,
    /// WeChat union_id.
    pub union_id: Option<String>,
    /// Login time.
    pub create_time: Timestamp,
    /// Last valid check.
    pub last_visit_time: Timestamp,
    /// The user's phone number, when known. Personal data: the listing
    /// masks it (see [`mask_phone`]).
    pub phone_number: Option<String>,
}

/// A phone number as listings show it: the first three and last four
/// digits, the rest `*` (`138****0000`); shorter numbers are masked whole.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n < 8 {
        return "*".repeat(n);
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 3 || i >= n - 4 { *c } else { '*' })
        .collect()
}

/// Which sessions of an app to list.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Only this user's session.
    pub open_id: Option<String>,
    /// At most this many (1–1000).
    pub limit: usize,
    /// Only sessions whose uuid sorts after this one.
    pub after: Option<Uuid>,
}

impl SessionQuery {
    /// The one session of user `open_id`.
    pub fn user(open_id: &str) -> Self {
        SessionQuery {
            open_id: Some(open_id.to_owned()),
            limit: 1,
            after: None,
        }
    }
}

/// One page of a session listing.
#[derive(Debug, Clone, Default)]
pub struct SessionPage {
    /// The sessions, ordered by uuid.
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts, if there is one.
    pub next: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::skey::Skey;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    #[test]
    fn phones_are_masked_keeping_the_ends() {
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("+1 2025550123"), "+1 ******0123");
        assert_eq!(mask_phone("1234567"), "*******");
    }

    #[test]
    fn sliding_limit_is_exclusive() {
        let l = Limits::new(30, 10);
        assert!(l.alive(T0, T0, T0.plus_millis(9_999)));
        assert!(!l.alive(T0, T0, T0.plus_millis(10_000)));
        // A recent visit keeps it alive past the first window.
        let visit = T0.plus_millis(9_000);
        assert!(l.alive(T0, visit, T0.plus_millis(18_000)));
    }

    #[test]
    fn absolute_limit_wins_over_sliding() {
        let l = Limits::new(1, 315_360_000);
        let day = 86_400_000;
        let visit = T0.plus_millis(day - 1);
        assert!(l.alive(T0, visit, T0.plus_millis(day - 1)));
        assert!(!l.alive(T0, visit, T0.plus_millis(day)));
        assert_eq!(l.deadline(T0, visit), T0.plus_millis(day));
    }

    #[test]
    fn deadline_is_the_earlier_limit() {
        let l = Limits::new(30, 60);
        assert_eq!(l.deadline(T0, T0), T0.plus_millis(60_000));
    }

    #[test]
    fn credentials_check_every_part() {
        let skey = Skey::mint().unwrap();
        let h = skey.hash();
        let c = Credentials {
            uuid: Uuid::new_v4(),
            skey_hash: h,
            app_id: 1,
            limits: Limits::new(30, 60),
            now: T0.plus_millis(1_000),
        };
        assert!(c.accepts(1, &h, T0, T0));
        assert!(!c.accepts(2, &h, T0, T0), "other app");
        assert!(
            !c.accepts(1, &Skey::mint().unwrap().hash(), T0, T0),
            "other skey"
        );
        assert!(
            !c.accepts(1, &h, T0.plus_millis(-61_000), T0.plus_millis(-61_000)),
            "expired"
        );
    }
}
