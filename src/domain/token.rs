//! An app's WeChat access token as wafer stores and shares it, and the
//! leases on fetching it (see `token_keeper` for how it is kept fresh).

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::Timestamp;

/// How long a force-refreshed token is kept from being forced again: WeChat
/// ignores a second `force_refresh` within 30 s.
pub const FORCE_INTERVAL: Duration = Duration::from_secs(30);

/// An app's access token as the store shares it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token. A secret: never logged, shown only to the admin API.
    pub value: String,
    /// When it was fetched from WeChat.
    pub fetched_at: Timestamp,
    /// When WeChat stops accepting it.
    pub expires_at: Timestamp,
    /// When the next caller should fetch a new one (while this one still
    /// works).
    pub renew_at: Timestamp,
    /// A fingerprint of the app secret it was fetched with: a token of an
    /// older secret is never served, on any instance.
    pub secret_tag: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("fetched_at", &self.fetched_at)
            .field("expires_at", &self.expires_at)
            .field("renew_at", &self.renew_at)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// Whether it may be used at `now` for an app whose secret has `tag`.
    pub fn usable(&self, tag: &str, now: Timestamp) -> bool {
        self.secret_tag == tag && now < self.expires_at
    }

    /// Seconds it has left at `now`.
    pub fn expires_in(&self, now: Timestamp) -> u64 {
        u64::try_from((self.expires_at.0 - now.0).max(0) / 1000).unwrap_or(0)
    }
}

/// Which lease on an app's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenLease {
    /// The right to fetch (normal mode); given back after the fetch.
    Fetch,
    /// The right to force a refresh; kept for [`FORCE_INTERVAL`].
    Force,
}

impl TokenLease {
    /// The lease's name in store keys.
    pub fn label(self) -> &'static str {
        match self {
            TokenLease::Fetch => "fetch",
            TokenLease::Force => "force",
        }
    }
}

/// The fingerprint of an app secret kept with its tokens: 64 bits of its
/// SHA-256, enough to tell secrets apart, useless to recover one.
pub fn secret_tag(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_tell_secrets_apart_and_hide_them() {
        let a = secret_tag("secret-one");
        assert_eq!(a.len(), 16);
        assert_eq!(a, secret_tag("secret-one"));
        assert_ne!(a, secret_tag("secret-two"));
        assert!(!a.contains("secret"));
    }

    #[test]
    fn a_token_is_usable_for_its_secret_until_it_expires() {
        let t = AccessToken {
            value: "tok-s3cret".into(),
            fetched_at: Timestamp(0),
            expires_at: Timestamp(10_000),
            renew_at: Timestamp(5_000),
            secret_tag: secret_tag("s"),
        };
        assert!(t.usable(&secret_tag("s"), Timestamp(9_999)));
        assert!(!t.usable(&secret_tag("s"), Timestamp(10_000)));
        assert!(!t.usable(&secret_tag("other"), Timestamp(1)));
        assert_eq!(t.expires_in(Timestamp(2_500)), 7);
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
