//! The near cache's line to Redis: one RESP3 client (one connection per
//! node) on which every session key is tracked in broadcast mode,
//! `CLIENT TRACKING ON BCAST PREFIX {prefix}s:`, on every node.
//!
//! - Any write to a session key by anyone (another instance's login,
//!   logout or revoke; this instance's own writes too) is pushed here as an
//!   invalidation. Slides write the session's visit key (`{prefix}v:`),
//!   which is not tracked (the hash only about once per quarter session). Broadcast mode needs no per-key state in Redis
//!   and no reads on this connection to register interest.
//! - The near cache's fills are asked here (an auth's fill slides the
//!   session as any auth does; a fetch again after a change only reads), on
//!   a node this connection tracks, without following a redirection: a
//!   copy is only ever made from a node whose changes reach this instance.
//!   A session whose slot moved (or is moving) is answered through the
//!   pool instead, and the layout change makes the cache stop serving until
//!   tracking is on on the new layout. Its slides go through the pool like
//!   every other command; its other writes come back as invalidations too
//!   (Redis' `NOLOOP` does not cover writes made inside scripts, Redis
//!   7.0).
//! - A cluster tracks per node: tracking is turned on on every primary
//!   (fred's broadcast helper would turn it on for one). The heartbeat
//!   refreshes the layout and compares its primaries with the ones tracked:
//!   a primary that joined, left or took slots is a new layout.
//! - Without a cluster, the heartbeat also checks that the node is a
//!   primary: a connection that came back to a demoted node would track a
//!   replica while the pool writes elsewhere.
//!
//! `FLUSHALL` is announced by Redis as an invalidation of no key, which fred
//! drops; the copies it leaves are of sessions PostgreSQL still holds (a
//! flush revokes nothing), and each is dropped when its next slide finds
//! Redis without it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fred::clients::WithOptions;
use fred::error::ErrorKind;
use fred::interfaces::{ClientInterface, ClusterInterface, EventInterface, TrackingInterface};
use fred::prelude::{Client, ClientLike, Error as RedisError, Server, Value};
use fred::types::RespVersion;
use fred::types::client::Invalidation;
use fred::types::config::Options;
use fred::types::scripts::Script;
use tokio::sync::broadcast::Receiver as BroadcastReceiver;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::FlushReason;
use crate::domain::app::AppId;
use crate::domain::session::{Credentials, Limits};
use crate::domain::skey::SkeyHash;
use crate::store::metrics::Op;
use crate::store::redis::{AuthOutcome, Redis, builder_with, layout};
use crate::store::{Backend, ConnectError, StoreResult};

/// Invalidations fred may hold for the near cache before it lags (and
/// flushes): enough for bursts of writes far above any login rate.
const INVALIDATION_BUFFER: usize = 1 << 16;

/// A connection to Redis on which the session keys are tracked.
pub struct Tracked {
    redis: Redis,
    client: Client,
    slide: Script,
    /// The tracked prefix: `{prefix}s:`.
    sessions: Arc<str>,
    /// The primaries tracking was last turned on on (a cluster's; empty
    /// for one server).
    tracked: Mutex<Vec<Server>>,
}

/// What the heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// On, in broadcast mode, on every primary of the layout it was turned
    /// on for.
    On,
    /// Off somewhere, or not provable (a node did not answer, or is a
    /// replica).
    Off,
    /// The cluster's primaries are no longer those tracked.
    Moved,
}

/// A slide the near cache held back, as written to Redis.
#[derive(Debug, Clone, Copy)]
pub struct SlideWrite<'a> {
    /// The session.
    pub uuid: Uuid,
    /// Its app.
    pub app: AppId,
    /// Its skey hash (a slide never touches another login's session).
    pub skey_hash: &'a SkeyHash,
    /// The generation copied (a slide never touches a changed session).
    pub generation: i64,
    /// The visit to write, ms.
    pub visited: i64,
    /// The app's limits.
    pub limits: Limits,
    /// The visit granularity for PostgreSQL, ms.
    pub granularity_ms: i64,
    /// When it is written, ms (the keys live as long as the session has
    /// left from then).
    pub now: i64,
}

/// What writing a slide did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlideReply {
    /// Written; `true` when the visit is due for PostgreSQL. It went to
    /// the session's visit key, which no near cache tracks (its hash only
    /// about once per quarter session, pushed like any other write).
    Written(bool),
    /// Nothing written: Redis held a later visit.
    Unchanged,
    /// Redis no longer holds this session as copied (removed, expired,
    /// another generation).
    Gone,
}

/// What Redis tells the near cache.
#[derive(Debug)]
pub enum TrackingEvent {
    /// These sessions changed.
    Invalidated(Vec<Uuid>),
    /// Changes may have been missed (a reason of
    /// [`FlushReason`]): forget everything.
    Lost(FlushReason),
}

/// The stream of [`TrackingEvent`]s.
pub struct TrackingEvents {
    sessions: Arc<str>,
    invalidations: BroadcastReceiver<Invalidation>,
    errors: BroadcastReceiver<(RedisError, Option<Server>)>,
    reconnects: BroadcastReceiver<Server>,
    unresponsive: BroadcastReceiver<Server>,
}

impl TrackingEvents {
    /// The next event; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<TrackingEvent> {
        fn lost<T>(r: Result<T, RecvError>, reason: FlushReason) -> Option<TrackingEvent> {
            match r {
                Err(RecvError::Closed) => None,
                _ => Some(TrackingEvent::Lost(reason)),
            }
        }
        tokio::select! {
            biased;
            r = self.errors.recv() => lost(r, FlushReason::Lost),
            r = self.unresponsive.recv() => lost(r, FlushReason::Lost),
            r = self.reconnects.recv() => lost(r, FlushReason::Reconnect),
            r = self.invalidations.recv() => match r {
                Ok(inv) => Some(TrackingEvent::Invalidated(
                    inv.keys
                        .iter()
                        .filter_map(|k| k.as_str().and_then(|k| session_of(&self.sessions, k)))
                        .collect(),
                )),
                Err(RecvError::Lagged(_)) => Some(TrackingEvent::Lost(FlushReason::Lagged)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

/// The session a tracked key names: `{prefix}s:{<uuid>}`.
fn session_of(sessions: &str, key: &str) -> Option<Uuid> {
    let braced = key.strip_prefix(sessions)?;
    let inner = braced.strip_prefix('{')?.strip_suffix('}')?;
    Uuid::try_parse(inner).ok()
}

impl Tracked {
    /// A RESP3 client of `redis`' server(s), connecting in the background.
    pub fn connect(redis: &Redis) -> Result<Self, ConnectError> {
        let mut config = redis.config.clone();
        config.version = RespVersion::RESP3;
        // A redirection is refused, not followed: an answer comes only
        // from the node the layout names (fred still learns the new
        // layout from it).
        let mut b = builder_with(config, redis.timeout, |c| c.max_redirections = 0);
        b.with_performance_config(|p| p.broadcast_channel_capacity = INVALIDATION_BUFFER);
        let client = b.build().map_err(|_| ConnectError::Pool {
            backend: Backend::Redis,
        })?;
        client.connect();
        Ok(Tracked {
            sessions: format!("{}s:", redis.prefix).into(),
            redis: redis.clone(),
            client,
            slide: Script::from_lua(concat!(
                include_str!("../redis/extend.lua"),
                include_str!("../redis/slide.lua")
            )),
            tracked: Mutex::new(Vec::new()),
        })
    }

    /// The events of this connection, from now on.
    pub fn events(&self) -> TrackingEvents {
        TrackingEvents {
            sessions: self.sessions.clone(),
            invalidations: self.client.invalidation_rx(),
            errors: self.client.error_rx(),
            reconnects: self.client.reconnect_rx(),
            unresponsive: self.client.unresponsive_rx(),
        }
    }

    /// A cluster's primaries as the cluster says now (the layout is asked
    /// again: this connection sends no keyed command that would tell it of
    /// a move), sorted; empty for one server.
    async fn primaries(&self) -> Result<Vec<Server>, RedisError> {
        if !self.client.is_clustered() {
            return Ok(Vec::new());
        }
        self.client.sync_cluster().await?;
        let mut nodes = self
            .client
            .cached_cluster_state()
            .map(|s| s.unique_primary_nodes())
            .unwrap_or_default();
        if nodes.is_empty() {
            return Err(RedisError::new(ErrorKind::Cluster, "no cluster layout yet"));
        }
        nodes.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        Ok(nodes)
    }

    /// A handle on each of `primaries`, or on the one server.
    fn handles(&self, primaries: &[Server]) -> Vec<WithOptions<Client>> {
        if self.client.is_clustered() {
            primaries
                .iter()
                .map(|n| self.client.with_cluster_node(n.clone()))
                .collect()
        } else {
            vec![self.client.with_options(&Default::default())]
        }
    }

    /// Turns tracking on (again: off first, so the command is the same
    /// whatever state a connection was left in) on every primary.
    pub async fn enable(&self) -> StoreResult<()> {
        let call = async {
            let primaries = self.primaries().await?;
            for node in self.handles(&primaries) {
                let _: Value = node
                    .client_tracking(
                        "off",
                        None,
                        Vec::<String>::new(),
                        false,
                        false,
                        false,
                        false,
                    )
                    .await?;
                let _: Value = node
                    .client_tracking("on", None, &*self.sessions, true, false, false, false)
                    .await?;
            }
            if let Ok(mut t) = self.tracked.lock() {
                *t = primaries;
            }
            Ok(())
        };
        self.redis.bounded(Op::Track, call).await
    }

    /// Whether tracking is on, in broadcast mode, on every primary, and
    /// the primaries are those it was turned on on (the heartbeat: a
    /// connection that came back without it, a demoted node, or a primary
    /// that joined or took slots, says no).
    pub async fn check(&self) -> StoreResult<Tracking> {
        let call = async {
            let primaries = self.primaries().await?;
            let same = self.tracked.lock().is_ok_and(|t| *t == primaries);
            if !same {
                return Ok(Tracking::Moved);
            }
            let clustered = self.client.is_clustered();
            for node in self.handles(&primaries) {
                if !clustered {
                    let role: Vec<Value> =
                        node.custom(fred::cmd!("ROLE"), Vec::<Value>::new()).await?;
                    if role.first().and_then(|r| r.as_str()).as_deref() != Some("master") {
                        return Ok(Tracking::Off);
                    }
                }
                let info: HashMap<String, Value> = node.client_trackinginfo().await?;
                let flags: Vec<String> = info
                    .get("flags")
                    .cloned()
                    .and_then(|f| f.convert().ok())
                    .unwrap_or_default();
                if !(flags.iter().any(|f| f == "on") && flags.iter().any(|f| f == "bcast")) {
                    return Ok(Tracking::Off);
                }
            }
            Ok(Tracking::On)
        };
        self.redis.bounded(Op::Track, call).await
    }

    /// Checks a session as [`Redis::authenticate`] does, and for an auth
    /// (`again` false) slides it as that does: the visit goes to the visit
    /// key, which is not tracked, so the copy made from the answer costs no
    /// later slide and is not dropped by its own write (the hash's
    /// extension, about once per quarter session, comes back as an
    /// invalidation and drops it: safe, and rare). `again`: a copy fetched
    /// again after a change, with no auth behind it: only checked, nothing
    /// written (recorded as `peek`).
    ///
    /// Read on this connection, from the primary its layout names as the
    /// slot's owner, only when tracking is on on that primary, and
    /// following no redirection (`MOVED` or `ASK`): an answer comes only
    /// from a node whose changes are pushed here. Anything else fails, and
    /// the caller asks the pool.
    pub async fn fetch(
        &self,
        creds: &Credentials,
        granularity_ms: i64,
        again: bool,
    ) -> StoreResult<AuthOutcome> {
        let op = if again { Op::Peek } else { Op::Auth };
        // One server: it is the one tracked, and there is no slot to find.
        let slot = self
            .client
            .is_clustered()
            .then(|| fred::util::redis_keyslot(self.redis.key(creds.uuid).as_bytes()));
        if !self.owned_by_tracked(slot) {
            return Err(crate::store::redis::not_connected());
        }
        let node = self.client.with_options(&Options::default());
        let outcome = self.redis.auth_on(&node, op, creds, granularity_ms).await?;
        // A layout learnt meanwhile (a redirection refused here refreshes
        // it) may name an owner tracking is not on yet.
        if !self.owned_by_tracked(slot) {
            return Err(crate::store::redis::not_connected());
        }
        Ok(outcome)
    }

    /// Whether the primary that owns `slot` in this connection's layout is
    /// one tracking is on on (`None`: one server, always).
    fn owned_by_tracked(&self, slot: Option<u16>) -> bool {
        let Some(slot) = slot else {
            return true;
        };
        let Some(state) = self.client.cached_cluster_state() else {
            return false;
        };
        let Ok(tracked) = self.tracked.lock() else {
            return false;
        };
        state
            .get_server(slot)
            .is_some_and(|owner| tracked.contains(owner))
    }

    /// Writes `slides`, all at once (fred pipelines them): one result per
    /// slide.
    pub async fn slide(&self, slides: &[SlideWrite<'_>]) -> Vec<StoreResult<SlideReply>> {
        futures::future::join_all(slides.iter().map(|s| self.slide_one(*s))).await
    }

    async fn slide_one(&self, s: SlideWrite<'_>) -> StoreResult<SlideReply> {
        let args = || {
            vec![
                Value::Integer(s.app),
                Value::from(layout::hex(&s.skey_hash.0)),
                Value::Integer(s.visited),
                Value::Integer(s.limits.login_ms),
                Value::Integer(s.limits.session_ms),
                Value::Integer(s.granularity_ms),
                Value::Integer(s.generation),
                Value::Integer(s.now),
            ]
        };
        let reply = self
            .redis
            .eval(Op::Slide, &self.slide, self.redis.keys(s.uuid), args)
            .await?;
        Ok(match reply {
            Value::Integer(2) => SlideReply::Written(true),
            Value::Integer(1) => SlideReply::Written(false),
            Value::Integer(0) => SlideReply::Unchanged,
            _ => SlideReply::Gone,
        })
    }

    /// Closes the connection.
    pub async fn quit(&self) {
        let _ = tokio::time::timeout(self.redis.timeout, self.client.quit()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_session_keys_name_sessions() {
        let u = Uuid::new_v4();
        let key = layout::session_key("w:", u);
        assert_eq!(session_of("w:s:", &key), Some(u));
        assert_eq!(session_of("w:s:", "w:o:{7:o1}"), None);
        assert_eq!(session_of("w:s:", "x:s:{not-a-uuid}"), None);
        assert_eq!(session_of("w:s:", "w:s:{not-a-uuid}"), None);
    }
}
