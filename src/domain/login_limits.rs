//! Login rate limits: token buckets per client address and per app, so
//! that one client cannot burn an app's WeChat quota (WeChat answers 45011
//! past 100 code exchanges per user per minute, and limits apps as a
//! whole). Checked after the app is known and before WeChat is called.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::domain::app::AppId;

/// Buckets tracked before idle (full) ones are dropped.
const SWEEP_AT: usize = 100_000;

/// A token bucket per key: `per_minute` tokens, refilled evenly over a minute.
pub(crate) struct Buckets<K: Eq + Hash> {
    per_minute: u32,
    buckets: DashMap<K, (f64, Instant)>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(per_minute: u32) -> Self {
        Buckets {
            per_minute,
            buckets: DashMap::new(),
        }
    }

    fn rate(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes a token for `key` at `now`; when there is none, how long
    /// until there will be.
    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() > SWEEP_AT {
            self.sweep(now);
        }
        let cap = f64::from(self.per_minute);
        let rate = self.rate();
        let mut entry = self.buckets.entry(key.clone()).or_insert((cap, now));
        let (tokens, last) = *entry;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(cap);
        if refilled >= 1.0 {
            *entry = (refilled - 1.0, now);
            Ok(())
        } else {
            *entry = (refilled, now);
            Err(Duration::from_secs_f64((1.0 - refilled) / rate))
        }
    }

    /// Drops the buckets that have refilled: they hold nothing a new
    /// bucket would not.
    fn sweep(&self, now: Instant) {
        let (cap, rate) = (f64::from(self.per_minute), self.rate());
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < cap
        });
    }
}

/// The login limits of one instance (each instance counts its own logins).
#[derive(Default)]
pub(crate) struct LoginLimits {
    per_ip: Option<Buckets<IpAddr>>,
    per_app: Option<Buckets<AppId>>,
}

impl LoginLimits {
    /// Limits of `per_ip` and `per_app` logins per minute; 0 turns one off.
    pub(crate) fn new(per_ip: u32, per_app: u32) -> Self {
        LoginLimits {
            per_ip: (per_ip > 0).then(|| Buckets::new(per_ip)),
            per_app: (per_app > 0).then(|| Buckets::new(per_app)),
        }
    }

    /// Takes a login from `client`'s and `app`'s budgets; when one is
    /// spent, the seconds to wait (at least 1). The app's budget is not
    /// charged for a login the client's budget refused.
    pub(crate) fn check(&self, client: Option<IpAddr>, app: AppId) -> Result<(), u64> {
        let now = Instant::now();
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        if let (Some(b), Some(ip)) = (&self.per_ip, client) {
            b.take(&ip, now).map_err(wait)?;
        }
        if let Some(b) = &self.per_app {
            b.take(&app, now).map_err(wait)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_over_a_minute() {
        let b = Buckets::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(&1, t0).is_ok());
        }
        let wait = b.take(&1, t0).unwrap_err();
        assert!((19.0..=20.0).contains(&wait.as_secs_f64()), "{wait:?}");
        assert!(b.take(&2, t0).is_ok(), "another key has its own bucket");
        assert!(b.take(&1, t0 + Duration::from_secs(20)).is_ok());
        assert!(b.take(&1, t0 + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn limits_are_per_client_and_per_app_and_off_at_zero() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        let l = LoginLimits::new(2, 3);
        assert!(l.check(Some(ip), 1).is_ok());
        assert!(l.check(Some(ip), 1).is_ok());
        assert_eq!(l.check(Some(ip), 1), Err(30));
        assert!(l.check(Some(other), 1).is_ok(), "the app's third login");
        assert!(
            l.check(Some(other), 1).is_err(),
            "the app's budget is spent"
        );
        let third: IpAddr = "10.1.2.5".parse().unwrap();
        assert!(l.check(Some(third), 2).is_ok(), "another app");
        let off = LoginLimits::new(0, 0);
        for _ in 0..1000 {
            assert!(off.check(Some(ip), 1).is_ok());
        }
    }
}
