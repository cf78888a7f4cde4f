//! The session chain walked: a check goes near cache → Redis → record,
//! a change goes record first (the acknowledged state), then Redis, then
//! drops this instance's copy.

use std::sync::Arc;

use uuid::Uuid;

use super::TieredStore;
use crate::clock::Timestamp;
use crate::domain::app::{AppId, AppRef};
use crate::domain::session::{
    Credentials, NewSession, Profile, SessionPage, SessionQuery, SessionSummary, StoredLogin,
};
use crate::store::metrics::ReadThrough;
use crate::store::near::Lookup;
use crate::store::postgres::ChangeSeq;
use crate::store::{SessionStore, StoreResult};

impl TieredStore {
    /// The newest visit of session `uuid` this instance knows of: `stored`,
    /// or one still waiting for PostgreSQL or held back by the near cache.
    fn newest_visit(&self, uuid: Uuid, stored: Timestamp) -> Timestamp {
        let pending = self.record.pending_visit(uuid).unwrap_or(stored);
        let held = self
            .near_cache()
            .and_then(|n| n.visit_of(uuid))
            .map_or(stored, Timestamp);
        stored.max(pending).max(held)
    }

    /// Drops this instance's copy of session `uuid` once its change is in
    /// Redis: the reply to the change must not race Redis' push.
    fn forget_near(&self, uuid: Uuid) {
        if let Some(near) = self.near_cache() {
            near.forget(uuid);
        }
    }

    /// Replaces removed sessions by tombstones in Redis and drops this
    /// instance's copies; each removal's change (if it removed a row) is
    /// marked told once Redis took it, all in one statement before the
    /// answer: other instances tell Redis of a removal left untold a moment
    /// later.
    pub(super) async fn tombstone(
        &self,
        removed: impl IntoIterator<Item = (Uuid, Option<ChangeSeq>)>,
    ) {
        for (uuid, change) in removed {
            if self.hot.tombstone(uuid).await {
                self.record.told(change);
            }
            self.forget_near(uuid);
        }
        self.record.mark_told(&[]).await;
    }
}

impl SessionStore for TieredStore {
    async fn upsert_session(&self, new: NewSession) -> StoreResult<StoredLogin> {
        let record = self.record.pg.upsert_session(&new).await?;
        self.hot.known(record.uuid);
        let told = match self.apps.get(&AppRef::Id(new.app_id)) {
            Some(app) => self.hot.cache(&record, &app.limits(), new.now).await,
            None => {
                self.hot.queue_repair(record.uuid);
                false
            }
        };
        // A first login was recorded as told: Redis held nothing older.
        if told && record.generation > 1 {
            self.record.told(record.change);
        }
        self.forget_near(record.uuid);
        Ok(StoredLogin {
            // The first login of a (app, open_id) row: generation 1.
            new: record.generation == 1,
            uuid: record.uuid,
            user_info: record.user_info.map(Arc::from),
        })
    }

    async fn authenticate(&self, creds: &Credentials) -> StoreResult<Option<Arc<Profile>>> {
        let redis_up = self.hot.is_connected();
        // A near cache standing aside: auths go to Redis as without it.
        let near = self
            .near
            .as_ref()
            .filter(|n| !(redis_up && n.cache().passes(creds.uuid)));
        if let Some(near) = near {
            match near.lookup(creds) {
                Lookup::Accept(profile) => return Ok(Some(profile)),
                Lookup::Refuse => return Ok(None),
                // Redis judges (or, while it is away, PostgreSQL) with
                // this instance's held-back visit; without waiting for a
                // Redis that is not there.
                Lookup::Ask if self.hot.is_connected() => near.write_pending_slide(creds).await,
                Lookup::Ask => near.hand_pending_visit_to_postgres(creds),
            }
        }
        if !self.hot.is_connected() {
            return self.hot.read_through(creds, ReadThrough::RedisDown).await;
        }
        let granularity = self.settings.visit.for_session_ms(creds.limits.session_ms);
        let outcome = match near {
            // Asked on the tracked connection, so the answer can be kept.
            Some(near) if near.cache().is_live() => near.ask(creds, granularity).await,
            _ => self.hot.redis.authenticate(creds, granularity).await,
        };
        self.hot.settle(creds, outcome).await
    }

    async fn session_key(&self, creds: &Credentials) -> StoreResult<Option<String>> {
        // The check (and slide) as for an auth; the key is only in the
        // record, and only for the skey that was checked.
        if self.authenticate(creds).await?.is_none() {
            return Ok(None);
        }
        self.record
            .pg
            .session_key(creds.uuid, &creds.skey_hash)
            .await
    }

    async fn set_phone(&self, creds: &Credentials, phone_number: &str) -> StoreResult<bool> {
        let Some(mut record) = self
            .record
            .pg
            .set_phone(creds.uuid, &creds.skey_hash, phone_number)
            .await?
        else {
            return Ok(false);
        };
        // The new generation replaces the cached copy; Redis then answers
        // the number on the next auth. PostgreSQL's last visit lags Redis'
        // (by up to a visit granularity): the copy lives from the newest
        // visit this instance knows of, at least this request's (the check
        // before it slid the session), or it would expire early.
        record.last_visit = self
            .newest_visit(record.uuid, record.last_visit)
            .max(creds.now);
        if self.hot.cache(&record, &creds.limits, creds.now).await {
            self.record.told(record.change);
        }
        self.forget_near(record.uuid);
        Ok(true)
    }

    async fn user_session_key(&self, app: AppId, open_id: &str) -> StoreResult<Option<String>> {
        self.record.pg.user_session_key(app, open_id).await
    }

    async fn logout(&self, creds: &Credentials) -> StoreResult<bool> {
        if self.authenticate(creds).await?.is_none() {
            return Ok(false);
        }
        // Only this skey's session: a concurrent re-login must survive.
        let deleted = self
            .record
            .pg
            .delete_session(creds.uuid, Some(&creds.skey_hash))
            .await?;
        if deleted.is_some() {
            self.tombstone([(creds.uuid, deleted)]).await;
        }
        Ok(deleted.is_some())
    }

    async fn revoke(&self, uuid: Uuid) -> StoreResult<bool> {
        let deleted = self.record.pg.delete_session(uuid, None).await?;
        self.tombstone([(uuid, deleted)]).await;
        Ok(deleted.is_some())
    }

    async fn list_sessions(&self, app: AppId, query: &SessionQuery) -> StoreResult<SessionPage> {
        let mut page = self.record.pg.list_sessions(app, query).await?;
        for s in &mut page.sessions {
            s.last_visit_time = self.newest_visit(s.uuid, s.last_visit_time);
        }
        Ok(page)
    }

    async fn user_session(&self, app: AppId, open_id: &str) -> StoreResult<Option<SessionSummary>> {
        // Redis first, through the open_id index: no PostgreSQL read, and
        // the freshest last visit. Anything else goes to the record.
        if self.hot.is_connected() {
            if let Ok(Some((uuid, s))) = self.hot.redis.user_session(app, open_id).await {
                return Ok(Some(SessionSummary {
                    uuid,
                    open_id: s.open_id,
                    union_id: s.union_id,
                    create_time: Timestamp(s.created),
                    last_visit_time: self.newest_visit(uuid, Timestamp(s.visited)),
                    phone_number: s.phone,
                }));
            }
        }
        let query = SessionQuery::user(open_id);
        Ok(self
            .list_sessions(app, &query)
            .await?
            .sessions
            .into_iter()
            .next())
    }
}
