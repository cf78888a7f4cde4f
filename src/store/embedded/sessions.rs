//! The embedded store's sessions: logins, auth checks that slide a
//! session, logout and revocation, and listings.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use dashmap::mapref::entry::Entry as MapEntry;
use uuid::Uuid;

use super::{EmbeddedStore, Session};
use crate::domain::app::AppId;
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary, StoredLogin,
};
use crate::store::metrics::Op;
use crate::store::{Backend, Cause, SessionStore, StoreError, StoreResult};

impl SessionStore for EmbeddedStore {
    async fn upsert_session(&self, new: NewSession) -> StoreResult<StoredLogin> {
        let started = Instant::now();
        let out = self.upsert(new);
        self.record(Op::Login, started, out)
    }

    async fn authenticate(&self, creds: &Credentials) -> StoreResult<Option<Arc<Profile>>> {
        let started = Instant::now();
        let out = Ok(self.check(creds));
        self.record(Op::Auth, started, out)
    }

    async fn session_key(&self, creds: &Credentials) -> StoreResult<Option<String>> {
        let started = Instant::now();
        let key = self.sessions.get(&creds.uuid).and_then(|s| {
            creds
                .accepts(s.app_id, &s.skey_hash, s.create_time, s.last_visit())
                .then(|| {
                    s.last_visit.fetch_max(creds.now.0, Ordering::Relaxed);
                    s.session_key.to_string()
                })
        });
        self.record(Op::Auth, started, Ok(key))
    }

    async fn set_phone(&self, creds: &Credentials, phone_number: &str) -> StoreResult<bool> {
        let started = Instant::now();
        let set = match self.sessions.get_mut(&creds.uuid) {
            Some(mut s) if creds.accepts(s.app_id, &s.skey_hash, s.create_time, s.last_visit()) => {
                let profile = Profile {
                    phone_number: Some(phone_number.into()),
                    ..(*s.profile).clone()
                };
                s.profile = Arc::new(profile);
                true
            }
            _ => false,
        };
        self.record(Op::Phone, started, Ok(set))
    }

    async fn user_session_key(&self, app: AppId, open_id: &str) -> StoreResult<Option<String>> {
        let uuid = self.index.get(&(app, Box::from(open_id))).map(|u| *u);
        Ok(uuid.and_then(|u| self.sessions.get(&u).map(|s| s.session_key.to_string())))
    }

    async fn logout(&self, creds: &Credentials) -> StoreResult<bool> {
        let started = Instant::now();
        let out = Ok(self.remove_where(creds.uuid, &|s| {
            creds.accepts(s.app_id, &s.skey_hash, s.create_time, s.last_visit())
        }));
        self.record(Op::Logout, started, out)
    }

    async fn revoke(&self, uuid: Uuid) -> StoreResult<bool> {
        let started = Instant::now();
        let out = Ok(self.remove_where(uuid, &|_| true));
        self.record(Op::Revoke, started, out)
    }

    async fn list_sessions(&self, app: AppId, query: &SessionQuery) -> StoreResult<SessionPage> {
        let started = Instant::now();
        let out = Ok(self.list(app, query));
        self.record(Op::ListSessions, started, out)
    }
}

impl EmbeddedStore {
    /// Logs `new` in: the user's session, replaced (same uuid, the profile
    /// fields the login lacks kept), or a new one if the cap allows.
    fn upsert(&self, new: NewSession) -> StoreResult<StoredLogin> {
        let key = (new.app_id, Box::<str>::from(new.open_id.as_str()));
        let user_info: Option<Arc<str>> = new.user_info.map(Arc::from);
        let union_id = new.union_id.map(Box::from);
        let session = |profile: Arc<Profile>| Session {
            app_id: new.app_id,
            skey_hash: new.skey_hash,
            create_time: new.now,
            last_visit: AtomicI64::new(new.now.0),
            session_key: new.session_key.as_str().into(),
            profile,
        };
        // The index entry stays locked until the session is written, so
        // concurrent logins of one user serialise here and share one uuid.
        match self.index.entry(key) {
            MapEntry::Occupied(slot) => {
                let uuid = *slot.get();
                let old = self.sessions.get(&uuid).map(|s| s.profile.clone());
                let profile = Arc::new(Profile {
                    open_id: new.open_id.into(),
                    union_id: union_id.or_else(|| old.as_ref().and_then(|p| p.union_id.clone())),
                    user_info: user_info.or_else(|| old.as_ref().and_then(|p| p.user_info.clone())),
                    phone_number: old.as_ref().and_then(|p| p.phone_number.clone()),
                });
                let user_info = profile.user_info.clone();
                self.sessions.insert(uuid, session(profile));
                Ok(StoredLogin {
                    uuid,
                    user_info,
                    new: false,
                })
            }
            MapEntry::Vacant(slot) => {
                if self.sessions.len() >= self.max_sessions {
                    return Err(StoreError::unavailable(Backend::Embedded, Cause::Full));
                }
                let uuid = Uuid::new_v4();
                let profile = Arc::new(Profile {
                    open_id: new.open_id.into(),
                    union_id,
                    user_info,
                    phone_number: None,
                });
                let user_info = profile.user_info.clone();
                self.sessions.insert(uuid, session(profile));
                slot.insert(uuid);
                Ok(StoredLogin {
                    uuid,
                    user_info,
                    new: true,
                })
            }
        }
    }

    /// The profile of the session `creds` name, slid, if they are valid.
    fn check(&self, creds: &Credentials) -> Option<Arc<Profile>> {
        let s = self.sessions.get(&creds.uuid)?;
        if !creds.accepts(s.app_id, &s.skey_hash, s.create_time, s.last_visit()) {
            return None;
        }
        s.last_visit.fetch_max(creds.now.0, Ordering::Relaxed);
        Some(s.profile.clone())
    }

    /// One page of `app`'s sessions, by uuid.
    fn list(&self, app: AppId, query: &SessionQuery) -> SessionPage {
        let mut found: Vec<SessionSummary> = self
            .sessions
            .iter()
            .filter(|e| {
                let s = e.value();
                s.app_id == app
                    && query.after.is_none_or(|after| *e.key() > after)
                    && query
                        .open_id
                        .as_deref()
                        .is_none_or(|o| *s.profile.open_id == *o)
            })
            .map(|e| SessionSummary {
                uuid: *e.key(),
                open_id: e.profile.open_id.to_string(),
                union_id: e.profile.union_id.as_deref().map(str::to_owned),
                create_time: e.create_time,
                last_visit_time: e.last_visit(),
                phone_number: e.profile.phone_number.as_deref().map(str::to_owned),
            })
            .collect();
        found.sort_unstable_by_key(|s| s.uuid);
        let (found, next) = crate::store::split_page(found, query.limit, |s| s.uuid);
        SessionPage {
            sessions: found,
            next,
        }
    }
}
