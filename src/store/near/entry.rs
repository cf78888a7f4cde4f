//! A copy of a session in the near cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use uuid::Uuid;

use crate::domain::app::AppId;
use crate::domain::session::Profile;
use crate::domain::skey::SkeyHash;

/// What a copy costs beyond the text it answers (open_id, union_id,
/// user_info, phone number), bytes: the entry and the profile with their
/// allocations, the cache's bookkeeping, a pending slide. Measured by
/// `examples/near_bytes` (process RSS per copy, a million copies, each with
/// a slide pending): 1,129 bytes a copy with 383 bytes of text.
pub const COPY_OVERHEAD: usize = 746;

/// A copy of a session as Redis answered it, slid here since.
#[derive(Debug)]
pub struct Entry {
    /// The session.
    pub uuid: Uuid,
    /// Its app.
    pub app: AppId,
    /// SHA-256 of its skey.
    pub skey_hash: SkeyHash,
    /// Login time, ms.
    pub created: i64,
    /// Last visit accepted anywhere this instance knows of, ms.
    pub(super) visited: AtomicI64,
    /// Last visit Redis holds (as far as this instance wrote or read), ms.
    pub(super) written: AtomicI64,
    /// In the slide queue.
    pub(super) queued: AtomicBool,
    /// In use: filled for an auth, or accepted since.
    pub(super) used: AtomicBool,
    /// Answered an auth from the cache at least once (a copy evicted
    /// without it was a fill that only churned the cache).
    pub(super) hit: AtomicBool,
    /// The session's generation in Redis when copied.
    pub generation: i64,
    /// Its slide interval, ms (set when it is filled).
    pub(super) slide_ms: AtomicI64,
    /// What an auth answers.
    pub profile: Arc<Profile>,
    /// Bytes charged against the cache's bound.
    pub(super) weight: u32,
}

impl Entry {
    /// A copy of session `uuid` as Redis holds it (`created`, `written`
    /// its last visit there), made for an auth at `visit` (in use from the
    /// start), or fetched again after a change (`None`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        uuid: Uuid,
        app: AppId,
        skey_hash: SkeyHash,
        generation: i64,
        created: i64,
        written: i64,
        visit: Option<i64>,
        profile: Arc<Profile>,
    ) -> Self {
        let text = profile.open_id.len()
            + profile.union_id.as_ref().map_or(0, |s| s.len())
            + profile.user_info.as_ref().map_or(0, |s| s.len())
            + profile.phone_number.as_ref().map_or(0, |s| s.len());
        let bytes = text + COPY_OVERHEAD;
        Entry {
            uuid,
            app,
            skey_hash,
            created,
            visited: AtomicI64::new(visit.unwrap_or(written).max(written)),
            written: AtomicI64::new(written),
            queued: AtomicBool::new(false),
            used: AtomicBool::new(visit.is_some()),
            hit: AtomicBool::new(false),
            generation,
            slide_ms: AtomicI64::new(0),
            profile,
            weight: u32::try_from(bytes).unwrap_or(u32::MAX),
        }
    }

    /// The newest visit, ms.
    pub fn visited(&self) -> i64 {
        self.visited.load(Ordering::Acquire)
    }
}
