//! A session as the production backends hold it: the full record that
//! PostgreSQL keeps and Redis caches.

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::domain::app::AppId;
use crate::domain::skey::SkeyHash;

/// One stored session, everything but its `session_key` (which is written
/// once at login and never read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id.
    pub uuid: Uuid,
    /// Owning app.
    pub app_id: AppId,
    /// WeChat open_id.
    pub open_id: String,
    /// WeChat union_id, when known.
    pub union_id: Option<String>,
    /// SHA-256 of the skey.
    pub skey_hash: SkeyHash,
    /// Decrypted user info as compact JSON, when ever sent.
    pub user_info: Option<String>,
    /// The user's phone number, once `/mina/phone` fetched it.
    pub phone_number: Option<String>,
    /// Login time.
    pub create_time: Timestamp,
    /// Last valid auth (or the login).
    pub last_visit: Timestamp,
    /// Bumped by every login of this (app, open_id); orders writers of Redis.
    pub generation: i64,
    /// The change that wrote this state, when the record is the answer to
    /// one (a login, a phone number): Redis is told, then it is marked.
    pub change: Option<i64>,
}
