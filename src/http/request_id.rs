//! Request ids: taken from the caller's `X-Request-Id` when it is sane,
//! else generated, echoed in the response and logged with the request.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// The header carrying the id, both ways.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller id kept; longer ones are replaced, not truncated.
const MAX_LEN: usize = 128;

/// The caller's id if it is short printable ASCII, else a fresh one.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&HEADER) {
        Some(v) if acceptable(v.as_bytes()) => v.clone(),
        _ => generate(),
    }
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

/// A process-unique id: a random per-process prefix and a counter, so that
/// ids from several instances do not collide and cost no syscall each.
fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without OS randomness the ids stay unique within this process.
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 24];
    hex_into(&mut buf[..8], u64::from(prefix), 8);
    hex_into(&mut buf[8..], n, 16);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

fn hex_into(out: &mut [u8], mut v: u64, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_caller_id_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(&HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(of(&h), "abc-123");
    }

    #[test]
    fn missing_or_odd_ids_are_replaced_by_unique_ones() {
        let mut h = HeaderMap::new();
        let a = of(&h);
        let b = of(&h);
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        h.insert(&HEADER, HeaderValue::from_static("has space"));
        assert_ne!(of(&h), "has space");
        h.insert(&HEADER, HeaderValue::from_str(&"x".repeat(200)).unwrap());
        assert_eq!(of(&h).len(), 24);
    }
}
