//! Secrets at rest: app secrets and session keys are stored in PostgreSQL
//! sealed with AES-256-GCM under a data key (`WAFER_DATA_KEYS`), with the
//! key's id beside the value so keys can be rotated (`wafer rekey`).
//!
//! A sealed value is `sealed:v1:<key id>:<base64(nonce ‖ ciphertext)>`; any
//! other value is plain text (written before data keys were configured, or
//! without them), read as it is and sealed by the next `wafer rekey`. The
//! associated data names the column, so a value cannot be moved from one
//! column to the other.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;

/// Which column a sealed value belongs to (its associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `apps.secret`.
    AppSecret,
    /// `sessions.session_key`.
    SessionKey,
}

impl Column {
    fn aad(self) -> &'static [u8] {
        match self {
            Column::AppSecret => b"wafer apps.secret",
            Column::SessionKey => b"wafer sessions.session_key",
        }
    }
}

/// Why a data-key setting or a sealed value cannot be used. Never quotes a
/// key or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// `WAFER_DATA_KEYS` is not `id:base64(32 bytes),…`.
    #[error("WAFER_DATA_KEYS: {0}")]
    BadSetting(String),
    /// The value is sealed under a key the setting does not have.
    #[error("a value is sealed under data key `{0}`, which WAFER_DATA_KEYS does not hold")]
    UnknownKey(String),
    /// The value does not open (altered, or another column's).
    #[error("a sealed value does not open with data key `{0}`")]
    Corrupt(String),
}

impl From<SealError> for crate::store::StoreError {
    fn from(e: SealError) -> Self {
        crate::store::StoreError::Sealed(e.to_string())
    }
}

/// The configured data keys; the first seals, any opens.
#[derive(Clone)]
pub struct DataKeys {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("DataKeys").field("ids", &ids).finish()
    }
}

impl DataKeys {
    /// Reads `id:base64(32 bytes)` entries, comma-separated. Ids are short
    /// names (letters, digits, `-`, `_`), unique.
    pub fn parse(setting: &str) -> Result<Self, SealError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((id, b64)) = entry.split_once(':') else {
                return Err(SealError::BadSetting(
                    "each key is `id:base64`, e.g. `k1:…`".into(),
                ));
            };
            let good_id = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !good_id {
                return Err(SealError::BadSetting(format!(
                    "key id `{id}` must be 1-32 letters, digits, - or _"
                )));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(SealError::BadSetting(format!(
                    "key id `{id}` appears twice"
                )));
            }
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| SealError::BadSetting(format!("key `{id}` is not base64")))?;
            if bytes.len() != 32 {
                return Err(SealError::BadSetting(format!(
                    "key `{id}` is {} bytes; AES-256 takes 32 (openssl rand -base64 32)",
                    bytes.len()
                )));
            }
            let key = Key::<Aes256Gcm>::try_from(bytes.as_slice())
                .map_err(|_| SealError::BadSetting(format!("key `{id}` is not 32 bytes")))?;
            keys.push((id.to_owned(), Aes256Gcm::new(&key)));
        }
        if keys.is_empty() {
            return Err(SealError::BadSetting("no key given".into()));
        }
        Ok(DataKeys { keys })
    }

    /// The id of the key that seals.
    pub fn current(&self) -> &str {
        &self.keys[0].0
    }

    /// Seals `plain` for `column` under the first key, with a fresh nonce.
    pub fn seal(&self, column: Column, plain: &str) -> Result<String, SealError> {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Corrupt(id.clone()))?;
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: column.aad(),
                },
            )
            .map_err(|_| SealError::Corrupt(id.clone()))?;
        let mut raw = Vec::with_capacity(NONCE_BYTES + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{id}:{}", STANDARD.encode(raw)))
    }

    /// Opens a stored value: sealed ones with their key, plain ones as they are.
    pub fn open(&self, column: Column, stored: &str) -> Result<String, SealError> {
        let Some((id, b64)) = stored.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) else {
            return Ok(stored.to_owned());
        };
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let corrupt = || SealError::Corrupt(id.to_owned());
        let raw = STANDARD.decode(b64).map_err(|_| corrupt())?;
        if raw.len() < NONCE_BYTES {
            return Err(corrupt());
        }
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| corrupt())?;
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: column.aad(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// Whether `stored` is sealed under the current key (else `wafer rekey`
    /// seals it anew).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(id, _)| id == self.current())
    }
}

/// Opens a stored value with `keys`, or takes it as it is without keys. A
/// sealed value without keys cannot be opened.
pub fn open(keys: Option<&DataKeys>, column: Column, stored: &str) -> Result<String, SealError> {
    match keys {
        Some(k) => k.open(column, stored),
        None if stored.starts_with(PREFIX) => {
            let id = stored[PREFIX.len()..].split(':').next().unwrap_or("");
            Err(SealError::UnknownKey(id.to_owned()))
        }
        None => Ok(stored.to_owned()),
    }
}

/// Seals a value with `keys`, or leaves it plain without keys.
pub fn seal(keys: Option<&DataKeys>, column: Column, plain: &str) -> Result<String, SealError> {
    match keys {
        Some(k) => k.seal(column, plain),
        None => Ok(plain.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn values_round_trip_and_stay_bound_to_their_column() {
        let k = DataKeys::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = k
            .seal(Column::SessionKey, "tiihtNczf5v6AKRyjwEUhQ==")
            .unwrap();
        assert!(sealed.starts_with("sealed:v1:k1:"));
        assert!(!sealed.contains("tiihtNczf5v6AKRyjwEUhQ"));
        assert_eq!(
            k.open(Column::SessionKey, &sealed).unwrap(),
            "tiihtNczf5v6AKRyjwEUhQ=="
        );
        assert_ne!(
            sealed,
            k.seal(Column::SessionKey, "tiihtNczf5v6AKRyjwEUhQ==")
                .unwrap(),
            "fresh nonces"
        );
        assert_eq!(
            k.open(Column::AppSecret, &sealed),
            Err(SealError::Corrupt("k1".into())),
            "another column's value does not open"
        );
        assert_eq!(k.open(Column::AppSecret, "plain").unwrap(), "plain");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open(Column::SessionKey, &tampered).is_err());
    }

    #[test]
    fn keys_rotate_old_ones_still_open() {
        let old = DataKeys::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = old.seal(Column::AppSecret, "s3cret").unwrap();
        let both = DataKeys::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(both.open(Column::AppSecret, &sealed).unwrap(), "s3cret");
        assert!(!both.is_current(&sealed));
        assert!(both.is_current(&both.seal(Column::AppSecret, "s3cret").unwrap()));
        let new_only = DataKeys::parse(&format!("k2:{}", key(2))).unwrap();
        assert_eq!(
            new_only.open(Column::AppSecret, &sealed),
            Err(SealError::UnknownKey("k1".into()))
        );
        assert_eq!(
            open(None, Column::AppSecret, &sealed),
            Err(SealError::UnknownKey("k1".into()))
        );
        assert_eq!(open(None, Column::AppSecret, "plain").unwrap(), "plain");
    }

    #[test]
    fn bad_settings_are_refused_without_quoting_keys() {
        for bad in [
            "",
            "k1",
            "k1:notbase64!",
            &format!("k1:{}", STANDARD.encode([1; 16])),
            &format!("k 1:{}", key(1)),
            &format!("k1:{},k1:{}", key(1), key(2)),
        ] {
            let e = DataKeys::parse(bad).unwrap_err();
            assert!(!e.to_string().contains(&key(1)), "{e}");
        }
        assert!(
            !format!("{:?}", DataKeys::parse(&format!("k1:{}", key(1))).unwrap()).contains(&key(1))
        );
    }

    proptest::proptest! {
        #[test]
        fn anything_sealed_opens_to_itself(plain in "\\PC{0,300}") {
            let k = DataKeys::parse(&format!("k1:{}", key(3))).map_err(|e| e.to_string());
            proptest::prop_assert!(k.is_ok());
            if let Ok(k) = k {
                let sealed = k.seal(Column::AppSecret, &plain);
                proptest::prop_assert!(sealed.is_ok());
                if let Ok(sealed) = sealed {
                    proptest::prop_assert_eq!(k.open(Column::AppSecret, &sealed), Ok(plain));
                }
            }
        }

        #[test]
        fn any_stored_text_opens_or_is_refused(stored in "\\PC{0,120}") {
            if let Ok(k) = DataKeys::parse(&format!("k1:{}", key(3))) {
                let _ = k.open(Column::SessionKey, &stored);
                let _ = k.open(Column::SessionKey, &format!("sealed:v1:k1:{stored}"));
            }
        }
    }
}
