//! The embedded store: apps and sessions in process memory. Concurrent
//! (sharded maps, lock-free app lookups), bounded (a session cap) and
//! self-cleaning (a reaper purges expired sessions). Nothing survives a restart.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use uuid::Uuid;

use crate::clock::{Clock, Timestamp};
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};
use crate::domain::audit::{AuditEntry, AuditPage};
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary, StoredLogin,
};
use crate::domain::skey::SkeyHash;
use crate::domain::token::{AccessToken, TokenLease};
use crate::store::app_table::{AppTable, SharedAppTable};
use crate::store::metrics::Op;
use crate::store::metrics::StoreMetrics;
use crate::store::periodic::spawn_every;
use crate::store::{
    AppStore, AuditStore, Backend, BackendHealth, Cause, SessionStore, StoreError, StoreHealth,
    StoreResult, TokenStore,
};

/// Admin actions the embedded store keeps (it keeps nothing across restarts).
const AUDIT_KEPT: usize = 10_000;

/// One stored session.
struct Session {
    app_id: AppId,
    skey_hash: SkeyHash,
    create_time: Timestamp,
    // Atomic so that a valid auth slides it under the map's shared lock.
    last_visit: AtomicI64,
    // Read back only to decrypt data for a valid session (never shown).
    session_key: Box<str>,
    profile: Arc<Profile>,
}

impl Session {
    fn last_visit(&self) -> Timestamp {
        Timestamp(self.last_visit.load(Ordering::Relaxed))
    }

    fn index_key(&self) -> (AppId, Box<str>) {
        (self.app_id, self.profile.open_id.clone())
    }
}

/// In-process store of apps and sessions.
///
/// Lock order: when both maps are locked, the `(app, open_id)` index is locked
/// first and the session map second; nothing locks them the other way round.
pub struct EmbeddedStore {
    apps: SharedAppTable,
    // Serialises app writes and hands out ids; never held across an await.
    app_writer: Mutex<AppId>,
    sessions: DashMap<Uuid, Session>,
    index: DashMap<(AppId, Box<str>), Uuid>,
    tokens: DashMap<AppId, AccessToken>,
    // Lease holder and when the lease ends.
    leases: DashMap<(AppId, TokenLease), (String, Instant)>,
    // The newest AUDIT_KEPT admin actions, oldest first.
    audit: Mutex<std::collections::VecDeque<AuditEntry>>,
    max_sessions: usize,
    metrics: StoreMetrics,
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new(crate::config::defaults::EMBEDDED_MAX_SESSIONS)
    }
}

impl EmbeddedStore {
    /// An empty store holding at most `max_sessions` sessions.
    pub fn new(max_sessions: usize) -> Self {
        EmbeddedStore {
            apps: SharedAppTable::default(),
            app_writer: Mutex::new(1),
            sessions: DashMap::new(),
            index: DashMap::new(),
            tokens: DashMap::new(),
            leases: DashMap::new(),
            audit: Mutex::new(std::collections::VecDeque::new()),
            max_sessions,
            metrics: StoreMetrics::default(),
        }
    }

    /// Records every session operation in `metrics`.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn record<T>(&self, op: Op, started: Instant, out: StoreResult<T>) -> StoreResult<T> {
        self.metrics
            .record(Backend::Embedded, op, out.is_ok(), started.elapsed());
        out
    }

    /// Number of sessions held, expired or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Removes every session that is expired at `now` or whose app is gone.
    /// Returns how many were removed.
    pub fn purge_expired(&self, now: Timestamp) -> usize {
        let apps = self.apps.load();
        let dead = |s: &Session| match apps.get(&AppRef::Id(s.app_id)) {
            Some(app) => !app.limits().alive(s.create_time, s.last_visit(), now),
            None => true,
        };
        // Collect under shared locks, then remove one by one re-checking, so a
        // session refreshed in between survives.
        let doomed: Vec<Uuid> = self
            .sessions
            .iter()
            .filter(|e| dead(e.value()))
            .map(|e| *e.key())
            .collect();
        doomed
            .into_iter()
            .filter(|uuid| self.remove_where(*uuid, &dead))
            .count()
    }

    /// Runs [`EmbeddedStore::purge_expired`] every `every` until the runtime stops.
    pub fn spawn_reaper(self: &Arc<Self>, clock: Arc<dyn Clock>, every: Duration) {
        spawn_every(self, every, move |store| {
            let now = clock.now();
            async move {
                // The sweep is CPU work over every session: keep it off the
                // async workers.
                let purged = tokio::task::spawn_blocking(move || store.purge_expired(now))
                    .await
                    .unwrap_or(0);
                if purged > 0 {
                    tracing::debug!(purged, "embedded store purged expired sessions");
                }
            }
        });
    }

    /// Removes session `uuid` and its index entry if `doomed` holds for it,
    /// atomically with respect to logins of the same user.
    fn remove_where(&self, uuid: Uuid, doomed: &dyn Fn(&Session) -> bool) -> bool {
        let Some(key) = self.sessions.get(&uuid).map(|s| s.index_key()) else {
            return false;
        };
        let mut removed = false;
        let indexed = self.index.remove_if(&key, |_, indexed_uuid| {
            if *indexed_uuid != uuid {
                return false;
            }
            removed = self.sessions.remove_if(&uuid, |_, s| doomed(s)).is_some();
            removed
        });
        if indexed.is_none() && !removed {
            // Not (or no longer) the indexed session of its user: drop it alone.
            removed = self.sessions.remove_if(&uuid, |_, s| doomed(s)).is_some();
        }
        removed
    }

    fn write_apps<T>(
        &self,
        f: impl FnOnce(&AppTable, &mut AppId) -> StoreResult<(AppTable, T)>,
    ) -> StoreResult<T> {
        let mut next_id = self
            .app_writer
            .lock()
            // Poisoned only if a writer panicked: the table it left is whole
            // (writers swap a new table in), so go on with it.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.apps.load();
        let (table, out) = f(&current, &mut next_id)?;
        self.apps.store(table);
        Ok(out)
    }
}

impl AppStore for EmbeddedStore {
    async fn app(&self, app: &AppRef<'_>) -> StoreResult<Option<Arc<App>>> {
        Ok(self.apps.load().get(app).cloned())
    }

    async fn list_apps(&self) -> StoreResult<Vec<Arc<App>>> {
        Ok(self.apps.load().sorted())
    }

    async fn create_app(&self, new: NewApp, now: Timestamp) -> StoreResult<Arc<App>> {
        self.write_apps(|table, next_id| {
            if table.appid_taken(&new.appid, None) {
                return Err(StoreError::Conflict);
            }
            let app = Arc::new(App {
                id: *next_id,
                title: new.title,
                appid: new.appid,
                secret: new.secret,
                login_duration: new.login_duration,
                session_duration: new.session_duration,
                created_at: now,
                updated_at: now,
            });
            *next_id += 1;
            Ok((table.with(app.clone()), app))
        })
    }

    async fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> StoreResult<Arc<App>> {
        self.write_apps(|table, _| {
            let current = table.get(&AppRef::Id(id)).ok_or(StoreError::NotFound)?;
            if let Some(appid) = &patch.appid {
                if table.appid_taken(appid, Some(id)) {
                    return Err(StoreError::Conflict);
                }
            }
            let app = Arc::new(patch.apply(current, now));
            Ok((table.with(app.clone()), app))
        })
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        self.write_apps(|table, _| {
            table.get(&AppRef::Id(id)).ok_or(StoreError::NotFound)?;
            Ok((table.without(id), ()))
        })?;
        self.index.retain(|(app, _), _| *app != id);
        self.sessions.retain(|_, s| s.app_id != id);
        Ok(())
    }
}

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

impl TokenStore for EmbeddedStore {
    async fn access_token(&self, app: AppId) -> StoreResult<Option<AccessToken>> {
        Ok(self.tokens.get(&app).map(|t| t.clone()))
    }

    async fn put_access_token(&self, app: AppId, token: &AccessToken) -> StoreResult<()> {
        self.tokens.insert(app, token.clone());
        Ok(())
    }

    async fn lease_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        Ok(match self.leases.entry((app, lease)) {
            MapEntry::Occupied(mut held) if held.get().1 <= now => {
                held.insert((holder.to_owned(), now + ttl));
                true
            }
            MapEntry::Occupied(_) => false,
            MapEntry::Vacant(slot) => {
                slot.insert((holder.to_owned(), now + ttl));
                true
            }
        })
    }

    async fn release_access_token(
        &self,
        app: AppId,
        lease: TokenLease,
        holder: &str,
    ) -> StoreResult<()> {
        self.leases
            .remove_if(&(app, lease), |_, (h, _)| h == holder);
        Ok(())
    }

    async fn drop_access_token(&self, app: AppId) -> StoreResult<()> {
        self.tokens.remove(&app);
        Ok(())
    }
}

impl AuditStore for EmbeddedStore {
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut trail = self
            .audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = trail.back().map_or(1, |e| e.id + 1);
        if trail.len() >= AUDIT_KEPT {
            trail.pop_front();
        }
        trail.push_back(AuditEntry {
            id,
            ..entry.clone()
        });
        Ok(())
    }

    async fn audit_trail(&self, before: Option<i64>, limit: usize) -> StoreResult<AuditPage> {
        let trail = self
            .audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entries: Vec<AuditEntry> = trail
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .take(limit + 1)
            .cloned()
            .collect();
        let (entries, next) = crate::store::split_page(entries, limit, |e| e.id);
        Ok(AuditPage { entries, next })
    }
}

impl StoreHealth for EmbeddedStore {
    async fn sizes(&self) -> (Option<u64>, usize) {
        (Some(self.sessions.len() as u64), self.apps.load().len())
    }

    async fn health(&self) -> Vec<BackendHealth> {
        vec![BackendHealth {
            name: Backend::Embedded.label(),
            problem: None,
        }]
    }
}

impl EmbeddedStore {
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

    fn check(&self, creds: &Credentials) -> Option<Arc<Profile>> {
        let s = self.sessions.get(&creds.uuid)?;
        if !creds.accepts(s.app_id, &s.skey_hash, s.create_time, s.last_visit()) {
            return None;
        }
        s.last_visit.fetch_max(creds.now.0, Ordering::Relaxed);
        Some(s.profile.clone())
    }

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
