//! A session in Redis: one hash per session, `{prefix}s:{<uuid>}`, with
//! readable field names, so that an operator's `HGETALL` shows it and other
//! programs can read a field without knowing a byte layout. Never a plain
//! skey or session_key: the skey only as its SHA-256 (hex).
//!
//! | field | value |
//! |---|---|
//! | `app` | the app's numeric id |
//! | `open_id` | WeChat open_id |
//! | `union_id` | WeChat union_id (absent when unknown) |
//! | `skey_sha256` | SHA-256 of the skey, lowercase hex |
//! | `created` | login time, ms since the epoch |
//! | `visited` | last valid auth, ms, as of the hash's last write |
//! | `synced` | the last visit sent to PostgreSQL, as of the hash's last write |
//! | `gen` | generation: bumped by every login of this user; orders writers |
//! | `user_info` | the decrypted user info, compact JSON (absent when none) |
//! | `phone` | the user's phone number (absent when unknown) |
//!
//! Sliding writes go to a key of their own, `{prefix}v:{<uuid>}` (the same
//! hash tag: the same slot), a hash of `visited` and `synced`: the near
//! caches track only session hashes (`{prefix}s:`), so a slide, which
//! changes nothing an auth answers, pushes nothing to them and costs no
//! instance a refetch. A session's last visit is the later of the two keys'
//! `visited`. The visit key lives exactly as long as the session has left;
//! the session hash at least as long, extended by a quarter of what is left
//! at a time ([`HASH_SLACK_DIVISOR`]), so that an active session's hash is
//! written (and its copies dropped) about once per quarter session instead
//! of once per slide. The cost: an idle session's hash outlives it by up to
//! that quarter (every check judges by the times, not the TTL), and the
//! visit key's ~140 bytes per session.
//!
//! A removed session is a tombstone: a hash holding only `removed`, for a
//! short while, so that no late writer brings the session back. An entry of
//! the open_id index, `{prefix}o:{<app>:<open_id>}`, holds the uuid of that
//! user's session; it is advisory (always checked against the session it
//! names), lives as long as the session can (its absolute limit), and is
//! removed with the session.
//!
//! An app's WeChat access token is a JSON string under `{prefix}t:{<app>}`
//! (expiring with the token), and the leases on it (who fetches, who may
//! force a refresh) are `{prefix}t:{<app>}:fetch` and `…:force`.

use std::sync::Arc;

use bytes::Bytes;
use fred::prelude::Value;
use uuid::Uuid;

use crate::domain::app::AppId;
use crate::domain::session::Profile;
use crate::store::record::SessionRecord;

/// Field names, as the scripts use them.
pub mod field {
    /// The app's numeric id.
    pub const APP: &str = "app";
    /// WeChat open_id.
    pub const OPEN_ID: &str = "open_id";
    /// WeChat union_id.
    pub const UNION_ID: &str = "union_id";
    /// SHA-256 of the skey, hex.
    pub const SKEY_SHA256: &str = "skey_sha256";
    /// Login time, ms.
    pub const CREATED: &str = "created";
    /// Last valid auth, ms.
    pub const VISITED: &str = "visited";
    /// Last visit sent to PostgreSQL, ms.
    pub const SYNCED: &str = "synced";
    /// Generation.
    pub const GEN: &str = "gen";
    /// Decrypted user info.
    pub const USER_INFO: &str = "user_info";
    /// The user's phone number.
    pub const PHONE: &str = "phone";
    /// Marks a tombstone.
    pub const REMOVED: &str = "removed";
}

/// The key of session `uuid` under `prefix`: `{prefix}s:{<uuid>}` (the
/// braces are a Redis Cluster hash tag: a script on it touches one slot).
pub fn session_key(prefix: &str, uuid: Uuid) -> String {
    uuid_key(prefix, "s:{", uuid)
}

/// `{prefix}{kind}<uuid>}`: a key of session `uuid` whose hash tag is the
/// uuid.
fn uuid_key(prefix: &str, kind: &str, uuid: Uuid) -> String {
    let mut k = String::with_capacity(prefix.len() + 40);
    k.push_str(prefix);
    k.push_str(kind);
    k.push_str(uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    k.push('}');
    k
}

/// The visit key of session `uuid` under `prefix`: `{prefix}v:{<uuid>}`
/// (the session key's hash tag: the same slot, so one script takes both).
pub fn visit_key(prefix: &str, uuid: Uuid) -> String {
    uuid_key(prefix, "v:{", uuid)
}

/// Both keys of session `uuid`, as every session script takes them:
/// `KEYS[1]` the session hash, `KEYS[2]` its visit key.
pub fn session_keys(prefix: &str, uuid: Uuid) -> Vec<String> {
    vec![session_key(prefix, uuid), visit_key(prefix, uuid)]
}

/// A session hash is extended by what the session has left plus this
/// fraction of it (1/4) when its visit key would outlive it.
pub const HASH_SLACK_DIVISOR: i64 = 4;

/// The open_id index key of (`app`, `open_id`): `{prefix}o:{<app>:<open_id>}`.
/// The whole pair is the hash tag, so an app's users spread over a
/// cluster's slots instead of piling onto one.
pub fn index_key(prefix: &str, app: AppId, open_id: &str) -> String {
    format!("{prefix}o:{{{app}:{open_id}}}")
}

/// The key of app `app`'s shared access token: `{prefix}t:{<app>}`.
pub fn token_key(prefix: &str, app: AppId) -> String {
    format!("{prefix}t:{{{app}}}")
}

/// The key of a lease on app `app`'s token: `{prefix}t:{<app>}:<lease>`
/// (the token's hash tag: one slot per app).
pub fn lease_key(prefix: &str, app: AppId, lease: &str) -> String {
    format!("{prefix}t:{{{app}}}:{lease}")
}

/// The SHA-256 of an skey as the hash stores it.
pub fn hex(hash: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The field/value pairs of `record`, as `put.lua` writes them.
pub fn fields(record: &SessionRecord) -> Vec<Value> {
    let mut v = Vec::with_capacity(20);
    let mut pair = |name: &'static str, value: Value| {
        v.push(Value::from_static_str(name));
        v.push(value);
    };
    pair(field::APP, Value::Integer(record.app_id));
    pair(field::OPEN_ID, Value::from(record.open_id.as_str()));
    if let Some(u) = &record.union_id {
        pair(field::UNION_ID, Value::from(u.as_str()));
    }
    pair(field::SKEY_SHA256, Value::from(hex(&record.skey_hash.0)));
    pair(field::CREATED, Value::Integer(record.create_time.0));
    pair(field::VISITED, Value::Integer(record.last_visit.0));
    // A record comes from PostgreSQL (or was just written there).
    pair(field::SYNCED, Value::Integer(record.last_visit.0));
    pair(field::GEN, Value::Integer(record.generation));
    if let Some(info) = &record.user_info {
        pair(field::USER_INFO, Value::Bytes(Bytes::from(info.clone())));
    }
    if let Some(phone) = &record.phone_number {
        pair(field::PHONE, Value::from(phone.as_str()));
    }
    v
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// What Redis says of an accepted session's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// This visit is due to be written to PostgreSQL.
    pub due: bool,
    /// Login time, ms.
    pub created: i64,
    /// The last visit Redis holds now, ms.
    pub visited: i64,
    /// The session's generation (every login or change of it bumps it).
    pub generation: i64,
}

/// Decodes an accepted auth's reply, `[due, open_id, union_id|nil,
/// user_info|nil, phone|nil, created, visited, gen]`; `None` when it is not
/// a reply `auth.lua` makes.
pub fn decode_accepted(reply: Vec<Value>) -> Option<(Visit, Profile)> {
    let mut it = reply.into_iter();
    let due = matches!(it.next()?, Value::Integer(1));
    let open_id = text(it.next()?)?;
    let union_id = it.next().and_then(text);
    let user_info = it.next().and_then(text);
    let phone_number = it.next().and_then(text);
    let created = it.next()?.as_i64()?;
    let visited = it.next()?.as_i64()?;
    let generation = it.next()?.as_i64()?;
    Some((
        Visit {
            due,
            created,
            visited,
            generation,
        },
        Profile {
            open_id: open_id.into(),
            union_id: union_id.map(Box::from),
            user_info: user_info.map(Arc::from),
            phone_number: phone_number.map(Box::from),
        },
    ))
}

/// What an operator sees of a session: its fields as `HGETALL` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The app.
    pub app: AppId,
    /// WeChat open_id.
    pub open_id: String,
    /// WeChat union_id.
    pub union_id: Option<String>,
    /// Login time, ms.
    pub created: i64,
    /// Last valid auth, ms.
    pub visited: i64,
    /// The user's phone number.
    pub phone: Option<String>,
}

/// Reads a session hash (`HGETALL` pairs); `None` for a tombstone, an
/// empty reply or fields this version did not write.
pub fn decode_stored(pairs: Vec<(String, Value)>) -> Option<Stored> {
    let mut app = None;
    let mut open_id = None;
    let mut union_id = None;
    let mut created = None;
    let mut visited = None;
    let mut phone = None;
    for (name, value) in pairs {
        match name.as_str() {
            field::REMOVED => return None,
            field::APP => app = text(value)?.parse().ok(),
            field::OPEN_ID => open_id = text(value),
            field::UNION_ID => union_id = text(value),
            field::CREATED => created = text(value)?.parse().ok(),
            field::VISITED => visited = text(value)?.parse().ok(),
            field::PHONE => phone = text(value),
            _ => {}
        }
    }
    Some(Stored {
        app: app?,
        open_id: open_id?,
        union_id,
        created: created?,
        visited: visited?,
        phone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::skey::SkeyHash;

    fn record(union_id: Option<&str>, user_info: Option<&str>) -> SessionRecord {
        SessionRecord {
            change: None,
            uuid: Uuid::nil(),
            app_id: 7,
            open_id: "oGZUI0egBJY1zhBYw2KhdUfwVJJE".into(),
            union_id: union_id.map(Into::into),
            skey_hash: SkeyHash([0xab; 32]),
            user_info: user_info.map(Into::into),
            phone_number: None,
            create_time: Timestamp(1_700_000_000_123),
            last_visit: Timestamp(1_700_000_000_456),
            generation: 3,
        }
    }

    fn names(v: &[Value]) -> Vec<String> {
        v.iter()
            .step_by(2)
            .filter_map(|n| text(n.clone()))
            .collect()
    }

    #[test]
    fn fields_name_every_part_and_omit_what_is_absent() {
        let all = fields(&record(Some("u1"), Some(r#"{"a":1}"#)));
        assert_eq!(
            names(&all),
            [
                "app",
                "open_id",
                "union_id",
                "skey_sha256",
                "created",
                "visited",
                "synced",
                "gen",
                "user_info"
            ]
        );
        let bare = names(&fields(&record(None, None)));
        assert!(!bare.contains(&"union_id".to_owned()) && !bare.contains(&"user_info".to_owned()));
        assert_eq!(text(all[7].clone()).unwrap(), "ab".repeat(32));
    }

    #[test]
    fn keys_are_hash_tagged() {
        assert_eq!(
            session_key("wafer:", Uuid::nil()),
            "wafer:s:{00000000-0000-0000-0000-000000000000}"
        );
        assert_eq!(index_key("wafer:", 7, "oX"), "wafer:o:{7:oX}");
    }

    #[test]
    fn accepted_replies_decode_and_others_are_refused() {
        let (visit, p) = decode_accepted(vec![
            Value::Integer(1),
            Value::from("o1"),
            Value::Null,
            Value::from(r#"{"n":1}"#),
            Value::Null,
            Value::Integer(5),
            Value::Integer(9),
            Value::Integer(3),
        ])
        .unwrap();
        assert_eq!(
            visit,
            Visit {
                due: true,
                created: 5,
                visited: 9,
                generation: 3,
            }
        );
        assert_eq!(&*p.open_id, "o1");
        assert!(p.union_id.is_none());
        assert_eq!(p.user_info.as_deref(), Some(r#"{"n":1}"#));
        assert!(decode_accepted(vec![Value::Integer(0)]).is_none());
    }

    #[test]
    fn tombstones_and_foreign_hashes_are_not_sessions() {
        assert!(decode_stored(vec![("removed".into(), Value::from("1"))]).is_none());
        assert!(decode_stored(vec![("app".into(), Value::from("1"))]).is_none());
        let s = decode_stored(vec![
            ("app".into(), Value::from("7")),
            ("open_id".into(), Value::from("o")),
            ("created".into(), Value::from("5")),
            ("visited".into(), Value::from("6")),
        ])
        .unwrap();
        assert_eq!((s.app, s.created, s.visited), (7, 5, 6));
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn a_session_hash_reads_back_as_written(
            app in 1i64..1_000_000,
            open_id in "\\PC{1,40}",
            union_id in proptest::option::of("\\PC{1,40}"),
            phone in proptest::option::of("[0-9+ ]{1,20}"),
            created in 0i64..4_000_000_000_000,
            visited in 0i64..4_000_000_000_000,
        ) {
            let mut r = record(union_id.as_deref(), Some(r#"{"n":1}"#));
            r.app_id = app;
            r.open_id = open_id.clone();
            r.phone_number = phone.clone();
            r.create_time = Timestamp(created);
            r.last_visit = Timestamp(visited);
            let v = fields(&r);
            let pairs: Vec<(String, Value)> = v
                .chunks(2)
                .map(|p| (text(p[0].clone()).unwrap_or_default(), p[1].clone()))
                .collect();
            let s = decode_stored(pairs);
            proptest::prop_assert!(s.is_some());
            if let Some(s) = s {
                proptest::prop_assert_eq!(s.app, app);
                proptest::prop_assert_eq!(s.open_id, open_id);
                proptest::prop_assert_eq!(s.union_id, union_id);
                proptest::prop_assert_eq!(s.phone, phone);
                proptest::prop_assert_eq!((s.created, s.visited), (created, visited));
            }
        }

        #[test]
        fn any_auth_reply_is_decoded_or_refused(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::arbitrary::any::<i64>().prop_map(Value::Integer),
                    "\\PC{0,20}".prop_map(|s| Value::from(s.as_str())),
                    proptest::strategy::Just(Value::Null),
                ],
                0..8,
            )
        ) {
            let _ = decode_accepted(parts);
        }
    }
}
