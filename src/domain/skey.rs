//! Session keys handed to clients: minted from the OS CSPRNG, stored only as
//! a SHA-256 hash; hashes compared in constant time here. (The Redis auth
//! script compares the digests with `~=`: an early exit on a digest of a
//! 256-bit random secret tells an attacker nothing about the secret. Skeys
//! imported from the original wafer may be weaker; for them the timing
//! tells no more than trying a guess online does, and they end with their
//! original absolute limit.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of entropy in an skey (256 bits).
const SKEY_BYTES: usize = 32;

/// A freshly minted skey; its text goes to the client once and is then dropped.
pub struct Skey(String);

impl Skey {
    /// Mints 256 random bits from the operating system, as URL-safe base64.
    /// Fails only when the OS generator does; no weaker fallback is tried.
    pub fn mint() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SKEY_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Skey(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The text given to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its hash, the only form that is stored.
    pub fn hash(&self) -> SkeyHash {
        SkeyHash::of(&self.0)
    }
}

impl std::fmt::Debug for Skey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Skey(<redacted>)")
    }
}

/// SHA-256 of an skey's text. The skey carries 256 bits of entropy, so a fast
/// hash is enough: there is nothing to brute-force.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SkeyHash(pub [u8; 32]);

impl SkeyHash {
    /// Hash of a presented skey text.
    pub fn of(skey: &str) -> Self {
        SkeyHash(Sha256::digest(skey.as_bytes()).into())
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &SkeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for SkeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SkeyHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_long_url_safe_and_distinct() {
        let a = Skey::mint().unwrap();
        let b = Skey::mint().unwrap();
        assert_eq!(a.expose().len(), 43, "256 bits in unpadded base64");
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn hash_matches_only_its_key() {
        let a = Skey::mint().unwrap();
        assert!(a.hash().matches(&SkeyHash::of(a.expose())));
        assert!(!a.hash().matches(&Skey::mint().unwrap().hash()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
