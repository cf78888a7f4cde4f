//! Sessions in Redis: the auth check that slides a session in one round
//! trip, caching a record, tombstones, the open_id index, and reading a
//! session back.

use std::sync::Arc;

use fred::clients::WithOptions;
use fred::prelude::{Client, ClientLike, Error as RedisError, Value};
use uuid::Uuid;

use super::{Redis, layout};
use crate::domain::app::AppId;
use crate::domain::session::{Credentials, Profile};
use crate::store::StoreResult;
use crate::store::metrics::Op;
use crate::store::record::SessionRecord;

/// How long a tombstone keeps a removed session from coming back. Far longer
/// than any read-through or login can take (each is bounded by timeouts).
const TOMBSTONE_MS: i64 = 60_000;

/// The auth script: a reply of bytes or a string is an accepted session.
pub const AUTH_SCRIPT: &str = concat!(include_str!("extend.lua"), include_str!("auth.lua"));

/// What Redis says of a session on auth.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Accepted and slid, with the times Redis holds (and whether this
    /// visit is due to be written to PostgreSQL: none was for the visit
    /// granularity).
    Accepted(Arc<Profile>, layout::Visit),
    /// Known and refused (wrong app/skey, expired, removed).
    Refused,
    /// Not in Redis: read through to the record.
    Miss,
}

impl Redis {
    /// Checks `creds` and slides the session, in one round trip. A visit is
    /// reported due for PostgreSQL at most once per `granularity_ms`.
    pub async fn authenticate(
        &self,
        creds: &Credentials,
        granularity_ms: i64,
    ) -> StoreResult<AuthOutcome> {
        let args = || auth_args(creds, granularity_ms);
        let reply = self
            .eval(Op::Auth, &self.auth, self.keys(creds.uuid), args)
            .await?;
        Ok(auth_outcome(reply))
    }

    /// [`Redis::authenticate`] sent on `node` (a client bound to one node,
    /// following no redirection), recorded as `op`: an [`Op::Auth`] checks
    /// and slides the session as any auth does, an [`Op::Peek`] only checks
    /// it (writes nothing). A node that lacks the script gets it on the
    /// same connection (a node that just joined a cluster has none).
    pub(in crate::store) async fn auth_on(
        &self,
        node: &WithOptions<Client>,
        op: Op,
        creds: &Credentials,
        granularity_ms: i64,
    ) -> StoreResult<AuthOutcome> {
        use fred::types::ClusterHash;
        let sha = Value::from(self.auth.sha1().clone());
        let key = self.key(creds.uuid);
        // Routed by the session key's slot (a custom command's first
        // argument here is the script's SHA, not a key).
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let key = Value::from(key);
        let visit = Value::from(layout::visit_key(&self.prefix, creds.uuid));
        let send = || {
            let mut args = vec![sha.clone(), Value::Integer(2), key.clone(), visit.clone()];
            args.extend(auth_args(creds, granularity_ms));
            if matches!(op, Op::Peek) {
                args.push(Value::from_static_str("1"));
            }
            let evalsha = fred::cmd!("EVALSHA", hash: ClusterHash::Custom(slot));
            node.custom::<Value, Value>(evalsha, args)
        };
        let load = || async {
            let args = vec![
                Value::from_static_str("LOAD"),
                Value::from_static_str(AUTH_SCRIPT),
            ];
            let load = fred::cmd!("SCRIPT", hash: ClusterHash::Custom(slot));
            node.custom::<Value, Value>(load, args).await.map(drop)
        };
        let reply = self.eval_by(op, load, send).await?;
        Ok(auth_outcome(reply))
    }

    /// Caches `record` with a TTL of `ttl_ms` (its hash a quarter longer,
    /// within its absolute limit, `index_ttl_ms`: see `layout.rs`; and
    /// points the open_id index at it until that limit), unless Redis holds
    /// a newer generation of it or a tombstone. Returns whether it was
    /// written. Both commands are sent at once (one round trip's wait).
    pub async fn put(
        &self,
        record: &SessionRecord,
        ttl_ms: i64,
        index_ttl_ms: i64,
    ) -> StoreResult<bool> {
        use fred::prelude::{Expiration, KeysInterface};
        if ttl_ms <= 0 {
            return Ok(false);
        }
        let fields = layout::fields(record);
        let hash_ttl_ms =
            (ttl_ms + ttl_ms / layout::HASH_SLACK_DIVISOR).min(index_ttl_ms.max(ttl_ms));
        let args = || {
            let mut a = Vec::with_capacity(4 + fields.len());
            a.push(Value::Integer(record.generation));
            a.push(Value::Integer(ttl_ms));
            a.push(Value::Integer(hash_ttl_ms));
            a.push(Value::Integer(record.last_visit.0));
            a.extend(fields.iter().cloned());
            a
        };
        let session = self.eval(Op::Put, &self.put, self.keys(record.uuid), args);
        let index = async {
            let call = self.pool.next_connected().set::<Value, _, _>(
                layout::index_key(&self.prefix, record.app_id, &record.open_id),
                record.uuid.hyphenated().to_string(),
                Some(Expiration::PX(index_ttl_ms.max(ttl_ms))),
                None,
                false,
            );
            self.bounded(Op::Index, call).await
        };
        let (written, indexed) = tokio::join!(session, index);
        indexed?;
        Ok(written? == Value::Integer(1))
    }

    /// Replaces session `uuid` by a tombstone and removes its open_id index
    /// entry (if it still names this session).
    pub async fn tombstone(&self, uuid: Uuid) -> StoreResult<()> {
        let args = || vec![Value::Integer(TOMBSTONE_MS)];
        let was = self
            .eval(Op::Tombstone, &self.tombstone, self.keys(uuid), args)
            .await?;
        let Value::Array(parts) = was else {
            return Ok(());
        };
        let mut parts = parts.into_iter().filter_map(|v| v.into_string());
        let (Some(app), Some(open_id)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        let Ok(app) = app.parse::<AppId>() else {
            return Ok(());
        };
        let key = layout::index_key(&self.prefix, app, &open_id);
        let args = || vec![Value::from(uuid.hyphenated().to_string())];
        self.eval(Op::Index, &self.unindex, vec![key], args)
            .await
            .map(drop)
    }

    /// The session the open_id index names for (`app`, `open_id`), if Redis
    /// has both and they agree (the index is advisory).
    pub async fn user_session(
        &self,
        app: AppId,
        open_id: &str,
    ) -> StoreResult<Option<(Uuid, layout::Stored)>> {
        use fred::prelude::KeysInterface;
        let key = layout::index_key(&self.prefix, app, open_id);
        let call = self.pool.next_connected().get::<Option<String>, _>(key);
        let Some(uuid) = self.bounded(Op::Index, call).await? else {
            return Ok(None);
        };
        let Ok(uuid) = Uuid::try_parse(&uuid) else {
            return Ok(None);
        };
        Ok(self
            .session(uuid)
            .await?
            .filter(|s| s.app == app && s.open_id == open_id)
            .map(|s| (uuid, s)))
    }

    /// Session `uuid` as Redis holds it, if it does (not a tombstone): its
    /// hash, with the last visit of its visit key if that is later.
    pub async fn session(&self, uuid: Uuid) -> StoreResult<Option<layout::Stored>> {
        use fred::prelude::HashesInterface;
        let client = self.pool.next_connected();
        let hash = client.hgetall::<Vec<(String, Value)>, _>(self.key(uuid));
        let visit = client.hget::<Option<i64>, _, _>(
            layout::visit_key(&self.prefix, uuid),
            layout::field::VISITED,
        );
        let both = async { Ok::<_, RedisError>(tokio::join!(hash, visit)) };
        let (hash, visit) = self.bounded(Op::Load, both).await?;
        match hash {
            Ok(pairs) => Ok(layout::decode_stored(pairs).map(|mut s| {
                s.visited = s.visited.max(visit.ok().flatten().unwrap_or(0));
                s
            })),
            // An earlier version's string: not readable here, and a miss is
            // always safe (PostgreSQL has the record).
            Err(_) if self.is_connected() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The generation of session `uuid` Redis holds, if it holds one.
    pub async fn generation(&self, uuid: Uuid) -> StoreResult<Option<i64>> {
        use fred::prelude::HashesInterface;
        let call = self
            .pool
            .next_connected()
            .hget::<Option<i64>, _, _>(self.key(uuid), layout::field::GEN);
        self.bounded(Op::Load, call).await
    }

    /// Drops whatever Redis holds for `uuid` (the record is read again on
    /// the next auth).
    pub async fn evict(&self, uuid: Uuid) -> StoreResult<()> {
        use fred::prelude::KeysInterface;
        let call = self.pool.next_connected().del::<i64, _>(self.keys(uuid));
        self.bounded(Op::Evict, call).await.map(drop)
    }
}

/// The arguments of [`AUTH_SCRIPT`] for `creds`. Public so that the load
/// test's ceiling server makes exactly wafer's call.
pub fn auth_args(creds: &Credentials, granularity_ms: i64) -> Vec<Value> {
    vec![
        Value::Integer(creds.app_id),
        Value::from(layout::hex(&creds.skey_hash.0)),
        Value::Integer(creds.now.0),
        Value::Integer(creds.limits.login_ms),
        Value::Integer(creds.limits.session_ms),
        Value::Integer(granularity_ms),
    ]
}

/// What the auth script's reply says.
fn auth_outcome(reply: Value) -> AuthOutcome {
    match reply {
        Value::Integer(0) => AuthOutcome::Miss,
        Value::Array(reply) => accepted(reply),
        _ => AuthOutcome::Refused,
    }
}

/// An accepted auth's reply; a reply this version did not write is refused
/// (and logged) rather than trusted.
fn accepted(reply: Vec<Value>) -> AuthOutcome {
    match layout::decode_accepted(reply) {
        Some((visit, p)) => AuthOutcome::Accepted(Arc::new(p), visit),
        None => {
            tracing::error!("redis holds a session wafer cannot read; refusing it");
            AuthOutcome::Refused
        }
    }
}
