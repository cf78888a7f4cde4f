//! The bytes of a session in Redis: one string per session, a fixed header
//! the Lua scripts read by offset, then the profile only Rust reads.
//!
//! A string, not a hash: a ~300-byte `user_info` pushes a hash out of its
//! compact listpack encoding (values over `hash-max-listpack-value`, 64 bytes
//! by default) into a real hash table, which costs more than the session
//! itself. One string is ~40% of that, and `auth.lua` reads it with one `GET`.
//!
//! ```text
//! offset  size  field
//!      0     1  kind: b'S' session, b'X' tombstone (the whole value)
//!      1     8  generation   (i64, little-endian)
//!      9     8  app_id       (i64, little-endian; compared as bytes)
//!     17     8  create_ms    (i64, little-endian)
//!     25     8  last_visit   (i64, little-endian; SETRANGE on each slide)
//!     33     8  persisted    (i64: the last visit last sent to PostgreSQL)
//!     41    32  SHA-256 of the skey (compared as bytes)
//!     73     …  profile: u16 len + open_id, u16 len + union_id
//!               (0xFFFF = none), then user_info (absent = empty, else
//!               b'{'… as stored: the compact JSON object)
//! ```
//! The scripts (`auth.lua`, `put.lua`) hard-code these offsets, 1-based.

use std::sync::Arc;

use crate::domain::session::Profile;
use crate::store::record::SessionRecord;

/// First byte of a live session.
pub const SESSION: u8 = b'S';
/// The whole value of a tombstone.
pub const TOMBSTONE: &[u8] = b"X";
/// Where the profile starts.
pub const PROFILE_AT: usize = 73;
const NO_UNION: u16 = u16::MAX;

/// The app id as the scripts compare it.
pub fn app_bytes(app_id: i64) -> [u8; 8] {
    app_id.to_le_bytes()
}

/// Encodes `record` as the value of its key.
pub fn encode(record: &SessionRecord) -> Vec<u8> {
    let open_id = clip(record.open_id.as_bytes());
    let union_id = record.union_id.as_deref().map(|u| clip(u.as_bytes()));
    let user_info = record.user_info.as_deref().unwrap_or("").as_bytes();
    let mut v = Vec::with_capacity(
        PROFILE_AT + 4 + open_id.len() + union_id.map_or(0, <[u8]>::len) + user_info.len(),
    );
    v.push(SESSION);
    v.extend_from_slice(&record.generation.to_le_bytes());
    v.extend_from_slice(&app_bytes(record.app_id));
    v.extend_from_slice(&record.create_time.0.to_le_bytes());
    v.extend_from_slice(&record.last_visit.0.to_le_bytes());
    // A record comes from PostgreSQL (or was just written there).
    v.extend_from_slice(&record.last_visit.0.to_le_bytes());
    v.extend_from_slice(&record.skey_hash.0);
    debug_assert_eq!(v.len(), PROFILE_AT);
    v.extend_from_slice(&(open_id.len() as u16).to_le_bytes());
    v.extend_from_slice(open_id);
    match union_id {
        Some(u) => {
            v.extend_from_slice(&(u.len() as u16).to_le_bytes());
            v.extend_from_slice(u);
        }
        None => v.extend_from_slice(&NO_UNION.to_le_bytes()),
    }
    v.extend_from_slice(user_info);
    v
}

/// WeChat ids are ~28 bytes; anything past 65,534 is not an id and is cut
/// rather than allowed to corrupt the layout.
fn clip(b: &[u8]) -> &[u8] {
    &b[..b.len().min(usize::from(NO_UNION) - 1)]
}

/// Decodes the profile part (from [`PROFILE_AT`] on), as `auth.lua` returns
/// it. `None` when the bytes are not a profile this module wrote.
pub fn decode_profile(b: &[u8]) -> Option<Profile> {
    let (open_id, rest) = field(b)?;
    let (len, rest) = split_u16(rest)?;
    let (union_id, rest) = if len == NO_UNION {
        (None, rest)
    } else {
        let (u, rest) = rest.split_at_checked(usize::from(len))?;
        (Some(Box::from(std::str::from_utf8(u).ok()?)), rest)
    };
    let user_info = if rest.is_empty() {
        None
    } else {
        Some(Arc::from(std::str::from_utf8(rest).ok()?))
    };
    Some(Profile {
        open_id: Box::from(std::str::from_utf8(open_id).ok()?),
        union_id,
        user_info,
    })
}

fn split_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (n, rest) = b.split_first_chunk::<2>()?;
    Some((u16::from_le_bytes(*n), rest))
}

fn field(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = split_u16(b)?;
    rest.split_at_checked(usize::from(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::skey::SkeyHash;
    use uuid::Uuid;

    fn record(union_id: Option<&str>, user_info: Option<&str>) -> SessionRecord {
        SessionRecord {
            uuid: Uuid::nil(),
            app_id: 0x0102_0304,
            open_id: "oGZUI0egBJY1zhBYw2KhdUfwVJJE".into(),
            union_id: union_id.map(Into::into),
            skey_hash: SkeyHash([7; 32]),
            user_info: user_info.map(Into::into),
            create_time: Timestamp(1_700_000_000_123),
            last_visit: Timestamp(1_700_000_000_456),
            generation: 3,
        }
    }

    #[test]
    fn header_sits_at_the_offsets_the_scripts_read() {
        let v = encode(&record(None, None));
        assert_eq!(v[0], SESSION);
        assert_eq!(i64::from_le_bytes(v[1..9].try_into().unwrap()), 3);
        assert_eq!(&v[9..17], &app_bytes(0x0102_0304));
        assert_eq!(
            i64::from_le_bytes(v[17..25].try_into().unwrap()),
            1_700_000_000_123
        );
        assert_eq!(
            i64::from_le_bytes(v[25..33].try_into().unwrap()),
            1_700_000_000_456
        );
        assert_eq!(
            i64::from_le_bytes(v[33..41].try_into().unwrap()),
            1_700_000_000_456
        );
        assert_eq!(&v[41..73], &[7; 32]);
    }

    #[test]
    fn profile_round_trips_with_and_without_optional_parts() {
        for (union_id, user_info) in [
            (None, None),
            (Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA"), None),
            (None, Some(r#"{"nickName":"Band"}"#)),
            (Some(""), Some(r#"{"a":1}"#)),
        ] {
            let v = encode(&record(union_id, user_info));
            let p = decode_profile(&v[PROFILE_AT..]).unwrap();
            assert_eq!(&*p.open_id, "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
            assert_eq!(p.union_id.as_deref(), union_id);
            assert_eq!(p.user_info.as_deref(), user_info);
        }
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let v = encode(&record(Some("u"), None));
        assert!(decode_profile(&v[PROFILE_AT..PROFILE_AT + 3]).is_none());
        assert!(decode_profile(&[0xff]).is_none());
        assert!(decode_profile(&[2, 0, 0xff, 0xfe, 0xff, 0xff]).is_none());
    }
}
