//! The audit trail of admin actions: who changed what, when. Never a
//! secret: the target is an id (app id, session uuid, open_id).

use std::net::IpAddr;

use crate::clock::Timestamp;

crate::labels::labelled! {
    /// An audited admin action.
    pub enum AuditAction {
        /// An app was created.
        AppCreated => "app.created",
        /// An app was changed.
        AppChanged => "app.changed",
        /// An app (and its sessions) was deleted.
        AppDeleted => "app.deleted",
        /// A session was revoked by its uuid.
        SessionRevoked => "session.revoked",
        /// A user's session was revoked by open_id.
        UserRevoked => "user.revoked",
        /// An app's access token was read.
        TokenRead => "token.read",
        /// A user's session key was checked at WeChat.
        KeyChecked => "key.checked",
    }
}

/// Who asked for an admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The admin API, from this client address (when known).
    Api(Option<IpAddr>),
    /// `wafer apps …` or `wafer sessions …` on a host of wafer's.
    CommandLine,
}

impl Caller {
    /// The address the trail records (none from the command line).
    pub fn address(self) -> Option<IpAddr> {
        match self {
            Caller::Api(address) => address,
            Caller::CommandLine => None,
        }
    }

    /// How the action came, for the log line: `api` or `cli`.
    pub fn via(self) -> &'static str {
        match self {
            Caller::Api(_) => "api",
            Caller::CommandLine => "cli",
        }
    }
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its place in the trail (the store assigns it; newer is larger).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// What.
    pub action: AuditAction,
    /// On what: `app 3`, `session <uuid>`, `app 3 user <open_id>`.
    pub target: String,
    /// The caller's address, when known.
    pub caller: Option<IpAddr>,
}

/// One page of the trail, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Where the next (older) page starts.
    pub next: Option<i64>,
}
